package idempotency

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/stripeapi"
)

func decodeError(t *testing.T, body []byte) stripeapi.Error {
	t.Helper()
	var e struct {
		Error stripeapi.Error `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	return e.Error
}

func TestReplayIsByteForByteAndDoesNotExecuteAgain(t *testing.T) {
	u := &upstream{}
	l, _ := newLayer(t, u)

	q := post("key-1", bookingBody)
	q.requestID = "req_first"
	first := send(l, q)
	if first.Code != http.StatusOK {
		t.Fatalf("first status = %d, want 200", first.Code)
	}
	if got := first.Header().Get(stripeapi.HeaderIdempotentReplayed); got != "" {
		t.Errorf("first response has Idempotent-Replayed %q, want none", got)
	}

	q.requestID = "req_second"
	w := httptestRecorderWithRequestID("req_second_outer")
	l.ServeHTTP(w, q.build())

	if n := u.calls.Load(); n != 1 {
		t.Fatalf("upstream executed %d times, want 1", n)
	}
	if w.Code != http.StatusOK {
		t.Errorf("replay status = %d, want 200", w.Code)
	}
	if w.Body.String() != first.Body.String() {
		t.Errorf("replay body = %q, want %q", w.Body.String(), first.Body.String())
	}
	h := w.Header()
	if got := h.Get(stripeapi.HeaderIdempotentReplayed); got != "true" {
		t.Errorf("Idempotent-Replayed = %q, want true", got)
	}
	if got := h.Get(stripeapi.HeaderOriginalRequest); got != "req_first" {
		t.Errorf("Original-Request = %q, want req_first", got)
	}
	if got := h.Get("Request-Id"); got != "req_second_outer" {
		t.Errorf("Request-Id = %q, want the outer layer's req_second_outer untouched", got)
	}
	if got := h.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	if got := strings.Join(h.Values("X-Multi"), ","); got != "one,two" {
		t.Errorf("X-Multi = %q, want one,two", got)
	}
}

func httptestRecorderWithRequestID(id string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	w.Header().Set("Request-Id", id)
	return w
}

func TestReplayWithoutOuterRequestIDHasNoRequestIDAndFallsBackToUpstreams(t *testing.T) {
	u := &upstream{}
	l, _ := newLayer(t, u)
	send(l, post("k", bookingBody))
	w := send(l, post("k", bookingBody))
	if got := w.Header().Values("Request-Id"); len(got) != 0 {
		t.Errorf("replay Request-Id = %q, want none (the first request's is not replayed)", got)
	}
	if got := w.Header().Get(stripeapi.HeaderOriginalRequest); got != "req_123" {
		t.Errorf("Original-Request = %q, want the upstream's req_123 when no outer id was set", got)
	}
}

func TestSavedStatusesAreReplayed(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusPaymentRequired, http.StatusNotFound, http.StatusConflict, http.StatusInternalServerError, http.StatusServiceUnavailable} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			u := &upstream{status: func(int64) int { return status }}
			l, _ := newLayer(t, u)
			first := send(l, post("k", bookingBody))
			second := send(l, post("k", bookingBody))
			if n := u.calls.Load(); n != 1 {
				t.Fatalf("upstream executed %d times, want 1", n)
			}
			if second.Code != status || second.Body.String() != first.Body.String() {
				t.Errorf("replay = %d %q, want %d %q", second.Code, second.Body, status, first.Body)
			}
			if second.Header().Get(stripeapi.HeaderIdempotentReplayed) != "true" {
				t.Error("replay lacks Idempotent-Replayed: true")
			}
		})
	}
}

func TestUnsavedStatusesExecuteAgain(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusTooManyRequests} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			u := &upstream{status: func(n int64) int {
				if n == 1 {
					return status
				}
				return http.StatusOK
			}}
			l, _ := newLayer(t, u)
			first := send(l, post("k", bookingBody))
			if first.Code != status {
				t.Fatalf("first status = %d, want %d passed through", first.Code, status)
			}
			if l.Len() != 0 {
				t.Errorf("Len = %d after a %d, want 0 (not saved)", l.Len(), status)
			}
			second := send(l, post("k", bookingBody))
			if n := u.calls.Load(); n != 2 {
				t.Fatalf("upstream executed %d times, want 2", n)
			}
			if second.Code != http.StatusOK || second.Header().Get(stripeapi.HeaderIdempotentReplayed) != "" {
				t.Errorf("retry = %d replayed=%q, want a fresh 200", second.Code, second.Header().Get(stripeapi.HeaderIdempotentReplayed))
			}
			third := send(l, post("k", bookingBody))
			if n := u.calls.Load(); n != 2 || third.Body.String() != second.Body.String() {
				t.Errorf("after the fresh 200, executions = %d and body %q, want 2 and the saved %q", n, third.Body, second.Body)
			}
		})
	}
}

func TestMismatches(t *testing.T) {
	const paramsMsg = "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than 'key-7' if you meant to execute a different request."
	const endpointMsg = "Keys for idempotent requests can only be used for the same endpoint they were first used for ('/v1/refunds' vs '/v1/payment_intents'). Try using a key other than 'key-7' if you meant to execute a different request."
	tests := []struct {
		name  string
		retry req
		msg   string
	}{
		{"different params", post("key-7", "amount=185000&currency=eur&metadata[booking_id]=bk_1"), paramsMsg},
		{"extra param", post("key-7", bookingBody+"&description=x"), paramsMsg},
		{"repeated values reordered", post("key-7", bookingBody+"&expand[]=b&expand[]=a"), paramsMsg},
		{"different endpoint", req{path: "/v1/refunds", body: bookingBody, key: "key-7"}, endpointMsg},
		{"endpoint is checked before params", req{path: "/v1/refunds", body: "charge=ch_1", key: "key-7"}, endpointMsg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &upstream{}
			l, _ := newLayer(t, u)
			send(l, post("key-7", bookingBody+"&expand[]=a&expand[]=b"))
			w := send(l, tt.retry)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400", w.Code)
			}
			e := decodeError(t, w.Body.Bytes())
			if e.Type != stripeapi.TypeIdempotency || e.Message != tt.msg {
				t.Errorf("error = %+v,\nwant type idempotency_error, message %q", e, tt.msg)
			}
			if n := u.calls.Load(); n != 1 {
				t.Errorf("upstream executed %d times, want 1", n)
			}
			if w.Header().Get(stripeapi.HeaderIdempotentReplayed) != "" {
				t.Error("a mismatch must not be marked as replayed")
			}
			// The saved response is still there for the right request.
			if r := send(l, post("key-7", bookingBody+"&expand[]=a&expand[]=b")); r.Header().Get(stripeapi.HeaderIdempotentReplayed) != "true" {
				t.Error("after a mismatch, the original request is no longer replayed")
			}
		})
	}
}

func TestParamsMatchRegardlessOfFieldOrder(t *testing.T) {
	tests := []struct{ first, retry string }{
		{"amount=1&currency=eur", "currency=eur&amount=1"},
		{"metadata[a]=1&metadata[b]=2&amount=5", "amount=5&metadata[b]=2&metadata[a]=1"},
		{"expand[]=x&amount=5&expand[]=y", "expand[]=x&expand[]=y&amount=5"},
		{"a=%zz", "a=%zz"}, // not form encoding: compared byte for byte
		{"", ""},
	}
	for _, tt := range tests {
		u := &upstream{}
		l, _ := newLayer(t, u)
		send(l, post("k", tt.first))
		w := send(l, post("k", tt.retry))
		if w.Header().Get(stripeapi.HeaderIdempotentReplayed) != "true" || u.calls.Load() != 1 {
			t.Errorf("%q then %q: status %d, executions %d; want a replay", tt.first, tt.retry, w.Code, u.calls.Load())
		}
	}
	u := &upstream{}
	l, _ := newLayer(t, u)
	send(l, post("k", "a=%zz"))
	if w := send(l, post("k", "a=%zy")); w.Code != http.StatusBadRequest {
		t.Errorf("two different unparsable bodies: status %d, want 400", w.Code)
	}
}

func TestQueryParamsCount(t *testing.T) {
	u := &upstream{}
	l, _ := newLayer(t, u)
	send(l, req{path: "/v1/payment_intents?expand[]=a", body: "amount=1", key: "k"})
	if w := send(l, req{path: "/v1/payment_intents?expand[]=b", body: "amount=1", key: "k"}); w.Code != http.StatusBadRequest {
		t.Errorf("different query params: status %d, want 400", w.Code)
	}
	if w := send(l, req{path: "/v1/payment_intents?expand[]=a", body: "amount=1", key: "k"}); w.Header().Get(stripeapi.HeaderIdempotentReplayed) != "true" {
		t.Errorf("same query params: status %d, want a replay", w.Code)
	}
}

func TestNextSeesTheBodyUntouched(t *testing.T) {
	u := &upstream{}
	l, _ := newLayer(t, u)
	send(l, post("k", bookingBody))
	if len(u.bodies) != 1 || u.bodies[0] != bookingBody {
		t.Errorf("upstream saw %q, want %q", u.bodies, bookingBody)
	}
}

func TestKeyLength(t *testing.T) {
	u := &upstream{}
	l, _ := newLayer(t, u)

	w := send(l, post(strings.Repeat("k", 256), bookingBody))
	if w.Code != http.StatusBadRequest {
		t.Fatalf("256-character key: status %d, want 400", w.Code)
	}
	e := decodeError(t, w.Body.Bytes())
	if e.Type != stripeapi.TypeInvalidRequest || e.Param != "Idempotency-Key" || !strings.Contains(e.Message, "at most 255 characters") {
		t.Errorf("256-character key: error %+v, want invalid_request_error on Idempotency-Key saying at most 255 characters", e)
	}
	if u.calls.Load() != 0 || l.Len() != 0 {
		t.Errorf("256-character key: executions %d, Len %d; want 0, 0", u.calls.Load(), l.Len())
	}

	long := strings.Repeat("k", 255)
	send(l, post(long, bookingBody))
	w = send(l, post(long, bookingBody))
	if u.calls.Load() != 1 || w.Header().Get(stripeapi.HeaderIdempotentReplayed) != "true" {
		t.Errorf("255-character key: executions %d, replayed %q; want 1 and a replay", u.calls.Load(), w.Header().Get(stripeapi.HeaderIdempotentReplayed))
	}
}

func TestRequestsWithoutIdempotencyAlwaysExecute(t *testing.T) {
	tests := []req{
		{method: http.MethodGet, path: "/v1/payment_intents/pi_1", key: "k"},
		{method: http.MethodDelete, path: "/v1/customers/cus_1", key: "k"},
		{method: http.MethodPost, path: "/v1/payment_intents", body: bookingBody},
	}
	for _, q := range tests {
		u := &upstream{}
		l, _ := newLayer(t, u)
		a, b := send(l, q), send(l, q)
		if u.calls.Load() != 2 || a.Body.String() == b.Body.String() || l.Len() != 0 {
			t.Errorf("%s %s key=%q: executions %d, Len %d; want 2 executions with different ids, nothing held", q.method, q.path, q.key, u.calls.Load(), l.Len())
		}
	}
}

func TestKeysAreScopedToSecretKeyAndAccount(t *testing.T) {
	u := &upstream{}
	l, _ := newLayer(t, u)
	base := post("shared", bookingBody)
	otherSecret := base
	otherSecret.secret = "sk_test_other"
	otherAccount := base
	otherAccount.account = "acct_1"

	for _, q := range []req{base, otherSecret, otherAccount} {
		if w := send(l, q); w.Header().Get(stripeapi.HeaderIdempotentReplayed) != "" {
			t.Errorf("secret %q account %q: replayed another scope's response", q.secret, q.account)
		}
	}
	if n := u.calls.Load(); n != 3 {
		t.Fatalf("executions = %d, want 3 (one per scope)", n)
	}
	for _, q := range []req{base, otherSecret, otherAccount} {
		if w := send(l, q); w.Header().Get(stripeapi.HeaderIdempotentReplayed) != "true" {
			t.Errorf("secret %q account %q: second request not replayed", q.secret, q.account)
		}
	}
	if n := u.calls.Load(); n != 3 || l.Len() != 3 {
		t.Errorf("executions = %d, Len = %d; want 3, 3", n, l.Len())
	}
}

func TestWindowOnVirtualClock(t *testing.T) {
	u := &upstream{}
	l, c := newLayer(t, u)
	send(l, post("k", bookingBody))

	c.Advance(24*time.Hour - time.Nanosecond)
	if w := send(l, post("k", bookingBody)); w.Header().Get(stripeapi.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("just under 24h: status %d, want a replay", w.Code)
	}
	c.Advance(time.Nanosecond)
	w := send(l, post("k", bookingBody))
	if n := u.calls.Load(); n != 2 || w.Header().Get(stripeapi.HeaderIdempotentReplayed) != "" {
		t.Fatalf("at 24h: executions %d, replayed %q; want a second execution (a second charge, as at Stripe)", n, w.Header().Get(stripeapi.HeaderIdempotentReplayed))
	}
	// The new execution is saved afresh, with a new window.
	if w := send(l, post("k", "different=params")); w.Code != http.StatusBadRequest {
		t.Errorf("after re-execution, mismatched params: status %d, want 400", w.Code)
	}
	if l.Len() != 1 {
		t.Errorf("Len = %d, want 1", l.Len())
	}
}

func TestWindowOnOffsetClock(t *testing.T) {
	u := &upstream{}
	base := start
	c := clock.NewOffset(func() time.Time { return base })
	l := New(u, Config{Clock: c})
	send(l, post("k", bookingBody))
	c.Advance(25 * time.Hour)
	if w := send(l, post("k", bookingBody)); u.calls.Load() != 2 || w.Header().Get(stripeapi.HeaderIdempotentReplayed) != "" {
		t.Errorf("after advancing 25h: executions %d, want 2", u.calls.Load())
	}
}

func TestPruneAndMemoryBound(t *testing.T) {
	u := &upstream{}
	c := clock.NewVirtual(start)
	l := New(u, Config{Clock: c, Window: time.Hour})

	// 10,000 keys, one a second, across almost three windows: no more
	// than one window's worth may be held at any time.
	const perWindow = 3600
	for i := range 10000 {
		send(l, post(fmt.Sprint("key-", i), "amount=1"))
		c.Advance(time.Second)
		if l.Len() > perWindow {
			t.Fatalf("after %d keys Len = %d, want at most %d", i+1, l.Len(), perWindow)
		}
	}
	if l.Len() != perWindow {
		t.Errorf("Len = %d, want exactly one window's worth, %d", l.Len(), perWindow)
	}
	if q := l.queue.len(); q > 2*perWindow+64 {
		t.Errorf("queue holds %d items for %d keys", q, l.Len())
	}

	// Keys 6400..9999 are held and the clock reads 10000s; moving it to
	// 11799s expires keys 6400..8199.
	c.Advance(30*time.Minute - time.Second)
	if n := l.Prune(); n != perWindow/2 {
		t.Errorf("Prune after 30 more minutes dropped %d, want %d", n, perWindow/2)
	}
	if n := l.Prune(); n != 0 {
		t.Errorf("second Prune dropped %d, want 0", n)
	}
	c.Advance(time.Hour)
	if n := l.Prune(); n != perWindow/2 || l.Len() != 0 || l.queue.len() != 0 {
		t.Errorf("Prune after the window dropped %d, Len %d, queue %d; want %d, 0, 0", n, l.Len(), l.queue.len(), perWindow/2)
	}
}

func TestUnsavedRequestsDoNotGrowTheQueue(t *testing.T) {
	u := &upstream{status: func(int64) int { return http.StatusBadRequest }}
	l, _ := newLayer(t, u)
	for i := range 5000 {
		send(l, post(fmt.Sprint("key-", i), "amount=1"))
	}
	if l.Len() != 0 || l.queue.len() > 128 {
		t.Errorf("after 5000 unsaved 400s: Len %d, queue %d; want 0 and a small queue", l.Len(), l.queue.len())
	}
}

func TestReset(t *testing.T) {
	u := &upstream{}
	l, _ := newLayer(t, u)
	send(l, post("k", bookingBody))
	l.Reset()
	if l.Len() != 0 {
		t.Fatalf("Len after Reset = %d, want 0", l.Len())
	}
	if w := send(l, post("k", bookingBody)); u.calls.Load() != 2 || w.Header().Get(stripeapi.HeaderIdempotentReplayed) != "" {
		t.Errorf("after Reset: executions %d, want 2", u.calls.Load())
	}
}

func TestInFlightKeyGets409(t *testing.T) {
	u := &upstream{}
	release := u.withHold()
	defer release()
	l, _ := newLayer(t, u)

	done := make(chan *httptest.ResponseRecorder)
	go func() {
		w := httptest.NewRecorder()
		l.ServeHTTP(w, post("key-9", bookingBody).build())
		done <- w
	}()
	<-u.entered

	w := send(l, post("key-9", bookingBody))
	if w.Code != http.StatusConflict {
		t.Fatalf("status = %d, want 409", w.Code)
	}
	e := decodeError(t, w.Body.Bytes())
	want := "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): key-9. Please try again later."
	if e.Type != stripeapi.TypeIdempotency || e.Code != "idempotency_key_in_use" || e.Message != want {
		t.Errorf("error = %+v, want idempotency_error/idempotency_key_in_use %q", e, want)
	}
	// Mismatches are reported even while the first is in flight.
	if w := send(l, post("key-9", "amount=1")); w.Code != http.StatusBadRequest {
		t.Errorf("different params while in flight: status %d, want 400", w.Code)
	}
	if l.Len() != 1 {
		t.Errorf("Len while in flight = %d, want 1", l.Len())
	}

	release()
	first := <-done
	replay := send(l, post("key-9", bookingBody))
	if u.calls.Load() != 1 || replay.Body.String() != first.Body.String() {
		t.Errorf("after the first finished: executions %d, replay %q; want 1 and %q", u.calls.Load(), replay.Body, first.Body)
	}
}

func TestConcurrentSameKeyExecutesOnce(t *testing.T) {
	const n = 32
	u := &upstream{}
	release := u.withHold()
	defer release()
	l, _ := newLayer(t, u)

	results := make(chan *httptest.ResponseRecorder, 2*n)
	var wg sync.WaitGroup
	fire := func(count int) {
		gate := make(chan struct{})
		for range count {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				w := httptest.NewRecorder()
				l.ServeHTTP(w, post("same", bookingBody).build())
				results <- w
			}()
		}
		close(gate)
	}

	// Wave one races for the key; the winner blocks upstream, so every
	// other request of the wave must answer without executing. Halfway
	// through the answers the upstream is released, so the rest may meet
	// either the 409 or the saved response.
	fire(n)
	var got []*httptest.ResponseRecorder
	for len(got) < n/2 {
		got = append(got, <-results)
	}
	release()
	fire(n) // wave two overlaps the end of the first execution
	wg.Wait()
	close(results)
	for w := range results {
		got = append(got, w)
	}

	if c := u.calls.Load(); c != 1 {
		t.Fatalf("upstream executed %d times, want 1", c)
	}
	var executed *httptest.ResponseRecorder
	conflicts, replays := 0, 0
	for _, w := range got {
		switch {
		case w.Code == http.StatusConflict:
			conflicts++
		case w.Code == http.StatusOK && w.Header().Get(stripeapi.HeaderIdempotentReplayed) == "true":
			replays++
		case w.Code == http.StatusOK && executed == nil:
			executed = w
		default:
			t.Fatalf("unexpected response %d %q", w.Code, w.Body)
		}
	}
	if executed == nil || conflicts+replays != 2*n-1 || conflicts < n/2 {
		t.Fatalf("executed %v, conflicts %d, replays %d; want one execution, at least %d conflicts, the rest replays", executed != nil, conflicts, replays, n/2)
	}
	for _, w := range got {
		if w.Code == http.StatusOK && w.Body.String() != executed.Body.String() {
			t.Errorf("replay body %q differs from the execution's %q", w.Body, executed.Body)
		}
	}
}

func TestPanicInNextForgetsTheKey(t *testing.T) {
	u := &upstream{panicWith: http.ErrAbortHandler}
	l, _ := newLayer(t, u)
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("recovered %v, want http.ErrAbortHandler re-panicked", p)
			}
		}()
		send(l, post("k", bookingBody))
	}()
	if l.Len() != 0 {
		t.Fatalf("Len after panic = %d, want 0", l.Len())
	}
	u.panicWith = nil
	if w := send(l, post("k", bookingBody)); u.calls.Load() != 2 || w.Code != http.StatusOK || w.Header().Get(stripeapi.HeaderIdempotentReplayed) != "" {
		t.Errorf("retry after panic: executions %d, status %d; want a fresh execution", u.calls.Load(), w.Code)
	}
}

func TestResetWhileInFlightDoesNotSave(t *testing.T) {
	u := &upstream{}
	release := u.withHold()
	l, _ := newLayer(t, u)
	done := make(chan struct{})
	go func() {
		send(l, post("k", bookingBody))
		close(done)
	}()
	<-u.entered
	l.Reset()
	release()
	<-done
	if l.Len() != 0 {
		t.Errorf("Len = %d, want 0: a request that outlived Reset must not be saved", l.Len())
	}
}

func TestExpiredEntryBehindALiveOneIsTreatedAsAbsent(t *testing.T) {
	// The queue is pruned from the front only; if a clock ever stepped
	// back, an expired entry could sit behind a live one. Lookups must
	// still see it as gone.
	u := &upstream{}
	c := clock.NewVirtual(start)
	l := New(u, Config{Clock: c, Window: time.Hour})
	c.Advance(10 * time.Hour)
	send(l, post("late", "amount=1"))
	c.Advance(-10 * time.Hour)
	send(l, post("early", "amount=1"))
	c.Advance(10*time.Hour + 30*time.Minute)

	if w := send(l, post("early", "amount=1")); u.calls.Load() != 3 || w.Header().Get(stripeapi.HeaderIdempotentReplayed) != "" {
		t.Errorf("expired key behind a live one: executions %d, want 3 (executed anew)", u.calls.Load())
	}
	if w := send(l, post("late", "amount=1")); w.Header().Get(stripeapi.HeaderIdempotentReplayed) != "true" {
		t.Errorf("live key: status %d, want a replay", w.Code)
	}
}

func TestUnreadableBodyIsRejectedAndNotRemembered(t *testing.T) {
	u := &upstream{}
	l, _ := newLayer(t, u)
	r := post("k", "").build()
	r.Body = io.NopCloser(iotest.ErrReader(errors.New("connection reset by peer")))
	w := httptest.NewRecorder()
	l.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest || u.calls.Load() != 0 || l.Len() != 0 {
		t.Errorf("status %d, executions %d, Len %d; want 400, 0, 0", w.Code, u.calls.Load(), l.Len())
	}
}
