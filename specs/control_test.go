package specs_test

import (
	"encoding/json"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/travelbook/onecharge/support/stack"
)

var _ = Describe("The control API", Label("control"), func() {
	var st *stack.Stack
	BeforeEach(func() { st = newStack() })

	controlPost := func(path, body string) rawResponse {
		return post(st.URL, path, "", body, "Content-Type", "application/json")
	}

	It("reports health", func() {
		r := get(st.URL, "/_onecharge/health")
		Expect(r.Status).To(Equal(200))
		Expect(string(r.Body)).To(ContainSubstring(`"status": "ok"`))
	})

	It("shows the ledger with duplicates in the documented shape", func() {
		post(st.URL, "/v1/payment_intents", "", piForm("bk_400", 120000))
		post(st.URL, "/v1/payment_intents", "", piForm("bk_400", 120000))
		r := get(st.URL, "/_onecharge/ledger")
		var snap struct {
			Objects []struct {
				ID, Object, Path, Reference, Currency string
				Amount                                int64
				IdempotencyKey                        string `json:"idempotency_key"`
				RequestID                             string `json:"request_id"`
				CreatedAt                             string `json:"created_at"`
			} `json:"objects"`
			Duplicates []struct {
				Reference string
				IDs       []string `json:"ids"`
				Amount    int64
				Currency  string
			} `json:"duplicates"`
		}
		Expect(json.Unmarshal(r.Body, &snap)).To(Succeed())
		Expect(snap.Objects).To(HaveLen(2))
		Expect(snap.Objects[0].Reference).To(Equal("bk_400"))
		Expect(snap.Objects[0].Amount).To(Equal(int64(120000)))
		Expect(snap.Objects[0].RequestID).NotTo(Equal(snap.Objects[1].RequestID))
		Expect(snap.Duplicates).To(HaveLen(1))
		Expect(snap.Duplicates[0].Amount).To(Equal(int64(120000)))
		Expect(snap.Duplicates[0].Currency).To(Equal("eur"))
	})

	DescribeTable("rejects a bad fault schedule with 400 naming the field, keeping what was recorded",
		func(body, param string) {
			post(st.URL, "/v1/payment_intents", "", piForm("bk_401", 120000))
			good := controlPost("/_onecharge/faults", `{"seed":7,"rules":[{"fault":"delay","delay":"1ms"}]}`)
			Expect(good.Status).To(Equal(200))
			r := controlPost("/_onecharge/faults", body)
			Expect(r.Status).To(Equal(400))
			var e struct {
				Error struct{ Message, Param string }
			}
			Expect(json.Unmarshal(r.Body, &e)).To(Succeed())
			Expect(e.Error.Param).To(Equal(param))
			Expect(e.Error.Message).NotTo(BeEmpty())
			Expect(st.Ledger.Objects()).To(HaveLen(1))
			Expect(st.Faults.Schedule().Rules).To(HaveLen(1), "the previous schedule stays in force")
		},
		Entry("unknown fault kind", `{"rules":[{"fault":"meteor"}]}`, "rules[0].fault"),
		Entry("malformed JSON", `{"rules":[`, "body"),
		Entry("bad duration", `{"rules":[{"fault":"delay","delay":"3 parsecs"}]}`, "rules[0].delay"),
		Entry("negative count", `{"rules":[{"fault":"rate_limit","count":-1}]}`, "rules[0].count"),
		Entry("probability above 1", `{"rules":[{"fault":"rate_limit","probability":1.5}]}`, "rules[0].probability"),
	)

	It("advances the clock, and reset clears keys, ledger, faults and the clock", func() {
		before := get(st.URL, "/_onecharge/clock")
		Expect(before.Status).To(Equal(200))
		r := controlPost("/_onecharge/clock", `{"advance":"25h"}`)
		Expect(r.Status).To(Equal(200))
		Expect(string(r.Body)).To(ContainSubstring(`"now"`))
		Expect(controlPost("/_onecharge/clock", `{"advance":"soon"}`).Status).To(Equal(400))

		post(st.URL, "/v1/payment_intents", "k-reset", piForm("bk_402", 120000))
		controlPost("/_onecharge/faults", `{"rules":[{"fault":"delay","delay":"1ms"}]}`)
		Expect(controlPost("/_onecharge/reset", `{}`).Status).To(Equal(200))
		Expect(st.Ledger.Objects()).To(BeEmpty())
		Expect(st.Idempotency.Len()).To(Equal(0))
		Expect(st.Faults.Schedule().Rules).To(BeEmpty())
	})
})
