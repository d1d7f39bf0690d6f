// Package idempotency emulates Stripe's idempotency layer as an
// http.Handler middleware, so that a stateless upstream (stripe-mock)
// behaves like Stripe when a client retries: a POST with an
// Idempotency-Key executes once, and later requests with the same key get
// the saved result back.
//
// The semantics follow https://docs.stripe.com/api/idempotent_requests and
// the "Stripe's idempotency semantics" section of DESIGN.md.
package idempotency

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/stripeapi"
)

// Config configures a Layer. The zero value is Stripe's behaviour on the
// wall clock.
type Config struct {
	// Clock decides when a key is old enough to be pruned. Defaults to
	// clock.Real{}.
	Clock clock.Clock
	// Window is how old a key must be to be pruned; a pruned key that is
	// reused executes as a new request. Defaults to 24h, the age after
	// which Stripe may prune keys.
	Window time.Duration
	// MaxKeyLength is the longest Idempotency-Key accepted, in bytes.
	// Defaults to 255, Stripe's limit.
	MaxKeyLength int
}

// Default values of Config fields.
const (
	DefaultWindow       = 24 * time.Hour
	DefaultMaxKeyLength = 255
)

// Layer is Stripe's idempotency layer in front of next. It is safe for
// concurrent use. See https://docs.stripe.com/api/idempotent_requests.
type Layer struct {
	next   http.Handler
	clock  clock.Clock
	window time.Duration
	maxKey int

	mu      sync.Mutex
	entries map[scopedKey]*entry
	// queue holds entries in creation order so that expired ones can be
	// dropped from the front on every insert, keeping memory bounded by
	// the keys created within one window. It may hold entries that were
	// already removed from the map (dead of them); pruning checks
	// identity, and the queue is compacted once half of it is dead, so
	// it never holds much more than twice the map.
	queue queue
	dead  int
}

// scopedKey is an idempotency key within its account scope
// (stripeapi.Scope): the same key under two accounts names two requests.
type scopedKey struct {
	scope, key string
}

// entry is what the layer remembers about the first request for a key.
type entry struct {
	method    string
	path      string
	params    paramsDigest
	start     time.Time
	requestID string

	// done is false while the first request executes (the key is in
	// flight); once true, status, header and body hold its response.
	done   bool
	status int
	header savedHeader
	body   []byte
}

// New returns a Layer that forwards to next.
func New(next http.Handler, cfg Config) *Layer {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.MaxKeyLength <= 0 {
		cfg.MaxKeyLength = DefaultMaxKeyLength
	}
	return &Layer{
		next:    next,
		clock:   cfg.Clock,
		window:  cfg.Window,
		maxKey:  cfg.MaxKeyLength,
		entries: make(map[scopedKey]*entry),
	}
}

// ServeHTTP executes, replays or rejects r as Stripe would. Only POST
// requests with a non-empty Idempotency-Key take part; all others go
// straight to next.
func (l *Layer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get(stripeapi.HeaderIdempotencyKey)
	if r.Method != http.MethodPost || key == "" {
		l.next.ServeHTTP(w, r)
		return
	}
	if len(key) > l.maxKey {
		stripeapi.WriteError(w, http.StatusBadRequest, stripeapi.Error{
			Type:    stripeapi.TypeInvalidRequest,
			Message: fmt.Sprintf("Invalid idempotency key: keys must be at most %d characters long. Use a shorter Idempotency-Key (a UUID is 36 characters).", l.maxKey),
			Param:   stripeapi.HeaderIdempotencyKey,
		})
		return
	}
	body, err := stripeapi.ReadBody(r)
	if err != nil {
		// The client went away or sent a broken body: nothing executed,
		// so nothing is remembered.
		stripeapi.WriteError(w, http.StatusBadRequest, stripeapi.Error{
			Type:    stripeapi.TypeInvalidRequest,
			Message: "Could not read the request body: " + err.Error() + ". Send the request again.",
		})
		return
	}

	sk := scopedKey{scope: stripeapi.Scope(r), key: key}
	e := &entry{
		method:    http.MethodPost,
		path:      r.URL.Path,
		params:    digestParams(r.URL.RawQuery, body),
		requestID: r.Header.Get(stripeapi.HeaderInternalRequestID),
	}
	prior, ok := l.claim(sk, e)
	if ok {
		l.answer(w, key, e, prior)
		return
	}
	l.execute(w, r, sk, e)
}

// claim looks up sk. If a live entry exists it returns a snapshot of it
// and true; otherwise it stores e as in flight and returns false.
func (l *Layer) claim(sk scopedKey, e *entry) (entry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	l.pruneLocked(now)
	if old, ok := l.entries[sk]; ok {
		if !l.expired(old, now) {
			return *old, true
		}
		// Older than the window but not yet reached by the queue (the
		// clock was not monotonic): Stripe treats it as gone.
		l.deleteLocked(sk)
	}
	e.start = now
	l.entries[sk] = e
	l.queue.push(queued{key: sk, e: e})
	return entry{}, false
}

// answer responds to a request whose key is already known, without
// executing it. The endpoint is checked before the parameters, as Stripe
// does. Mismatches are checked before the in-flight state: a request
// with other parameters can never succeed with this key, so a 409 that
// invites a retry would only delay the 400.
func (l *Layer) answer(w http.ResponseWriter, key string, req *entry, prior entry) {
	switch {
	case req.path != prior.path:
		stripeapi.WriteError(w, http.StatusBadRequest, stripeapi.Error{
			Type: stripeapi.TypeIdempotency,
			Message: fmt.Sprintf("Keys for idempotent requests can only be used for the same endpoint they were first used for ('%s' vs '%s'). Try using a key other than '%s' if you meant to execute a different request.",
				req.path, prior.path, key),
		})
	case req.params != prior.params:
		stripeapi.WriteError(w, http.StatusBadRequest, stripeapi.Error{
			Type: stripeapi.TypeIdempotency,
			Message: fmt.Sprintf("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '%s' if you meant to execute a different request.",
				key),
		})
	case !prior.done:
		// Stripe documents code idempotency_key_in_use; its current error
		// type for it is unconfirmed, so this uses idempotency_error
		// (DESIGN.md).
		stripeapi.WriteError(w, http.StatusConflict, stripeapi.Error{
			Type: stripeapi.TypeIdempotency,
			Code: "idempotency_key_in_use",
			Message: fmt.Sprintf("There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): %s. Please try again later.",
				key),
		})
	default:
		replay(w, prior)
	}
}

// replay writes a saved response byte for byte. Request-Id is left alone:
// it names the new request and is set by an outer layer.
func replay(w http.ResponseWriter, saved entry) {
	h := w.Header()
	for _, f := range saved.header {
		h[f.name] = slices.Clone(f.values) // outer layers must not write into the saved copy
	}
	h.Set(stripeapi.HeaderIdempotentReplayed, "true")
	if saved.requestID != "" {
		h.Set(stripeapi.HeaderOriginalRequest, saved.requestID)
	}
	w.WriteHeader(saved.status)
	_, _ = w.Write(saved.body)
}

// execute runs the first request for sk through next, saves the response
// unless Stripe would not, and then passes it to the client. Saving
// before writing means a client that retries the instant it reads the
// response meets the replay, not a 409.
func (l *Layer) execute(w http.ResponseWriter, r *http.Request, sk scopedKey, e *entry) {
	// next writes headers straight into w's map (nothing is sent before
	// WriteHeader); only the status and body are held back.
	c := &capture{header: w.Header()}
	func() {
		defer func() {
			if p := recover(); p != nil {
				// Nothing reached the client; forget the key so a retry
				// executes, and let net/http deal with the panic.
				l.remove(sk, e)
				panic(p)
			}
		}()
		l.next.ServeHTTP(c, r)
	}()
	status := c.statusCode()

	l.mu.Lock()
	if l.entries[sk] == e { // not reset or pruned meanwhile
		if saved(status) {
			e.done = true
			e.status = status
			e.header = saveHeader(c.header)
			e.body = c.body.Bytes()
			if cap(e.body)-len(e.body) > 64 {
				e.body = bytes.Clone(e.body) // a buffer grows by doubling; keep only the body
			}
			if e.requestID == "" {
				e.requestID = c.header.Get(stripeapi.HeaderRequestID)
			}
		} else {
			l.deleteLocked(sk)
		}
	}
	l.mu.Unlock()

	w.WriteHeader(status)
	_, _ = w.Write(c.body.Bytes())
}

// saved reports whether Stripe saves a response with this status. It does
// not save requests that failed parameter validation (400), that were not
// authenticated (401) or that rate limiters stopped (429), so the client
// may retry them and get a fresh execution.
func saved(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusTooManyRequests:
		return false
	}
	return true
}

// savedHeader is a response header as a slice: a few
// hundred bytes less per saved key than an http.Header map.
type savedHeader []headerField

type headerField struct {
	name   string
	values []string
}

// saveHeader copies h, which outer layers may still change, leaving out
// the Request-Id that belongs to the first request only.
func saveHeader(h http.Header) savedHeader {
	n, nv := 0, 0
	for k, v := range h {
		if k != stripeapi.HeaderRequestID {
			n++
			nv += len(v)
		}
	}
	out := make(savedHeader, 0, n)
	values := make([]string, 0, nv) // one array for all values
	for k, v := range h {
		if k == stripeapi.HeaderRequestID {
			continue
		}
		start := len(values)
		values = append(values, v...)
		out = append(out, headerField{name: k, values: values[start:len(values):len(values)]})
	}
	return out
}

// remove forgets sk if it still names e.
func (l *Layer) remove(sk scopedKey, e *entry) {
	l.mu.Lock()
	if l.entries[sk] == e {
		l.deleteLocked(sk)
	}
	l.mu.Unlock()
}

// deleteLocked removes sk from the map while its queue item stays behind,
// and compacts the queue once half of it is such dead items.
func (l *Layer) deleteLocked(sk scopedKey) {
	delete(l.entries, sk)
	l.dead++
	if l.dead >= 64 && l.dead*2 >= l.queue.len() {
		l.queue.keep(func(q queued) bool { return l.entries[q.key] == q.e })
		l.dead = 0
	}
}

// Reset forgets every key, saved or in flight. Requests in flight finish
// but their responses are not saved.
func (l *Layer) Reset() {
	l.mu.Lock()
	clear(l.entries)
	l.queue, l.dead = queue{}, 0
	l.mu.Unlock()
}

// Len returns how many keys the layer holds, saved and in flight.
func (l *Layer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Prune drops every key whose first request started at least Window ago
// and returns how many it dropped.
func (l *Layer) Prune() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pruneLocked(l.clock.Now())
}

func (l *Layer) expired(e *entry, now time.Time) bool {
	return now.Sub(e.start) >= l.window
}

// pruneLocked drops expired entries from the front of the creation-ordered
// queue. Each entry is pushed and popped once, so the cost is amortised
// O(1) per insert.
func (l *Layer) pruneLocked(now time.Time) int {
	n := 0
	for {
		q, ok := l.queue.front()
		if !ok || !l.expired(q.e, now) {
			return n
		}
		l.queue.pop()
		if l.entries[q.key] == q.e {
			delete(l.entries, q.key)
			n++
		} else if l.dead > 0 {
			l.dead--
		}
	}
}
