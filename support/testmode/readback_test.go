package testmode

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/ledger"
)

// rateLimited is a fake Stripe that answers 429 to the first limited
// attempts at each cancel, and records how many cancels were in flight at
// once. The first requests hold until DefaultConcurrency of them are in
// flight, so a Cleanup that worked one at a time would show (and stall
// until the safety timeout).
type rateLimited struct {
	limited int
	full    chan struct{}
	once    sync.Once

	mu       sync.Mutex
	attempts map[string]int
	keys     map[string]map[string]bool
	inFlight int
	maxIn    int
}

func (f *rateLimited) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/payment_intents/"), "/cancel")
	f.mu.Lock()
	f.inFlight++
	f.maxIn = max(f.maxIn, f.inFlight)
	f.attempts[id]++
	n := f.attempts[id]
	if f.keys[id] == nil {
		f.keys[id] = map[string]bool{}
	}
	f.keys[id][r.Header.Get("Idempotency-Key")] = true
	if f.inFlight >= DefaultConcurrency {
		f.once.Do(func() { close(f.full) })
	}
	f.mu.Unlock()
	select {
	case <-f.full:
	case <-time.After(5 * time.Second): // safety net only; never reached when Cleanup is concurrent
	}
	defer func() { f.mu.Lock(); f.inFlight--; f.mu.Unlock() }()
	w.Header().Set("Content-Type", "application/json")
	if n <= f.limited {
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}`)
		return
	}
	fmt.Fprintf(w, `{"id":%q,"object":"payment_intent","status":"canceled"}`, id)
}

func intents(n int) []ledger.Object {
	var out []ledger.Object
	for i := range n {
		out = append(out, ledger.Object{ID: fmt.Sprintf("pi_%02d", i), Object: ledger.ObjectPaymentIntent})
	}
	// Not a PaymentIntent: Cleanup leaves it alone.
	return append(out, ledger.Object{ID: "cus_1", Object: "customer"})
}

func TestCleanupBacksOffOn429WithBoundedConcurrency(t *testing.T) {
	f := &rateLimited{limited: 2, full: make(chan struct{}), attempts: map[string]int{}, keys: map[string]map[string]bool{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	virtual := clock.NewVirtual(time.Unix(0, 0))
	canceled, calls, err := Cleanup(context.Background(), apiAt(srv.URL, testKey, nil), intents(12),
		Options{Seed: 7, Sleeper: virtual, Clock: virtual})
	if err != nil || canceled != 12 || calls != 36 {
		t.Fatalf("Cleanup = %d canceled, %d calls, %v; want 12, 36 (two 429s each), nil", canceled, calls, err)
	}
	if f.maxIn != DefaultConcurrency {
		t.Errorf("%d cancels were in flight at once, want %d", f.maxIn, DefaultConcurrency)
	}
	if _, ok := f.attempts["cus_1"]; ok {
		t.Error("Cleanup tried to cancel a customer")
	}
	for id, keys := range f.keys {
		if len(keys) != 1 {
			t.Errorf("%s was canceled under %d keys, want one for all its retries", id, len(keys))
		}
	}
	sleeps := virtual.Sleeps()
	if len(sleeps) != 24 {
		t.Fatalf("slept %d times, want 24 (two backoffs per PaymentIntent)", len(sleeps))
	}
	for _, d := range sleeps {
		if d < 0 || d > 400*time.Millisecond { // full jitter: retry 1 ≤ 200ms, retry 2 ≤ 400ms
			t.Errorf("backoff %v outside full jitter's [0, 400ms]", d)
		}
	}
}

func TestCleanupGivesUpAfterSixAttemptsAndSaysWhich(t *testing.T) {
	f := &rateLimited{limited: 100, full: make(chan struct{}), attempts: map[string]int{}, keys: map[string]map[string]bool{}}
	close(f.full)
	srv := httptest.NewServer(f)
	defer srv.Close()
	virtual := clock.NewVirtual(time.Unix(0, 0))
	canceled, calls, err := Cleanup(context.Background(), apiAt(srv.URL, testKey, nil), intents(2),
		Options{Sleeper: virtual, Clock: virtual})
	if canceled != 0 || calls != 2*MaxAttempts || err == nil {
		t.Fatalf("Cleanup = %d, %d, %v", canceled, calls, err)
	}
	for _, want := range []string{"2 PaymentIntent(s) were not canceled", "pi_00", "pi_01", "Stripe dashboard"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestLedgerBacksOffOn429(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if n == 1 {
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}`)
			return
		}
		if r.URL.Query().Get("created[gte]") != "1700000000" {
			t.Errorf("list without the created filter: %s", r.URL.RawQuery)
		}
		fmt.Fprint(w, `{"object":"list","has_more":false,"url":"/v1/payment_intents","data":[
			{"id":"pi_2","object":"payment_intent","amount":5,"currency":"eur","created":1700000009,"metadata":{"onecharge_run":"oc_a","booking_id":"bk_2"}},
			{"id":"pi_x","object":"payment_intent","amount":5,"currency":"eur","created":1700000008,"metadata":{"onecharge_run":"oc_b","booking_id":"bk_2"}},
			{"id":"pi_1","object":"payment_intent","amount":5,"currency":"eur","created":1700000001,"metadata":{"onecharge_run":"oc_a","booking_id":"bk_1"}}]}`)
	}))
	defer srv.Close()
	virtual := clock.NewVirtual(time.Unix(0, 0))
	got, err := Ledger(context.Background(), apiAt(srv.URL, testKey, nil), time.Unix(1700000000, 0), "oc_a",
		Options{Sleeper: virtual, Clock: virtual})
	if err != nil || len(got) != 2 || got[0].ID != "pi_1" || got[1].Reference != "bk_2" {
		t.Fatalf("Ledger = %+v, %v", got, err)
	}
	if len(virtual.Sleeps()) != 1 {
		t.Errorf("sleeps %v, want one backoff", virtual.Sleeps())
	}
}

func TestLedgerFailsWithAClearErrorOn401(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_…abcd"}}`)
	}))
	defer srv.Close()
	_, err := Ledger(context.Background(), apiAt(srv.URL, testKey, nil), time.Unix(1700000000, 0), "oc_a")
	if err == nil || !strings.Contains(err.Error(), "listing PaymentIntents created since 2023-11-14T22:13:20Z") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunIDs(t *testing.T) {
	shape := regexp.MustCompile(`^oc_[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		id := RunID()
		if !shape.MatchString(id) || seen[id] {
			t.Fatalf("bad or repeated run id %q", id)
		}
		seen[id] = true
	}
}

func TestBudget(t *testing.T) {
	cases := []struct {
		bookings, clients int
		retryRate         float64
		want              int
	}{
		{0, 3, 0.5, 0},
		{1, 1, 0, 1 + 0 + 1 + 1},
		{100, 3, 0, 300 + 0 + 4 + 300},
		{100, 3, 0.25, 300 + 75 + 4 + 375},
		{10, 1, 0.01, 10 + 1 + 1 + 11}, // a fraction of a retry is one retry
	}
	for _, c := range cases {
		if got := Budget(c.bookings, c.clients, c.retryRate); got != c.want {
			t.Errorf("Budget(%d, %d, %v) = %d, want %d", c.bookings, c.clients, c.retryRate, got, c.want)
		}
	}
}

func TestTagRunKeepsAnExistingTag(t *testing.T) {
	var got string
	rt := TagRun(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		b := make([]byte, r.ContentLength)
		_, _ = r.Body.Read(b)
		got = string(b)
		return nil, errors.New("stop")
	}), "oc_new")
	for _, c := range []struct{ body, want string }{
		{"amount=1&metadata[onecharge_run]=oc_old", "amount=1&metadata[onecharge_run]=oc_old"},
		{"amount=1", "amount=1&metadata%5Bonecharge_run%5D=oc_new"},
	} {
		req, _ := http.NewRequest("POST", "http://x/v1/payment_intents", strings.NewReader(c.body))
		_, _ = rt.RoundTrip(req)
		if got != c.want {
			t.Errorf("body %q sent as %q, want %q", c.body, got, c.want)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
