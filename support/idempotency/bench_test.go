package idempotency

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/stripeapi"
)

// fixedUpstream answers like stripe-mock but without randomness, so the
// benchmarks measure the layer rather than the fake.
var fixedUpstream = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_123")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"id":"pi_3MtwBwLkdIwHu7ix28a3tqPa","object":"payment_intent","amount":240000,"currency":"eur"}`)
})

// sink is a ResponseWriter that keeps nothing, reused across iterations.
type sink struct {
	h      http.Header
	status int
}

func (s *sink) Header() http.Header { return s.h }
func (s *sink) WriteHeader(c int)   { s.status = c }
func (s *sink) Write(p []byte) (int, error) {
	return len(p), nil
}

// reusable is one request whose body and key are reset per iteration.
type reusable struct {
	r    *http.Request
	body []byte
	rd   bytes.Reader
}

func newReusable(key, body string) *reusable {
	q := &reusable{r: post(key, body).build(), body: []byte(body)}
	return q
}

func (q *reusable) next() *http.Request {
	q.rd.Reset(q.body)
	q.r.Body = io.NopCloser(&q.rd)
	return q.r
}

func BenchmarkFirstRequest(b *testing.B) {
	c := clock.NewVirtual(start)
	l := New(fixedUpstream, Config{Clock: c, Window: time.Hour})
	q := newReusable("", bookingBody)
	w := &sink{h: http.Header{}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// A new key each time (strconv costs one small allocation); the
		// clock moves so memory stays at one window's worth of keys.
		q.r.Header[stripeapi.HeaderIdempotencyKey] = []string{strconv.Itoa(i)}
		clear(w.h)
		l.ServeHTTP(w, q.next())
		c.Advance(time.Second)
	}
	if w.status != http.StatusOK {
		b.Fatalf("status %d", w.status)
	}
}

func BenchmarkReplay(b *testing.B) {
	l, _ := newLayer(b, fixedUpstream)
	q := newReusable("key", bookingBody)
	w := &sink{h: http.Header{}}
	l.ServeHTTP(w, q.next())
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		l.ServeHTTP(w, q.next())
	}
	if w.h.Get(stripeapi.HeaderIdempotentReplayed) != "true" {
		b.Fatal("not a replay")
	}
}

func BenchmarkMismatch(b *testing.B) {
	l, _ := newLayer(b, fixedUpstream)
	w := &sink{h: http.Header{}}
	l.ServeHTTP(w, newReusable("key", bookingBody).next())
	q := newReusable("key", "amount=1&currency=eur")
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		l.ServeHTTP(w, q.next())
	}
	if w.status != http.StatusBadRequest {
		b.Fatalf("status %d, want 400", w.status)
	}
}

// storeKeys stores n keys answered by fixedUpstream and returns the heap
// growth per key.
func storeKeys(tb testing.TB, n int) (*Layer, float64) {
	tb.Helper()
	l, _ := newLayer(tb, fixedUpstream)
	q := newReusable("", bookingBody)
	w := &sink{h: http.Header{}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		// Keys of stripe-go's shape: <unixnano>_<6 chars>, ~26 bytes.
		q.r.Header[stripeapi.HeaderIdempotencyKey] = []string{"1757415000000000000_" + strconv.Itoa(100000+i)}
		clear(w.h)
		l.ServeHTTP(w, q.next())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return l, float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// TestBytesPerStoredKey reports what one saved key costs, with a
// stripe-mock-sized answer of ~100 bytes; a real PaymentIntent body adds
// its ~1.5 KB. It fails if the cost balloons (say a request body or the
// canonical parameters were kept by mistake).
func TestBytesPerStoredKey(t *testing.T) {
	n := 100_000
	if raceEnabled || testing.Short() {
		n = 10_000 // the race detector makes each request ~10x slower
	}
	l, perKey := storeKeys(t, n)
	if l.Len() != n {
		t.Fatalf("Len = %d, want %d", l.Len(), n)
	}
	t.Logf("%d keys: %.0f bytes per stored key (race detector: %v)", n, perKey, raceEnabled)
	if perKey > 2048 {
		t.Errorf("%.0f bytes per stored key, want under 2048", perKey)
	}
	runtime.KeepAlive(l)
}

func BenchmarkBytesPerStoredKey(b *testing.B) {
	for b.Loop() {
		l, perKey := storeKeys(b, 100_000)
		b.ReportMetric(perKey, "B/key")
		runtime.KeepAlive(l)
	}
}
