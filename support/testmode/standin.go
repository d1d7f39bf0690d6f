// Package testmode runs the suite against Stripe test mode: it reads the
// ledger back through the API (PaymentIntents created since the run began,
// tagged with the run's id), cancels what the run created, estimates what
// a run costs in API calls, and provides StandIn, a local api.stripe.com
// for machines that cannot reach Stripe.
//
// In test mode Stripe's own idempotency layer answers, so the stack runs
// with its emulation off (stack.TargetTestMode) and forwards to Stripe, or
// to the StandIn, which plays Stripe with the emulation on.
package testmode

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/stack"
	"github.com/travelbook/onecharge/support/stripeapi"
	"github.com/travelbook/onecharge/support/stripemock"
)

// StandInOptions configure StartStandIn. Zero values are usable.
type StandInOptions struct {
	// StripeMockURL is a running stripe-mock to put behind the stand-in.
	// Defaults to starting one with stripemock.Start(StripeMock), stopped
	// by Close.
	StripeMockURL string
	// StripeMock configures the stripe-mock that StartStandIn starts.
	StripeMock stripemock.Options
	// Clock stamps created and canceled_at, and drives the idempotency
	// window. Defaults to a fresh clock.Offset on the wall clock.
	Clock *clock.Offset
	// Log receives TLS handshake failures and injected-fault lines.
	// Defaults to io.Discard.
	Log io.Writer
}

// StandIn is a local stand-in for https://api.stripe.com: stripe-mock
// behind the stack with the emulated idempotency layer on, served over TLS
// on 127.0.0.1 with a certificate made for this run, so that only a client
// given Transport (or CertPool) trusts it. Like Stripe it answers 401 to a
// request without a test-mode secret or restricted key, and 404 under
// /_onecharge/ (Stripe has no control API). It lists PaymentIntents by
// creation time and cancels them, which stripe-mock cannot.
type StandIn struct {
	// URL is the base URL, https://127.0.0.1:PORT.
	URL string
	// Stack is the stack inside; its Ledger is what Stripe would hold.
	Stack *stack.Stack

	ca    *runCA
	calls atomic.Int64
	srv   *http.Server
	done  chan struct{}
	mock  *stripemock.Server
}

// StartStandIn starts the stand-in (and stripe-mock, unless
// opts.StripeMockURL names one). Close it on every path.
func StartStandIn(ctx context.Context, opts StandInOptions) (_ *StandIn, err error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Clock == nil {
		opts.Clock = clock.NewOffset(nil)
	}
	s := &StandIn{}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	upstream := opts.StripeMockURL
	if upstream == "" {
		s.mock, err = stripemock.Start(ctx, opts.StripeMock)
		if err != nil {
			return nil, fmt.Errorf("starting stripe-mock for the test-mode stand-in: %w", err)
		}
		upstream = s.mock.URL
	}
	if s.ca, err = newRunCA(time.Now()); err != nil {
		return nil, err
	}
	objs := &objects{next: mockTransport(), clk: opts.Clock, intents: map[string]*intent{}}
	on := true
	s.Stack, err = stack.New(stack.Config{
		Upstream: upstream, Target: stack.TargetStripeMock, Emulate: &on,
		Clock: opts.Clock, Log: opts.Log, Transport: objs,
	})
	if err != nil {
		return nil, err
	}
	objs.ledger = s.Stack.Ledger.Objects
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("the test-mode stand-in cannot listen on 127.0.0.1: %w", err)
	}
	s.URL = "https://" + ln.Addr().String()
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.calls.Add(1)
			likeStripe(s.Stack.Handler()).ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{s.ca.server}, MinVersion: tls.VersionTLS12},
		ErrorLog:          log.New(opts.Log, "testmode stand-in: ", 0),
	}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		_ = s.srv.ServeTLS(ln, "", "")
	}()
	return s, nil
}

// CertPool holds only this run's CA, which signed the stand-in's
// certificate.
func (s *StandIn) CertPool() *x509.CertPool { return s.ca.pool }

// CAPEM is this run's CA certificate in PEM, for clients that are not Go
// (SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE).
func (s *StandIn) CAPEM() []byte { return append([]byte(nil), s.ca.pem...) }

// Transport returns a new transport that trusts this run's CA and no
// other, so a request that reaches anything but the stand-in fails.
func (s *StandIn) Transport() *http.Transport {
	return &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: s.ca.pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
}

// Close stops the stand-in, and stripe-mock if StartStandIn started it.
func (s *StandIn) Close() error {
	var errs []error
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := s.srv.Shutdown(ctx); err != nil {
			errs = append(errs, s.srv.Close())
		}
		cancel()
		<-s.done
		s.srv = nil
	}
	if s.mock != nil {
		errs = append(errs, s.mock.Stop())
		s.mock = nil
	}
	return errors.Join(errs...)
}

// testModeKey is a key Stripe test mode (and stripe-mock) accepts.
var testModeKey = regexp.MustCompile(`^(?:sk|rk)_test_[A-Za-z0-9]+$`)

// Calls is how many API requests the stand-in answered: what the same run
// would cost against Stripe test mode.
func (s *StandIn) Calls() int64 { return s.calls.Load() }

// likeStripe refuses what api.stripe.com refuses before anything runs: a
// request without a test-mode secret key (401), and the stack's control
// API, which Stripe does not have (404).
// See https://docs.stripe.com/api/authentication.
func likeStripe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_onecharge/") {
			stripeapi.WriteError(w, http.StatusNotFound, stripeapi.Error{Type: stripeapi.TypeInvalidRequest,
				Message: "Unrecognized request URL (" + r.Method + ": " + r.URL.Path + ")."})
			return
		}
		key := stripeapi.SecretKey(r)
		if !testModeKey.MatchString(key) {
			msg := "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
			if key != "" {
				msg = "Invalid API Key provided: " + stripeapi.Redact(key)
			}
			stripeapi.WriteError(w, http.StatusUnauthorized, stripeapi.Error{Type: stripeapi.TypeInvalidRequest, Message: msg})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func mockTransport() http.RoundTripper {
	return &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second}
}
