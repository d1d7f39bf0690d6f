package specs_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/evidence"
	"github.com/travelbook/onecharge/support/faults"
	"github.com/travelbook/onecharge/support/guarantee"
	"github.com/travelbook/onecharge/support/ledger"
	"github.com/travelbook/onecharge/support/payments"
	"github.com/travelbook/onecharge/support/retry"
	"github.com/travelbook/onecharge/support/stack"
)

// suiteSeed is the seed of every random choice in the suite; the Makefile
// passes SEED as ONECHARGE_SEED and every report prints it.
func suiteSeed() int64 {
	n, err := strconv.ParseInt(env("ONECHARGE_SEED", "20261204"), 10, 64)
	if err != nil {
		Fail("ONECHARGE_SEED must be an integer, such as 20261204")
	}
	return n
}

// bookings draws n TravelBook bookings: EUR 1,200-3,500 each, ids unique
// to the spec so that clients sharing a ledger never mix.
func bookings(prefix string, n int, seed int64) []payments.Booking {
	r := rand.New(rand.NewPCG(uint64(seed), 0x0ec4a96e))
	out := make([]payments.Booking, n)
	for i := range out {
		out[i] = payments.Booking{
			Agency:   "ag_" + strconv.Itoa(1+r.IntN(200)),
			ID:       prefix + "_" + strconv.Itoa(i+1),
			Amount:   int64(120000 + r.IntN(230001)),
			Currency: "eur",
		}
	}
	return out
}

// clientConfig points a client at a stack.
func clientConfig(st *stack.Stack, timeout time.Duration, sleeper clock.Sleeper) payments.Config {
	return payments.Config{BaseURL: st.URL, APIKey: testKey, Timeout: timeout, Sleeper: sleeper}
}

// specPolicy is the Safe client's policy in specs: full jitter on
// millisecond bases so that real waits stay short.
func specPolicy(seed int64) retry.Policy {
	return retry.Policy{Kind: retry.FullJitter, Base: 20 * time.Millisecond, Cap: 200 * time.Millisecond, MaxAttempts: 8,
		Rand: retry.NewRand(uint64(seed))}
}

// chargeAll charges every booking with c, `workers` at a time (1 keeps
// the order of requests, and so the seeded draws, reproducible).
func chargeAll(c payments.Client, bs []payments.Booking, workers int) []payments.Outcome {
	out := make([]payments.Outcome, len(bs))
	if workers <= 1 {
		for i, b := range bs {
			out[i] = c.Charge(context.Background(), b)
		}
		return out
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, workers)
	for i, b := range bs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = c.Charge(context.Background(), b)
		}()
	}
	wg.Wait()
	return out
}

// record attaches a client's run to the report and returns its verdict.
func record(scenario, expect string, st *stack.Stack, outs []payments.Outcome, schedule ...faults.Schedule) guarantee.Report {
	objs := ofBookings(ledgerObjects(st.Ledger), outs)
	rep := guarantee.Check(outs, objs)
	sched := st.Faults.Schedule()
	if len(schedule) > 0 {
		sched = schedule[0] // the schedule in force during the run, since cleared
	}
	if sched.Seed == 0 {
		sched.Seed = suiteSeed()
	}
	AddReportEntry(evidence.EntryRun, evidence.Run{
		Scenario: scenario, Client: rep.Client, Target: st.Target, Seed: sched.Seed, Schedule: sched,
		Injected: st.Faults.Counts(), Faults: st.Faults.Injected(), Outcomes: outs, Ledger: objs,
		Report: rep, Expect: expect, StartedAt: time.Now(),
	}, quiet)
	GinkgoWriter.Printf("%s / %s (seed %d): %s\n", scenario, rep.Client, sched.Seed, rep.String())
	return rep
}

// newStackWith starts a stack with a fault schedule already set.
func newStackWith(seed int64, rules ...faults.Rule) *stack.Stack {
	st := newStack()
	Expect(st.Faults.Set(faults.Schedule{Seed: seed, Rules: rules})).To(Succeed())
	return st
}

// ofBookings keeps the objects whose reference is one of the outcomes'
// bookings: in test mode the read-back ledger holds the whole run.
func ofBookings(objs []ledger.Object, outs []payments.Outcome) []ledger.Object {
	want := map[string]bool{}
	for _, o := range outs {
		want[o.Booking.ID] = true
	}
	var keep []ledger.Object
	for _, o := range objs {
		if want[o.Reference] {
			keep = append(keep, o)
		}
	}
	return keep
}

// quiet keeps the bulky evidence out of the terminal (it goes to
// report.json for the audit report); the specs print one line a run.
var quiet = ReportEntryVisibilityNever
