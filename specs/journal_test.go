package specs_test

import (
	"os"
	"path/filepath"
	"sync"

	. "github.com/onsi/gomega"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/keystore"
	"github.com/travelbook/onecharge/support/payments"
)

// journal is the process's key store: the Safe subject reserves its keys
// and records every attempt there. `make verify` points ONECHARGE_KEYSTORE
// at reports/keys.db, shared by all processes (SQLite in WAL mode), and
// `onecharge report` exports it as the run's audit trail; otherwise each
// process keeps a throwaway file.
var journal struct {
	once sync.Once
	j    payments.Journal
}

func auditJournal() payments.Journal {
	journal.once.Do(func() {
		path := os.Getenv("ONECHARGE_KEYSTORE")
		if path == "" {
			dir, err := os.MkdirTemp("", "onecharge-keys-")
			Expect(err).NotTo(HaveOccurred())
			path = filepath.Join(dir, "keys.db")
		}
		st, err := keystore.OpenSQLite(path)
		Expect(err).NotTo(HaveOccurred(), "ONECHARGE_KEYSTORE")
		journal.j = keystore.Journal{M: &keystore.Manager{Store: st, Clock: clock.Real{}, Mint: keystore.StoreMint}}
	})
	return journal.j
}
