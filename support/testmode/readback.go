package testmode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/ledger"
	"github.com/travelbook/onecharge/support/retry"
)

// Metadata keys the suite sets on every PaymentIntent it creates in test
// mode, and the read-back filters on.
const (
	MetadataRun     = "onecharge_run"
	MetadataBooking = "booking_id"
)

// Defaults for Options.
const (
	DefaultConcurrency = 4
	DefaultPageSize    = 100 // Stripe's largest page
)

// Options tune Ledger and Cleanup. Zero values are usable.
type Options struct {
	// Seed draws the backoff jitter, so a run's waits can be replayed.
	// Defaults to 1.
	Seed uint64
	// Sleeper waits between retries. Defaults to clock.Real{}.
	Sleeper clock.Sleeper
	// Clock measures the retry loops' elapsed time. Defaults to clock.Real{}.
	Clock clock.Clock
	// Concurrency bounds Cleanup's cancels in flight; test mode's rate
	// limits are lower than live mode's. Defaults to DefaultConcurrency.
	Concurrency int
	// PageSize is the list limit, 1-100. Defaults to DefaultPageSize.
	PageSize int64
}

func options(opts []Options) Options {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Sleeper == nil {
		o.Sleeper = clock.Real{}
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.PageSize <= 0 || o.PageSize > 100 {
		o.PageSize = DefaultPageSize
	}
	return o
}

// MaxAttempts is how many times a read-back or clean-up call is made at
// most: the first call and up to 5 retries.
const MaxAttempts = 6

// loop is the backoff every read-back and clean-up call runs under: full
// jitter from 200ms up to 5s, so a 429 (or a network error) slows the run
// down instead of failing it.
func (o Options) loop(rnd *mrand.Rand) *retry.Loop {
	return &retry.Loop{
		Policy:  retry.Policy{Kind: retry.FullJitter, Base: 200 * time.Millisecond, Cap: 5 * time.Second, MaxAttempts: MaxAttempts, Rand: rnd},
		Sleeper: o.Sleeper,
		Clock:   o.Clock,
	}
}

// RunID returns a fresh id for one run ("oc_" and 12 hex digits), which the
// suite puts in metadata[onecharge_run] so the read-back finds this run's
// PaymentIntents among everything else in the test-mode account.
func RunID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "oc_" + hex.EncodeToString(b[:])
}

// Ledger reads the run's ledger back through the API, as test mode must:
// it lists the PaymentIntents created at or after since (newest first, a
// page at a time, each page retried with backoff on 429 and network
// errors), keeps those whose metadata[onecharge_run] is runID, and returns
// them oldest first. Reference is metadata[booking_id]; the idempotency key
// and request id are not known to the API and stay empty.
// See https://docs.stripe.com/api/payment_intents/list.
func Ledger(ctx context.Context, api *client.API, since time.Time, runID string, opts ...Options) ([]ledger.Object, error) {
	o := options(opts)
	loop := o.loop(retry.NewRand(o.Seed))
	var (
		out   []ledger.Object
		seen  = map[string]bool{}
		after string
	)
	for page := 1; ; page++ {
		var items []*stripe.PaymentIntent
		var more bool
		_, err := loop.Do(ctx, func(ctx context.Context, _ int) error {
			items, more = nil, false
			p := &stripe.PaymentIntentListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
			p.Context = ctx
			p.Limit = stripe.Int64(o.PageSize)
			p.Single = true
			if after != "" {
				p.StartingAfter = stripe.String(after)
			}
			it := api.PaymentIntents.List(p)
			for it.Next() {
				items = append(items, it.PaymentIntent())
			}
			if it.Err() != nil {
				return it.Err()
			}
			more = it.Meta() != nil && it.Meta().HasMore
			return nil
		})
		if err != nil {
			return out, fmt.Errorf("listing PaymentIntents created since %s (page %d): %w", since.UTC().Format(time.RFC3339), page, err)
		}
		for _, pi := range items {
			if seen[pi.ID] || pi.Metadata[MetadataRun] != runID {
				continue
			}
			seen[pi.ID] = true
			out = append(out, ledger.Object{
				ID:        pi.ID,
				Object:    ledger.ObjectPaymentIntent,
				Path:      "/v1/payment_intents",
				Reference: pi.Metadata[MetadataBooking],
				Amount:    pi.Amount,
				Currency:  string(pi.Currency),
				CreatedAt: time.Unix(pi.Created, 0).UTC(),
			})
		}
		if !more || len(items) == 0 {
			break
		}
		after = items[len(items)-1].ID
	}
	// Stripe lists newest first; the ledger is in creation order.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// Cleanup cancels every PaymentIntent among objects, at most
// opts.Concurrency at a time, each retried with backoff on 429 and network
// errors under one idempotency key per PaymentIntent (so a retry is never
// a second cancel). A PaymentIntent that is already canceled counts as
// canceled. It returns how many are canceled, the API calls it made, and
// an error naming every PaymentIntent it could not cancel.
// See https://docs.stripe.com/api/payment_intents/cancel.
func Cleanup(ctx context.Context, api *client.API, objects []ledger.Object, opts ...Options) (canceled, calls int, err error) {
	o := options(opts)
	rnd := retry.NewRand(o.Seed)
	var (
		nCanceled, nCalls atomic.Int64
		mu                sync.Mutex
		errs              []error
		wg                sync.WaitGroup
		sem               = make(chan struct{}, o.Concurrency)
	)
	for _, obj := range objects {
		if obj.Object != ledger.ObjectPaymentIntent {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(id string) {
			defer func() { <-sem; wg.Done() }()
			_, err := o.loop(rnd).Do(ctx, func(ctx context.Context, _ int) error {
				nCalls.Add(1)
				p := &stripe.PaymentIntentCancelParams{CancellationReason: stripe.String(string(stripe.PaymentIntentCancellationReasonAbandoned))}
				p.Context = ctx
				p.SetIdempotencyKey("onecharge-cleanup-" + id)
				_, err := api.PaymentIntents.Cancel(id, p)
				if alreadyCanceled(err) {
					return nil
				}
				return err
			})
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("cancel %s: %w", id, err))
				mu.Unlock()
				return
			}
			nCanceled.Add(1)
		}(obj.ID)
	}
	wg.Wait()
	if len(errs) > 0 {
		err = fmt.Errorf("%d PaymentIntent(s) were not canceled; cancel them in the Stripe dashboard (test mode): %w", len(errs), errors.Join(errs...))
	}
	return int(nCanceled.Load()), int(nCalls.Load()), err
}

// alreadyCanceled recognises Stripe's answer to canceling a canceled
// PaymentIntent: 400 payment_intent_unexpected_state with the intent.
func alreadyCanceled(err error) bool {
	var se *stripe.Error
	return errors.As(err, &se) && se.Code == stripe.ErrorCodePaymentIntentUnexpectedState &&
		se.PaymentIntent != nil && se.PaymentIntent.Status == stripe.PaymentIntentStatusCanceled
}

// Budget estimates the API calls a test-mode run makes, to quote before
// running it against a team's account: for bookings charged by each of
// clients (the suite runs safe, sdk and naive under one schedule), one
// create each, retryRate retries per create (faults make clients retry),
// the list pages to read the ledger back (100 a page, rounded up), and
// one cancel per PaymentIntent, counting every retry as a
// PaymentIntent that may have been created. It is an upper bound for the
// calls the suite makes, not counting 429s that Stripe answers.
func Budget(bookings, clients int, retryRate float64) int {
	if bookings <= 0 || clients <= 0 {
		return 0
	}
	creates := bookings * clients
	retries := int(float64(creates)*max(retryRate, 0) + 0.999999)
	intents := creates + retries
	pages := intents/DefaultPageSize + 1
	return creates + retries + pages + intents
}
