package specs_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/stripe/stripe-go/v76"

	"github.com/travelbook/onecharge/support/faults"
	"github.com/travelbook/onecharge/support/stack"
)

// piID reads the id of a PaymentIntent from a raw response body.
func piID(body []byte) string {
	var v struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &v)
	return v.ID
}

func stripeErr(err error) *stripe.Error {
	var se *stripe.Error
	ExpectWithOffset(1, errors.As(err, &se)).To(BeTrue(), "want a *stripe.Error, got %v", err)
	return se
}

var _ = Describe("Stripe's idempotency layer, emulated", Label("stripe-semantics"), func() {
	var st *stack.Stack
	BeforeEach(func() { st = newStack() })

	It("is needed: stripe-mock alone ignores Idempotency-Key and creates again", func() {
		a := post(mockURL, "/v1/payment_intents", "k-stateless", piForm("bk_1", 120000))
		b := post(mockURL, "/v1/payment_intents", "k-stateless", piForm("bk_1", 120000))
		Expect(a.Status).To(Equal(200))
		Expect(b.Status).To(Equal(200))
		Expect(piID(a.Body)).NotTo(Equal(piID(b.Body)), "stripe-mock became stateful: this spec documents why the emulator exists")
	})

	Context("through a real stripe-go v76 client", func() {
		It("replays the same key and parameters: same PaymentIntent, Idempotent-Replayed, one charge", func() {
			sc := sdk(st.URL, 0, 5*time.Second)
			first, err := sc.PaymentIntents.New(piParams("bk_100", 240000, "tb:v1:ag_1:bk_100:create"))
			Expect(err).NotTo(HaveOccurred())
			again, err := sc.PaymentIntents.New(piParams("bk_100", 240000, "tb:v1:ag_1:bk_100:create"))
			Expect(err).NotTo(HaveOccurred())
			Expect(again.ID).To(Equal(first.ID))
			Expect(first.LastResponse.Header.Get("Idempotent-Replayed")).To(BeEmpty())
			Expect(again.LastResponse.Header.Get("Idempotent-Replayed")).To(Equal("true"))
			Expect(again.LastResponse.Header.Get("Original-Request")).To(Equal(first.LastResponse.RequestID))
			Expect(again.LastResponse.RequestID).NotTo(Equal(first.LastResponse.RequestID))
			Expect(st.Ledger.PaymentIntents("bk_100")).To(HaveLen(1))
			AddReportEntry("replay", map[string]any{"key": "tb:v1:ag_1:bk_100:create", "payment_intent": first.ID, "ledger": st.Ledger.Snapshot()})
		})

		It("answers a key reused with another amount with idempotency_error, and creates nothing", func() {
			sc := sdk(st.URL, 0, 5*time.Second)
			_, err := sc.PaymentIntents.New(piParams("bk_101", 185000, "k-mismatch"))
			Expect(err).NotTo(HaveOccurred())
			_, err = sc.PaymentIntents.New(piParams("bk_101", 310000, "k-mismatch"))
			se := stripeErr(err)
			Expect(se.HTTPStatusCode).To(Equal(400))
			Expect(se.Type).To(Equal(stripe.ErrorTypeIdempotency))
			Expect(se.Msg).To(Equal("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than 'k-mismatch' if you meant to execute a different request."))
			Expect(st.Ledger.PaymentIntents("bk_101")).To(HaveLen(1))
		})

		It("answers a key reused on another endpoint with idempotency_error", func() {
			sc := sdk(st.URL, 0, 5*time.Second)
			_, err := sc.PaymentIntents.New(piParams("bk_102", 120000, "k-endpoint"))
			Expect(err).NotTo(HaveOccurred())
			cp := &stripe.CustomerParams{Email: stripe.String("a@example.com")}
			cp.SetIdempotencyKey("k-endpoint")
			_, err = sc.Customers.New(cp)
			se := stripeErr(err)
			Expect(se.HTTPStatusCode).To(Equal(400))
			Expect(se.Type).To(Equal(stripe.ErrorTypeIdempotency))
			Expect(se.Msg).To(Equal("Keys for idempotent requests can only be used for the same endpoint they were first used for ('/v1/customers' vs '/v1/payment_intents'). Try using a key other than 'k-endpoint' if you meant to execute a different request."))
		})

		It("answers 409 idempotency_key_in_use while the first request with the key is still executing", func() {
			sleeper := &recordingSleeper{really: true}
			st = newStack(withSleeper(sleeper))
			setFaults(st, 1, faults.Rule{Fault: faults.Slow, Path: "/v1/payment_intents", Delay: faults.Duration(400 * time.Millisecond), Count: 1})
			sc := sdk(st.URL, 0, 5*time.Second)
			var wg sync.WaitGroup
			var firstErr error
			var first *stripe.PaymentIntent
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				first, firstErr = sc.PaymentIntents.New(piParams("bk_103", 120000, "k-inflight"))
			}()
			Eventually(st.Idempotency.Len).Should(Equal(1))
			_, err := sc.PaymentIntents.New(piParams("bk_103", 120000, "k-inflight"))
			se := stripeErr(err)
			Expect(se.HTTPStatusCode).To(Equal(409))
			Expect(se.Code).To(Equal(stripe.ErrorCodeIdempotencyKeyInUse))
			Expect(se.Msg).To(ContainSubstring("There is currently another in-progress request using this Idempotent Key"))
			wg.Wait()
			Expect(firstErr).NotTo(HaveOccurred())
			again, err := sc.PaymentIntents.New(piParams("bk_103", 120000, "k-inflight"))
			Expect(err).NotTo(HaveOccurred(), "the 409 must not have been saved")
			Expect(again.ID).To(Equal(first.ID))
			Expect(st.Ledger.PaymentIntents("bk_103")).To(HaveLen(1))
		})

		It("saves a 500 raised while executing and replays it: the outcome stays indeterminate, nothing runs twice", func() {
			setFaults(st, 1, faults.Rule{Fault: faults.ServerError, Path: "/v1/payment_intents", Count: 1})
			sc := sdk(st.URL, 0, 5*time.Second)
			_, err := sc.PaymentIntents.New(piParams("bk_104", 350000, "k-500"))
			Expect(stripeErr(err).HTTPStatusCode).To(Equal(500))
			_, err = sc.PaymentIntents.New(piParams("bk_104", 350000, "k-500"))
			se := stripeErr(err)
			Expect(se.HTTPStatusCode).To(Equal(500))
			Expect(se.LastResponse.Header.Get("Idempotent-Replayed")).To(Equal("true"))
			Expect(st.Ledger.PaymentIntents("bk_104")).To(HaveLen(1), "the first attempt executed once; the replay did not execute")
		})

		It("does not save a 429 from the rate limiter: the retry with the same key executes", func() {
			setFaults(st, 1, faults.Rule{Fault: faults.RateLimit, KeyAttempts: []int{1}})
			sc := sdk(st.URL, 0, 5*time.Second)
			_, err := sc.PaymentIntents.New(piParams("bk_105", 120000, "k-429"))
			Expect(stripeErr(err).HTTPStatusCode).To(Equal(429))
			pi, err := sc.PaymentIntents.New(piParams("bk_105", 120000, "k-429"))
			Expect(err).NotTo(HaveOccurred())
			Expect(pi.LastResponse.Header.Get("Idempotent-Replayed")).To(BeEmpty())
			Expect(st.Ledger.PaymentIntents("bk_105")).To(HaveLen(1))
		})

		It("forgets a key after 24 hours: the same key then charges again", func() {
			sc := sdk(st.URL, 0, 5*time.Second)
			first, err := sc.PaymentIntents.New(piParams("bk_106", 120000, "k-window"))
			Expect(err).NotTo(HaveOccurred())
			st.Clock.Advance(23 * time.Hour)
			within, err := sc.PaymentIntents.New(piParams("bk_106", 120000, "k-window"))
			Expect(err).NotTo(HaveOccurred())
			Expect(within.ID).To(Equal(first.ID))
			st.Clock.Advance(2 * time.Hour)
			after, err := sc.PaymentIntents.New(piParams("bk_106", 120000, "k-window"))
			Expect(err).NotTo(HaveOccurred())
			Expect(after.ID).NotTo(Equal(first.ID))
			Expect(st.Ledger.Duplicates()).To(HaveLen(1), "a pruned key is a second charge, as at Stripe")
		})
	})

	Context("through raw HTTP, as any client sees it", func() {
		It("replays the saved status and body byte for byte", func() {
			a := post(st.URL, "/v1/payment_intents", "raw-1", piForm("bk_200", 120000))
			b := post(st.URL, "/v1/payment_intents", "raw-1", piForm("bk_200", 120000))
			Expect(a.Status).To(Equal(200))
			Expect(b.Status).To(Equal(200))
			Expect(b.Body).To(Equal(a.Body))
			Expect(b.Header.Get("Idempotent-Replayed")).To(Equal("true"))
			Expect(a.Header.Values("Request-Id")).To(HaveLen(1), "one request id per response")
			Expect(b.Header.Values("Request-Id")).To(HaveLen(1))
			Expect(b.Header.Get("Original-Request")).To(Equal(a.Header.Get("Request-Id")))
		})

		It("compares parameters without regard to their order", func() {
			a := post(st.URL, "/v1/payment_intents", "raw-order", "amount=120000&currency=eur&metadata[booking_id]=bk_201")
			b := post(st.URL, "/v1/payment_intents", "raw-order", "metadata[booking_id]=bk_201&currency=eur&amount=120000")
			Expect(b.Status).To(Equal(200))
			Expect(b.Header.Get("Idempotent-Replayed")).To(Equal("true"))
			Expect(piID(b.Body)).To(Equal(piID(a.Body)))
		})

		It("does not save a validation 400: the corrected request with the same key executes", func() {
			bad := post(st.URL, "/v1/payment_intents", "raw-400", "currency=eur")
			Expect(bad.Status).To(Equal(400))
			good := post(st.URL, "/v1/payment_intents", "raw-400", piForm("bk_202", 120000))
			Expect(good.Status).To(Equal(200))
			Expect(good.Header.Get("Idempotent-Replayed")).To(BeEmpty())
		})

		It("does not save a 401: the authenticated retry with the same key executes", func() {
			noAuth := post(st.URL, "/v1/payment_intents", "raw-401", piForm("bk_203", 120000), "Authorization", "")
			Expect(noAuth.Status).To(Equal(401))
			ok := post(st.URL, "/v1/payment_intents", "raw-401", piForm("bk_203", 120000))
			Expect(ok.Status).To(Equal(200))
			Expect(st.Ledger.PaymentIntents("bk_203")).To(HaveLen(1))
		})

		It("scopes keys to the account: another secret key or Stripe-Account executes anew", func() {
			a := post(st.URL, "/v1/payment_intents", "raw-scope", piForm("bk_204", 120000))
			b := post(st.URL, "/v1/payment_intents", "raw-scope", piForm("bk_204", 120000), "Authorization", "Bearer sk_test_otherAccount4242")
			c := post(st.URL, "/v1/payment_intents", "raw-scope", piForm("bk_204", 120000), "Stripe-Account", "acct_connected")
			Expect([]int{a.Status, b.Status, c.Status}).To(Equal([]int{200, 200, 200}))
			Expect(b.Header.Get("Idempotent-Replayed")).To(BeEmpty())
			Expect(c.Header.Get("Idempotent-Replayed")).To(BeEmpty())
			Expect(st.Ledger.PaymentIntents("bk_204")).To(HaveLen(3))
		})

		It("accepts keys of 255 characters and rejects longer ones", func() {
			ok := post(st.URL, "/v1/payment_intents", strings.Repeat("k", 255), piForm("bk_205", 120000))
			Expect(ok.Status).To(Equal(200))
			long := post(st.URL, "/v1/payment_intents", strings.Repeat("k", 256), piForm("bk_205", 120000))
			Expect(long.Status).To(Equal(400))
			Expect(string(long.Body)).To(ContainSubstring("invalid_request_error"))
			Expect(st.Ledger.PaymentIntents("bk_205")).To(HaveLen(1))
		})

		It("ignores keys on GET, and always executes a POST without a key", func() {
			a := post(st.URL, "/v1/payment_intents", "", piForm("bk_206", 120000))
			b := post(st.URL, "/v1/payment_intents", "", piForm("bk_206", 120000))
			Expect(piID(a.Body)).NotTo(Equal(piID(b.Body)))
			g1 := get(st.URL, "/v1/payment_intents/"+piID(a.Body), "Idempotency-Key", "raw-get")
			g2 := get(st.URL, "/v1/payment_intents/"+piID(a.Body), "Idempotency-Key", "raw-get")
			Expect(g1.Status).To(Equal(http.StatusOK))
			Expect(g2.Header.Get("Idempotent-Replayed")).To(BeEmpty())
			Expect(st.Ledger.Duplicates()).To(HaveLen(1), "two keyless POSTs for one booking are a double charge")
		})
	})
})
