// Package keystore is the key management helper: it reserves one durable
// idempotency key per business operation (booking + operation), keeps an
// append-only audit trail of every attempt made with it, guards Stripe's
// 24-hour idempotency window, and exports the trail for an auditor.
//
// Two stores sit behind one Store interface: SQLite (OpenSQLite, pure Go,
// the embedded default) and PostgreSQL (OpenPostgres, for deployments with
// several instances). Both pass the same conformance suite. A Manager adds
// the policy on top of a Store: the safety margin, reconciliation and the
// retention period.
//
// See https://docs.stripe.com/api/idempotent_requests for the semantics the
// keys serve.
package keystore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// State is where a key stands. A key moves reserved → in_flight →
// succeeded | failed | indeterminate | collision; an indeterminate key may
// go in_flight again when it is retried.
type State string

// The states of a key.
const (
	// Reserved: the key is stored but no request was sent with it yet.
	Reserved State = "reserved"
	// InFlight: a request with the key was (or is about to be) sent.
	InFlight State = "in_flight"
	// Succeeded: Stripe answered and the object (PaymentIntent) exists.
	Succeeded State = "succeeded"
	// Failed: Stripe answered with a definitive failure, nothing was created.
	Failed State = "failed"
	// Indeterminate: nobody knows whether Stripe executed the request
	// (timeout, dropped connection, saved 500); retry with the same key.
	Indeterminate State = "indeterminate"
	// Collision: Stripe refused the key because it was used with other
	// parameters or another endpoint (idempotency_error).
	Collision State = "collision"
)

// Resolved reports whether s is final: succeeded, failed or collision.
// Only resolved keys may be pruned, and only unresolved keys are guarded by
// the safety margin.
func (s State) Resolved() bool {
	return s == Succeeded || s == Failed || s == Collision
}

func (s State) valid() bool {
	switch s {
	case Reserved, InFlight, Succeeded, Failed, Indeterminate, Collision:
		return true
	}
	return false
}

// Key is one idempotency key and what became of it.
type Key struct {
	Key                 string    `json:"key"`
	Booking             string    `json:"booking"`
	Operation           string    `json:"operation"`
	State               State     `json:"state"`
	CreatedAt           time.Time `json:"created_at"`
	UpdatedAt           time.Time `json:"updated_at"`
	PaymentIntent       string    `json:"payment_intent,omitempty"`
	PaymentIntentStatus string    `json:"payment_intent_status,omitempty"`
	// Attempts counts BeginAttempt calls: how often the key was sent.
	Attempts int `json:"attempts"`
	// Note says why the key ended in its state when a person or the
	// reconciler decided it, e.g. "expired, reconciled: none found".
	Note string `json:"note,omitempty"`
	// SupersededBy names the key that replaced this one after
	// reconciliation; a superseded key is never handed out again.
	SupersededBy string `json:"superseded_by,omitempty"`
}

// Attempt is one row of the audit trail: one request sent with a key, or a
// bookkeeping event such as a reconciliation (N = 0).
type Attempt struct {
	Key        string    `json:"key"`
	N          int       `json:"n"`
	At         time.Time `json:"at"`
	Outcome    string    `json:"outcome"`
	HTTPStatus int       `json:"http_status,omitempty"`
	RequestID  string    `json:"request_id,omitempty"`
	Error      string    `json:"error,omitempty"`
	Replayed   bool      `json:"replayed"`
}

// Result is the final word on a key, written by Finish.
type Result struct {
	State               State
	PaymentIntent       string
	PaymentIntentStatus string
	Note                string
}

// Filter selects keys for Query. Zero fields do not filter; Since and Until
// bound CreatedAt (Since inclusive, Until exclusive).
type Filter struct {
	State   State
	Booking string
	Since   time.Time
	Until   time.Time
}

// Store keeps keys and their audit trail durably. Implementations must be
// safe for concurrent use by many goroutines and by many processes sharing
// the same database. Times are kept to the microsecond, in UTC.
type Store interface {
	// Reserve returns the current key of (booking, operation), inserting
	// one made by mint if there is none; created reports whether it did.
	// Concurrent callers, in any process, get the same key.
	Reserve(ctx context.Context, booking, operation string, mint func() (string, error), now time.Time) (k Key, created bool, err error)
	// BeginAttempt marks the key in_flight and returns the attempt number
	// (1, 2, ...). Call it before sending, so a crash leaves a trace. It
	// refuses a superseded key.
	BeginAttempt(ctx context.Context, key string, now time.Time) (int, error)
	// RecordAttempt appends a row to the audit trail; rows are never
	// changed afterwards.
	RecordAttempt(ctx context.Context, a Attempt) error
	// Finish records the key's result; r.State must not be reserved or
	// in_flight.
	Finish(ctx context.Context, key string, r Result, now time.Time) error
	// Supersede retires old (which must be current for its operation) as
	// failed with note, and reserves a new key made by mint in the same
	// transaction. If another caller superseded old first, it returns the
	// key that caller made.
	Supersede(ctx context.Context, old string, note string, mint func() (string, error), now time.Time) (Key, error)
	// Get returns the current key of (booking, operation), or ErrNotFound.
	Get(ctx context.Context, booking, operation string) (Key, error)
	// Query returns the keys that match f, superseded ones included,
	// oldest first.
	Query(ctx context.Context, f Filter) ([]Key, error)
	// Attempts returns the audit rows of key in the order they were added.
	Attempts(ctx context.Context, key string) ([]Attempt, error)
	// Prune deletes resolved keys last updated before before, with their
	// audit rows, and returns how many keys it deleted. It never deletes a
	// reserved, in_flight or indeterminate key.
	Prune(ctx context.Context, before time.Time) (int, error)
	// Close releases the database.
	Close() error
}

// ErrNotFound is returned when a key or an operation has no stored key.
var ErrNotFound = errors.New("keystore: no such key")

// ErrSuperseded is returned by BeginAttempt for a key that reconciliation
// replaced: sending it again could charge twice.
var ErrSuperseded = errors.New("keystore: the key was superseded after reconciliation; reserve the operation again to get its current key")

// maxKeyLen is Stripe's limit on Idempotency-Key.
const maxKeyLen = 255

func checkOperation(store, booking, operation string) error {
	if booking == "" || operation == "" {
		return fmt.Errorf("keystore %s: booking and operation must both be set (got %q, %q)", store, booking, operation)
	}
	return nil
}

func mintKey(store string, mint func() (string, error)) (string, error) {
	if mint == nil {
		return "", fmt.Errorf("keystore %s: Reserve needs a mint function", store)
	}
	k, err := mint()
	if err != nil {
		return "", fmt.Errorf("keystore %s: minting a key: %w", store, err)
	}
	if k == "" || len(k) > maxKeyLen {
		return "", fmt.Errorf("keystore %s: minted key %q must have 1 to %d characters, Stripe's limit", store, k, maxKeyLen)
	}
	return k, nil
}

func checkFinal(store string, s State) error {
	if !s.valid() || s == Reserved || s == InFlight {
		return fmt.Errorf("keystore %s: Finish needs a final state (succeeded, failed, indeterminate or collision), not %q", store, s)
	}
	return nil
}

// ts normalises a time to what both stores can keep.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
