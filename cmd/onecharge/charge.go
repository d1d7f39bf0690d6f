package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/travelbook/onecharge/support/apikey"
	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/keys"
	"github.com/travelbook/onecharge/support/keystore"
	"github.com/travelbook/onecharge/support/payments"
	"github.com/travelbook/onecharge/support/retry"
)

func init() { extraCommands["charge"] = charge }

// charge creates one booking's PaymentIntent with the Safe client, its key
// kept in a key store, and prints the outcome as one JSON line (the
// external-subject contract). It is the process the crash-recovery spec
// kills, and a reference subject for `ONECHARGE_SUBJECT_CMD`.
func charge(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("charge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("base", os.Getenv("STRIPE_API_BASE"), "Stripe API base URL (the stack's URL; $STRIPE_API_BASE)")
	booking := fs.String("booking", os.Getenv("ONECHARGE_BOOKING_ID"), "booking id ($ONECHARGE_BOOKING_ID)")
	agency := fs.String("agency", env("ONECHARGE_AGENCY_ID", "ag_1"), "agency id ($ONECHARGE_AGENCY_ID)")
	amount := fs.Int64("amount", envInt("ONECHARGE_AMOUNT", 0), "amount in minor units ($ONECHARGE_AMOUNT)")
	currency := fs.String("currency", env("ONECHARGE_CURRENCY", "eur"), "currency ($ONECHARGE_CURRENCY)")
	store := fs.String("keystore", "", "SQLite file keeping keys and the audit trail (empty: no store)")
	pg := fs.String("pg", "", "PostgreSQL DSN keeping keys and the audit trail, instead of --keystore")
	strategy := fs.String("keys", "composite", "key strategy without a store: composite, uuidv5 or random")
	timeout := fs.Duration("timeout", 2*time.Second, "timeout of each HTTP attempt")
	attempts := fs.Int("attempts", 6, "most attempts")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "seed of the backoff jitter")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	key := env("STRIPE_API_KEY", "sk_test_123")
	// Only a live key is refused here: stripe-mock's own "sk_test_123" is
	// too short for apikey.Check but fine against the local stack.
	if err := apikey.Check(key); errors.Is(err, apikey.ErrLive) {
		fmt.Fprintf(stderr, "onecharge: %v\n", err)
		return 2
	}
	if *base == "" || *booking == "" || *amount <= 0 {
		fmt.Fprintln(stderr, "onecharge charge: give --base, --booking and a positive --amount (or STRIPE_API_BASE, ONECHARGE_BOOKING_ID, ONECHARGE_AMOUNT).")
		return 2
	}
	ctx := context.Background()
	policy := retry.Policy{Kind: retry.FullJitter, Base: 100 * time.Millisecond, Cap: 2 * time.Second, MaxAttempts: *attempts, Rand: retry.NewRand(*seed)}
	safe := payments.NewSafe(payments.Config{BaseURL: *base, APIKey: key, Timeout: *timeout, Clock: clock.Real{}, Sleeper: clock.Real{}}, policy)
	switch *strategy {
	case "composite":
	case "uuidv5":
		safe.Keys = keys.UUIDv5Strategy
	case "random":
		safe.Keys = keys.RandomStrategy(rand.Reader)
	default:
		fmt.Fprintf(stderr, "onecharge charge: unknown --keys %q: use composite, uuidv5 or random.\n", *strategy)
		return 2
	}
	if *store != "" || *pg != "" {
		var st keystore.Store
		var err error
		if *pg != "" {
			st, err = keystore.OpenPostgres(ctx, *pg)
		} else {
			st, err = keystore.OpenSQLite(*store)
		}
		if err != nil {
			fmt.Fprintf(stderr, "onecharge: %v\n", err)
			return 1
		}
		defer st.Close()
		safe.Journal = keystore.Journal{M: &keystore.Manager{Store: st, Clock: clock.Real{}, Mint: keystore.StoreMint}}
	}
	out := safe.Charge(ctx, payments.Booking{Agency: *agency, ID: *booking, Amount: *amount, Currency: strings.ToLower(*currency)})
	line, _ := json.Marshal(struct {
		Result        payments.Result    `json:"result"`
		PaymentIntent string             `json:"payment_intent,omitempty"`
		Error         string             `json:"error,omitempty"`
		Keys          []string           `json:"keys"`
		Attempts      []payments.Attempt `json:"attempts"`
	}{out.Result, out.PaymentIntent, out.Error, out.Keys(), out.Attempts})
	fmt.Fprintln(stdout, string(line))
	if out.Result != payments.Succeeded {
		return 1
	}
	return 0
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int64) int64 {
	var n int64
	if _, err := fmt.Sscan(os.Getenv(name), &n); err != nil {
		return def
	}
	return n
}
