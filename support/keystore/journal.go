package keystore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/travelbook/onecharge/support/keys"
	"github.com/travelbook/onecharge/support/payments"
)

// Journal adapts a Manager to payments.Journal, so the Safe client
// reserves its key in the store before the first send, marks every attempt
// in flight before it leaves, and appends every attempt and the final
// result to the audit trail.
type Journal struct {
	M *Manager
	// Operation is the operation the client reserves keys for. Defaults to
	// "create_payment", as payments.Safe.
	Operation string
}

func (j Journal) operation() string {
	if j.Operation == "" {
		return "create_payment"
	}
	return j.Operation
}

var _ payments.Journal = Journal{}

// StoreMint mints keys for a store-backed client: the readable business
// fields plus a random suffix. The store, not the key string, ties the key
// to its booking, so after a reconciliation ("expired, none found") the
// new key must differ from the old one; the suffix makes it so.
func StoreMint(booking, operation string) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	k, err := keys.Composite(keys.Operation{Agency: "-", Booking: booking, Operation: operation})
	if err != nil {
		return "", err
	}
	return k + ":" + hex.EncodeToString(b[:]), nil
}

// Reserve returns the booking's key (a *WindowError past the margin).
func (j Journal) Reserve(ctx context.Context, b payments.Booking, operation string) (string, error) {
	k, err := j.M.Reserve(ctx, b.ID, operation)
	if err != nil {
		return "", err
	}
	if k.State.Resolved() && k.State != Succeeded {
		return "", fmt.Errorf("keystore: key %s for booking %s is %s (%s): reconcile or investigate before charging again", k.Key, b.ID, k.State, k.Note)
	}
	return k.Key, nil
}

// Begin marks the key in flight before an attempt is sent.
func (j Journal) Begin(ctx context.Context, key string) error {
	_, err := j.M.Store.BeginAttempt(ctx, key, j.M.now())
	return err
}

// Record appends one attempt to the audit trail.
func (j Journal) Record(ctx context.Context, key string, a payments.Attempt) error {
	outcome := a.Decision
	if a.PaymentIntent != "" {
		outcome = "succeeded " + a.PaymentIntent
	}
	return j.M.Store.RecordAttempt(context.WithoutCancel(ctx), Attempt{
		Key: key, N: a.N, At: a.At, Outcome: outcome, HTTPStatus: a.Status,
		RequestID: a.RequestID, Error: a.Error, Replayed: a.Replayed,
	})
}

// Finish records the final result.
func (j Journal) Finish(ctx context.Context, key string, o payments.Outcome) error {
	state := map[payments.Result]State{
		payments.Succeeded: Succeeded, payments.Failed: Failed,
		payments.Indeterminate: Indeterminate, payments.Collision: Collision,
	}[o.Result]
	if state == "" {
		state = Indeterminate
	}
	if state == Collision {
		// A collision says this request differed from the key's first one;
		// it does not undo what the first one did. Keep a succeeded key's
		// PaymentIntent, and let the attempt row tell of the collision.
		if k, err := j.M.Store.Get(ctx, o.Booking.ID, j.operation()); err == nil && k.Key == key && k.State == Succeeded {
			return nil
		}
	}
	status := ""
	if o.PaymentIntent != "" {
		status = "created"
	}
	return j.M.Store.Finish(ctx, key, Result{State: state, PaymentIntent: o.PaymentIntent, PaymentIntentStatus: status, Note: o.Error}, j.M.now())
}
