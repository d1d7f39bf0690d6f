// Package stripeapi holds the small pieces of Stripe's wire format that
// every layer of the local stack shares: error bodies, request ids, the
// account scope of a request and form-encoded parameters.
//
// See https://docs.stripe.com/api/errors and https://docs.stripe.com/api/request_ids.
package stripeapi

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Header names that Stripe uses and the stack reads or writes.
const (
	HeaderIdempotencyKey     = "Idempotency-Key"
	HeaderIdempotentReplayed = "Idempotent-Replayed"
	HeaderOriginalRequest    = "Original-Request"
	HeaderRequestID          = "Request-Id"
	HeaderStripeAccount      = "Stripe-Account"
	HeaderShouldRetry        = "Stripe-Should-Retry"
	// HeaderInternalRequestID carries the stack's request id from the
	// outermost layer to the ledger; it never leaves the stack.
	HeaderInternalRequestID = "X-Onecharge-Request-Id"
)

// DefaultReference is the request parameter that names a business
// reference (a booking) unless configured otherwise.
const DefaultReference = "metadata[booking_id]"

// Error is the body of a Stripe error response:
// {"error":{"type":...,"code":...,"message":...,"param":...}}.
type Error struct {
	Type    string `json:"type"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
}

// Error types used by the stack. idempotency_error is Stripe's documented
// type for idempotency failures (https://docs.stripe.com/error-low-level).
const (
	TypeAPI            = "api_error"
	TypeIdempotency    = "idempotency_error"
	TypeInvalidRequest = "invalid_request_error"
)

// WriteError writes a Stripe-shaped JSON error with the given status.
func WriteError(w http.ResponseWriter, status int, e Error) {
	body, _ := json.Marshal(struct {
		Error Error `json:"error"`
	}{e})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// NewRequestID returns a fresh id in Stripe's shape (req_ + 14 characters).
// stripe-mock answers every request with the same "req_123", so the stack
// assigns its own to tell attempts apart.
func NewRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_" + strings.NewReplacer("-", "A", "_", "B").Replace(base64.RawURLEncoding.EncodeToString(b[:]))[:14]
}

// SecretKey returns the API key a request authenticates with, from
// "Authorization: Bearer <key>" or HTTP basic auth (key as user name), or "".
func SecretKey(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if k, ok := strings.CutPrefix(auth, "Bearer "); ok {
		return strings.TrimSpace(k)
	}
	if u, _, ok := r.BasicAuth(); ok {
		return u
	}
	return ""
}

// Scope is what Stripe scopes idempotency keys to: "within your account",
// emulated as the secret key plus the Stripe-Account header.
func Scope(r *http.Request) string {
	return SecretKey(r) + "\x00" + r.Header.Get(HeaderStripeAccount)
}

// ReadBody reads the whole request body and puts an identical reader back,
// so that layers further down see the body untouched.
func ReadBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, err
}

// Form parses a form-encoded body (Stripe's request format). A body that
// is not valid form encoding yields empty values.
func Form(body []byte) url.Values {
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return url.Values{}
	}
	return v
}

// Redact hides a secret but keeps a short recognisable suffix, so a report
// can say which key was used without disclosing it: "sk_test_…abcd".
func Redact(secret string) string {
	if secret == "" {
		return ""
	}
	prefix := ""
	for _, p := range []string{"sk_test_", "sk_live_", "rk_test_", "rk_live_", "pk_test_", "pk_live_"} {
		if strings.HasPrefix(secret, p) {
			prefix = p
			break
		}
	}
	rest := strings.TrimPrefix(secret, prefix)
	if len(rest) <= 4 {
		return prefix + "…"
	}
	return prefix + "…" + rest[len(rest)-4:]
}
