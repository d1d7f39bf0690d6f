package specs_test

import (
	"fmt"
	"math/rand/v2"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/faults"
	"github.com/travelbook/onecharge/support/guarantee"
	"github.com/travelbook/onecharge/support/payments"
	"github.com/travelbook/onecharge/support/stack"
)

var _ = Describe("With against without protection", Label("comparison", "testmode", "demo"), func() {
	seed := suiteSeed()

	// Each scenario runs Safe, SDK and Naive under one schedule, each on a
	// stack of its own so that their ledgers cannot mix. The rules match on
	// idempotency-key attempts, which does not depend on request order, so
	// the SDK client (whose own retries sleep 0.5-1s and cannot be shortened)
	// can charge its bookings in parallel and the outcome is still fixed.
	scenarios := []struct {
		name        string
		rule        faults.Rule
		sdkBreaks   bool
		description string
	}{
		{"a blip: the first attempt's response is lost",
			faults.Rule{Fault: faults.DropResponse, Method: "POST", Path: "/v1/payment_intents", KeyAttempts: []int{1}},
			false, "stripe-go's own retry reuses its generated key, so the SDK client survives; Naive resends without a key"},
		{"an outage: three attempts in a row are lost",
			faults.Rule{Fault: faults.DropResponse, Method: "POST", Path: "/v1/payment_intents", KeyAttempts: []int{1, 2, 3}},
			true, "stripe-go gives up after 3 attempts; TravelBook's loop calls again, stripe-go mints a new key: a second charge"},
	}
	for _, sc := range scenarios {
		It(sc.name, Label("slow"), func() {
			reports := map[string]guarantee.Report{}
			run := func(name string, mk func(st *stack.Stack) payments.Client, workers int) {
				st := newStackWith(seed, sc.rule)
				bs := bookings(fmt.Sprintf("cmp_%s_%d", name, len(sc.rule.KeyAttempts)), 4, seed)
				outs := chargeAll(mk(st), bs, workers)
				expect := "hold"
				if name == "naive" || (name == "sdk" && sc.sdkBreaks) {
					expect = "break"
				}
				reports[name] = record(sc.name, expect, st, outs)
				if expect == "hold" {
					Expect(outs).To(ChargeEachBookingExactlyOnce(st.Ledger), name)
				} else {
					Expect(outs).NotTo(ChargeEachBookingExactlyOnce(st.Ledger), name)
				}
			}
			run("safe", func(st *stack.Stack) payments.Client {
				return payments.NewSafe(clientConfig(st, 2*time.Second, clock.Real{}), specPolicy(seed))
			}, 1)
			run("naive", func(st *stack.Stack) payments.Client {
				return payments.NewNaive(clientConfig(st, 2*time.Second, clock.Real{}))
			}, 1)
			run("sdk", func(st *stack.Stack) payments.Client {
				return payments.NewSDK(clientConfig(st, 2*time.Second, clock.Real{}), 2)
			}, 4)
			Expect(reports["safe"].Duplicates).To(Equal(0))
			Expect(reports["naive"].Duplicates).To(BeNumerically(">", 0))
			Expect(reports["naive"].DoubleCharged["eur"]).To(BeNumerically(">", 0))
			GinkgoWriter.Printf("%s: %s\n  safe %d duplicates, sdk %d, naive %d (EUR %.2f double-charged)\n", sc.name, sc.description,
				reports["safe"].Duplicates, reports["sdk"].Duplicates, reports["naive"].Duplicates, float64(reports["naive"].DoubleCharged["eur"])/100)
		})
	}
})

var _ = Describe("The incident replay", Label("incident", "testmode", "demo"), func() {
	seed := suiteSeed()

	// TravelBook's incident: a 15-minute network degradation in which
	// responses were lost and the Python backend retried at once without a
	// key. Bookings arrive over an hour of virtual time at a peak-season rate
	// (one every 30 s on average, EUR 1,200-3,500 each); during the window a
	// third of PaymentIntent responses hang until the client's timeout. The
	// stack's clock follows the virtual arrival times; only the client's
	// timeouts take real time, scaled down to 150 ms.
	const (
		window      = 15 * time.Minute
		windowStart = 20 * time.Minute
		horizon     = time.Hour
		faultRate   = 0.3
	)
	replay := func(client string) (guarantee.Report, []payments.Outcome) {
		st := newStack()
		r := rand.New(rand.NewPCG(uint64(seed), 0x1ec1de47))
		bs := bookings("incident_"+client, 120, seed)
		var mk payments.Client
		cfg := clientConfig(st, 150*time.Millisecond, clock.Real{})
		if client == "safe" {
			mk = subjectUnder(st, 150*time.Millisecond, seed) // the Safe client unless another subject is named
		} else {
			mk = payments.NewNaive(cfg)
		}
		degraded := faults.Schedule{Seed: seed, Rules: []faults.Rule{{Fault: faults.DropResponse, Method: "POST", Path: "/v1/payment_intents",
			Probability: faultRate, Delay: faults.Duration(300 * time.Millisecond)}}}
		start := st.Clock.Now()
		var at time.Duration
		inWindow := false
		outs := make([]payments.Outcome, 0, len(bs))
		for _, b := range bs {
			at += time.Duration(r.ExpFloat64() * float64(30*time.Second))
			if at > horizon {
				break
			}
			st.Clock.Advance(start.Add(at).Sub(st.Clock.Now()))
			if now := at >= windowStart && at < windowStart+window; now != inWindow {
				inWindow = now
				if now {
					Expect(st.Faults.Set(degraded)).To(Succeed())
				} else {
					st.Faults.Clear()
				}
			}
			outs = append(outs, mk.Charge(ctx(), b))
		}
		rep := record("incident replay: 15-minute degradation", map[bool]string{true: "hold", false: "break"}[client == "safe"], st, outs, degraded)
		return rep, outs
	}

	It("double-charges with TravelBook's code and never with the subject (the Safe client by default)", Label("slow", "subject"), func() {
		naive, _ := replay("naive")
		safe, safeOuts := replay("safe")
		expectSubjectBehaved(safeOuts)
		Expect(naive.Duplicates).To(BeNumerically(">", 0), "the replay must reproduce the incident, or it proves nothing")
		Expect(safe.Duplicates).To(Equal(0))
		for _, o := range safeOuts {
			Expect(o.Result).To(Equal(payments.Succeeded), "%s: %s", o.Client, o.Error)
		}
		GinkgoWriter.Printf("incident replay (seed %d): %d bookings; naive %d duplicates, EUR %.2f double-charged; %s %d duplicates\n",
			seed, naive.Bookings, naive.Duplicates, float64(naive.DoubleCharged["eur"])/100, safe.Client, safe.Duplicates)
	})
})
