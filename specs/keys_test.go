package specs_test

import (
	"crypto/rand"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/evidence"
	"github.com/travelbook/onecharge/support/keys"
	"github.com/travelbook/onecharge/support/payments"
)

var _ = Describe("Key strategies", Label("keys", "testmode"), func() {
	ops := func(n int) []keys.Operation {
		out := make([]keys.Operation, n)
		for i, b := range bookings("keys", n, suiteSeed()) {
			out[i] = keys.Operation{Agency: b.Agency, Booking: b.ID, Operation: "create_payment"}
		}
		return out
	}

	DescribeTable("properties",
		func(s keys.Strategy, stable bool, note string) {
			all := ops(500)
			seen := map[string]bool{}
			for _, op := range all {
				k, err := s.Key(op)
				Expect(err).NotTo(HaveOccurred())
				Expect(keys.Validate(k)).To(Succeed())
				Expect(seen[k]).To(BeFalse(), "key %q repeated for a different booking", k)
				seen[k] = true
				again, _ := s.Key(op)
				Expect(again == k).To(Equal(stable), "asking twice for %v", op)
			}
			examples := []string{}
			for _, op := range all[:3] {
				k, _ := s.Key(op)
				examples = append(examples, k)
			}
			AddReportEntry(evidence.EntryKeys, evidence.KeyStrategy{Strategy: s.Name(), Examples: examples, Stable: stable, Unique: true, Note: note}, quiet)
		},
		Entry("composite: readable and stable across processes", keys.CompositeStrategy, true,
			"tb:v1:<agency>:<booking>:<operation>: the same booking always gets the same key, in every process and after a restart; the default."),
		Entry("UUIDv5: stable and opaque", keys.UUIDv5Strategy, true,
			"A UUIDv5 of the composite: stable like it, fixed length, reveals nothing."),
		Entry("random UUIDv4: unique, stable only once stored", keys.RandomStrategy(rand.Reader), false,
			"Safe only when stored with the booking before the first send (support/keystore): otherwise a restart mints a new key and charges again."),
	)

	It("the Safe client sends a valid composite key that names the booking", func() {
		st := newStack()
		b := bookings("keyname", 1, suiteSeed())[0]
		out := payments.NewSafe(clientConfig(st, 2*time.Second, clock.Real{}), specPolicy(suiteSeed())).Charge(ctx(), b)
		Expect(out.Result).To(Equal(payments.Succeeded))
		Expect(out.Keys()).To(HaveLen(1))
		Expect(out.Keys()[0]).To(HavePrefix("tb:v1:"))
		Expect(strings.Contains(out.Keys()[0], b.ID)).To(BeTrue())
		Expect(st.Ledger.PaymentIntents(b.ID)[0].IdempotencyKey).To(Equal(out.Keys()[0]))
	})
})
