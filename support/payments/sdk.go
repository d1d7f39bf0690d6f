package payments

import (
	"context"

	"github.com/stripe/stripe-go/v76/client"
)

// SDK is stripe-go's own safety net with TravelBook's retry on top:
// MaxNetworkRetries (2, stripe-go's default) retries network errors, 409s,
// lock timeouts and 503s under one generated key
// (`<unixnano>_<random>`), so a single call is safe; but when every
// attempt of a call fails, TravelBook's try/except makes a new call, which
// stripe-go gives a new key: after an executed-but-lost first attempt,
// that is a second charge.
//
// stripe-go's waits (500ms + 500ms·n², capped at 5s, with jitter) cannot be
// shortened from outside, so specs using this client are few.
type SDK struct {
	cfg         Config
	api         *client.API
	MaxAttempts int // TravelBook's application-level attempts; defaults to 3
}

// NewSDK returns stripe-go with retries on, under TravelBook's loop.
func NewSDK(cfg Config, networkRetries int64) *SDK {
	cfg = cfg.withDefaults()
	// visible: net/http's own resend of a keyed POST on a reused
	// connection would make the outcome depend on connection reuse; every
	// retry is stripe-go's or TravelBook's, as the evidence says.
	return &SDK{cfg: cfg, api: newAPIWith(cfg, networkRetries, tracer{next: cfg.Transport, clock: cfg.Clock, visible: true}), MaxAttempts: 3}
}

// Name is "sdk".
func (s *SDK) Name() string { return "sdk" }

// Charge creates b's PaymentIntent with stripe-go's retries under
// TravelBook's loop.
func (s *SDK) Charge(ctx context.Context, b Booking) Outcome {
	return appRetry(ctx, s.Name(), s.api, b, s.MaxAttempts)
}
