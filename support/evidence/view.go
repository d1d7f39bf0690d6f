package evidence

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/travelbook/onecharge/support/faults"
	"github.com/travelbook/onecharge/support/payments"
)

// The view types shape the Audit for audit.html; the template stays free
// of logic beyond loops and conditions.

// bookingLine is one booking of a run, with its attempts, for the retry
// timeline.
type bookingLine struct {
	Booking   string
	Amount    string
	Result    string
	PIs       int
	Violation string
	Attempts  []attemptLine
}

// attemptLine is one attempt of a booking.
type attemptLine struct {
	N         int
	Key       string
	Fault     string
	Waited    string
	Status    string
	RequestID string
	Outcome   string
	Bad       bool
}

// runTimeline is one run's bookings, the interesting ones first.
type runTimeline struct {
	SpecRun
	Bookings []bookingLine
	More     int
}

// timelineLimit is how many bookings a run shows: a 119-booking incident
// replay would drown the page, and the rest look alike.
const timelineLimit = 8

func timeline(r SpecRun) runTimeline {
	bad := map[string]string{}
	for _, v := range r.Report.Violations {
		bad[v.Booking] = v.Kind
	}
	pis := map[string]int{}
	for _, o := range r.Ledger {
		if o.Object == "payment_intent" {
			pis[o.Reference]++
		}
	}
	lines := make([]bookingLine, 0, len(r.Outcomes))
	for _, o := range r.Outcomes {
		lines = append(lines, bookingLine{Booking: o.Booking.ID, Amount: money(o.Booking.Currency, o.Booking.Amount),
			Result: string(o.Result), PIs: pis[o.Booking.ID], Violation: bad[o.Booking.ID], Attempts: attemptLines(o, r.Faults)})
	}
	// Violations first, then bookings that needed retries; stable otherwise.
	score := func(b bookingLine) int {
		switch {
		case b.Violation != "":
			return 0
		case len(b.Attempts) > 1:
			return 1
		}
		return 2
	}
	sort.SliceStable(lines, func(i, j int) bool { return score(lines[i]) < score(lines[j]) })
	t := runTimeline{SpecRun: r, Bookings: lines}
	if len(lines) > timelineLimit {
		t.Bookings, t.More = lines[:timelineLimit], len(lines)-timelineLimit
	}
	return t
}

// attemptLines pairs each attempt with the faults injected into it: an
// injection belongs to the last attempt of the booking that began before
// it, which is how the server saw the requests arrive.
func attemptLines(o payments.Outcome, injected []faults.Injection) []attemptLine {
	keys := map[string]bool{}
	for _, a := range o.Attempts {
		if a.Key != "" {
			keys[a.Key] = true
		}
	}
	hit := make([][]string, len(o.Attempts))
	next := 0
	for _, inj := range injected {
		if inj.Reference != o.Booking.ID && !keys[inj.IdempotencyKey] {
			continue
		}
		i := -1
		for j, a := range o.Attempts {
			if !a.At.IsZero() && !inj.At.IsZero() && !a.At.After(inj.At) {
				i = j
			}
		}
		if i < 0 { // no usable times: take the attempts in order
			i = min(next, len(o.Attempts)-1)
			next++
		}
		if i >= 0 {
			label := string(inj.Fault)
			if inj.Delay > 0 {
				label += " " + inj.Delay.String()
			}
			hit[i] = append(hit[i], label)
		}
	}
	out := make([]attemptLine, len(o.Attempts))
	for i, a := range o.Attempts {
		status := "no response"
		if a.Status != 0 {
			status = strconv.Itoa(a.Status)
		}
		outcome := a.Error
		if a.PaymentIntent != "" {
			outcome = a.PaymentIntent
			if a.Replayed {
				outcome += " (replayed)"
			}
		}
		if a.Decision != "" {
			if outcome != "" {
				outcome += " → "
			}
			outcome += a.Decision
		}
		key := a.Key
		if key == "" {
			key = "(no key)"
		}
		out[i] = attemptLine{N: a.N, Key: key, Fault: strings.Join(hit[i], ", "), Waited: ms(a.Waited), Status: status,
			RequestID: a.RequestID, Outcome: outcome, Bad: a.Status == 0 || a.Status >= 400}
	}
	return out
}

// comparisonRow is one client in one scenario that ran several clients.
type comparisonRow struct {
	Scenario string
	Span     int // rows the scenario cell spans; 0 on the rows below it
	Client   string
	Expect   string
	ClientTotals
}

func comparison(a *Audit) []comparisonRow {
	var out []comparisonRow
	for _, sc := range a.Scenarios {
		if len(sc.Clients) < 2 {
			continue
		}
		names := orderClients(sc.Clients)
		for i, n := range names {
			row := comparisonRow{Scenario: sc.Name, Client: n, ClientTotals: *sc.Clients[n], Expect: expectOf(sc, n)}
			if i == 0 {
				row.Span = len(names)
			}
			out = append(out, row)
		}
	}
	return out
}

func expectOf(sc Scenario, client string) string {
	for _, r := range sc.Runs {
		if clientName(r.Run) == client {
			return r.Expect
		}
	}
	return ""
}

// keyRow is one idempotency key as the runs used it, for the audit table
// when the key store attached no trail of its own.
type keyRow struct {
	Key, Booking, Client, Scenario, Result, PaymentIntent, Statuses string
	Attempts                                                        int
}

func keyRows(a *Audit) []keyRow {
	var out []keyRow
	for _, r := range a.Runs {
		for _, o := range r.Outcomes {
			byKey := map[string]*keyRow{}
			var order []string
			for _, at := range o.Attempts {
				k := at.Key
				row := byKey[k]
				if row == nil {
					shown := k
					if shown == "" {
						shown = "(no key)"
					}
					row = &keyRow{Key: shown, Booking: o.Booking.ID, Client: clientName(r.Run), Scenario: r.Scenario, Result: string(o.Result)}
					byKey[k] = row
					order = append(order, k)
				}
				row.Attempts++
				st := "—"
				if at.Status != 0 {
					st = strconv.Itoa(at.Status)
				}
				if row.Statuses != "" {
					row.Statuses += " "
				}
				row.Statuses += st
				if at.PaymentIntent != "" {
					row.PaymentIntent = at.PaymentIntent
				}
			}
			for _, k := range order {
				out = append(out, *byKey[k])
			}
		}
	}
	rank := map[string]int{}
	for i, n := range a.ClientNames() {
		rank[n] = i
	}
	sort.SliceStable(out, func(i, j int) bool { return rank[out[i].Client] < rank[out[j].Client] })
	return out
}

// replayedAttempt is an attempt answered from Stripe's saved response.
type replayedAttempt struct {
	Scenario, Booking, Key, RequestID, PaymentIntent string
	N                                                int
}

func replayed(a *Audit, limit int) (out []replayedAttempt, n int) {
	for _, r := range a.Runs {
		for _, o := range r.Outcomes {
			for _, at := range o.Attempts {
				if !at.Replayed {
					continue
				}
				n++
				if len(out) < limit {
					out = append(out, replayedAttempt{Scenario: r.Scenario, Booking: o.Booking.ID, Key: at.Key,
						RequestID: at.RequestID, PaymentIntent: at.PaymentIntent, N: at.N})
				}
			}
		}
	}
	return out, n
}

// replayDoc is the JSON that replays the run: the seed and every schedule
// in force, by scenario and client.
func replayDoc(a *Audit) string {
	type sched struct {
		Scenario string          `json:"scenario"`
		Clients  []string        `json:"clients"`
		Schedule faults.Schedule `json:"schedule"`
	}
	doc := struct {
		Seed       int64   `json:"seed"`
		GinkgoSeed int64   `json:"ginkgo_seed"`
		Target     string  `json:"target"`
		Schedules  []sched `json:"schedules"`
	}{Seed: a.Seed, GinkgoSeed: a.GinkgoSeed, Target: a.Target, Schedules: []sched{}}
	index := map[string]int{}
	for _, r := range a.Runs {
		if len(r.Schedule.Rules) == 0 {
			continue
		}
		b, _ := json.Marshal(r.Schedule)
		id := r.Scenario + "\x00" + string(b)
		i, ok := index[id]
		if !ok {
			i = len(doc.Schedules)
			index[id] = i
			doc.Schedules = append(doc.Schedules, sched{Scenario: r.Scenario, Schedule: r.Schedule})
		}
		name := clientName(r.Run)
		if !contains(doc.Schedules[i].Clients, name) {
			doc.Schedules[i].Clients = append(doc.Schedules[i].Clients, name)
		}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Sprintf("schedule not encodable: %v", err)
	}
	return string(b)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
