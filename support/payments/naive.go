package payments

import (
	"context"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// Naive is TravelBook's payment code today, in Go: no idempotency key, and
//
//	for attempt in range(3):
//	    try:
//	        return stripe.PaymentIntent.create(...)
//	    except (stripe.error.Timeout, stripe.error.APIConnectionError):
//	        continue  # retry at once
//
// A timeout after Stripe executed is retried as a brand-new request: a
// second charge. It exists as the negative control: the suite must show it
// double-charging under the faults the Safe client survives.
type Naive struct {
	cfg         Config
	api         *client.API
	MaxAttempts int // defaults to 3
}

// NewNaive returns TravelBook's client.
func NewNaive(cfg Config) *Naive {
	cfg = cfg.withDefaults()
	return &Naive{cfg: cfg, api: newAPI(cfg, 0, true), MaxAttempts: 3}
}

// Name is "naive".
func (n *Naive) Name() string { return "naive" }

// Charge creates b's PaymentIntent, retrying network errors immediately.
func (n *Naive) Charge(ctx context.Context, b Booking) Outcome {
	return appRetry(ctx, n.Name(), n.api, b, n.MaxAttempts)
}

// appRetry is TravelBook's try/except loop around one stripe-go call.
func appRetry(ctx context.Context, name string, api *client.API, b Booking, max int) Outcome {
	out := Outcome{Client: name, Booking: b}
	ctx, tr := withTrace(ctx)
	var err error
	for i := 0; i < max; i++ {
		p := Params(b)
		p.Context = ctx
		var pi *stripe.PaymentIntent
		pi, err = api.PaymentIntents.New(p)
		if err == nil {
			out.Result = Succeeded
			out.PaymentIntent = pi.ID
			break
		}
		if !isNetwork(err) || ctx.Err() != nil {
			break
		}
	}
	out.Attempts = tr.list()
	if err != nil {
		// TravelBook's code reports a failed payment here, whatever Stripe did.
		out = fail(out, Failed, err)
	}
	return out
}
