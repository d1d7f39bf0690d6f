// Package evidence turns a run of the acceptance suite into what people and
// machines read: reports/audit.html and reports/summary.json.
//
// Specs attach their evidence to Ginkgo's report with AddReportEntry under
// the names below; the entries land in report.json (and junit.xml), and
// this package reads them back from report.json. Keeping the types here
// lets the specs and the renderer share one schema.
package evidence

import (
	"time"

	"github.com/travelbook/onecharge/support/faults"
	"github.com/travelbook/onecharge/support/guarantee"
	"github.com/travelbook/onecharge/support/ledger"
	"github.com/travelbook/onecharge/support/payments"
)

// Report entry names.
const (
	EntryRun       = "onecharge.run"       // a Run
	EntryBackoff   = "onecharge.backoff"   // a Backoff
	EntryKeys      = "onecharge.keys"      // a KeyStrategy
	EntryCollision = "onecharge.collision" // a Run whose outcome is a collision
	EntryAudit     = "onecharge.audit"     // an AuditTrail
)

// Run is one client charging a set of bookings under one fault schedule.
type Run struct {
	Scenario  string              `json:"scenario"`
	Client    string              `json:"client"`
	Target    string              `json:"target"`
	Seed      int64               `json:"seed"`
	Schedule  faults.Schedule     `json:"schedule"`
	Injected  map[faults.Kind]int `json:"faults_injected"`
	Faults    []faults.Injection  `json:"faults"`
	Outcomes  []payments.Outcome  `json:"outcomes"`
	Ledger    []ledger.Object     `json:"ledger"`
	Report    guarantee.Report    `json:"report"`
	Expect    string              `json:"expect"` // "hold" or "break" (a negative control)
	StartedAt time.Time           `json:"started_at"`
}

// Backoff is one policy's schedule against its envelope.
type Backoff struct {
	Policy   string          `json:"policy"`
	Base     time.Duration   `json:"base"`
	Cap      time.Duration   `json:"cap"`
	Seed     int64           `json:"seed"`
	Delays   []time.Duration `json:"delays"`
	Lo       []time.Duration `json:"lo"`
	Hi       []time.Duration `json:"hi"`
	Observed []time.Duration `json:"observed,omitempty"` // gaps the server saw, when measured
}

// KeyStrategy shows what one key strategy produced.
type KeyStrategy struct {
	Strategy string   `json:"strategy"`
	Examples []string `json:"examples"`
	Stable   bool     `json:"stable"`
	Unique   bool     `json:"unique"`
	Note     string   `json:"note"`
}

// AuditTrail points at the key audit trail a run left behind.
type AuditTrail struct {
	Store string     `json:"store"`
	Path  string     `json:"path"`
	CSV   string     `json:"csv"`
	Rows  []AuditRow `json:"rows"`
}

// AuditRow is one key with its attempts, for the audit table.
type AuditRow struct {
	Key           string `json:"key"`
	Booking       string `json:"booking"`
	State         string `json:"state"`
	Attempts      int    `json:"attempts"`
	PaymentIntent string `json:"payment_intent"`
	CreatedAt     string `json:"created_at"`
	UpdatedAt     string `json:"updated_at"`
}
