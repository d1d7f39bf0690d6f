package specs_test

import (
	"fmt"
	"math/rand/v2"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/faults"
	"github.com/travelbook/onecharge/support/payments"
	"github.com/travelbook/onecharge/support/retry"
)

var _ = Describe("Single charge under faults", Label("single-charge"), func() {
	seed := suiteSeed()

	Describe("key reuse", Label("testmode"), func() {
		It("the same key gives the same PaymentIntent, replayed: one charge", func() {
			st := newStack()
			b := bookings("reuse_same", 1, seed)
			safe := payments.NewSafe(clientConfig(st, 2*time.Second, clock.Real{}), specPolicy(seed))
			outs := []payments.Outcome{safe.Charge(ctx(), b[0]), safe.Charge(ctx(), b[0])}
			Expect(outs[1].PaymentIntent).To(Equal(outs[0].PaymentIntent))
			Expect(outs[1].Attempts[0].Replayed).To(BeTrue())
			Expect(outs[1].Keys()).To(Equal(outs[0].Keys()))
			Expect(outs[:1]).To(ChargeEachBookingExactlyOnce(st.Ledger))
			record("key reuse: same key", "hold", st, outs[:1])
		})

		It("a new key for the same booking gives a second PaymentIntent: a double charge", func() {
			st := newStack()
			b := bookings("reuse_new", 1, seed)
			sc := sdk(st.URL, 0, 2*time.Second)
			first, err := sc.PaymentIntents.New(piParams(b[0].ID, b[0].Amount, "key-A"))
			Expect(err).NotTo(HaveOccurred())
			second, err := sc.PaymentIntents.New(piParams(b[0].ID, b[0].Amount, "key-B"))
			Expect(err).NotTo(HaveOccurred())
			Expect(second.ID).NotTo(Equal(first.ID))
			outs := []payments.Outcome{{Client: "new-key", Booking: b[0], Result: payments.Succeeded, PaymentIntent: second.ID,
				Attempts: []payments.Attempt{{N: 1, Key: "key-A", PaymentIntent: first.ID}, {N: 2, Key: "key-B", PaymentIntent: second.ID}}}}
			Expect(outs).NotTo(ChargeEachBookingExactlyOnce(st.Ledger))
			Expect(st.Ledger.DoubleCharged()).To(HaveKeyWithValue("eur", b[0].Amount))
			record("key reuse: new key", "break", st, outs)
		})
	})

	// Each fault kind hits the first n attempts of every key; the subject
	// (the Safe client unless ONECHARGE_SUBJECT_CMD, ONECHARGE_SUBJECT_URL
	// or ONECHARGE_SUBJECT names another) must leave exactly one
	// PaymentIntent and know its outcome.
	Describe("retry simulation: every fault kind at each attempt position", func() {
		var entries []TableEntry
		for _, c := range retryCases {
			for n := 1; n <= 3; n++ {
				name := fmt.Sprintf("%s (delay %v) on the first %d attempt(s)", c.kind, c.delay, n)
				if c.kind.Inside() {
					entries = append(entries, Entry(name, c, n)) // needs the emulator: Stripe's own layer cannot be faulted inside
				} else {
					entries = append(entries, Entry(name, Label("testmode"), c, n))
				}
			}
		}
		DescribeTable("leaves exactly one PaymentIntent and a known outcome", Label("subject"),
			func(c faultCase, n int) {
				positions := make([]int, n)
				for i := range positions {
					positions[i] = i + 1
				}
				st := newStackWith(seed, faults.Rule{Fault: c.kind, Method: "POST", Path: "/v1/payment_intents", KeyAttempts: positions, Delay: faults.Duration(c.delay)})
				bs := bookings(fmt.Sprintf("sim_%s_%d_%d", c.kind, c.delay.Milliseconds(), n), 2, seed)
				sub := subjectUnder(st, 150*time.Millisecond, seed)
				outs := chargeAll(sub, bs, 1)
				// Evidence first, so that a failing subject's run is in the report.
				record("retry simulation: "+string(c.kind), "hold", st, outs)
				expectSubjectBehaved(outs)
				Expect(outs).To(ChargeEachBookingExactlyOnce(st.Ledger), "subject %s", sub.Name())
				for _, o := range outs {
					Expect(o.Result).To(Equal(c.want), "subject %s, booking %s: %s", sub.Name(), o.Booking.ID, o.Error)
					// Read from the stack, so that it holds for subjects
					// that report no attempts of their own.
					Expect(stackKeys(st, o.Booking.ID)).To(HaveLen(1), "one key for every attempt of booking %s", o.Booking.ID)
				}
				Expect(st.Faults.Counts()[c.kind]).To(BeNumerically(">=", 1))
			}, entries)

		It("the Naive client fails the same matcher under the same fault", Label("testmode"), func() {
			st := newStackWith(seed, faults.Rule{Fault: faults.DropResponse, Method: "POST", Path: "/v1/payment_intents", KeyAttempts: []int{1}, Count: 1})
			outs := chargeAll(payments.NewNaive(clientConfig(st, 150*time.Millisecond, clock.Real{})), bookings("sim_naive", 2, seed), 1)
			Expect(outs).NotTo(ChargeEachBookingExactlyOnce(st.Ledger))
			Expect(st.Ledger.Duplicates()).To(HaveLen(1))
			record("retry simulation: drop_response", "break", st, outs)
		})
	})

	Describe("key collision", Label("testmode"), func() {
		It("reusing a booking's key with another amount is a typed collision, not retried, and recorded", func() {
			st := newStack()
			b := bookings("collide", 1, seed)[0]
			safe := payments.NewSafe(clientConfig(st, 2*time.Second, clock.Real{}), specPolicy(seed))
			first := safe.Charge(ctx(), b)
			Expect(first.Result).To(Equal(payments.Succeeded))
			changed := b
			changed.Amount += 50000
			second := safe.Charge(ctx(), changed)
			Expect(second.Result).To(Equal(payments.Collision))
			Expect(second.Attempts).To(HaveLen(1), "a collision is never retried")
			Expect(second.Keys()).To(Equal(first.Keys()), "and never retried under a new key")
			Expect(retry.IsCollision(second.Err)).To(BeTrue())
			Expect(second.Attempts[0].Status).To(Equal(400))
			Expect(second.Error).To(ContainSubstring("Keys for idempotent requests can only be used with the same parameters"))
			Expect(st.Ledger.PaymentIntents(b.ID)).To(HaveLen(1))
			record("key collision", "hold", st, []payments.Outcome{first})
			AddReportEntry("onecharge.collision", second, quiet)
		})
	})

	Describe("concurrency", func() {
		It("50 concurrent submissions of one booking (a double-click storm) create one PaymentIntent", func() {
			st := newStackWith(seed, faults.Rule{Fault: faults.Slow, Path: "/v1/payment_intents", Delay: faults.Duration(400 * time.Millisecond), Count: 1})
			b := bookings("storm", 1, seed)[0]
			storm := make([]payments.Booking, 50)
			for i := range storm {
				storm[i] = b
			}
			policy := specPolicy(seed)
			policy.MaxAttempts = 20
			policy.Rand = nil // each goroutine's Safe draws from its own source below
			outs := make([]payments.Outcome, 0, 50)
			done := make(chan payments.Outcome, 50)
			for i := range storm {
				p := policy
				p.Rand = rand.New(rand.NewPCG(uint64(seed), uint64(i)))
				safe := payments.NewSafe(clientConfig(st, 2*time.Second, clock.Real{}), p)
				go func() { defer GinkgoRecover(); done <- safe.Charge(ctx(), storm[i]) }()
			}
			for range storm {
				outs = append(outs, <-done)
			}
			Expect(st.Ledger.PaymentIntents(b.ID)).To(HaveLen(1))
			conflicts := 0
			for _, o := range outs {
				Expect(o.Result).To(Equal(payments.Succeeded), o.Error)
				Expect(o.PaymentIntent).To(Equal(outs[0].PaymentIntent))
				for _, a := range o.Attempts {
					if a.Status == 409 {
						conflicts++
					}
				}
			}
			Expect(conflicts).To(BeNumerically(">", 0), "the storm should have met 409 idempotency_key_in_use")
			Expect(outs[:1]).To(ChargeEachBookingExactlyOnce(st.Ledger))
			record("double-click storm (50 concurrent)", "hold", st, outs[:1])
		})
	})
})

// faultCase is one fault kind of the retry simulation and the result a
// correct client reports under it.
type faultCase struct {
	kind  faults.Kind
	delay time.Duration
	want  payments.Result
}

// retryCases are the retry simulation's fault kinds, shared by the
// subject's table and the example subjects' specs.
var retryCases = []faultCase{
	{faults.DropResponse, 0, payments.Succeeded},
	{faults.DropResponse, 300 * time.Millisecond, payments.Succeeded}, // a hang until the client's timeout
	{faults.ResetBefore, 0, payments.Succeeded},
	{faults.ResetAfter, 0, payments.Succeeded},
	{faults.Delay, 300 * time.Millisecond, payments.Succeeded},
	{faults.RateLimit, 0, payments.Succeeded},
	{faults.LockTimeout, 0, payments.Succeeded},
	{faults.Unavailable, 0, payments.Succeeded},
	{faults.ServerError, 0, payments.Indeterminate}, // saved 500: stop and reconcile
	{faults.Slow, 300 * time.Millisecond, payments.Succeeded},
}
