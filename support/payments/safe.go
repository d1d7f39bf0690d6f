package payments

import (
	"context"
	"errors"
	"fmt"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/travelbook/onecharge/support/keys"
	"github.com/travelbook/onecharge/support/retry"
)

// Journal persists keys and attempts (support/keystore implements it), so
// that a key survives a crash and every attempt is in the audit trail.
type Journal interface {
	// Reserve returns the key for the booking's operation, minting and
	// storing it before the first send if there is none yet.
	Reserve(ctx context.Context, b Booking, operation string) (string, error)
	// Begin marks the key in flight just before an attempt is sent.
	Begin(ctx context.Context, key string) error
	// Record appends one attempt to the audit trail.
	Record(ctx context.Context, key string, a Attempt) error
	// Finish records the final result.
	Finish(ctx context.Context, key string, o Outcome) error
}

// Safe is the fix: one key per booking, the same on every attempt, a
// backoff policy with jitter between attempts, stripe-go's own retries off
// (so every retry and its wait are ours to see and to test), and a typed
// stop on collisions and indeterminate outcomes.
type Safe struct {
	cfg       Config
	api       *client.API
	policy    retry.Policy
	Keys      keys.Strategy // defaults to keys.CompositeStrategy
	Operation string        // defaults to "create_payment"
	Journal   Journal       // optional
}

// NewSafe returns a Safe client that retries by policy.
func NewSafe(cfg Config, policy retry.Policy) *Safe {
	cfg = cfg.withDefaults()
	return &Safe{cfg: cfg, api: newAPIWith(cfg, 0, tracer{next: cfg.Transport, clock: cfg.Clock, visible: true}), policy: policy, Keys: keys.CompositeStrategy, Operation: "create_payment"}
}

// Name is "safe".
func (s *Safe) Name() string { return "safe" }

// Key is the idempotency key Safe sends for b.
func (s *Safe) Key(ctx context.Context, b Booking) (string, error) {
	if s.Journal != nil {
		return s.Journal.Reserve(ctx, b, s.Operation)
	}
	return s.Keys.Key(keys.Operation{Agency: b.Agency, Booking: b.ID, Operation: s.Operation})
}

// Charge creates b's PaymentIntent under one key, retrying by the policy.
func (s *Safe) Charge(ctx context.Context, b Booking) Outcome {
	out := Outcome{Client: s.Name(), Booking: b}
	key, err := s.Key(ctx, b)
	if err != nil {
		return fail(out, Failed, fmt.Errorf("no idempotency key for booking %s: %w", b.ID, err))
	}
	ctx, tr := withTrace(ctx)
	loop := retry.Loop{Policy: s.policy, Clock: s.cfg.Clock, Sleeper: s.cfg.Sleeper}
	var pi *stripe.PaymentIntent
	var journalErr error
	steps, err := loop.Do(ctx, func(ctx context.Context, n int) error {
		if s.Journal != nil {
			if jerr := s.Journal.Begin(ctx, key); jerr != nil {
				journalErr = jerr
				return jerr
			}
		}
		p := Params(b)
		p.SetIdempotencyKey(key)
		p.Context = ctx
		got, err := s.api.PaymentIntents.New(p)
		if err == nil {
			pi = got
		}
		return err
	})
	out.Attempts = tr.list()
	for i := range out.Attempts {
		if i < len(steps) {
			out.Attempts[i].Waited = steps[i].Delay
			out.Attempts[i].Decision = steps[i].Class.Decision.String()
		}
	}
	switch {
	case journalErr != nil:
		out = fail(out, Failed, fmt.Errorf("the key store refused the attempt, nothing was sent: %w", journalErr))
	case err == nil:
		out.Result = Succeeded
		out.PaymentIntent = pi.ID
		if n := len(out.Attempts); n > 0 {
			out.Attempts[n-1].PaymentIntent = pi.ID
		}
	case retry.IsCollision(err):
		out = fail(out, Collision, err)
	case retry.IsIndeterminate(err) || mayHaveExecuted(out.Attempts):
		out = fail(out, Indeterminate, err)
	default:
		out = fail(out, Failed, err)
	}
	if s.Journal != nil {
		for _, a := range out.Attempts {
			_ = s.Journal.Record(ctx, key, a)
		}
		if jerr := s.Journal.Finish(context.WithoutCancel(ctx), key, out); jerr != nil && out.Err == nil {
			out.Error = "recorded nothing: " + jerr.Error()
		}
	}
	return out
}

// mayHaveExecuted reports whether any attempt could have reached Stripe
// without the client learning the result: a network error after sending,
// or a 500 (Stripe saved it after executing).
func mayHaveExecuted(atts []Attempt) bool {
	for _, a := range atts {
		if a.Status == 0 || a.Status >= 500 && a.Status != 503 {
			return true
		}
	}
	return false
}

func fail(o Outcome, r Result, err error) Outcome {
	o.Result = r
	o.Err = err
	if err != nil {
		o.Error = err.Error()
	}
	return o
}

// isNetwork reports whether err came from the network rather than from a
// Stripe response: what a Python try/except on Timeout and
// APIConnectionError catches.
func isNetwork(err error) bool {
	var se *stripe.Error
	return err != nil && !errors.As(err, &se)
}
