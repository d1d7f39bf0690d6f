package evidence

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/travelbook/onecharge/support/faults"
)

// Summary is summary.json: a stable, machine-readable verdict. Fields are
// only ever added; see README for the schema.
type Summary struct {
	Verdict        string                   `json:"verdict"`
	Target         string                   `json:"target"`
	Seed           int64                    `json:"seed"`
	GinkgoSeed     int64                    `json:"ginkgo_seed"`
	GeneratedAt    time.Time                `json:"generated_at"`
	Specs          SpecCounts               `json:"specs"`
	FaultsInjected map[faults.Kind]int      `json:"faults_injected"`
	Clients        map[string]*ClientTotals `json:"clients"`
	Violations     []SummaryViolation       `json:"violations"`
	FailedSpecs    []SummaryFailure         `json:"failed_specs"`
	Replay         string                   `json:"replay"`
}

// SummaryViolation is one booking of a run expected to hold that broke.
type SummaryViolation struct {
	Scenario       string   `json:"scenario"`
	Client         string   `json:"client"`
	Booking        string   `json:"booking"`
	Kind           string   `json:"kind"`
	Detail         string   `json:"detail"`
	Keys           []string `json:"keys"`
	RequestIDs     []string `json:"request_ids"`
	PaymentIntents []string `json:"payment_intents"`
	Amount         int64    `json:"amount"`
	Currency       string   `json:"currency"`
}

// SummaryFailure is one failed spec.
type SummaryFailure struct {
	Spec     string `json:"spec"`
	State    string `json:"state"`
	Message  string `json:"message"`
	Location string `json:"location"`
}

// NewSummary derives summary.json's content from an Audit.
func NewSummary(a *Audit) Summary {
	s := Summary{Verdict: a.Verdict, Target: a.Target, Seed: a.Seed, GinkgoSeed: a.GinkgoSeed, GeneratedAt: a.GeneratedAt,
		Specs: a.Specs, FaultsInjected: a.Injected, Clients: a.Clients,
		Violations: []SummaryViolation{}, FailedSpecs: []SummaryFailure{}, Replay: replayCommand(a)}
	for _, v := range a.Violations {
		s.Violations = append(s.Violations, SummaryViolation{Scenario: v.Scenario, Client: v.Client, Booking: v.Booking,
			Kind: v.Kind, Detail: v.Detail, Keys: nonNil(v.Keys), RequestIDs: nonNil(v.RequestIDs),
			PaymentIntents: nonNil(v.PaymentIntents), Amount: v.Amount, Currency: v.Currency})
	}
	for _, f := range a.FailedSpecs {
		s.FailedSpecs = append(s.FailedSpecs, SummaryFailure{Spec: f.Text, State: f.State, Message: f.Message, Location: f.Location})
	}
	return s
}

// WriteSummary writes summary.json, with every secret masked.
func WriteSummary(w io.Writer, a *Audit) error {
	b, err := json.MarshalIndent(NewSummary(a), "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary.json: %w", err)
	}
	b = append(redactBytes(b), '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write summary.json: %w", err)
	}
	return nil
}

func replayCommand(a *Audit) string { return fmt.Sprintf("SEED=%d make verify", a.Seed) }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
