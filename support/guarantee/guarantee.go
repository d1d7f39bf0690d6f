// Package guarantee checks the property the suite exists to prove: for
// every booking exactly one PaymentIntent was created upstream, and every
// caller knows its outcome (succeeded with that PaymentIntent, or stopped
// with a recorded cause and nothing charged, or flagged indeterminate for
// reconciliation with at most one charge).
//
// It reads the ledger (what Stripe really created), never the client's own
// account of itself: a client cannot pass by claiming success.
package guarantee

import (
	"fmt"
	"sort"
	"strings"

	"github.com/travelbook/onecharge/support/ledger"
	"github.com/travelbook/onecharge/support/payments"
)

// Violation kinds.
const (
	Duplicate        = "duplicate"          // more than one PaymentIntent for the booking
	ChargedButFailed = "charged_but_failed" // the caller was told it failed, Stripe charged
	SucceededUnseen  = "succeeded_unseen"   // the caller claims a PaymentIntent the ledger lacks
	UnknownOutcome   = "unknown_outcome"    // no result, or a failure with no recorded cause
)

// Violation is one booking that breaks the guarantee, with what is needed
// to find it in Stripe's logs.
type Violation struct {
	Booking        string   `json:"booking"`
	Kind           string   `json:"kind"`
	Detail         string   `json:"detail"`
	PaymentIntents []string `json:"payment_intents"`
	Keys           []string `json:"keys"`
	RequestIDs     []string `json:"request_ids"`
	Amount         int64    `json:"amount"`
	Currency       string   `json:"currency"`
}

// Report sums up one client's run.
type Report struct {
	Client         string                  `json:"client"`
	Bookings       int                     `json:"bookings"`
	Attempts       int                     `json:"attempts"`
	PaymentIntents int                     `json:"payment_intents"`
	Duplicates     int                     `json:"duplicates"`
	DoubleCharged  map[string]int64        `json:"double_charged"`
	Results        map[payments.Result]int `json:"results"`
	Violations     []Violation             `json:"violations"`
}

// Holds reports whether every booking was charged exactly once, knowingly.
func (r Report) Holds() bool { return len(r.Violations) == 0 }

// String is a one-paragraph account for a failure message.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "client %s: %d bookings, %d attempts, %d PaymentIntents, %d duplicates", r.Client, r.Bookings, r.Attempts, r.PaymentIntents, r.Duplicates)
	for cur, amt := range r.DoubleCharged {
		fmt.Fprintf(&b, ", %s %.2f double-charged", strings.ToUpper(cur), float64(amt)/100)
	}
	for i, v := range r.Violations {
		if i == 10 {
			fmt.Fprintf(&b, "\n  ... and %d more", len(r.Violations)-10)
			break
		}
		fmt.Fprintf(&b, "\n  booking %s: %s: %s (PaymentIntents %v, keys %v, requests %v)", v.Booking, v.Kind, v.Detail, v.PaymentIntents, v.Keys, v.RequestIDs)
	}
	return b.String()
}

// Check holds outcomes against the ledger's objects. Only PaymentIntents
// whose reference is one of the outcomes' bookings are considered, so
// several clients can share a ledger under distinct booking ids.
func Check(outcomes []payments.Outcome, objects []ledger.Object) Report {
	byRef := map[string][]ledger.Object{}
	for _, o := range objects {
		if o.Object == "payment_intent" {
			byRef[o.Reference] = append(byRef[o.Reference], o)
		}
	}
	r := Report{DoubleCharged: map[string]int64{}, Results: map[payments.Result]int{}, Violations: []Violation{}}
	for _, out := range outcomes {
		if r.Client == "" {
			r.Client = out.Client
		}
		r.Bookings++
		r.Attempts += len(out.Attempts)
		r.Results[out.Result]++
		pis := byRef[out.Booking.ID]
		r.PaymentIntents += len(pis)
		v := Violation{Booking: out.Booking.ID, Keys: out.Keys(), Amount: out.Booking.Amount, Currency: out.Booking.Currency}
		for _, p := range pis {
			v.PaymentIntents = append(v.PaymentIntents, p.ID)
			v.RequestIDs = append(v.RequestIDs, p.RequestID)
		}
		switch {
		case len(pis) > 1:
			r.Duplicates++
			extra := int64(0)
			for _, p := range pis[1:] {
				extra += p.Amount
			}
			r.DoubleCharged[strings.ToLower(pis[0].Currency)] += extra
			v.Kind, v.Detail = Duplicate, fmt.Sprintf("%d PaymentIntents created, the caller saw %q", len(pis), out.Result)
			v.Amount = extra
		case out.Result == payments.Succeeded && (len(pis) != 1 || pis[0].ID != out.PaymentIntent):
			v.Kind, v.Detail = SucceededUnseen, fmt.Sprintf("the caller holds %q, the ledger has %d PaymentIntents", out.PaymentIntent, len(pis))
		case out.Result == payments.Failed && len(pis) == 1:
			v.Kind, v.Detail = ChargedButFailed, "the caller was told the payment failed ("+out.Error+") but Stripe created it"
		case out.Result == "" || (out.Result != payments.Succeeded && out.Error == ""):
			v.Kind, v.Detail = UnknownOutcome, fmt.Sprintf("result %q with no recorded cause", out.Result)
		default:
			continue
		}
		r.Violations = append(r.Violations, v)
	}
	sort.Slice(r.Violations, func(i, j int) bool { return r.Violations[i].Booking < r.Violations[j].Booking })
	return r
}
