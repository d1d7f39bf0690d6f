package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteTable prints r for people: one block per measurement, then the
// targets with PASS, MISS (a performance target not met on this run) or
// FAIL (a correctness target broken).
func WriteTable(w io.Writer, r *Result) error {
	m := r.Machine
	mode := "full"
	if r.Quick {
		mode = "quick"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "onecharge bench (%s run, seed %d, %.0fs)\n", mode, r.Seed, r.WallSeconds)
	fmt.Fprintf(&b, "machine: %d × %s, GOMAXPROCS %d, %s %s/%s; load average %s before, %s after\n\n",
		m.CPUs, m.CPUModel, m.GOMAXPROCS, m.GoVersion, m.OS, m.Arch, m.LoadBefore, m.LoadAfter)

	tp := r.Throughput
	fmt.Fprintf(&b, "Throughput: PaymentIntent creates, %d keep-alive clients, %d interleaved rounds × %.1fs per path\n", tp.Clients, tp.Rounds, tp.PhaseSeconds)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tcreates/s\tvs direct (overall)\terrors\tper round\t")
	for _, p := range []PathRate{tp.Direct, tp.Proxy, tp.Stack, tp.Replay} {
		rounds := make([]string, len(p.PerRound))
		for i, x := range p.PerRound {
			rounds[i] = fmt.Sprintf("%.0f", x)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%d\t%s\t\n", p.What, p.CreatesPerSec, ratio(p.CreatesPerSec, tp.Direct.CreatesPerSec), p.Errors, strings.Join(rounds, " "))
	}
	tw.Flush()
	fmt.Fprintf(&b, "ratios to direct, per round (median): proxy %s (%.2f); stack %s (%.2f); replay %s (%.2f); stack/proxy overall %.2f\n\n",
		joinFloats(tp.ProxyRoundRatios), tp.ProxyMedian, joinFloats(tp.RoundRatios), tp.StackMedian,
		joinFloats(tp.ReplayRoundRatios), tp.ReplayMedian, tp.StackProxy)

	ic := r.Idempotency
	fmt.Fprintf(&b, "Idempotency layer alone (%s)\n", ic.Command)
	switch {
	case ic.Skipped != "":
		fmt.Fprintf(&b, "  Go benchmarks skipped: %s\n", ic.Skipped)
	default:
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "benchmark\tns/op\tB/op\tallocs/op\tother\t")
		for _, g := range ic.Benchmarks {
			var other []string
			for _, k := range sortedKeys(g.Metrics) {
				other = append(other, fmt.Sprintf("%.0f %s", g.Metrics[k], k))
			}
			fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%s\t\n", g.Name, g.NsPerOp, g.BytesPerOp, g.AllocsPerOp, strings.Join(other, " "))
		}
		tw.Flush()
		if ic.Error != "" {
			fmt.Fprintf(&b, "  error: %s\n", ic.Error)
		}
	}
	mem := ic.Memory
	fmt.Fprintf(&b, "%d keys over %d windows (virtual clock): %d live (at most %d), heap in use %.1f MB = %.0f B per live key (bound %d + %d body = %.1f MB), %.1fs\n\n",
		mem.Keys, mem.Windows, mem.LiveKeys, mem.MaxLive, float64(mem.HeapInuse)/1e6, mem.BytesPerLiveKey, BytesPerLiveKey, mem.BodyBytes, float64(mem.Bound)/1e6, mem.Seconds)

	ch := r.Chaos
	fmt.Fprintf(&b, "Chaos: seed %d, %.0f%% of creates faulted (target %.0f%%): %s\n", ch.Seed, 100*ch.FaultRate, 100*ch.TargetFaultRate, mixText())
	fmt.Fprintf(&b, "Safe retries: %s, base %s, cap %s, %d attempts, %s timeout per attempt\n", ch.Retry.Kind, ch.Retry.Base, ch.Retry.Cap, ch.Retry.MaxAttempts, ch.Retry.Timeout)
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "client\tbookings\tworkers\twall\tbookings/s\tattempts\twire requests\tPaymentIntents\tduplicates\tduplicate rate\tdouble-charged\tresults\t")
	for _, c := range []ClientRun{ch.Safe, ch.Naive} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1fs\t%.0f\t%d\t%d\t%d\t%d\t%.2f%%\t%s\t%s\t\n", c.Client, c.Bookings, c.Workers, c.WallSeconds, c.BookingsPerSec,
			c.Attempts, c.Requests, c.PaymentIntents, c.Duplicates, 100*c.DuplicateRate, money(c.DoubleCharged), results(c))
	}
	tw.Flush()
	b.WriteString("\nTargets\n")
	for _, t := range r.Targets {
		verdict := "PASS"
		switch {
		case t.Skipped:
			verdict = "SKIP"
		case !t.Pass && t.Kind == Performance:
			verdict = "MISS"
		case !t.Pass:
			verdict = "FAIL"
		}
		fmt.Fprintf(&b, "  %-4s  %s: %s %s %s\n", verdict, t.Name, num(t.Value), t.Op, num(t.Threshold))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mixText() string {
	parts := make([]string, len(Mix))
	for i, m := range Mix {
		parts[i] = fmt.Sprintf("%s %.0f%%", m.Kind, 100*m.Share)
	}
	return strings.Join(parts, ", ")
}

func results(c ClientRun) string {
	var parts []string
	for _, k := range sortedKeys(c.Results) {
		parts = append(parts, fmt.Sprintf("%s %d", k, c.Results[k]))
	}
	return strings.Join(parts, ", ")
}

func money(m map[string]int64) string {
	var parts []string
	for _, cur := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %.2f", strings.ToUpper(cur), float64(m[cur])/100))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func num(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.3g", v)
}

func joinFloats(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(s, " ")
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
