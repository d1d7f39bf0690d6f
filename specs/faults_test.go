package specs_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/travelbook/onecharge/support/faults"
	"github.com/travelbook/onecharge/support/stack"
)

var _ = Describe("Injected faults", Label("faults"), func() {
	var (
		st      *stack.Stack
		sleeper *recordingSleeper
	)
	BeforeEach(func() {
		sleeper = &recordingSleeper{}
		st = newStack(withSleeper(sleeper))
	})

	// sendOnce sends one PaymentIntent creation through stripe-go with its
	// retries off, so each spec sees exactly what one attempt met.
	sendOnce := func(booking, key string) error {
		_, err := sdk(st.URL, 0, 2*time.Second).PaymentIntents.New(piParams(booking, 120000, key))
		return err
	}

	It("drop_response: Stripe creates the PaymentIntent, the client sees only a network error (the TravelBook incident)", func() {
		setFaults(st, 7, faults.Rule{Fault: faults.DropResponse, Method: "POST", Path: "/v1/payment_intents", Nth: []int{1}, Count: 1})
		err := sendOnce("bk_300", "k-drop")
		Expect(err).To(HaveOccurred())
		Expect(st.Ledger.PaymentIntents("bk_300")).To(HaveLen(1), "the upstream executed the request")
		Expect(st.Faults.Injected()).To(ConsistOf(HaveField("Fault", faults.DropResponse)))
	})

	It("drop_response with a delay: holds the connection until the client's timeout fires", func() {
		sleeper.really = true
		setFaults(st, 7, faults.Rule{Fault: faults.DropResponse, Path: "/v1/payment_intents", Delay: faults.Duration(3 * time.Second), Count: 1})
		_, err := sdk(st.URL, 0, 300*time.Millisecond).PaymentIntents.New(piParams("bk_301", 120000, "k-hang"))
		Expect(err).To(MatchError(ContainSubstring("Client.Timeout")))
		Expect(st.Ledger.PaymentIntents("bk_301")).To(HaveLen(1))
	})

	It("reset_before: the request never reaches Stripe", func() {
		setFaults(st, 7, faults.Rule{Fault: faults.ResetBefore, Path: "/v1/payment_intents", Count: 1})
		Expect(sendOnce("bk_302", "k-rb")).To(HaveOccurred())
		Expect(st.Ledger.PaymentIntents("bk_302")).To(BeEmpty())
	})

	It("reset_after: Stripe executes, then the connection is reset", func() {
		setFaults(st, 7, faults.Rule{Fault: faults.ResetAfter, Path: "/v1/payment_intents", Count: 1})
		Expect(sendOnce("bk_303", "k-ra")).To(HaveOccurred())
		Expect(st.Ledger.PaymentIntents("bk_303")).To(HaveLen(1))
	})

	It("delay: waits, then answers normally", func() {
		setFaults(st, 7, faults.Rule{Fault: faults.Delay, Delay: faults.Duration(300 * time.Millisecond)})
		Expect(sendOnce("bk_304", "k-delay")).To(Succeed())
		Expect(sleeper.Waits()).To(Equal([]time.Duration{300 * time.Millisecond}))
	})

	DescribeTable("API faults answered before execution are not executed",
		func(kind faults.Kind, status int, code string) {
			setFaults(st, 7, faults.Rule{Fault: kind, Path: "/v1/payment_intents", Count: 1})
			r := post(st.URL, "/v1/payment_intents", "k-"+string(kind), piForm("bk_305", 120000))
			Expect(r.Status).To(Equal(status))
			Expect(string(r.Body)).To(ContainSubstring(code))
			Expect(st.Ledger.PaymentIntents("bk_305")).To(BeEmpty())
			again := post(st.URL, "/v1/payment_intents", "k-"+string(kind), piForm("bk_305", 120000))
			Expect(again.Status).To(Equal(200), "the retry with the same key executes")
			Expect(st.Ledger.PaymentIntents("bk_305")).To(HaveLen(1))
		},
		Entry("rate_limit", faults.RateLimit, 429, `"rate_limit"`),
		Entry("lock_timeout", faults.LockTimeout, 429, `"lock_timeout"`),
		Entry("unavailable", faults.Unavailable, 503, `"api_error"`),
	)

	It("server_error: executes, then answers 500", func() {
		setFaults(st, 7, faults.Rule{Fault: faults.ServerError, Path: "/v1/payment_intents", Count: 1})
		r := post(st.URL, "/v1/payment_intents", "k-se", piForm("bk_306", 120000))
		Expect(r.Status).To(Equal(500))
		Expect(st.Ledger.PaymentIntents("bk_306")).To(HaveLen(1))
	})

	It("slow: Stripe takes the delay to execute", func() {
		setFaults(st, 7, faults.Rule{Fault: faults.Slow, Path: "/v1/payment_intents", Delay: faults.Duration(2 * time.Second), Count: 1})
		Expect(sendOnce("bk_307", "k-slow")).To(Succeed())
		Expect(sleeper.Waits()).To(Equal([]time.Duration{2 * time.Second}))
	})

	It("matches by nth request, key attempt and count, and logs each injection with its seed", func() {
		setFaults(st, 42,
			faults.Rule{Fault: faults.Unavailable, Method: "POST", Path: "/v1/payment_*", Nth: []int{2, 3}},
			faults.Rule{Fault: faults.RateLimit, KeyAttempts: []int{1}, Count: 1},
		)
		statuses := []int{}
		for _, k := range []string{"n-1", "n-2", "n-3", "n-4"} {
			statuses = append(statuses, post(st.URL, "/v1/payment_intents", k, piForm("bk_"+k, 120000)).Status)
		}
		// request 1: key attempt 1 → rate_limit (count 1); 2 and 3: nth → 503; 4: clean.
		Expect(statuses).To(Equal([]int{429, 503, 503, 200}))
		inj := st.Faults.Injected()
		Expect(inj).To(HaveLen(3))
		Expect(inj).To(HaveEach(HaveField("Seed", int64(42))))
	})

	It("draws probabilistic faults from the seed: the same seed replays the same run", func() {
		run := func(seed int64) []int {
			s := newStack(withSleeper(&recordingSleeper{}))
			Expect(s.Faults.Set(faults.Schedule{Seed: seed, Rules: []faults.Rule{{Fault: faults.Unavailable, Probability: 0.5}}})).To(Succeed())
			out := []int{}
			for i := 0; i < 24; i++ {
				out = append(out, post(s.URL, "/v1/payment_intents", "", piForm("bk_prob", 120000)).Status)
			}
			return out
		}
		a, b, c := run(11), run(11), run(12)
		Expect(a).To(Equal(b))
		Expect(a).NotTo(Equal(c))
		Expect(a).To(ContainElement(503))
		Expect(a).To(ContainElement(200))
	})
})
