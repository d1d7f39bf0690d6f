package specs_test

import (
	"fmt"

	"github.com/onsi/gomega/types"

	"github.com/travelbook/onecharge/support/guarantee"
	"github.com/travelbook/onecharge/support/ledger"
	"github.com/travelbook/onecharge/support/payments"
)

// ChargeEachBookingExactlyOnce is the single-charge matcher: actual is a
// []payments.Outcome, checked against what the ledger says Stripe really
// created. The Safe client must pass it and the negative controls must
// fail it: the specs assert both.
func ChargeEachBookingExactlyOnce(l *ledger.Ledger) types.GomegaMatcher {
	return &singleCharge{ledger: l}
}

type singleCharge struct {
	ledger *ledger.Ledger
	report guarantee.Report
}

func (m *singleCharge) Match(actual any) (bool, error) {
	outs, ok := actual.([]payments.Outcome)
	if !ok {
		return false, fmt.Errorf("ChargeEachBookingExactlyOnce expects []payments.Outcome, got %T", actual)
	}
	m.report = guarantee.Check(outs, ledgerObjects(m.ledger))
	return m.report.Holds(), nil
}

func (m *singleCharge) FailureMessage(any) string {
	return "expected every booking to be charged exactly once, knowingly:\n" + m.report.String()
}

func (m *singleCharge) NegatedFailureMessage(any) string {
	return "expected the single-charge guarantee to be broken (a negative control), but it held:\n" + m.report.String()
}
