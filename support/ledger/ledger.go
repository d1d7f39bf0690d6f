// Package ledger records every object that the upstream (stripe-mock)
// really created, by business reference, so the suite can prove that each
// booking was charged exactly once. Its Snapshot is the body of the control
// API's `GET /_onecharge/ledger`.
//
// References are read from the request, never the response: stripe-mock
// answers `metadata: {}` whatever was sent.
package ledger

import (
	"sort"
	"sync"
	"time"

	"github.com/travelbook/onecharge/support/clock"
)

// ObjectPaymentIntent is the Stripe object type that a duplicate counts.
const ObjectPaymentIntent = "payment_intent"

// Object is one object the upstream created.
type Object struct {
	ID             string    `json:"id"`
	Object         string    `json:"object"`
	Path           string    `json:"path"`
	Reference      string    `json:"reference"`
	Amount         int64     `json:"amount"`
	Currency       string    `json:"currency"`
	IdempotencyKey string    `json:"idempotency_key"`
	RequestID      string    `json:"request_id"`
	CreatedAt      time.Time `json:"created_at"`
}

// Duplicate is a business reference with more than one PaymentIntent: a
// booking charged more than once.
type Duplicate struct {
	Reference string   `json:"reference"`
	IDs       []string `json:"ids"`
	// Amount is what was charged more than once: the sum of every
	// PaymentIntent but the first.
	Amount int64 `json:"amount"`
	// Currency is the first PaymentIntent's. A booking is charged in one
	// currency; DoubleCharged counts each extra in its own currency in
	// case one is not.
	Currency string `json:"currency"`
}

// Snapshot is the ledger as the control API serves it. Its slices are
// never nil, so they encode as [] rather than null.
type Snapshot struct {
	Objects    []Object    `json:"objects"`
	Duplicates []Duplicate `json:"duplicates"`
}

// Ledger is a concurrency-safe list of created objects, in record order.
type Ledger struct {
	clk     clock.Clock
	mu      sync.Mutex
	objects []Object
}

// New returns an empty ledger that timestamps objects with clk (the wall
// clock when nil).
func New(clk clock.Clock) *Ledger {
	if clk == nil {
		clk = clock.Real{}
	}
	return &Ledger{clk: clk}
}

// Record appends o, setting CreatedAt from the ledger's clock if it is zero.
func (l *Ledger) Record(o Object) {
	if o.CreatedAt.IsZero() {
		o.CreatedAt = l.clk.Now()
	}
	l.mu.Lock()
	l.objects = append(l.objects, o)
	l.mu.Unlock()
}

// Objects returns a copy of every recorded object, in record order.
func (l *Ledger) Objects() []Object {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Object{}, l.objects...)
}

// PaymentIntents returns the PaymentIntents recorded for reference, in
// record order.
func (l *Ledger) PaymentIntents(reference string) []Object {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Object
	for _, o := range l.objects {
		if o.Object == ObjectPaymentIntent && o.Reference == reference {
			out = append(out, o)
		}
	}
	return out
}

// Duplicates returns every reference with more than one PaymentIntent,
// sorted by reference. Objects without a reference are never grouped: the
// ledger cannot tell which booking they belong to.
func (l *Ledger) Duplicates() []Duplicate { return duplicates(l.Objects()) }

// DoubleCharged returns, by currency, the minor units charged more than
// once: for each duplicated reference, every PaymentIntent but the first.
func (l *Ledger) DoubleCharged() map[string]int64 {
	out := map[string]int64{}
	for _, pis := range groups(l.Objects()) {
		for _, pi := range pis[1:] {
			out[pi.Currency] += pi.Amount
		}
	}
	return out
}

// Snapshot returns the objects and duplicates together, as
// `GET /_onecharge/ledger` serves them.
func (l *Ledger) Snapshot() Snapshot {
	// Both halves come from one copy, so a duplicate never names an object
	// that the objects list lacks.
	objs := l.Objects()
	return Snapshot{Objects: objs, Duplicates: duplicates(objs)}
}

func duplicates(objs []Object) []Duplicate {
	g := groups(objs)
	refs := make([]string, 0, len(g))
	for ref := range g {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	out := []Duplicate{}
	for _, ref := range refs {
		pis := g[ref]
		if len(pis) < 2 {
			continue
		}
		d := Duplicate{Reference: ref, Currency: pis[0].Currency}
		for i, pi := range pis {
			d.IDs = append(d.IDs, pi.ID)
			if i > 0 {
				d.Amount += pi.Amount
			}
		}
		out = append(out, d)
	}
	return out
}

// groups returns the PaymentIntents that have a reference, by reference,
// in record order.
func groups(objs []Object) map[string][]Object {
	g := map[string][]Object{}
	for _, o := range objs {
		if o.Object == ObjectPaymentIntent && o.Reference != "" {
			g[o.Reference] = append(g[o.Reference], o)
		}
	}
	return g
}

// Reset forgets every object.
func (l *Ledger) Reset() {
	l.mu.Lock()
	l.objects = nil
	l.mu.Unlock()
}
