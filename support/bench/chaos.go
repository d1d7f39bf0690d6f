package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/travelbook/onecharge/support/faults"
	"github.com/travelbook/onecharge/support/guarantee"
	"github.com/travelbook/onecharge/support/payments"
	"github.com/travelbook/onecharge/support/retry"
	"github.com/travelbook/onecharge/support/stack"
	"github.com/travelbook/onecharge/support/stripemock"
)

// Mix is the share of create requests each fault kind hits under chaos;
// they add up to 30%. Network faults close at once (no hold), so a run's
// time is spent charging, not waiting out timeouts.
var Mix = []struct {
	Kind  faults.Kind
	Share float64
}{
	{faults.DropResponse, 0.10},
	{faults.ResetAfter, 0.05},
	{faults.RateLimit, 0.05},
	{faults.Unavailable, 0.05},
	{faults.LockTimeout, 0.05},
}

// MixSchedule turns Mix into rules. The injector takes the first rule
// that fires, drawing each rule's probability only for requests no
// earlier rule took, so rule k's probability is its share divided by what
// the earlier rules left: that makes each kind's marginal share exactly
// its Mix share.
func MixSchedule(seed int64) faults.Schedule {
	s := faults.Schedule{Seed: seed}
	left := 1.0
	for _, m := range Mix {
		s.Rules = append(s.Rules, faults.Rule{
			Fault: m.Kind, Method: http.MethodPost, Path: "/v1/payment_intents", Probability: m.Share / left,
		})
		left -= m.Share
	}
	return s
}

// mixRate is the share of requests Mix hits in all.
func mixRate() float64 {
	t := 0.0
	for _, m := range Mix {
		t += m.Share
	}
	return t
}

// ClientRun is one client's chaos run.
type ClientRun struct {
	Client         string                  `json:"client"`
	Bookings       int                     `json:"bookings"`
	Workers        int                     `json:"workers"`
	WallSeconds    float64                 `json:"wall_seconds"`
	BookingsPerSec float64                 `json:"bookings_per_s"`
	Attempts       int                     `json:"attempts"`
	PaymentIntents int                     `json:"payment_intents"`
	Duplicates     int                     `json:"duplicates"`
	DuplicateRate  float64                 `json:"duplicate_rate"`
	DoubleCharged  map[string]int64        `json:"double_charged"`
	Results        map[payments.Result]int `json:"results"`
	Faults         map[faults.Kind]int     `json:"faults_injected"`
	// Requests is the create requests the stack received. It exceeds
	// Attempts, the requests the client's own trace saw, by
	// HiddenRetries: net/http's Transport resends a request whose
	// keep-alive connection closed before any answer when the request is
	// replayable, and a POST carrying an Idempotency-Key counts as such.
	// (An attempt that times out before the stack reads it counts the
	// other way, so on a loaded machine the difference can shrink.)
	Requests       int                   `json:"create_requests"`
	HiddenRetries  int                   `json:"hidden_transport_retries"`
	Violations     []guarantee.Violation `json:"violations"`
	ViolationKinds map[string]int        `json:"violation_kinds"`
}

// Chaos is the Safe and Naive clients under one seeded schedule.
type Chaos struct {
	Seed            int64           `json:"seed"`
	Schedule        faults.Schedule `json:"schedule"`
	TargetFaultRate float64         `json:"target_fault_rate"`
	// FaultRate is the share of the Safe run's create requests that
	// drew a fault.
	FaultRate float64     `json:"fault_rate"`
	Retry     RetryConfig `json:"safe_retry"`
	Safe      ClientRun   `json:"safe"`
	Naive     ClientRun   `json:"naive"`
}

// RetryConfig is the Safe client's retry policy and per-attempt timeout
// under chaos.
type RetryConfig struct {
	Kind        retry.Kind      `json:"kind"`
	Base        faults.Duration `json:"base"`
	Cap         faults.Duration `json:"cap"`
	MaxAttempts int             `json:"max_attempts"`
	Timeout     faults.Duration `json:"timeout"`
}

// safeRetry retries on a millisecond scale: the point is the count of
// retries and the keys they carry, not realistic waits. Ten attempts
// under 30% faults leave about one booking in 170,000 unfinished.
var safeRetry = RetryConfig{Kind: retry.FullJitter, Base: faults.Duration(2 * time.Millisecond), Cap: faults.Duration(50 * time.Millisecond), MaxAttempts: 10, Timeout: faults.Duration(time.Second)}

func runChaos(ctx context.Context, cfg Config, mockURL string) (Chaos, error) {
	ch := Chaos{Seed: cfg.Seed, Schedule: MixSchedule(cfg.Seed), TargetFaultRate: mixRate(), Retry: safeRetry}
	st, err := stack.New(stack.Config{Upstream: mockURL})
	if err != nil {
		return ch, err
	}
	// The stack is served behind a counter of the create requests that
	// really arrive: a client's trace misses the retries that net/http
	// makes by itself (see ClientRun.HiddenRetries).
	wire := &counter{next: st.Handler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ch, fmt.Errorf("cannot listen on loopback for the chaos stack: %w", err)
	}
	srv := &http.Server{Handler: wire, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	pc := payments.Config{BaseURL: base, APIKey: stripemock.TestSecretKey, Timeout: safeRetry.Timeout.D()}
	safe := payments.NewSafe(pc, retry.Policy{
		Kind: safeRetry.Kind, Base: safeRetry.Base.D(), Cap: safeRetry.Cap.D(), MaxAttempts: safeRetry.MaxAttempts,
		Rand: retry.NewRand(uint64(cfg.Seed)),
	})
	if ch.Safe, err = charge(ctx, st, wire, ch.Schedule, safe, bookings("safe", cfg.Bookings, cfg.Seed), cfg.Workers); err != nil {
		return ch, err
	}
	if ch.Safe.Requests > 0 {
		total := 0
		for _, n := range ch.Safe.Faults {
			total += n
		}
		ch.FaultRate = float64(total) / float64(ch.Safe.Requests)
	}
	fmt.Fprintf(cfg.Log, "bench: safe: %d bookings in %.1fs, %d duplicates\n", ch.Safe.Bookings, ch.Safe.WallSeconds, ch.Safe.Duplicates)
	naive := payments.NewNaive(pc)
	if ch.Naive, err = charge(ctx, st, wire, ch.Schedule, naive, bookings("naive", cfg.NaiveBookings, cfg.Seed), cfg.Workers); err != nil {
		return ch, err
	}
	fmt.Fprintf(cfg.Log, "bench: naive: %d bookings in %.1fs, %d duplicates\n", ch.Naive.Bookings, ch.Naive.WallSeconds, ch.Naive.Duplicates)
	return ch, nil
}

// bookings makes n bookings with seeded amounts (EUR 1,200-3,500, as
// TravelBook's), their ids tagged by client so runs never share one.
func bookings(tag string, n int, seed int64) []payments.Booking {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x626f6f6b696e6773))
	bs := make([]payments.Booking, n)
	for i := range bs {
		bs[i] = payments.Booking{
			Agency:   "agency-bench",
			ID:       fmt.Sprintf("%s-bk-%05d", tag, i+1),
			Amount:   120_000 + rng.Int64N(230_001),
			Currency: "eur",
		}
	}
	return bs
}

// charge runs every booking through c with workers in parallel, on a
// stack reset to the schedule, and holds the outcomes against the ledger.
func charge(ctx context.Context, st *stack.Stack, wire *counter, sched faults.Schedule, c payments.Client, bs []payments.Booking, workers int) (ClientRun, error) {
	st.Reset()
	wire.creates.Store(0)
	if err := st.Faults.Set(sched); err != nil {
		return ClientRun{}, err
	}
	outcomes := make([]payments.Outcome, len(bs))
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bs) || ctx.Err() != nil {
					return
				}
				outcomes[i] = c.Charge(ctx, bs[i])
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if err := ctx.Err(); err != nil {
		return ClientRun{}, err
	}
	counts := st.Faults.Counts()
	st.Faults.Clear()
	rep := guarantee.Check(outcomes, st.Ledger.Objects())
	run := ClientRun{
		Client: c.Name(), Bookings: len(bs), Workers: workers,
		WallSeconds: wall.Seconds(), BookingsPerSec: float64(len(bs)) / wall.Seconds(),
		Attempts: rep.Attempts, PaymentIntents: rep.PaymentIntents, Duplicates: rep.Duplicates,
		DoubleCharged: rep.DoubleCharged, Results: rep.Results, Faults: counts,
		Violations: rep.Violations, ViolationKinds: map[string]int{},
	}
	if len(bs) > 0 {
		run.DuplicateRate = float64(rep.Duplicates) / float64(len(bs))
	}
	for _, v := range rep.Violations {
		run.ViolationKinds[v.Kind]++
	}
	run.Requests = int(wire.creates.Load())
	run.HiddenRetries = run.Requests - rep.Attempts
	// A few examples are enough in the JSON; the kinds count them all.
	if len(run.Violations) > 20 {
		run.Violations = run.Violations[:20]
	}
	return run, nil
}

// counter counts the create requests that reach the stack.
type counter struct {
	next    http.Handler
	creates atomic.Int64
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == "/v1/payment_intents" {
		c.creates.Add(1)
	}
	c.next.ServeHTTP(w, r)
}
