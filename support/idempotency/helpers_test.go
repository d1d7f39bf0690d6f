package idempotency

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/stripeapi"
)

// upstream is a fake stripe-mock: every call is an execution that creates
// an object with a new random id, and it counts them.
type upstream struct {
	calls atomic.Int64
	// status, when set, picks the status of the nth call (1-based).
	status func(n int64) int
	// hold, when set, makes the first call wait until it is closed, after
	// closing entered.
	hold    chan struct{}
	entered chan struct{}
	once    sync.Once
	// panicWith, when set, makes every call panic with it.
	panicWith any

	mu     sync.Mutex
	bodies []string // request bodies as next saw them
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := u.calls.Add(1)
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.bodies = append(u.bodies, string(body))
	u.mu.Unlock()
	if u.panicWith != nil {
		panic(u.panicWith)
	}
	if n == 1 && u.hold != nil {
		u.once.Do(func() { close(u.entered) })
		<-u.hold
	}
	status := http.StatusOK
	if u.status != nil {
		status = u.status(n)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_123")
	w.Header().Set("Stripe-Version", "2023-10-16")
	w.Header().Add("X-Multi", "one")
	w.Header().Add("X-Multi", "two")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"id":"pi_`+hex.EncodeToString(b[:])+`","object":"payment_intent","amount":240000}`+"\n")
}

// withHold makes the upstream's first call block until the returned
// release is called; entered is closed once that call is executing.
func (u *upstream) withHold() (release func()) {
	u.hold = make(chan struct{})
	u.entered = make(chan struct{})
	var once sync.Once
	return func() { once.Do(func() { close(u.hold) }) }
}

// req describes a request to send through the layer.
type req struct {
	method    string
	path      string
	body      string
	key       string
	secret    string
	account   string
	requestID string // X-Onecharge-Request-Id, as an outer layer sets it
}

func post(key, body string) req {
	return req{method: http.MethodPost, path: "/v1/payment_intents", body: body, key: key}
}

func (q req) build() *http.Request {
	if q.method == "" {
		q.method = http.MethodPost
	}
	if q.path == "" {
		q.path = "/v1/payment_intents"
	}
	if q.secret == "" {
		q.secret = "sk_test_123"
	}
	r := httptest.NewRequest(q.method, q.path, strings.NewReader(q.body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", "Bearer "+q.secret)
	if q.key != "" {
		r.Header.Set(stripeapi.HeaderIdempotencyKey, q.key)
	}
	if q.account != "" {
		r.Header.Set(stripeapi.HeaderStripeAccount, q.account)
	}
	if q.requestID != "" {
		r.Header.Set(stripeapi.HeaderInternalRequestID, q.requestID)
	}
	return r
}

func send(l http.Handler, q req) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	l.ServeHTTP(w, q.build())
	return w
}

// start is a fixed instant so that tests do not depend on the wall clock.
var start = time.Date(2025, 9, 9, 10, 50, 0, 0, time.UTC)

func newLayer(t testing.TB, u http.Handler) (*Layer, *clock.Virtual) {
	t.Helper()
	c := clock.NewVirtual(start)
	return New(u, Config{Clock: c}), c
}

const bookingBody = "amount=240000&currency=eur&metadata[booking_id]=bk_1"
