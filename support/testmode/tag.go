package testmode

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/travelbook/onecharge/support/stripeapi"
)

// TagRun returns a RoundTripper that adds metadata[onecharge_run]=runID to
// every PaymentIntent creation that lacks it, then sends it with next
// (http.DefaultTransport when nil). Put it under the stack's proxy in test
// mode (stack.Config.Transport), and every client, the SDK and black-box
// ones included, has its PaymentIntents found by Ledger without knowing
// the run id. The tag is the same on every attempt, so Stripe's
// same-parameters check on a retried key still passes.
func TagRun(next http.RoundTripper, runID string) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &tagger{next: next, runID: runID}
}

type tagger struct {
	next  http.RoundTripper
	runID string
}

func (t *tagger) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || r.URL.Path != pathPaymentIntents {
		return t.next.RoundTrip(r)
	}
	body, err := stripeapi.ReadBody(r)
	if err != nil {
		return nil, err
	}
	const field = "metadata[" + MetadataRun + "]"
	if stripeapi.Form(body).Has(field) {
		return t.next.RoundTrip(r)
	}
	// Append rather than re-encode, so the rest of the body is sent
	// byte for byte as the client wrote it.
	tag := url.Values{field: {t.runID}}.Encode()
	if len(body) > 0 {
		tag = "&" + tag
	}
	body = append(body, tag...)
	r = r.Clone(r.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	// net/http may resend a POST that carries an Idempotency-Key.
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return t.next.RoundTrip(r)
}
