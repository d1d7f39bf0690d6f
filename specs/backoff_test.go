package specs_test

import (
	"sort"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/evidence"
	"github.com/travelbook/onecharge/support/faults"
	"github.com/travelbook/onecharge/support/payments"
	"github.com/travelbook/onecharge/support/retry"
)

var _ = Describe("Backoff timing", Label("backoff", "testmode"), func() {
	seed := suiteSeed()

	// A 503 on the first nine attempts of the key: the Safe client retries
	// nine times, and the virtual clock records every wait without sleeping.
	DescribeTable("each policy's schedule stays within its envelope, on a virtual clock",
		func(kind retry.Kind) {
			st := newStackWith(seed, faults.Rule{Fault: faults.Unavailable, Path: "/v1/payment_intents", KeyAttempts: []int{1, 2, 3, 4, 5, 6, 7, 8, 9}})
			vclock := clock.NewVirtual(time.Date(2025, 9, 9, 10, 50, 0, 0, time.UTC))
			base, cap := 500*time.Millisecond, 8*time.Second
			policy := retry.Policy{Kind: kind, Base: base, Cap: cap, MaxAttempts: 10, Rand: retry.NewRand(uint64(seed))}
			cfg := payments.Config{BaseURL: st.URL, APIKey: testKey, Timeout: 2 * time.Second, Clock: vclock, Sleeper: vclock}
			out := payments.NewSafe(cfg, policy).Charge(ctx(), bookings("backoff_"+string(kind), 1, seed)[0])
			Expect(out.Result).To(Equal(payments.Succeeded), out.Error)
			Expect(out.Attempts).To(HaveLen(10))

			sleeps := vclock.Sleeps()
			Expect(sleeps).To(HaveLen(9))
			ev := evidence.Backoff{Policy: string(kind), Base: base, Cap: cap, Seed: seed, Delays: sleeps}
			prev := base
			for i, d := range sleeps {
				lo, hi := retry.Envelope(kind, base, cap, i+1, prev)
				Expect(d).To(BeNumerically(">=", lo), "retry %d of %s", i+1, kind)
				Expect(d).To(BeNumerically("<=", hi), "retry %d of %s", i+1, kind)
				Expect(out.Attempts[i+1].Waited).To(Equal(d))
				ev.Lo, ev.Hi = append(ev.Lo, lo), append(ev.Hi, hi)
				prev = d
			}
			if kind != retry.None {
				distinct := map[time.Duration]bool{}
				for _, d := range sleeps {
					distinct[d] = true
				}
				Expect(len(distinct)).To(BeNumerically(">", 3), "jitter must spread the delays")
			}
			AddReportEntry(evidence.EntryBackoff, ev, quiet)
		},
		Entry("none (TravelBook's immediate retry)", retry.None),
		Entry("full jitter", retry.FullJitter),
		Entry("equal jitter", retry.EqualJitter),
		Entry("decorrelated jitter", retry.DecorrelatedJitter),
	)

	It("the server sees the client's waits: gaps between attempts on millisecond bases", func() {
		st := newStackWith(seed, faults.Rule{Fault: faults.Unavailable, Path: "/v1/payment_intents", KeyAttempts: []int{1, 2, 3, 4}})
		base, cap := 30*time.Millisecond, 240*time.Millisecond
		policy := retry.Policy{Kind: retry.EqualJitter, Base: base, Cap: cap, MaxAttempts: 6, Rand: retry.NewRand(uint64(seed))}
		out := payments.NewSafe(clientConfig(st, 2*time.Second, clock.Real{}), policy).Charge(ctx(), bookings("gaps", 1, seed)[0])
		Expect(out.Result).To(Equal(payments.Succeeded), out.Error)
		Expect(out.Attempts).To(HaveLen(5))

		// The server's view: the four injected 503s, then the PaymentIntent.
		seen := []time.Time{}
		for _, inj := range st.Faults.Injected() {
			seen = append(seen, inj.At)
		}
		seen = append(seen, st.Ledger.PaymentIntents(out.Booking.ID)[0].CreatedAt)
		Expect(sort.SliceIsSorted(seen, func(i, j int) bool { return seen[i].Before(seen[j]) })).To(BeTrue())
		ev := evidence.Backoff{Policy: string(retry.EqualJitter) + " (observed)", Base: base, Cap: cap, Seed: seed}
		for i := 1; i < len(seen); i++ {
			gap := seen[i].Sub(seen[i-1])
			waited := out.Attempts[i].Waited
			lo, hi := retry.Envelope(retry.EqualJitter, base, cap, i, 0)
			Expect(waited).To(BeNumerically(">=", lo))
			Expect(waited).To(BeNumerically("<=", hi))
			// The server cannot see a retry before the client's wait is over.
			Expect(gap).To(BeNumerically(">=", waited), "gap %d", i)
			ev.Delays, ev.Observed = append(ev.Delays, waited), append(ev.Observed, gap)
			ev.Lo, ev.Hi = append(ev.Lo, lo), append(ev.Hi, hi)
		}
		AddReportEntry(evidence.EntryBackoff, ev, quiet)
	})
})
