package guarantee

import (
	"testing"

	"github.com/travelbook/onecharge/support/ledger"
	"github.com/travelbook/onecharge/support/payments"
)

func pi(id, ref string, amount int64) ledger.Object {
	return ledger.Object{ID: id, Object: "payment_intent", Reference: ref, Amount: amount, Currency: "eur"}
}

func outcome(ref string, r payments.Result, piID, errText string) payments.Outcome {
	return payments.Outcome{Client: "c", Booking: payments.Booking{ID: ref, Amount: 240000, Currency: "eur"}, Result: r, PaymentIntent: piID, Error: errText,
		Attempts: []payments.Attempt{{N: 1, Key: "k-" + ref}}}
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name     string
		outcomes []payments.Outcome
		objects  []ledger.Object
		kind     string
	}{
		{"one charge, caller knows it", []payments.Outcome{outcome("b1", payments.Succeeded, "pi_1", "")}, []ledger.Object{pi("pi_1", "b1", 240000)}, ""},
		{"nothing charged, failure with cause", []payments.Outcome{outcome("b1", payments.Failed, "", "card declined")}, nil, ""},
		{"indeterminate with one charge", []payments.Outcome{outcome("b1", payments.Indeterminate, "", "500 saved")}, []ledger.Object{pi("pi_1", "b1", 240000)}, ""},
		{"two charges", []payments.Outcome{outcome("b1", payments.Succeeded, "pi_2", "")}, []ledger.Object{pi("pi_1", "b1", 240000), pi("pi_2", "b1", 240000)}, Duplicate},
		{"told failed, charged", []payments.Outcome{outcome("b1", payments.Failed, "", "timeout")}, []ledger.Object{pi("pi_1", "b1", 240000)}, ChargedButFailed},
		{"claims a charge the ledger lacks", []payments.Outcome{outcome("b1", payments.Succeeded, "pi_9", "")}, []ledger.Object{pi("pi_1", "b1", 240000)}, SucceededUnseen},
		{"failure without cause", []payments.Outcome{outcome("b1", payments.Failed, "", "")}, nil, UnknownOutcome},
		{"other bookings ignored", []payments.Outcome{outcome("b1", payments.Succeeded, "pi_1", "")}, []ledger.Object{pi("pi_1", "b1", 1), pi("pi_2", "b2", 1), pi("pi_3", "b2", 1)}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Check(c.outcomes, c.objects)
			if c.kind == "" {
				if !r.Holds() {
					t.Fatalf("want the guarantee to hold, got %s", r)
				}
				return
			}
			if r.Holds() || r.Violations[0].Kind != c.kind {
				t.Fatalf("want a %s violation, got %s", c.kind, r)
			}
		})
	}
}

func TestDoubleChargedSumsTheExtraCharges(t *testing.T) {
	r := Check([]payments.Outcome{outcome("b1", payments.Succeeded, "pi_1", "")},
		[]ledger.Object{pi("pi_1", "b1", 240000), pi("pi_2", "b1", 240000), pi("pi_3", "b1", 240000)})
	if r.Duplicates != 1 || r.DoubleCharged["eur"] != 480000 || r.PaymentIntents != 3 {
		t.Fatalf("got %+v", r)
	}
}
