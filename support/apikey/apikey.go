// Package apikey keeps Stripe secrets where they belong: it refuses any API
// key that is not a test-mode secret or restricted key before a request is
// sent, masks API keys and PaymentIntent/SetupIntent client secrets in any
// text headed for a report, log or terminal, and scans a directory of
// evidence for secrets that slipped through.
//
// Key prefixes follow https://docs.stripe.com/keys: sk_ (secret), rk_
// (restricted), pk_ (publishable), each _test_ or _live_. Client secrets
// (https://docs.stripe.com/api/payment_intents/object#payment_intent_object-client_secret)
// look like pi_..._secret_... and seti_..._secret_....
package apikey

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/travelbook/onecharge/support/stripeapi"
)

// EnvVar is the environment variable the harness reads the key from; error
// messages name it so the user knows what to change.
const EnvVar = "STRIPE_API_KEY"

// Why Check refused a key. Check's errors wrap one of these, for errors.Is.
var (
	ErrEmpty       = errors.New("apikey: empty key")
	ErrLive        = errors.New("apikey: live-mode key")
	ErrPublishable = errors.New("apikey: publishable key")
	ErrMalformed   = errors.New("apikey: malformed key")
)

// testKey is what Check accepts: a test-mode secret or restricted key.
// Stripe's real keys are far longer than 8 characters after the prefix;
// the minimum only catches truncated pastes.
var testKey = regexp.MustCompile(`^(?:sk|rk)_test_[A-Za-z0-9]{8,}$`)

// refusal is Check's error: one sentence for the user, and the reason for
// errors.Is.
type refusal struct {
	msg  string
	kind error
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.kind }

// Check accepts only a test-mode secret (sk_test_) or restricted (rk_test_)
// key and explains any other in one sentence that says what to do. The
// error never contains the key, only stripeapi.Redact's short suffix.
func Check(key string) error {
	if testKey.MatchString(key) {
		return nil
	}
	// Classify what the user meant to paste, so a quoted live key is still
	// called a live key.
	bare := strings.Trim(strings.TrimSpace(key), `"'`)
	red := stripeapi.Redact(bare)
	switch {
	case bare == "":
		return &refusal{EnvVar + " is empty: set it to a test-mode secret key (sk_test_…) from the Stripe dashboard, or unset it to run against stripe-mock", ErrEmpty}
	case strings.HasPrefix(bare, "sk_live_"):
		return &refusal{fmt.Sprintf("%s is a live-mode key (%s): onecharge never sends requests with live keys; use a test-mode key (sk_test_…) from the Stripe dashboard", EnvVar, red), ErrLive}
	case strings.HasPrefix(bare, "rk_live_"):
		return &refusal{fmt.Sprintf("%s is a live-mode restricted key (%s): onecharge never sends requests with live keys; use a test-mode key (sk_test_… or rk_test_…) from the Stripe dashboard", EnvVar, red), ErrLive}
	case strings.HasPrefix(bare, "pk_"):
		return &refusal{fmt.Sprintf("%s is a publishable key (%s), which cannot create PaymentIntents: use a test-mode secret key (sk_test_…) from the Stripe dashboard", EnvVar, red), ErrPublishable}
	case testKey.MatchString(bare):
		return &refusal{fmt.Sprintf("%s has spaces or quotes around the key (%s): set it to the bare key", EnvVar, red), ErrMalformed}
	case strings.HasPrefix(bare, "sk_test_") || strings.HasPrefix(bare, "rk_test_"):
		return &refusal{fmt.Sprintf("%s looks truncated or mistyped (%s): copy the whole test-mode key (sk_test_ followed by letters and digits) from the Stripe dashboard", EnvVar, red), ErrMalformed}
	}
	return &refusal{fmt.Sprintf("%s is not a Stripe API key (%s): set it to a test-mode secret key (sk_test_…) from the Stripe dashboard", EnvVar, maskUnknown(bare)), ErrMalformed}
}

// maskUnknown shows no more of an unrecognised value than its last four
// characters, and nothing of a short one.
func maskUnknown(s string) string {
	if len(s) < 12 {
		return "…"
	}
	return "…" + s[len(s)-4:]
}
