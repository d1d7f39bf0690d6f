package faults

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// upstream plays Stripe: it counts the requests it executed.
type upstream struct{ executed atomic.Int32 }

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.ReadAll(r.Body)
	u.executed.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"id":"pi_123","object":"payment_intent"}`)
}

// recordingSleeper returns at once and records what it was asked.
type recordingSleeper struct {
	mu       sync.Mutex
	sleeps   []time.Duration
	detached []bool // whether the context could never be cancelled
}

func (s *recordingSleeper) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sleeps = append(s.sleeps, d)
	s.detached = append(s.detached, ctx.Done() == nil)
	return ctx.Err()
}

// blockingSleeper waits until the context ends, however long d is, and
// reports the end on done: it shows a hold lasting until the client left.
type blockingSleeper struct{ done chan error }

func (s *blockingSleeper) Sleep(ctx context.Context, d time.Duration) error {
	<-ctx.Done()
	s.done <- ctx.Err()
	return ctx.Err()
}

// stack serves Network → Inside → upstream on a loopback listener.
func stack(t *testing.T, cfg Config, rules ...Rule) (*httptest.Server, *upstream, *Injector) {
	t.Helper()
	inj := New(cfg)
	if err := inj.Set(Schedule{Seed: 7, Rules: rules}); err != nil {
		t.Fatal(err)
	}
	up := &upstream{}
	srv := httptest.NewServer(inj.Network(inj.Inside(up)))
	t.Cleanup(srv.Close)
	return srv, up, inj
}

// post sends one payment-intent create on a fresh connection, so Go's
// transport never retries it behind our back (see
// TestGoTransportRetriesAKeyedRequestOnAReusedConnection).
func post(t *testing.T, srv *httptest.Server, timeout time.Duration) (int, string, error) {
	t.Helper()
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequest("POST", srv.URL+"/v1/payment_intents", strings.NewReader("amount=2400&currency=eur&metadata[booking_id]=BK-1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Idempotency-Key", "key-1")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestNoFaultPassesThrough(t *testing.T) {
	srv, up, inj := stack(t, Config{}, Rule{Fault: RateLimit, Path: "/v1/customers"})
	code, body, err := post(t, srv, 5*time.Second)
	if err != nil || code != 200 || !strings.Contains(body, "pi_123") || up.executed.Load() != 1 {
		t.Fatalf("code %d body %q err %v executed %d", code, body, err, up.executed.Load())
	}
	if len(inj.Injected()) != 0 {
		t.Fatal("an injection was recorded for an unmatched request")
	}
}

func TestDropResponseExecutesAndClosesSilently(t *testing.T) {
	srv, up, inj := stack(t, Config{}, Rule{Fault: DropResponse})
	_, _, err := post(t, srv, 5*time.Second)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("client error = %v, want EOF (connection closed without a response)", err)
	}
	if up.executed.Load() != 1 {
		t.Fatalf("upstream executed %d times, want 1", up.executed.Load())
	}
	if got := inj.Injected(); len(got) != 1 || got[0].Fault != DropResponse || got[0].Reference != "BK-1" || got[0].IdempotencyKey != "key-1" {
		t.Fatalf("Injected() = %+v", got)
	}
}

func TestDropResponseHoldsUntilTheClientGivesUp(t *testing.T) {
	s := &blockingSleeper{done: make(chan error, 1)}
	srv, up, _ := stack(t, Config{Sleeper: s}, Rule{Fault: DropResponse, Delay: Duration(time.Hour)})
	_, _, err := post(t, srv, 50*time.Millisecond)
	var ue *url.Error
	if !errors.As(err, &ue) || !ue.Timeout() {
		t.Fatalf("client error = %v, want a timeout", err)
	}
	select {
	case err := <-s.done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("hold ended with %v, want the client's cancellation", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the hold did not end when the client went away")
	}
	if up.executed.Load() != 1 {
		t.Fatalf("upstream executed %d times, want 1", up.executed.Load())
	}
}

func TestResets(t *testing.T) {
	for _, tc := range []struct {
		kind     Kind
		executed int32
	}{{ResetBefore, 0}, {ResetAfter, 1}} {
		t.Run(string(tc.kind), func(t *testing.T) {
			srv, up, inj := stack(t, Config{}, Rule{Fault: tc.kind})
			_, _, err := post(t, srv, 5*time.Second)
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("client error = %v, want connection reset", err)
			}
			if got := up.executed.Load(); got != tc.executed {
				t.Fatalf("upstream executed %d times, want %d", got, tc.executed)
			}
			if c := inj.Counts(); c[tc.kind] != 1 {
				t.Fatalf("Counts() = %v", c)
			}
		})
	}
}

func TestAnswersBeforeTheIdempotencyLayer(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		code int
		body string
	}{
		{RateLimit, 429, `"code":"rate_limit"`},
		{LockTimeout, 429, `"code":"lock_timeout"`},
		{Unavailable, 503, `"type":"api_error"`},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			srv, up, inj := stack(t, Config{}, Rule{Fault: tc.kind})
			code, body, err := post(t, srv, 5*time.Second)
			if err != nil || code != tc.code || !strings.Contains(body, tc.body) {
				t.Fatalf("code %d body %s err %v; want %d with %s", code, body, err, tc.code, tc.body)
			}
			if up.executed.Load() != 0 {
				t.Fatal("the upstream executed a request the fault answered")
			}
			if len(inj.Injected()) != 1 {
				t.Fatalf("Injected() = %+v", inj.Injected())
			}
		})
	}
}

func TestServerErrorExecutesThenAnswers500(t *testing.T) {
	srv, up, inj := stack(t, Config{}, Rule{Fault: ServerError})
	code, body, err := post(t, srv, 5*time.Second)
	if err != nil || code != 500 || !strings.Contains(body, `"type":"api_error"`) || strings.Contains(body, "pi_123") {
		t.Fatalf("code %d body %s err %v", code, body, err)
	}
	if up.executed.Load() != 1 {
		t.Fatalf("upstream executed %d times, want 1", up.executed.Load())
	}
	if c := inj.Counts(); c[ServerError] != 1 {
		t.Fatalf("Counts() = %v", c)
	}
}

func TestSlowWaitsOnADetachedContextThenExecutes(t *testing.T) {
	s := &recordingSleeper{}
	srv, up, inj := stack(t, Config{Sleeper: s}, Rule{Fault: Slow, Delay: Duration(3 * time.Second)})
	code, _, err := post(t, srv, 5*time.Second)
	if err != nil || code != 200 || up.executed.Load() != 1 {
		t.Fatalf("code %d err %v executed %d", code, err, up.executed.Load())
	}
	if len(s.sleeps) != 1 || s.sleeps[0] != 3*time.Second || !s.detached[0] {
		t.Fatalf("sleeps %v detached %v; want one 3s wait that the client cannot cut short", s.sleeps, s.detached)
	}
	if got := inj.Injected(); len(got) != 1 || got[0].Delay.D() != 3*time.Second {
		t.Fatalf("Injected() = %+v", got)
	}
}

func TestDelayWaitsThenCarriesOn(t *testing.T) {
	s := &recordingSleeper{}
	srv, up, inj := stack(t, Config{Sleeper: s},
		Rule{Fault: Delay, Delay: Duration(300 * time.Millisecond)},
		Rule{Fault: Delay, Delay: Duration(200 * time.Millisecond)})
	code, _, err := post(t, srv, 5*time.Second)
	if err != nil || code != 200 || up.executed.Load() != 1 {
		t.Fatalf("code %d err %v executed %d", code, err, up.executed.Load())
	}
	if len(s.sleeps) != 1 || s.sleeps[0] != 500*time.Millisecond || s.detached[0] {
		t.Fatalf("sleeps %v; want one 500ms wait on the client's context", s.sleeps)
	}
	if c := inj.Counts(); c[Delay] != 2 {
		t.Fatalf("Counts() = %v, want one delay per rule", c)
	}
}

func TestInsideFaultNotReachedIsNotRecorded(t *testing.T) {
	// An idempotent replay never reaches Inside; the fault is not applied.
	inj := New(Config{})
	if err := inj.Set(Schedule{Rules: []Rule{{Fault: ServerError}}}); err != nil {
		t.Fatal(err)
	}
	replay := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	w := httptest.NewRecorder()
	inj.Network(replay).ServeHTTP(w, httptest.NewRequest("POST", "/v1/payment_intents", nil))
	if w.Code != 200 || len(inj.Injected()) != 0 {
		t.Fatalf("code %d, Injected() = %+v", w.Code, inj.Injected())
	}
	// And Inside without a decision passes through.
	w = httptest.NewRecorder()
	inj.Inside(replay).ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
	if w.Code != 200 || len(inj.Injected()) != 0 {
		t.Fatal("Inside applied a fault nobody decided")
	}
}

func TestCloseWithoutHijackAborts(t *testing.T) {
	inj := New(Config{})
	if err := inj.Set(Schedule{Rules: []Rule{{Fault: ResetBefore}}}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler", r)
		}
	}()
	inj.Network(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil))
}

// TestGoTransportRetriesAKeyedRequestOnAReusedConnection pins a fact the
// specs must allow for: net/http resends a request that carries an
// Idempotency-Key when a reused connection closes before any response
// byte, so a drop_response without a hold shows up as a second attempt of
// the same key rather than as a client error.
func TestGoTransportRetriesAKeyedRequestOnAReusedConnection(t *testing.T) {
	srv, up, _ := stack(t, Config{}, Rule{Fault: DropResponse, Nth: []int{2}})
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	for n := range 2 {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/payment_intents", strings.NewReader("amount=1"))
		req.Header.Set("Idempotency-Key", "same-key")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", n+1, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if got := up.executed.Load(); got != 3 {
		t.Fatalf("upstream executed %d times, want 3 (the dropped one and the transport's silent resend)", got)
	}
}
