package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// reply is what the fake Stripe answers.
type reply struct {
	status  int
	body    string
	headers map[string]string
}

func stripeError(typ, code string) string {
	return fmt.Sprintf(`{"error":{"type":%q,"code":%q,"message":"m"}}`, typ, code)
}

// newClient points a real stripe-go v76 client, with its own retries off,
// at h, and counts the requests that reach it.
func newClient(t *testing.T, h http.HandlerFunc, timeout time.Duration) (*client.API, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	// released ends handlers that hang, before srv.Close waits for them.
	released := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			select {
			case <-released:
				cancel()
			case <-ctx.Done():
			}
		}()
		h(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(released) })
	return clientAt(srv.URL, timeout), &calls
}

func clientAt(url string, timeout time.Duration) *client.API {
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(url),
		MaxNetworkRetries: stripe.Int64(0),
		HTTPClient:        &http.Client{Timeout: timeout},
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	return client.New("sk_test_123", &stripe.Backends{API: backend, Connect: backend, Uploads: backend})
}

func answer(rep reply) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range rep.headers {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.status)
		_, _ = w.Write([]byte(rep.body))
	}
}

func createIntent(ctx context.Context, sc *client.API, key string) error {
	params := &stripe.PaymentIntentParams{Amount: stripe.Int64(240000), Currency: stripe.String("eur")}
	params.Context = ctx
	params.SetIdempotencyKey(key)
	params.AddMetadata("booking_id", "bk_1001")
	_, err := sc.PaymentIntents.New(params)
	return err
}

// hang never answers; reading the body first lets the server notice when
// the client gives up.
func hang(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

func TestClassifyStripeResponses(t *testing.T) {
	idem := stripeError("idempotency_error", "")
	inUse := stripeError("idempotency_error", "idempotency_key_in_use")
	apiErr := stripeError("api_error", "")
	cases := []struct {
		name     string
		reply    reply
		decision Decision
		replayed bool
	}{
		{"200 created", reply{200, `{"id":"pi_1","object":"payment_intent"}`, nil}, Stop, false},
		{"409 key in use", reply{409, inUse, nil}, Retry, false},
		{"429 rate_limit", reply{429, stripeError("invalid_request_error", "rate_limit"), nil}, Retry, false},
		{"429 lock_timeout", reply{429, stripeError("invalid_request_error", "lock_timeout"), nil}, Retry, false},
		{"503", reply{503, apiErr, nil}, Retry, false},
		{"500", reply{500, apiErr, nil}, Indeterminate, false},
		{"500 replayed", reply{500, apiErr, map[string]string{"Idempotent-Replayed": "true"}}, Indeterminate, true},
		{"502", reply{502, apiErr, nil}, Indeterminate, false},
		{"400 idempotency_error", reply{400, idem, nil}, Collision, false},
		{"402 card declined", reply{402, stripeError("card_error", "card_declined"), nil}, Stop, false},
		{"400 invalid request", reply{400, stripeError("invalid_request_error", "parameter_missing"), nil}, Stop, false},
		{"401", reply{401, stripeError("invalid_request_error", ""), nil}, Stop, false},
		{"404", reply{404, stripeError("invalid_request_error", "resource_missing"), nil}, Stop, false},
		{"503 should-retry false", reply{503, apiErr, map[string]string{"Stripe-Should-Retry": "false"}}, Stop, false},
		{"409 should-retry false", reply{409, inUse, map[string]string{"Stripe-Should-Retry": "false"}}, Stop, false},
		{"400 should-retry true", reply{400, stripeError("invalid_request_error", ""), map[string]string{"Stripe-Should-Retry": "true"}}, Retry, false},
		{"402 should-retry true", reply{402, stripeError("card_error", "card_declined"), map[string]string{"Stripe-Should-Retry": "true"}}, Retry, false},
		{"500 should-retry true", reply{500, apiErr, map[string]string{"Stripe-Should-Retry": "true"}}, Retry, false},
		{"500 should-retry false", reply{500, apiErr, map[string]string{"Stripe-Should-Retry": "false"}}, Indeterminate, false},
		{"collision should-retry true", reply{400, idem, map[string]string{"Stripe-Should-Retry": "true"}}, Collision, false},
		{"503 not JSON", reply{503, "<html>unavailable</html>", nil}, Retry, false},
		{"502 not JSON", reply{502, "<html>bad gateway</html>", nil}, Indeterminate, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := c.reply
			rep.headers = map[string]string{"Request-Id": "req_case"}
			for k, v := range c.reply.headers {
				rep.headers[k] = v
			}
			sc, calls := newClient(t, answer(rep), 5*time.Second)
			err := createIntent(context.Background(), sc, "tb:v1:ag_42:bk_1001:create_payment")
			got := Classify(err)
			if got.Decision != c.decision || got.Replayed != c.replayed || got.Network {
				t.Fatalf("Classify(%v) = %+v, want %v (replayed %v)", err, got, c.decision, c.replayed)
			}
			if n := calls.Load(); n != 1 {
				t.Fatalf("stripe-go sent %d requests, want 1: its own retries must be off", n)
			}
			var se *stripe.Error
			if errors.As(err, &se) {
				if got.Status != c.reply.status || got.RequestID != "req_case" || got.Type != string(se.Type) || got.Code != string(se.Code) {
					t.Fatalf("Class %+v does not carry the response's status, type, code and request id", got)
				}
			}
			if got.Reason == "" {
				t.Fatal("Class has no Reason")
			}
		})
	}
}

func TestClassifyNetworkFailures(t *testing.T) {
	hijackClose := func(w http.ResponseWriter, r *http.Request) {
		// Read the request first, as Stripe would, so the client sees the
		// close (EOF) rather than a reset of a half-sent request.
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}
	truncate := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"id\":\"pi_")
		_ = buf.Flush()
		_ = conn.Close()
	}

	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "http://" + refused.Addr().String()
	_ = refused.Close()

	cases := []struct {
		name     string
		handler  http.HandlerFunc
		url      string
		timeout  time.Duration
		reason   string
		decision Decision
	}{
		{"closed without a response", hijackClose, "", 5 * time.Second, "closed", Retry},
		{"body cut short", truncate, "", 5 * time.Second, "closed", Retry},
		{"client timeout", hang, "", 50 * time.Millisecond, "timed out", Retry},
		{"connection refused", nil, refusedURL, 5 * time.Second, "refused", Retry},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var sc *client.API
			if c.url != "" {
				sc = clientAt(c.url, c.timeout)
			} else {
				sc, _ = newClient(t, c.handler, c.timeout)
			}
			err := createIntent(context.Background(), sc, "k1")
			got := Classify(err)
			if got.Decision != c.decision || !got.Network || !strings.Contains(got.Reason, c.reason) {
				t.Fatalf("Classify(%T %v) = %+v, want %v, network, reason %q", err, err, got, c.decision, c.reason)
			}
		})
	}
}

func TestClassifyCallerContext(t *testing.T) {
	sc, _ := newClient(t, hang, 5*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	err := createIntent(ctx, sc, "k1")
	if got := Classify(err); got.Decision != Stop || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: Classify(%v) = %+v, want stop", err, got)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err = createIntent(ctx, sc, "k1")
	if got := Classify(err); got.Decision != Retry || !got.Network {
		t.Fatalf("deadline: Classify(%v) = %+v, want a network retry", err, got)
	}
}

func TestClassifyOtherErrors(t *testing.T) {
	sc, calls := newClient(t, answer(reply{200, `{}`, nil}), time.Second)
	err := createIntent(context.Background(), sc, strings.Repeat("k", 256))
	if got := Classify(err); got.Decision != Stop || calls.Load() != 0 {
		t.Fatalf("over-long key: Classify(%v) = %+v after %d requests", err, got, calls.Load())
	}
	if got := Classify(nil); got.Decision != Stop || got.Reason != "succeeded" {
		t.Fatalf("Classify(nil) = %+v", got)
	}
	if got := Classify(errors.New("something odd")); got.Decision != Indeterminate {
		t.Fatalf("an unknown error must be indeterminate, got %+v", got)
	}
	wrapped := fmt.Errorf("creating payment: %w", &stripe.Error{HTTPStatusCode: 400, Type: stripe.ErrorTypeIdempotency})
	if got := Classify(wrapped); got.Decision != Collision {
		t.Fatalf("a wrapped collision: %+v", got)
	}
}

func TestDecisionString(t *testing.T) {
	want := map[Decision]string{Stop: "stop", Retry: "retry", Indeterminate: "indeterminate", Collision: "collision", 9: "Decision(9)"}
	for d, s := range want {
		if d.String() != s {
			t.Errorf("%d.String() = %q, want %q", int(d), d.String(), s)
		}
	}
	var zero Class
	if zero.Decision != Stop {
		t.Error("the zero Class must not retry")
	}
}
