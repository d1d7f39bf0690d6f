// Package stripemock finds (or builds) stripe-mock, starts it on a free
// loopback port, checks that it answers, and stops it without leaving
// orphans. It is the local Stripe that the stack puts behind its emulated
// idempotency layer.
//
// Stop must be called on every path, including Ctrl-C: the caller (the
// Ginkgo suite's cleanup, the CLI's signal handler) owns the signal and
// calls Stop. On Linux stripe-mock is also SIGKILLed by the kernel if the
// process that started it dies without calling Stop.
//
// See https://github.com/stripe/stripe-mock.
package stripemock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure Start and FromEnv.
type Options struct {
	// Bin is the stripe-mock executable (a path, or a name on PATH).
	// Defaults to $STRIPE_MOCK_BIN, else the path `go tool -n stripe-mock`
	// prints in the onecharge module root, building it on first use.
	Bin string
	// Addr is the HTTP address stripe-mock listens on. Defaults to
	// "127.0.0.1:0", a free loopback port.
	Addr string
	// StartTimeout bounds starting the binary and its first healthy answer
	// (or, in FromEnv, the health check of STRIPE_MOCK_URL). It does not
	// bound building stripe-mock on a cold machine. Defaults to 10s.
	StartTimeout time.Duration
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// DefaultStartTimeout is Options.StartTimeout when zero.
const DefaultStartTimeout = 10 * time.Second

// killAfter is how long Stop waits after SIGTERM before SIGKILL.
const killAfter = 2 * time.Second

// healthInterval is the pause between health checks while stripe-mock loads
// its OpenAPI spec.
const healthInterval = 50 * time.Millisecond

// TestSecretKey is the key stripe-mock accepts (any sk_test_ key would do).
const TestSecretKey = "sk_test_123"

func (o Options) withDefaults() Options {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// Server is a running stripe-mock, started by Start or found at
// STRIPE_MOCK_URL by FromEnv.
type Server struct {
	// URL is the base URL of the Stripe API, http://127.0.0.1:PORT.
	URL string

	cmd      *exec.Cmd
	out      *watcher
	done     chan struct{} // closed once the process has been reaped
	waitErr  error         // set before done is closed
	stopOnce sync.Once
}

// Start runs stripe-mock on opts.Addr and returns once it answers a health
// check. ctx bounds only the start: cancelling it later does not stop the
// server; call Stop. Every error is one sentence saying what to do.
func Start(ctx context.Context, opts Options) (*Server, error) {
	opts = opts.withDefaults()
	bin, err := Binary(ctx, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	// stripe-mock also opens HTTPS on [::]:12112 unless told otherwise (its
	// -http-addr does not switch HTTPS off), which would bind every
	// interface and collide between parallel servers: keep it on loopback.
	cmd := exec.Command(bin, "-http-addr", opts.Addr, "-https-addr", "127.0.0.1:0")
	out := newWatcher()
	cmd.Stdout, cmd.Stderr = out, out
	// Without it, Wait would block on the output pipe for as long as any
	// leftover process holds it.
	cmd.WaitDelay = time.Second
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot run stripe-mock at %s (%v); set STRIPE_MOCK_BIN to a working stripe-mock, or STRIPE_MOCK_URL to a running one", bin, unwrapExec(err))
	}
	s := &Server{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	fmt.Fprintf(opts.Log, "onecharge: starting stripe-mock (pid %d) on %s\n", cmd.Process.Pid, opts.Addr)

	if err := s.awaitHealthy(ctx, bin, opts); err != nil {
		_ = s.Stop()
		return nil, err
	}
	fmt.Fprintf(opts.Log, "onecharge: stripe-mock is up at %s\n", s.URL)
	return s, nil
}

// awaitHealthy waits for the listening line, then for a healthy answer,
// failing at once if the process exits.
func (s *Server) awaitHealthy(ctx context.Context, bin string, opts Options) error {
	select {
	case <-s.out.listening:
	case <-s.done:
		return s.exitError(bin, opts)
	case <-ctx.Done():
		return s.timeoutError(ctx, bin, opts, "did not report a listening address")
	}
	_, port, err := net.SplitHostPort(s.out.Addr())
	if err != nil {
		return fmt.Errorf("stripe-mock at %s printed an address onecharge cannot parse (%q); set STRIPE_MOCK_BIN to a stripe-mock v0.x binary", bin, s.out.Addr())
	}
	// We always bind loopback; even if a build prints [::] or 0.0.0.0,
	// 127.0.0.1 reaches it.
	s.URL = "http://" + net.JoinHostPort("127.0.0.1", port)

	var last error
	for {
		if last = Healthy(ctx, s.URL); last == nil {
			return nil
		}
		t := time.NewTimer(healthInterval)
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			return s.exitError(bin, opts)
		case <-ctx.Done():
			t.Stop()
			return s.timeoutError(ctx, bin, opts, fmt.Sprintf("did not answer a health check at %s (%v)", s.URL, last))
		}
	}
}

func (s *Server) exitError(bin string, opts Options) error {
	output := s.out.Output()
	if strings.Contains(output, "address already in use") {
		return fmt.Errorf("stripe-mock cannot listen on %s because the address is already in use; stop what listens there or pick another address", opts.Addr)
	}
	return fmt.Errorf("stripe-mock at %s exited before it was ready (%v, last output: %q); check that it is a working stripe-mock or set STRIPE_MOCK_BIN to one",
		bin, s.waitErr, lastLine(output, "none"))
}

func (s *Server) timeoutError(ctx context.Context, bin string, opts Options, what string) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("starting stripe-mock was cancelled: %w", ctx.Err())
	}
	return fmt.Errorf("stripe-mock at %s %s within %s (last output: %q); check that it is a working stripe-mock, or raise StartTimeout on a slow machine",
		bin, what, opts.StartTimeout, lastLine(s.out.Output(), "none"))
}

// FromEnv returns the stripe-mock at $STRIPE_MOCK_URL if that is set,
// checking once, within opts.StartTimeout, that it answers (it is expected to
// be running already); Stop on it does nothing. Otherwise it calls Start.
func FromEnv(ctx context.Context, opts Options) (*Server, error) {
	raw := os.Getenv("STRIPE_MOCK_URL")
	if raw == "" {
		return Start(ctx, opts)
	}
	opts = opts.withDefaults()
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("STRIPE_MOCK_URL=%q is not an http URL; set it to the base URL of a running stripe-mock, such as http://127.0.0.1:12111", raw)
	}
	base := strings.TrimRight(raw, "/")
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	if err := Healthy(ctx, base); err != nil {
		return nil, fmt.Errorf("stripe-mock at STRIPE_MOCK_URL=%s is not answering (%v); start it with `go tool stripe-mock -http-port 12111`, or unset STRIPE_MOCK_URL to let onecharge start one", base, err)
	}
	fmt.Fprintf(opts.Log, "onecharge: using stripe-mock at %s (STRIPE_MOCK_URL)\n", base)
	return &Server{URL: base}, nil
}

// External reports whether the server was found at STRIPE_MOCK_URL rather
// than started by us.
func (s *Server) External() bool { return s.cmd == nil }

// PID returns stripe-mock's process id, or 0 for an external server.
func (s *Server) PID() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop sends SIGTERM to stripe-mock's process group, SIGKILL after 2s if
// it is still there, and returns once the process has been reaped. It is
// safe to call more than once and does nothing for an external server.
func (s *Server) Stop() error {
	if s == nil || s.cmd == nil {
		return nil
	}
	s.stopOnce.Do(func() {
		select {
		case <-s.done:
			return // it exited on its own and was reaped
		default:
		}
		pgid := s.cmd.Process.Pid // Setpgid makes the leader's pid the group id
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(killAfter)
		defer t.Stop()
		select {
		case <-s.done:
		case <-t.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-s.done
		}
	})
	return nil
}

// healthClient never reuses connections (a stopped server's idle connection
// would fail the next check) and never goes through a proxy: stripe-mock
// is local.
var healthClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}

// Healthy checks that the Stripe API at baseURL answers
// GET /v1/customers?limit=1 with 200, authenticating with TestSecretKey.
func Healthy(ctx context.Context, baseURL string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(baseURL, "/")+"/v1/customers?limit=1", nil)
	if err != nil {
		return fmt.Errorf("health check of %s: %w", baseURL, err)
	}
	req.Header.Set("Authorization", "Bearer "+TestSecretKey)
	resp, err := healthClient.Do(req)
	if err != nil {
		var ue *url.Error // it repeats the URL we already name
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("health check of %s: %w", baseURL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health check of %s answered %s, want 200 OK", baseURL, resp.Status)
	}
	return nil
}
