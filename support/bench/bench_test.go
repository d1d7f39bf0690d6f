package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestQuickRun runs the smoke mode end to end against a real stripe-mock.
// It checks what a run must get right whatever the machine's speed: no
// duplicate for the Safe client, duplicates for the Naive one (the chaos
// bites), every rate and ratio computed, and bench.json written and
// readable. It asserts no rate: the machine is shared.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts stripe-mock and drives it for a few seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const seed = 20261204
	res, err := Run(ctx, Config{Seed: seed, Quick: true})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	defer func() {
		if t.Failed() {
			var table bytes.Buffer
			_ = WriteTable(&table, res)
			t.Logf("the run:\n%s\nsafe violations: %+v", table.String(), res.Chaos.Safe.Violations)
		}
	}()

	ch := res.Chaos
	if ch.Seed != seed || ch.Schedule.Seed != seed {
		t.Errorf("chaos seed %d, schedule seed %d, want %d", ch.Seed, ch.Schedule.Seed, seed)
	}
	if ch.Safe.Bookings != 300 || ch.Safe.Duplicates != 0 || len(ch.Safe.Violations) != 0 {
		t.Errorf("safe: %d bookings, %d duplicates, violations %+v; want 300, 0, none", ch.Safe.Bookings, ch.Safe.Duplicates, ch.Safe.Violations)
	}
	if ch.Safe.PaymentIntents != ch.Safe.Bookings {
		t.Errorf("safe: %d PaymentIntents for %d bookings", ch.Safe.PaymentIntents, ch.Safe.Bookings)
	}
	// 150 bookings with ~15% of requests lost after executing: no
	// duplicate at all would mean the faults never reached the client.
	if ch.Naive.Bookings != 150 || ch.Naive.Duplicates == 0 {
		t.Errorf("naive: %d bookings, %d duplicates; want 150 and some duplicates", ch.Naive.Bookings, ch.Naive.Duplicates)
	}
	// Requests may trail Attempts on a loaded machine (an attempt that
	// timed out before the stack read it), so only its presence is checked.
	if ch.FaultRate <= 0 || ch.Safe.Requests == 0 {
		t.Errorf("fault rate %v over %d wire requests and %d attempts", ch.FaultRate, ch.Safe.Requests, ch.Safe.Attempts)
	}

	tp := res.Throughput
	for name, v := range map[string]float64{
		"direct": tp.Direct.CreatesPerSec, "proxy": tp.Proxy.CreatesPerSec, "stack": tp.Stack.CreatesPerSec, "replay": tp.Replay.CreatesPerSec,
		"stack/direct": tp.StackRatio, "stack median": tp.StackMedian, "replay median": tp.ReplayMedian, "proxy/direct": tp.ProxyRatio, "replay/direct": tp.ReplayRatio, "stack/proxy": tp.StackProxy,
	} {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s = %v, want a positive rate", name, v)
		}
	}
	if len(tp.RoundRatios) != tp.Rounds || len(tp.Stack.PerRound) != tp.Rounds {
		t.Errorf("%d rounds but %d ratios and %d stack rates", tp.Rounds, len(tp.RoundRatios), len(tp.Stack.PerRound))
	}
	if tp.LedgerMissing != 0 || tp.ReplayMisses != 0 {
		t.Errorf("ledger missed %d creates, %d replays were executed", tp.LedgerMissing, tp.ReplayMisses)
	}

	mem := res.Idempotency.Memory
	if mem.LiveKeys == 0 || mem.LiveKeys > mem.MaxLive {
		t.Errorf("memory check: %d live keys, want 1..%d (pruning)", mem.LiveKeys, mem.MaxLive)
	}
	if res.Idempotency.Skipped == "" {
		t.Error("a quick run should skip the Go benchmarks")
	}
	if !res.Pass {
		t.Errorf("a correctness target failed: %+v", res.Targets)
	}

	dir := t.TempDir()
	path, err := WriteJSON(filepath.Join(dir, "reports"), res)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatalf("bench.json does not read back: %v", err)
	}
	if back.Machine.CPUs == 0 || back.Machine.GoVersion == "" || len(back.Targets) != len(res.Targets) || back.Throughput.StackRatio != tp.StackRatio {
		t.Errorf("bench.json lost fields: machine %+v, %d targets, ratio %v", back.Machine, len(back.Targets), back.Throughput.StackRatio)
	}

	var table bytes.Buffer
	if err := WriteTable(&table, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"seed " + strconv.Itoa(seed), "httputil.ReverseProxy hop", "safe", "naive", "Targets"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

func TestMixScheduleHitsEachKindAtItsShare(t *testing.T) {
	s := MixSchedule(7)
	if err := s.Validate(); err != nil {
		t.Fatalf("schedule does not validate: %v", err)
	}
	if len(s.Rules) != len(Mix) {
		t.Fatalf("%d rules for %d kinds", len(s.Rules), len(Mix))
	}
	// The injector takes the first rule that fires, so rule k fires with
	// its probability times the chance that no earlier rule did.
	left, total := 1.0, 0.0
	for i, r := range s.Rules {
		marginal := left * r.Probability
		if math.Abs(marginal-Mix[i].Share) > 1e-9 || r.Fault != Mix[i].Kind {
			t.Errorf("rule %d: %s hits %.4f of requests, want %s at %.4f", i, r.Fault, marginal, Mix[i].Kind, Mix[i].Share)
		}
		left *= 1 - r.Probability
		total += marginal
	}
	if math.Abs(total-0.30) > 1e-9 {
		t.Errorf("faults hit %.4f of requests, want 0.30", total)
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/travelbook/onecharge/support/idempotency
cpu: AMD EPYC
BenchmarkFirstRequest-2    	  154922	      7759 ns/op	    1550 B/op	      26 allocs/op
BenchmarkReplay-2          	  212601	      5634 ns/op	    1200 B/op	      20 allocs/op
BenchmarkBytesPerStoredKey-2   	       2	 708789241 ns/op	       493.0 B/key	190810704 B/op	 2700587 allocs/op
BenchmarkBroken-2 notanumber ns/op
PASS
ok  	github.com/travelbook/onecharge/support/idempotency	6.1s
`
	got := ParseGoBench(strings.NewReader(out))
	if len(got) != 3 {
		t.Fatalf("parsed %d benchmarks, want 3: %+v", len(got), got)
	}
	first := got[0]
	if first.Name != "FirstRequest" || first.Iterations != 154922 || first.NsPerOp != 7759 || first.BytesPerOp != 1550 || first.AllocsPerOp != 26 {
		t.Errorf("first: %+v", first)
	}
	keys := got[2]
	if keys.Name != "BytesPerStoredKey" || keys.Metrics["B/key"] != 493 || keys.AllocsPerOp != 2700587 {
		t.Errorf("bytes per key: %+v", keys)
	}
}

func TestTargetsJudgeBothWays(t *testing.T) {
	for _, tc := range []struct {
		value, threshold float64
		op               string
		pass             bool
	}{
		{0.70, 0.69, ">=", true},
		{0.68, 0.69, ">=", false},
		{900, 1119, "<=", true},
		{1200, 1119, "<=", false},
		{0, 0, "==", true},
		{1, 0, "==", false},
	} {
		if got := target("t", Performance, tc.value, tc.op, tc.threshold, "").Pass; got != tc.pass {
			t.Errorf("%v %s %v: pass %v, want %v", tc.value, tc.op, tc.threshold, got, tc.pass)
		}
	}
}
