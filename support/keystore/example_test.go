package keystore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/keystore"
)

// A Safe client reserves before it sends, records every attempt, and asks
// Stripe before re-sending a key older than the margin.
func Example() {
	dir, _ := os.MkdirTemp("", "keystore-example")
	defer os.RemoveAll(dir)
	store, err := keystore.OpenSQLite(filepath.Join(dir, "keys.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	vc := clock.NewVirtual(time.Date(2025, 9, 9, 10, 50, 0, 0, time.UTC))
	m := &keystore.Manager{Store: store, Clock: vc,
		Mint: func(booking, op string) (string, error) { return booking + "-" + op + "-1", nil }}
	ctx := context.Background()

	k, _ := m.Reserve(ctx, "BK-1042", "charge")
	n, _ := m.BeginAttempt(ctx, k.Key, vc.Now())
	// ... send with Idempotency-Key: k.Key; the response is lost ...
	m.RecordAttempt(ctx, keystore.Attempt{Key: k.Key, N: n, At: vc.Now(), Outcome: "timeout"})
	m.Finish(ctx, k.Key, keystore.Result{State: keystore.Indeterminate}, vc.Now())

	vc.Advance(25 * time.Hour)
	_, err = m.Reserve(ctx, "BK-1042", "charge")
	var we *keystore.WindowError
	fmt.Println(errors.As(err, &we), err)
	// Output:
	// true key BK-1042-charge-1 for booking BK-1042 is 25h old, past the 23h safety margin of Stripe's 24-hour idempotency window: reconcile before minting a new key
}
