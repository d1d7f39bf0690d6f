// Package stack composes the Stripe-faithful local stack on one listener:
//
//	client ─▶ request id ─▶ faults (network) ─▶ idempotency ─▶ faults (inside) ─▶ ledger ─▶ upstream
//
// The upstream is stripe-mock (stateless, so the idempotency layer emulates
// Stripe's) or, in test mode, Stripe itself (whose own idempotency layer
// applies, so the emulation is switched off). The control API under
// /_onecharge/ is served on the same listener; see control.go.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/faults"
	"github.com/travelbook/onecharge/support/idempotency"
	"github.com/travelbook/onecharge/support/ledger"
	"github.com/travelbook/onecharge/support/stripeapi"
)

// Targets the stack can front.
const (
	TargetStripeMock = "stripe-mock"
	TargetTestMode   = "testmode"
)

// Config says what the stack fronts and how. Zero values are usable.
type Config struct {
	// Addr to listen on. Defaults to "127.0.0.1:0" (a free loopback port).
	Addr string
	// Upstream is the base URL requests are forwarded to: stripe-mock's
	// URL, or Stripe's API in test mode. Required.
	Upstream string
	// Target names the upstream in reports. Defaults to "stripe-mock".
	Target string
	// Emulate turns the emulated idempotency layer on. Defaults to on for
	// stripe-mock; ignored (always off) in test mode, where Stripe's own
	// layer answers.
	Emulate *bool
	// Reference is the request parameter naming a business reference.
	// Defaults to "metadata[booking_id]".
	Reference string
	// Clock drives the idempotency window and the ledger's timestamps; the
	// control API advances it. Defaults to a fresh clock.Offset.
	Clock *clock.Offset
	// FaultSleeper waits for the delay, slow and drop_response faults.
	// Defaults to clock.Real{}.
	FaultSleeper clock.Sleeper
	// Log receives one line per injected fault. Defaults to io.Discard.
	Log io.Writer
	// Transport reaches the upstream. Defaults to a transport tuned for
	// many concurrent clients on loopback.
	Transport http.RoundTripper
}

// Stack is a running (or ready to run) stack. Its parts are exported so
// specs can read the ledger and set faults in-process, as the control API
// does over HTTP.
type Stack struct {
	URL         string
	Target      string
	Reference   string
	Ledger      *ledger.Ledger
	Faults      *faults.Injector
	Idempotency *idempotency.Layer // nil in test mode
	Clock       *clock.Offset

	handler http.Handler
	srv     *http.Server
	ln      net.Listener
	done    chan struct{}
}

// New builds the handler chain without listening.
func New(cfg Config) (*Stack, error) {
	if cfg.Upstream == "" {
		return nil, errors.New("stack: no upstream: set the stripe-mock URL (STRIPE_MOCK_URL) or let the harness start stripe-mock")
	}
	up, err := url.Parse(cfg.Upstream)
	if err != nil || (up.Scheme != "http" && up.Scheme != "https") || up.Host == "" {
		return nil, fmt.Errorf("stack: upstream %q is not an http(s) URL: give a base URL such as http://127.0.0.1:12111", cfg.Upstream)
	}
	if cfg.Target == "" {
		cfg.Target = TargetStripeMock
	}
	if cfg.Reference == "" {
		cfg.Reference = stripeapi.DefaultReference
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.NewOffset(nil)
	}
	if cfg.FaultSleeper == nil {
		cfg.FaultSleeper = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Transport == nil {
		cfg.Transport = defaultTransport()
	}
	emulate := cfg.Target != TargetTestMode
	if cfg.Emulate != nil && cfg.Target != TargetTestMode {
		emulate = *cfg.Emulate
	}

	s := &Stack{
		Target:    cfg.Target,
		Reference: cfg.Reference,
		Ledger:    ledger.New(cfg.Clock),
		Clock:     cfg.Clock,
		Faults: faults.New(faults.Config{
			Clock: cfg.Clock, Sleeper: cfg.FaultSleeper, Reference: cfg.Reference, Log: cfg.Log,
		}),
	}
	var h http.Handler = newProxy(up, cfg.Transport)
	h = ledger.Recorder(s.Ledger, cfg.Reference, h)
	h = s.Faults.Inside(h)
	if emulate {
		s.Idempotency = idempotency.New(h, idempotency.Config{Clock: cfg.Clock})
		h = s.Idempotency
	}
	h = s.Faults.Network(h)
	s.handler = withRequestID(s.controlMux(h))
	return s, nil
}

// Start builds the stack and serves it on cfg.Addr.
func Start(cfg Config) (*Stack, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("address %s is already in use: stop whatever listens there or pick another port (port 0 picks a free one)", addr)
		}
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.URL = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Handler is the whole chain, control API included.
func (s *Stack) Handler() http.Handler { return s.handler }

// Close stops serving. Connections held open by a drop_response fault are
// cut rather than waited for.
func (s *Stack) Close() error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	return err
}

// Reset clears keys, ledger, faults and the clock offset.
func (s *Stack) Reset() {
	if s.Idempotency != nil {
		s.Idempotency.Reset()
	}
	s.Ledger.Reset()
	s.Faults.Reset()
	s.Clock.Reset()
}

// withRequestID gives every request its own Stripe-shaped request id:
// stripe-mock answers "req_123" to all, and the ledger and the replay's
// Original-Request header need to tell attempts apart.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := stripeapi.NewRequestID()
		r.Header.Set(stripeapi.HeaderInternalRequestID, id)
		w.Header().Set(stripeapi.HeaderRequestID, id)
		next.ServeHTTP(w, r)
	})
}

func newProxy(up *url.URL, rt http.RoundTripper) http.Handler {
	return &httputil.ReverseProxy{
		Transport: rt,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.Out.Host = up.Host
			// The internal id never leaves the stack.
			pr.Out.Header.Del(stripeapi.HeaderInternalRequestID)
		},
		ModifyResponse: func(resp *http.Response) error {
			// The stack's own Request-Id is already on the response; the
			// proxy would add stripe-mock's constant "req_123" beside it.
			resp.Header.Del(stripeapi.HeaderRequestID)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			stripeapi.WriteError(w, http.StatusBadGateway, stripeapi.Error{
				Type:    stripeapi.TypeAPI,
				Message: "onecharge: the upstream did not answer (" + err.Error() + "); check that stripe-mock is running",
			})
		},
	}
}

func defaultTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 30 * time.Second
	return t
}

// isControl reports whether a path belongs to the control API.
func isControl(p string) bool { return strings.HasPrefix(p, "/_onecharge/") }
