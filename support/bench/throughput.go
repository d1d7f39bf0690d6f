package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/travelbook/onecharge/support/stack"
	"github.com/travelbook/onecharge/support/stripeapi"
	"github.com/travelbook/onecharge/support/stripemock"
)

// Paths driven in each round, in this order (A B C D A B C D ...).
const (
	PathDirect = "direct"
	PathProxy  = "proxy"
	PathStack  = "stack"
	PathReplay = "replay"
)

var pathOrder = []string{PathDirect, PathProxy, PathStack, PathReplay}

// PathRate is one path's throughput over all rounds.
type PathRate struct {
	// What was driven, for the table.
	What string `json:"what"`
	// CreatesPerSec is every successful request over the summed time of
	// the path's phases.
	CreatesPerSec float64   `json:"creates_per_s"`
	OK            int64     `json:"ok"`
	Errors        int64     `json:"errors"`
	FirstError    string    `json:"first_error,omitempty"`
	Seconds       float64   `json:"seconds"`
	PerRound      []float64 `json:"per_round"`
}

// Throughput compares the paths; ratios are of aggregate rates.
type Throughput struct {
	Clients      int      `json:"clients"`
	Rounds       int      `json:"rounds"`
	PhaseSeconds float64  `json:"phase_seconds"`
	Order        []string `json:"order"`
	Direct       PathRate `json:"direct"`
	Proxy        PathRate `json:"proxy"`
	Stack        PathRate `json:"stack"`
	Replay       PathRate `json:"replay"`
	// Ratios of aggregate rates.
	StackRatio  float64 `json:"stack_direct_ratio"`
	ProxyRatio  float64 `json:"proxy_direct_ratio"`
	StackProxy  float64 `json:"stack_proxy_ratio"`
	ReplayRatio float64 `json:"replay_direct_ratio"`
	// Ratios within each round, and their medians: a round's paths ran
	// seconds apart, so a neighbour's burst of load skews one round's
	// ratio rather than the whole run's. The targets are judged on these
	// medians.
	RoundRatios       []float64 `json:"stack_direct_ratio_per_round"`
	ProxyRoundRatios  []float64 `json:"proxy_direct_ratio_per_round"`
	ReplayRoundRatios []float64 `json:"replay_direct_ratio_per_round"`
	StackMedian       float64   `json:"stack_direct_ratio_median"`
	ProxyMedian       float64   `json:"proxy_direct_ratio_median"`
	ReplayMedian      float64   `json:"replay_direct_ratio_median"`
	// LedgerMissing counts creates the stack answered 200 that its
	// ledger did not record (must be 0).
	LedgerMissing int `json:"ledger_missing"`
	// ReplayMisses counts replay-phase answers without
	// Idempotent-Replayed: true (must be 0).
	ReplayMisses int64 `json:"replay_misses"`
	// Profiled is true when a CPU profile of one extra stack phase was
	// written.
	Profiled bool `json:"profiled"`
}

// phase is what one path did in one round.
type phase struct {
	ok, errs, replayed int64
	firstErr           string
	elapsed            time.Duration
}

// request makes the key and form body of a client's nth request.
type request func(client, n int) (key, body string)

// drive runs clients concurrent keep-alive clients against base for d,
// each POSTing /v1/payment_intents as fast as it is answered.
func drive(ctx context.Context, hc *http.Client, base string, clients int, d time.Duration, mk request) phase {
	var (
		mu  sync.Mutex
		tot phase
		wg  sync.WaitGroup
	)
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var p phase
			for n := 0; time.Since(start) < d && ctx.Err() == nil; n++ {
				key, body := mk(c, n)
				replayed, err := post(ctx, hc, base, key, body)
				if err != nil {
					p.errs++
					if p.firstErr == "" {
						p.firstErr = err.Error()
					}
					continue
				}
				p.ok++
				if replayed {
					p.replayed++
				}
			}
			mu.Lock()
			tot.ok += p.ok
			tot.errs += p.errs
			tot.replayed += p.replayed
			if tot.firstErr == "" {
				tot.firstErr = p.firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	tot.elapsed = time.Since(start)
	return tot
}

// post sends one create and drains the answer so the connection is kept.
func post(ctx context.Context, hc *http.Client, base, key, body string) (replayed bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/payment_intents", strings.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+stripemock.TestSecretKey)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if key != "" {
		req.Header.Set(stripeapi.HeaderIdempotencyKey, key)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("%s answered %s", base, resp.Status)
	}
	return resp.Header.Get(stripeapi.HeaderIdempotentReplayed) == "true", nil
}

// createBody is a small PaymentIntent creation with a booking reference.
func createBody(ref string, amount int) string {
	return "amount=" + strconv.Itoa(amount) + "&currency=eur&payment_method_types%5B%5D=card&metadata%5Bbooking_id%5D=" + ref
}

// unique makes a fresh key and booking per request, tagged so that no two
// phases share one.
func unique(tag string) request {
	return func(c, n int) (string, string) {
		id := tag + "-" + strconv.Itoa(c) + "-" + strconv.Itoa(n)
		return id, createBody(id, 1000+n%9000)
	}
}

// repeated sends each client's one key with the same parameters every
// time: after the first, every answer is the idempotency layer's replay.
func repeated(tag string) request {
	return func(c, _ int) (string, string) {
		id := tag + "-" + strconv.Itoa(c)
		return id, createBody(id, 2400)
	}
}

// newLoadClient is a keep-alive client with room for every connection.
func newLoadClient(clients int) *http.Client {
	t := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        4 * clients,
		MaxIdleConnsPerHost: 4 * clients,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: t, Timeout: 10 * time.Second}
}

// startProxy serves a plain httputil.ReverseProxy in front of upstream:
// the reference for what one in-process HTTP hop costs. Its transport is
// tuned like the stack's, so the comparison is of the layers alone.
func startProxy(upstream string) (base string, stop func(), err error) {
	up, err := url.Parse(upstream)
	if err != nil {
		return "", nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 30 * time.Second
	rp := &httputil.ReverseProxy{Transport: t, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(up)
		pr.Out.Host = up.Host
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("cannot listen on loopback for the reference proxy: %w", err)
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func measureThroughput(ctx context.Context, cfg Config, mockURL string) (Throughput, error) {
	tp := Throughput{Clients: cfg.Clients, Rounds: cfg.Rounds, PhaseSeconds: cfg.Phase.Seconds(), Order: pathOrder}
	proxyURL, stopProxy, err := startProxy(mockURL)
	if err != nil {
		return tp, err
	}
	defer stopProxy()
	st, err := stack.Start(stack.Config{Upstream: mockURL})
	if err != nil {
		return tp, err
	}
	defer st.Close()

	clients := map[string]*http.Client{}
	bases := map[string]string{PathDirect: mockURL, PathProxy: proxyURL, PathStack: st.URL, PathReplay: st.URL}
	for _, p := range pathOrder {
		clients[p] = newLoadClient(cfg.Clients)
		defer clients[p].CloseIdleConnections()
	}
	rates := map[string]*PathRate{
		PathDirect: &tp.Direct, PathProxy: &tp.Proxy, PathStack: &tp.Stack, PathReplay: &tp.Replay,
	}
	tp.Direct.What = "stripe-mock, direct"
	tp.Proxy.What = "httputil.ReverseProxy hop"
	tp.Stack.What = "stack, faults off"
	tp.Replay.What = "stack, replays (cache hits)"

	// runPhase drives one path once; the stack starts each phase empty so
	// that every round holds the same number of keys and ledger objects.
	runPhase := func(path, tag string, d time.Duration) (phase, error) {
		mk := unique(tag)
		switch path {
		case PathStack:
			st.Reset()
		case PathReplay:
			st.Reset()
			mk = repeated(tag)
			for c := range cfg.Clients { // the first request executes; time only replays
				key, body := mk(c, 0)
				if _, err := post(ctx, clients[path], bases[path], key, body); err != nil {
					return phase{}, fmt.Errorf("priming the replay phase: %w", err)
				}
			}
		}
		p := drive(ctx, clients[path], bases[path], cfg.Clients, d, mk)
		if path == PathStack {
			if n := len(st.Ledger.Objects()); int64(n) < p.ok {
				tp.LedgerMissing += int(p.ok) - n
			}
		}
		return p, ctx.Err()
	}

	// Warm every path up (connections, stripe-mock's first requests).
	for _, path := range pathOrder {
		if _, err := runPhase(path, "warm-"+path, min(cfg.Phase/2, 500*time.Millisecond)); err != nil {
			return tp, err
		}
	}
	for r := range cfg.Rounds {
		var direct, proxyRate, stackRate, replayRate float64
		for _, path := range pathOrder {
			p, err := runPhase(path, fmt.Sprintf("r%d-%s", r, path), cfg.Phase)
			if err != nil {
				return tp, err
			}
			pr := rates[path]
			pr.OK += p.ok
			pr.Errors += p.errs
			pr.Seconds += p.elapsed.Seconds()
			if pr.FirstError == "" {
				pr.FirstError = p.firstErr
			}
			rate := float64(p.ok) / p.elapsed.Seconds()
			pr.PerRound = append(pr.PerRound, rate)
			switch path {
			case PathDirect:
				direct = rate
			case PathProxy:
				proxyRate = rate
			case PathStack:
				stackRate = rate
			case PathReplay:
				replayRate = rate
				tp.ReplayMisses += p.ok - p.replayed
			}
		}
		tp.RoundRatios = append(tp.RoundRatios, ratio(stackRate, direct))
		tp.ProxyRoundRatios = append(tp.ProxyRoundRatios, ratio(proxyRate, direct))
		tp.ReplayRoundRatios = append(tp.ReplayRoundRatios, ratio(replayRate, direct))
		fmt.Fprintf(cfg.Log, "bench: round %d: direct %.0f, proxy %.0f, stack %.0f, replay %.0f creates/s\n",
			r+1, tp.Direct.PerRound[r], tp.Proxy.PerRound[r], tp.Stack.PerRound[r], tp.Replay.PerRound[r])
	}
	for _, pr := range rates {
		if pr.Seconds > 0 {
			pr.CreatesPerSec = float64(pr.OK) / pr.Seconds
		}
	}
	tp.StackRatio = ratio(tp.Stack.CreatesPerSec, tp.Direct.CreatesPerSec)
	tp.ProxyRatio = ratio(tp.Proxy.CreatesPerSec, tp.Direct.CreatesPerSec)
	tp.StackProxy = ratio(tp.Stack.CreatesPerSec, tp.Proxy.CreatesPerSec)
	tp.ReplayRatio = ratio(tp.Replay.CreatesPerSec, tp.Direct.CreatesPerSec)
	tp.StackMedian = median(tp.RoundRatios)
	tp.ProxyMedian = median(tp.ProxyRoundRatios)
	tp.ReplayMedian = median(tp.ReplayRoundRatios)

	if cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
			return tp, fmt.Errorf("cannot start the CPU profile: %w", err)
		}
		_, err := runPhase(PathStack, "profile", 2*cfg.Phase)
		pprof.StopCPUProfile()
		if err != nil {
			return tp, err
		}
		tp.Profiled = true
	}
	return tp, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// median of xs (0 for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
