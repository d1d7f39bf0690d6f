package keystore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/travelbook/onecharge/support/keystore"
	"github.com/travelbook/onecharge/support/keystore/pgtest"
)

// pg is one PostgreSQL cluster for the whole test binary; each test gets
// its own database on it.
var pg pgtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

func sqliteDB(t *testing.T) func() keystore.Store {
	path := filepath.Join(t.TempDir(), "keys.db")
	return func() keystore.Store {
		s, err := keystore.OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func postgresDB(t *testing.T) func() keystore.Store {
	dsn := pg.Database(t)
	return func() keystore.Store {
		s, err := keystore.OpenPostgres(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestSQLiteConformance(t *testing.T)   { RunConformance(t, sqliteDB) }
func TestPostgresConformance(t *testing.T) { RunConformance(t, postgresDB) }

func TestSQLiteBadInput(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("this is not a database\n", 400)), 0o644); err != nil {
		t.Fatal(err)
	}
	regular := filepath.Join(dir, "plain-file")
	os.WriteFile(regular, []byte("x"), 0o644)
	cases := []struct {
		name, path string
		want       []string
	}{
		{"corrupt file", garbage, []string{"keystore sqlite:", garbage, "not a valid SQLite database", "move it aside"}},
		{"directory is a file", filepath.Join(regular, "keys.db"), []string{"keystore sqlite:", "is not a directory", "create the directory"}},
		{"missing directory", filepath.Join(dir, "nope", "keys.db"), []string{"keystore sqlite:", "is not a directory"}},
		{"path is a directory", dir, []string{"keystore sqlite:", "is a directory"}},
		{"memory", ":memory:", []string{"keystore sqlite:", "not a file path"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := keystore.OpenSQLite(tc.path)
			if err == nil {
				s.Close()
				t.Fatalf("OpenSQLite(%s) succeeded", tc.path)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if b, _ := os.ReadFile(garbage); !strings.HasPrefix(string(b), "this is not") {
		t.Error("OpenSQLite changed the corrupt file")
	}
}

func TestSQLiteReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes through read-only modes; the not-a-directory case in TestSQLiteBadInput covers unwritable paths")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	_, err := keystore.OpenSQLite(filepath.Join(dir, "keys.db"))
	if err == nil || !strings.Contains(err.Error(), "keystore sqlite: cannot write") {
		t.Fatalf("OpenSQLite in a read-only directory = %v", err)
	}
}

func TestSQLiteUsesWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.db")
	s, err := keystore.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Reserve(context.Background(), "B1", "charge", counter("k"), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("no write-ahead log next to the database: %v", err)
	}
}

func TestPostgresBadDSN(t *testing.T) {
	cases := []struct {
		name, dsn string
		want      []string
	}{
		{"unreachable", "postgres://u@127.0.0.1:1/keys?sslmode=disable", []string{"keystore postgres:", "127.0.0.1:1/keys", "check that the server is running"}},
		{"not a DSN", "postgres://u:secret@[::1/keys", []string{"keystore postgres:", "DSN is not valid", "pass a URL"}},
		// A TEST-NET address drops packets: connect_timeout must cut it short.
		{"black hole", "postgres://u@192.0.2.1:5432/keys?sslmode=disable&connect_timeout=1", []string{"keystore postgres:", "192.0.2.1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			s, err := keystore.OpenPostgres(context.Background(), tc.dsn)
			if err == nil {
				s.Close()
				t.Fatal("OpenPostgres succeeded")
			}
			if d := time.Since(start); d > 8*time.Second {
				t.Errorf("OpenPostgres took %v to fail", d)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans several lines", err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}

func TestPostgresWrongDatabase(t *testing.T) {
	c, err := pg.Cluster()
	if err != nil {
		t.Skip(err)
	}
	_, err = keystore.OpenPostgres(context.Background(), c.DSN("no_such_db"))
	if err == nil || !strings.Contains(err.Error(), "keystore postgres: cannot connect") || !strings.Contains(err.Error(), "no_such_db") {
		t.Fatalf("OpenPostgres(wrong database) = %v", err)
	}
}
