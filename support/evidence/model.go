package evidence

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/travelbook/onecharge/support/faults"
	"github.com/travelbook/onecharge/support/guarantee"
	"github.com/travelbook/onecharge/support/payments"
)

// timeNow stamps generated_at; tests replace it so that outputs are golden.
var timeNow = time.Now

// EntryReplay and EntrySchedule are entries the specs attach with plain
// names (specs/idempotency_test.go and specs/helpers_test.go).
const (
	EntryReplay   = "replay"
	EntrySchedule = "fault schedule"
)

// ErrNoReport is returned by Load when the report file does not exist.
var ErrNoReport = errors.New("no Ginkgo JSON report")

// Load reads a Ginkgo JSON report (the file --json-report writes).
func Load(path string) ([]types.Report, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s", ErrNoReport, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var reports []types.Report
	if err := json.Unmarshal(b, &reports); err != nil {
		return nil, fmt.Errorf("%s is not a Ginkgo JSON report (%v)", path, err)
	}
	if len(reports) == 0 {
		return nil, fmt.Errorf("%s holds no suite", path)
	}
	return reports, nil
}

// Audit is everything the report and the summary say about one
// verification run, aggregated from Ginkgo's reports.
type Audit struct {
	GeneratedAt time.Time
	Verdict     string // "pass" or "fail"
	Target      string
	Seed        int64
	GinkgoSeed  int64
	Suites      []string
	RunTime     time.Duration
	Specs       SpecCounts

	FailedSpecs []FailedSpec
	Runs        []SpecRun
	Violations  []ViolationRow
	Backoffs    []Backoff
	Keys        []KeyStrategy
	Collisions  []payments.Outcome
	Replays     []Replay
	Trail       *AuditTrail
	// TargetNote says how a test-mode run treated Stripe: bounded
	// concurrency, backoff on 429, and the clean-up of what it created.
	TargetNote string

	Injected  map[faults.Kind]int      // summed over every run
	Clients   map[string]*ClientTotals // summed over every run
	Safe      ClientTotals             // the Safe client's runs
	Controls  ClientTotals             // runs expected to break (negative controls)
	Scenarios []Scenario               // runs grouped by scenario, in order of appearance
}

// SpecCounts counts the specs by final state.
type SpecCounts struct {
	Total   int `json:"total"`
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// FailedSpec is a spec (or suite node) that failed, with where and why.
type FailedSpec struct {
	Text     string
	State    string
	Message  string
	Location string
	Runs     []SpecRun // runs the spec attached, when any
}

// SpecRun is a Run with the spec that attached it.
type SpecRun struct {
	Run
	Spec     string
	Location string
	Failed   bool
}

// Holds reports whether the run kept the single-charge guarantee.
func (r SpecRun) Holds() bool { return r.Report.Holds() }

// ViolationRow is one booking that broke the guarantee in a run expected
// to hold.
type ViolationRow struct {
	guarantee.Violation
	Scenario string `json:"scenario"`
	Client   string `json:"client"`
	Spec     string `json:"spec"`
}

// ClientTotals sums one client's runs.
type ClientTotals struct {
	Bookings       int              `json:"bookings"`
	Attempts       int              `json:"attempts"`
	PaymentIntents int              `json:"payment_intents"`
	Duplicates     int              `json:"duplicates"`
	DoubleCharged  map[string]int64 `json:"double_charged"`
	Runs           int              `json:"runs"`
	Injected       int              `json:"faults_injected"`
}

func (t *ClientTotals) add(r Run) {
	if t.DoubleCharged == nil {
		t.DoubleCharged = map[string]int64{}
	}
	t.Runs++
	t.Bookings += r.Report.Bookings
	t.Attempts += r.Report.Attempts
	t.PaymentIntents += r.Report.PaymentIntents
	t.Duplicates += r.Report.Duplicates
	for cur, amt := range r.Report.DoubleCharged {
		t.DoubleCharged[strings.ToLower(cur)] += amt
	}
	for _, n := range r.Injected {
		t.Injected += n
	}
}

// Scenario is every run of one scenario, by client.
type Scenario struct {
	Name    string
	Runs    []SpecRun
	Clients map[string]*ClientTotals
	Breaks  bool // some run expected to hold broke
}

// Badge sums one client's runs of a scenario for its one-line heading.
type Badge struct {
	Client     string
	Runs, Held int
	Duplicates int
	Control    bool
}

// Badges lists the scenario's clients in the usual order.
func (s Scenario) Badges() []Badge {
	var out []Badge
	for _, name := range orderClients(s.Clients) {
		b := Badge{Client: name, Control: true}
		for _, r := range s.Runs {
			if clientName(r.Run) != name {
				continue
			}
			b.Runs++
			b.Duplicates += r.Report.Duplicates
			if r.Holds() {
				b.Held++
			}
			if r.Expect != "break" {
				b.Control = false
			}
		}
		out = append(out, b)
	}
	return out
}

// HasClient reports whether the scenario ran the named client.
func (s Scenario) HasClient(name string) bool { return s.Clients[name] != nil }

// Replay is the evidence that a reused key was answered from Stripe's
// saved response rather than executed again.
type Replay struct {
	Key           string `json:"key"`
	PaymentIntent string `json:"payment_intent"`
	Spec          string `json:"-"`
}

// Build aggregates Ginkgo's reports into an Audit.
func Build(reports []types.Report) (*Audit, error) {
	a := &Audit{GeneratedAt: timeNow().UTC(), Injected: map[faults.Kind]int{}, Clients: map[string]*ClientTotals{},
		Safe: ClientTotals{DoubleCharged: map[string]int64{}}, Controls: ClientTotals{DoubleCharged: map[string]int64{}}}
	suiteFailed := false
	for _, rep := range reports {
		a.Suites = append(a.Suites, rep.SuiteDescription)
		a.RunTime += rep.RunTime
		if a.GinkgoSeed == 0 {
			a.GinkgoSeed = rep.SuiteConfig.RandomSeed
		}
		if !rep.SuiteSucceeded {
			suiteFailed = true
		}
		for _, sr := range rep.SpecReports {
			if err := a.addSpec(sr); err != nil {
				return nil, err
			}
		}
	}
	a.finish(suiteFailed)
	return a, nil
}

func (a *Audit) addSpec(sr types.SpecReport) error {
	suiteLevel := sr.LeafNodeType.Is(types.NodeTypesForSuiteLevelNodes)
	if !suiteLevel {
		a.Specs.Total++
		switch {
		case sr.State == types.SpecStatePassed:
			a.Specs.Passed++
		case sr.Failed():
			a.Specs.Failed++
		default:
			a.Specs.Skipped++
		}
	}
	text := sr.FullText()
	if text == "" {
		text = sr.LeafNodeType.String()
	}
	loc := location(sr.LeafNodeLocation)
	var runs []SpecRun
	for _, e := range sr.ReportEntries {
		switch e.Name {
		case EntryRun:
			var r Run
			if err := decode(e, &r); err != nil {
				return err
			}
			runs = append(runs, SpecRun{Run: r, Spec: text, Location: loc, Failed: sr.Failed()})
		case EntryBackoff:
			var b Backoff
			if err := decode(e, &b); err != nil {
				return err
			}
			a.Backoffs = append(a.Backoffs, b)
		case EntryKeys:
			var k KeyStrategy
			if err := decode(e, &k); err != nil {
				return err
			}
			a.Keys = append(a.Keys, k)
		case EntryCollision:
			var o payments.Outcome
			if err := decode(e, &o); err != nil {
				return err
			}
			a.Collisions = append(a.Collisions, o)
		case EntryAudit:
			var t AuditTrail
			if err := decode(e, &t); err != nil {
				return err
			}
			if a.Trail == nil {
				a.Trail = &t
			} else {
				a.Trail.Rows = append(a.Trail.Rows, t.Rows...)
			}
		case EntryReplay:
			var r Replay
			if err := decode(e, &r); err == nil && r.Key != "" {
				r.Spec = text
				a.Replays = append(a.Replays, r)
			}
		}
	}
	a.Runs = append(a.Runs, runs...)
	if sr.Failed() {
		msg := sr.Failure.Message
		if msg == "" {
			msg = sr.Failure.ForwardedPanic
		}
		floc := loc
		if sr.Failure.Location.FileName != "" {
			floc = location(sr.Failure.Location)
		}
		a.FailedSpecs = append(a.FailedSpecs, FailedSpec{Text: text, State: sr.State.String(), Message: msg, Location: floc, Runs: runs})
	}
	return nil
}

func (a *Audit) finish(suiteFailed bool) {
	seeds, targets := map[int64]int{}, map[string]int{}
	byName := map[string]*Scenario{}
	for _, r := range a.Runs {
		seeds[r.Seed]++
		if r.Target != "" {
			targets[r.Target]++
		}
		name := clientName(r.Run)
		if a.Clients[name] == nil {
			a.Clients[name] = &ClientTotals{DoubleCharged: map[string]int64{}}
		}
		a.Clients[name].add(r.Run)
		if name == "safe" {
			a.Safe.add(r.Run)
		}
		if r.Expect == "break" {
			a.Controls.add(r.Run)
		}
		for k, n := range r.Injected {
			a.Injected[k] += n
		}
		sc := byName[r.Scenario]
		if sc == nil {
			sc = &Scenario{Name: r.Scenario, Clients: map[string]*ClientTotals{}}
			byName[r.Scenario] = sc
			a.Scenarios = append(a.Scenarios, Scenario{Name: r.Scenario})
		}
		sc.Runs = append(sc.Runs, r)
		if sc.Clients[name] == nil {
			sc.Clients[name] = &ClientTotals{DoubleCharged: map[string]int64{}}
		}
		sc.Clients[name].add(r.Run)
		if r.Expect != "break" && !r.Holds() {
			sc.Breaks = true
			for _, v := range r.Report.Violations {
				a.Violations = append(a.Violations, ViolationRow{Violation: v, Scenario: r.Scenario, Client: name, Spec: r.Spec})
			}
		}
	}
	for i := range a.Scenarios {
		a.Scenarios[i] = *byName[a.Scenarios[i].Name]
	}
	// Specs run in parallel, so their order in the report varies: sort by
	// name so that two reports of one seed read alike.
	sort.SliceStable(a.Scenarios, func(i, j int) bool { return a.Scenarios[i].Name < a.Scenarios[j].Name })
	a.Seed = mostCommon(seeds)
	a.Target = "unknown"
	if len(targets) == 1 {
		for t := range targets {
			a.Target = t
		}
	} else if len(targets) > 1 {
		ts := make([]string, 0, len(targets))
		for t := range targets {
			ts = append(ts, t)
		}
		sort.Strings(ts)
		a.Target = strings.Join(ts, "+")
	}
	a.Verdict = "pass"
	if suiteFailed || a.Specs.Failed > 0 || len(a.FailedSpecs) > 0 || len(a.Violations) > 0 {
		a.Verdict = "fail"
	}
}

// TotalInjected is how many faults were injected over every run.
func (a *Audit) TotalInjected() int {
	n := 0
	for _, v := range a.Injected {
		n += v
	}
	return n
}

// Pass reports whether the verdict is a pass.
func (a *Audit) Pass() bool { return a.Verdict == "pass" }

// ClientNames lists the clients that ran: safe, sdk, naive first, then
// any other subject by name.
func (a *Audit) ClientNames() []string { return orderClients(a.Clients) }

func orderClients(m map[string]*ClientTotals) []string {
	rank := map[string]int{"safe": 0, "sdk": 1, "naive": 2}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		ri, iok := rank[names[i]]
		rj, jok := rank[names[j]]
		switch {
		case iok && jok:
			return ri < rj
		case iok != jok:
			return iok
		}
		return names[i] < names[j]
	})
	return names
}

func clientName(r Run) string {
	switch {
	case r.Client != "":
		return r.Client
	case r.Report.Client != "":
		return r.Report.Client
	}
	return "unknown"
}

func mostCommon(m map[int64]int) int64 {
	var best int64
	n := -1
	for k, c := range m {
		if c > n || (c == n && k < best) {
			best, n = k, c
		}
	}
	return best
}

// decode reads an entry's value: from its JSON when it came from
// report.json, from the value itself when the report is in memory (as in
// a ReportAfterSuite).
func decode(e types.ReportEntry, v any) error {
	raw := []byte(e.Value.AsJSON)
	if len(raw) == 0 {
		var err error
		if raw, err = json.Marshal(e.Value.GetRawValue()); err != nil {
			return fmt.Errorf("report entry %q at %s: %w", e.Name, location(e.Location), err)
		}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("report entry %q at %s: %w", e.Name, location(e.Location), err)
	}
	return nil
}

func location(l types.CodeLocation) string {
	if l.FileName == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d", trimPath(l.FileName), l.LineNumber)
}

// trimPath shows a spec's file relative to the repository (specs/...),
// which reads the same on every machine.
func trimPath(p string) string {
	for _, dir := range []string{"/specs/", "/support/", "/cmd/"} {
		if i := strings.LastIndex(p, dir); i >= 0 {
			return p[i+1:]
		}
	}
	return p
}
