package specs_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/travelbook/onecharge/support/faults"
	"github.com/travelbook/onecharge/support/keystore"
	"github.com/travelbook/onecharge/support/payments"
)

// A real process reserves a key, sends the request, and is killed with
// SIGKILL after Stripe created the PaymentIntent but before the response
// came back and was recorded. The restarted process must retry under the
// same key and get the same PaymentIntent.
var _ = Describe("Crash recovery", Ordered, Label("keystore", "crash", "testmode", "demo"), func() {
	var bin string
	BeforeAll(func() { bin = buildOnecharge() })

	type result struct {
		Result        string   `json:"result"`
		PaymentIntent string   `json:"payment_intent"`
		Keys          []string `json:"keys"`
		Attempts      []struct {
			Replayed bool `json:"replayed"`
		} `json:"attempts"`
	}

	// crashThenRestart runs the charge process twice for one booking: the
	// first is killed while Stripe's response is held, the second runs clean.
	crashThenRestart := func(booking, expect string, args ...string) (result, *faults.Injection) {
		st := newStackWith(suiteSeed(), faults.Rule{Fault: faults.DropResponse, Method: "POST", Path: "/v1/payment_intents", Delay: faults.Duration(time.Minute), Count: 1})
		base := []string{"charge", "--base", st.URL, "--booking", booking, "--amount", "240000", "--attempts", "3"}
		first := exec.Command(bin, append(append(base, "--timeout", "50s"), args...)...)
		first.Env = append(first.Environ(), "STRIPE_API_KEY="+testKey)
		sess, err := gexec.Start(first, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() int { return len(st.Ledger.PaymentIntents(booking)) }, 10*time.Second).Should(Equal(1), "Stripe created the PaymentIntent")
		Consistently(sess, 200*time.Millisecond).ShouldNot(gexec.Exit(), "the response is held: the process is still waiting")
		sess.Kill()
		Eventually(sess).Should(gexec.Exit())
		injected := st.Faults.Injected()
		Expect(injected).To(HaveLen(1))

		again := exec.Command(bin, append(append(base, "--timeout", "2s"), args...)...)
		again.Env = append(again.Environ(), "STRIPE_API_KEY="+testKey)
		out, _ := again.Output()
		var r result
		Expect(json.Unmarshal(out, &r)).To(Succeed(), "restart printed %q", out)
		name := "onecharge charge " + args[0]
		if args[0] == "--keys" {
			name += " " + args[1]
		}
		outs := []payments.Outcome{{Client: name, Booking: payments.Booking{ID: booking, Amount: 240000, Currency: "eur"},
			Result: payments.Result(r.Result), PaymentIntent: r.PaymentIntent}}
		if len(r.Keys) > 0 {
			outs[0].Attempts = []payments.Attempt{{N: 1, Key: r.Keys[0]}}
		}
		record("crash recovery (SIGKILL mid-request)", expect, st, outs)
		if expect == "hold" {
			Expect(outs).To(ChargeEachBookingExactlyOnce(st.Ledger))
		} else {
			Expect(outs).NotTo(ChargeEachBookingExactlyOnce(st.Ledger))
		}
		return r, &injected[0]
	}

	It("with the key store: the restart reuses the stored key, Stripe replays, one charge", func() {
		db := filepath.Join(GinkgoT().TempDir(), "keys.db")
		r, inj := crashThenRestart("crash_store_"+strconv.FormatInt(suiteSeed(), 10), "hold", "--keystore", db)
		Expect(r.Result).To(Equal("succeeded"))
		Expect(r.Keys).To(Equal([]string{inj.IdempotencyKey}), "the same key as the killed process")
		Expect(r.Attempts[0].Replayed).To(BeTrue())

		st, err := keystore.OpenSQLite(db)
		Expect(err).NotTo(HaveOccurred())
		defer st.Close()
		k, err := st.Get(context.Background(), "crash_store_"+strconv.FormatInt(suiteSeed(), 10), "create_payment")
		Expect(err).NotTo(HaveOccurred())
		Expect(k.State).To(Equal(keystore.Succeeded))
		Expect(k.PaymentIntent).To(Equal(r.PaymentIntent))
		Expect(k.Attempts).To(Equal(2), "one attempt per process, both in the audit trail")
	})

	It("a deterministic key needs no store to survive the crash (within Stripe's 24 hours)", func() {
		r, inj := crashThenRestart("crash_composite_"+strconv.FormatInt(suiteSeed(), 10), "hold", "--keys", "composite")
		Expect(r.Keys).To(Equal([]string{inj.IdempotencyKey}))
		Expect(r.Attempts[0].Replayed).To(BeTrue())
	})

	It("a random key kept only in memory is lost with the process: the restart charges again", func() {
		_, _ = crashThenRestart("crash_random_"+strconv.FormatInt(suiteSeed(), 10), "break", "--keys", "random")
	})
})
