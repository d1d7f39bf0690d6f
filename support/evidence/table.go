package evidence

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints the short table a person reads at the end of
// `make verify`: one line per client, then the verdict.
func WriteTable(w io.Writer, a *Audit) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	width := len("client")
	for _, name := range a.ClientNames() {
		width = max(width, len(name)+len(" (control)"))
	}
	fmt.Fprintf(tw, "%-*s\tbookings\tattempts\tPaymentIntents\tduplicates\tdouble-charged\t\n", width, "client")
	for _, name := range a.ClientNames() {
		c := a.Clients[name]
		label := name
		if a.onlyControls(name) {
			label += " (control)"
		}
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%d\t%d\t%s\t\n", width, label, c.Bookings, c.Attempts, c.PaymentIntents, c.Duplicates, moneyMap(c.DoubleCharged))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	verdict := "PASS: every booking in runs expected to hold was charged exactly once"
	if !a.Pass() {
		verdict = fmt.Sprintf("FAIL: %d spec(s) failed, %d booking(s) broke the single-charge guarantee", a.Specs.Failed, len(a.Violations))
	}
	_, err := fmt.Fprintf(w, "\n%s (target %s, seed %d, %d/%d specs passed, %d faults injected)\n",
		verdict, a.Target, a.Seed, a.Specs.Passed, a.Specs.Total, a.TotalInjected())
	for _, v := range a.Violations {
		fmt.Fprint(w, redact(fmt.Sprintf("  booking %s (%s, %s client): %s; keys %v; requests %v; PaymentIntents %v\n",
			v.Booking, v.Scenario, v.Client, v.Kind, shownKeys(v.Keys), v.RequestIDs, v.PaymentIntents)))
	}
	return err
}

// onlyControls reports whether every run of the client was a negative
// control (expected to break), so its double charges are by design.
func (a *Audit) onlyControls(name string) bool {
	for _, r := range a.Runs {
		if clientName(r.Run) == name && r.Expect != "break" {
			return false
		}
	}
	return true
}

// shownKeys names a keyless attempt "(no key)" rather than printing "".
func shownKeys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k
		if k == "" {
			out[i] = "(no key)"
		}
	}
	return out
}
