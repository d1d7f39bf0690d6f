package keystore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/travelbook/onecharge/support/clock"
)

// DefaultMargin is how old an unresolved key may be before it is no longer
// sent blindly: an hour short of Stripe's 24-hour window, so a retry in
// flight cannot cross it.
const DefaultMargin = 23 * time.Hour

// DefaultRetention is how long resolved keys and their audit rows are kept.
const DefaultRetention = 30 * 24 * time.Hour

// Manager adds policy to a Store: the safety margin before Stripe's
// idempotency window closes, reconciliation, and retention. The zero
// values of its fields take the defaults documented on each.
type Manager struct {
	Store
	// Clock tells the time of reservations and the margin check.
	// Defaults to clock.Real.
	Clock clock.Clock
	// Margin is the age past which an unresolved, already-sent key is
	// refused. Defaults to DefaultMargin (23h).
	Margin time.Duration
	// Retention is how long PruneOld keeps resolved keys. Defaults to
	// DefaultRetention (30 days).
	Retention time.Duration
	// Mint makes a new key for an operation. Defaults to a random UUIDv4
	// (crypto/rand); a random key is safe because Reserve stores it before
	// the first send, so retries read it back instead of minting again.
	Mint func(booking, operation string) (string, error)
}

// WindowError is returned by Manager.Reserve for an unresolved key that was
// already sent and is older than the margin: Stripe may have forgotten it,
// so sending it again could charge twice. Call Manager.Reconcile.
type WindowError struct {
	Key    Key
	Age    time.Duration
	Margin time.Duration
}

func (e *WindowError) Error() string {
	return fmt.Sprintf("key %s for booking %s is %s old, past the %s safety margin of Stripe's 24-hour idempotency window: reconcile before minting a new key",
		e.Key.Key, e.Key.Booking, shortDuration(e.Age), shortDuration(e.Margin))
}

// shortDuration prints 23h rather than 23h0m0s.
func shortDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (m *Manager) now() time.Time {
	if m.Clock == nil {
		return time.Now()
	}
	return m.Clock.Now()
}

func (m *Manager) margin() time.Duration {
	if m.Margin <= 0 {
		return DefaultMargin
	}
	return m.Margin
}

func (m *Manager) mint(booking, operation string) func() (string, error) {
	return func() (string, error) {
		if m.Mint != nil {
			return m.Mint(booking, operation)
		}
		u, err := uuid.NewRandom()
		return u.String(), err
	}
}

// Reserve returns the key of (booking, operation), reserving one if there
// is none. It returns a *WindowError, and no key, when the key is
// unresolved, was sent at least once, and is older than the margin. A key
// never sent (Attempts 0) is returned whatever its age: Stripe has not seen
// it, so its window has not started.
func (m *Manager) Reserve(ctx context.Context, booking, operation string) (Key, error) {
	now := m.now()
	k, _, err := m.Store.Reserve(ctx, booking, operation, m.mint(booking, operation), now)
	if err != nil {
		return Key{}, err
	}
	if age := now.Sub(k.CreatedAt); !k.State.Resolved() && k.Attempts > 0 && age > m.margin() {
		return Key{}, &WindowError{Key: k, Age: age, Margin: m.margin()}
	}
	return k, nil
}

// Lookup finds the PaymentIntent a booking's request created, if any, among
// those created at or after since. StripeLookup implements it over the API.
type Lookup interface {
	FindPaymentIntent(ctx context.Context, booking string, since time.Time) (id, status string, found bool, err error)
}

// Reconcile settles an operation whose key is past the margin (or any
// unresolved key) by asking Stripe, through lookup, what the key's requests
// did. If a PaymentIntent exists, the key is recorded as succeeded with it
// and returned: do not send again. If none exists, the key is retired as
// failed ("expired, reconciled: none found") and a new key is reserved and
// returned (State reserved): send with it. A resolved key is returned as is.
// Either way the audit trail gets a row (N = 0) saying what was decided.
func (m *Manager) Reconcile(ctx context.Context, booking, operation string, lookup Lookup) (Key, error) {
	k, err := m.Store.Get(ctx, booking, operation)
	if err != nil {
		return Key{}, err
	}
	if k.State.Resolved() {
		return k, nil
	}
	// Stripe's created is in whole seconds, and clocks drift: look a little
	// earlier than the reservation.
	id, status, found, err := lookup.FindPaymentIntent(ctx, booking, k.CreatedAt.Add(-5*time.Minute))
	if err != nil {
		return Key{}, fmt.Errorf("keystore: reconciling key %s for booking %s: %w", k.Key, booking, err)
	}
	now := m.now()
	if found {
		note := fmt.Sprintf("reconciled: found %s (%s)", id, status)
		if err := m.Store.RecordAttempt(ctx, Attempt{Key: k.Key, At: now, Outcome: note}); err != nil {
			return Key{}, err
		}
		if err := m.Store.Finish(ctx, k.Key, Result{State: Succeeded, PaymentIntent: id, PaymentIntentStatus: status, Note: note}, now); err != nil {
			return Key{}, err
		}
		return m.Store.Get(ctx, booking, operation)
	}
	const note = "expired, reconciled: none found"
	if err := m.Store.RecordAttempt(ctx, Attempt{Key: k.Key, At: now, Outcome: note}); err != nil {
		return Key{}, err
	}
	return m.Store.Supersede(ctx, k.Key, note, m.mint(booking, operation), now)
}

// PruneOld deletes resolved keys last updated more than Retention ago (30
// days by default) and returns how many it deleted; unresolved keys stay
// whatever their age.
func (m *Manager) PruneOld(ctx context.Context) (int, error) {
	r := m.Retention
	if r <= 0 {
		r = DefaultRetention
	}
	return m.Store.Prune(ctx, m.now().Add(-r))
}
