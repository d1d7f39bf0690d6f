package faults

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/travelbook/onecharge/support/stripeapi"
)

type decisionKey struct{}

// Network returns the outer fault point: it plays the network and what
// Stripe runs before its idempotency layer. It decides every request's
// faults, applies delays and the network and pre-idempotency kinds itself,
// and hands inside kinds to Inside through the request context.
func (i *Injector) Network(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !i.armed.Load() {
			next.ServeHTTP(w, r)
			return
		}
		body, err := stripeapi.ReadBody(r)
		if err != nil {
			// The client went away or sent a broken body; nothing to
			// inject into.
			stripeapi.WriteError(w, http.StatusBadRequest, stripeapi.Error{
				Type: stripeapi.TypeInvalidRequest, Message: "The request body could not be read; send it again.",
			})
			return
		}
		d := i.decide(i.describe(r, body))

		var wait time.Duration
		for _, p := range d.delays {
			i.record(d, p)
			wait += p.delay
		}
		if wait > 0 {
			if err := i.sleeper.Sleep(r.Context(), wait); err != nil {
				return // the client gave up while the network held it
			}
		}
		if d.fault == nil {
			next.ServeHTTP(w, r)
			return
		}
		p := *d.fault
		if p.fault.Inside() {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), decisionKey{}, d)))
			return
		}
		i.record(d, p)
		switch p.fault {
		case DropResponse:
			execute(next, r)
			if p.delay > 0 {
				// Hold the connection like a dead route would, until the
				// delay is over or the client gives up.
				_ = i.sleeper.Sleep(r.Context(), p.delay)
			}
			closeConn(w, false)
		case ResetBefore:
			closeConn(w, true)
		case ResetAfter:
			execute(next, r)
			closeConn(w, true)
		case RateLimit:
			stripeapi.WriteError(w, http.StatusTooManyRequests, stripeapi.Error{
				Type: stripeapi.TypeInvalidRequest, Code: "rate_limit",
				Message: "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
			})
		case LockTimeout:
			stripeapi.WriteError(w, http.StatusTooManyRequests, stripeapi.Error{
				Type: stripeapi.TypeInvalidRequest, Code: "lock_timeout",
				Message: "This object cannot be accessed right now because another API request or Stripe process is currently accessing it. If you see this error intermittently, retry the request. If you see this error frequently and are making multiple concurrent requests to a single object, make your requests serially or at a lower rate. See https://stripe.com/docs/rate-limits for more details.",
			})
		case Unavailable:
			stripeapi.WriteError(w, http.StatusServiceUnavailable, stripeapi.Error{
				Type:    stripeapi.TypeAPI,
				Message: "Stripe is temporarily unavailable. Please retry the request.",
			})
		}
	})
}

// Inside returns the inner fault point, for failures while Stripe
// executes; it belongs after the idempotency layer, so that layer saves
// what it answers. It applies the inside kind Network chose for the
// request, and passes everything else through. A request that never gets
// here (an idempotent replay, say) is not counted as injected.
func (i *Injector) Inside(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := r.Context().Value(decisionKey{}).(decision)
		if !ok || d.fault == nil || !d.fault.fault.Inside() {
			next.ServeHTTP(w, r)
			return
		}
		p := *d.fault
		i.record(d, p)
		switch p.fault {
		case ServerError:
			execute(next, r)
			stripeapi.WriteError(w, http.StatusInternalServerError, stripeapi.Error{
				Type:    stripeapi.TypeAPI,
				Message: "An unknown error occurred while processing your request. Please retry the request.",
			})
		case Slow:
			// Stripe keeps working when the client hangs up, so neither
			// the wait nor the execution follows the client's context.
			ctx := context.WithoutCancel(r.Context())
			_ = i.sleeper.Sleep(ctx, p.delay)
			next.ServeHTTP(w, r.WithContext(ctx))
		}
	})
}

// describe picks out what the rules and the injection log need.
func (i *Injector) describe(r *http.Request, body []byte) request {
	ref := stripeapi.Form(body).Get(i.reference)
	if ref == "" {
		ref = r.URL.Query().Get(i.reference)
	}
	return request{
		method:    r.Method,
		path:      r.URL.Path,
		key:       r.Header.Get(stripeapi.HeaderIdempotencyKey),
		reference: ref,
		scope:     stripeapi.Scope(r),
	}
}

// execute runs next to completion and throws its response away: the
// upstream really executes, the client never hears. The client's context
// is detached because Stripe finishes a request whose client has gone.
func execute(next http.Handler, r *http.Request) {
	next.ServeHTTP(&discardWriter{header: http.Header{}}, r.WithContext(context.WithoutCancel(r.Context())))
}

// discardWriter is a ResponseWriter that keeps the status and drops the
// body, for responses the client must never see.
type discardWriter struct {
	header http.Header
	status int
}

func (d *discardWriter) Header() http.Header { return d.header }

func (d *discardWriter) WriteHeader(status int) {
	if d.status == 0 {
		d.status = status
	}
}

func (d *discardWriter) Write(b []byte) (int, error) {
	d.WriteHeader(http.StatusOK)
	return len(b), nil
}

// Flush lets upstream handlers that flush (reverse proxies) run unchanged.
func (d *discardWriter) Flush() {}

// closeConn takes the connection from the server and closes it without
// writing a byte; with reset it sends a TCP RST instead of a FIN. When
// the connection cannot be taken (HTTP/2), it aborts the handler, which
// makes the server drop the stream without a response.
func closeConn(w http.ResponseWriter, reset bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if reset {
		c := conn
		if u, ok := c.(interface{ NetConn() net.Conn }); ok { // TLS
			c = u.NetConn()
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
	_ = conn.Close()
}
