package evidence

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// now pins generated_at so that outputs are golden.
var now = time.Date(2025, 9, 9, 10, 50, 0, 0, time.UTC)

func TestMain(m *testing.M) {
	timeNow = func() time.Time { return now }
	os.Exit(m.Run())
}

const fixture = "testdata/report.json"

func loadFixture(t *testing.T) []types.Report {
	t.Helper()
	reports, err := Load(fixture)
	if err != nil {
		t.Fatal(err)
	}
	return reports
}

func build(t *testing.T, reports []types.Report) *Audit {
	t.Helper()
	a, err := Build(reports)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func render(t *testing.T, a *Audit) (summary, html string) {
	t.Helper()
	var s, h bytes.Buffer
	if err := WriteSummary(&s, a); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(&h, a); err != nil {
		t.Fatal(err)
	}
	return s.String(), h.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run `go test ./support/evidence -update` to create it", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the output; if the change is meant, run `go test ./support/evidence -update` and review the diff.\ngot:\n%s", path, got)
	}
}

// structure lists the page's sections and headings in order: the shape
// a reader relies on, without the numbers of one run.
func structure(html string) string {
	re := regexp.MustCompile(`<section id="([^"]+)">|<h([23])>(.*?)</h[23]>`)
	var b strings.Builder
	for _, m := range re.FindAllStringSubmatch(html, -1) {
		switch {
		case m[1] != "":
			b.WriteString("section #" + m[1] + "\n")
		default:
			b.WriteString(strings.Repeat("  ", len(m[2])-1) + "h" + m[2] + " " + m[3] + "\n")
		}
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	a := build(t, loadFixture(t))
	summary, html := render(t, a)
	golden(t, "summary.golden.json", summary)
	golden(t, "audit.structure.golden", structure(html))
}

func TestFixtureSummary(t *testing.T) {
	a := build(t, loadFixture(t))
	var s Summary
	summary, html := render(t, a)
	if err := json.Unmarshal([]byte(summary), &s); err != nil {
		t.Fatal(err)
	}
	if s.Verdict != "pass" || s.Target != "stripe-mock" || s.Seed != 20261204 || s.GinkgoSeed == 0 {
		t.Errorf("verdict %q target %q seed %d ginkgo_seed %d", s.Verdict, s.Target, s.Seed, s.GinkgoSeed)
	}
	if s.Specs != (SpecCounts{Total: 13, Passed: 12, Failed: 0, Skipped: 1}) {
		t.Errorf("specs %+v", s.Specs)
	}
	for _, c := range []string{"safe", "sdk", "naive", "new-key"} {
		if s.Clients[c] == nil {
			t.Errorf("client %q missing from %v", c, s.Clients)
		}
	}
	// The blip's naive control double-charges, and the new-key control once:
	// counted for their clients, never in the verdict.
	if n := s.Clients["naive"].Duplicates; n == 0 {
		t.Errorf("naive duplicates = 0, want the blip's duplicates")
	}
	if d := s.Clients["safe"]; d.Duplicates != 0 || total(d.DoubleCharged) != 0 {
		t.Errorf("safe client: %+v", d)
	}
	if len(s.Violations) != 0 || s.Replay != "SEED=20261204 make verify" {
		t.Errorf("violations %v, replay %q", s.Violations, s.Replay)
	}
	if !strings.Contains(summary, `"generated_at": "2025-09-09T10:50:00Z"`) {
		t.Error("generated_at is not the pinned time")
	}
	for _, want := range []string{"SEED=20261204 make verify", "EUR 0.00", `id="verdict"`, "PASS"} {
		if !strings.Contains(html, want) {
			t.Errorf("audit.html lacks %q", want)
		}
	}
	if strings.Contains(html, `id="failures"`) {
		t.Error("a passing run shows a failures section")
	}
	if regexp.MustCompile(`(?i)(src|href)="https?:`).MatchString(html) {
		t.Error("audit.html refers to the network; it must open offline")
	}
}

// setEntry rewrites the first report entry for which edit returns true.
func editRuns(t *testing.T, reports []types.Report, edit func(sr *types.SpecReport, r *Run) bool) {
	t.Helper()
	for i := range reports[0].SpecReports {
		sr := &reports[0].SpecReports[i]
		for j, e := range sr.ReportEntries {
			if e.Name != EntryRun {
				continue
			}
			var r Run
			if err := decode(e, &r); err != nil {
				t.Fatal(err)
			}
			if edit(sr, &r) {
				sr.ReportEntries[j].Value = types.WrapEntryValue(r)
				return
			}
		}
	}
	t.Fatal("no run matched the edit")
}

// failing puts the new-key control behind the gate: a run expected to hold
// with a duplicate, as when the Naive client is wired in by mistake.
func failing(t *testing.T) ([]types.Report, *Run) {
	reports := loadFixture(t)
	var got Run
	editRuns(t, reports, func(sr *types.SpecReport, r *Run) bool {
		if r.Scenario != "key reuse: new key" {
			return false
		}
		r.Expect = "hold"
		sr.State = types.SpecStateFailed
		sr.Failure = types.Failure{Message: "Expected every booking to be charged exactly once", Location: sr.LeafNodeLocation}
		got = *r
		return true
	})
	return reports, &got
}

func TestFailingRunNamesBookingKeysAndRequests(t *testing.T) {
	reports, run := failing(t)
	a := build(t, reports)
	if a.Verdict != "fail" {
		t.Fatalf("verdict %q, want fail", a.Verdict)
	}
	summary, html := render(t, a)
	if !strings.Contains(summary, `"verdict": "fail"`) {
		t.Error("summary.json does not say fail")
	}
	v := run.Report.Violations[0]
	if len(v.Keys) < 2 || len(v.RequestIDs) < 2 {
		t.Fatalf("fixture violation lacks keys or requests: %+v", v)
	}
	failures := html[strings.Index(html, `id="failures"`):strings.Index(html, `id="keys"`)]
	if strings.Index(html, `id="failures"`) > strings.Index(html, `id="keys"`) {
		t.Error("failures come after the evidence; they must come first")
	}
	for _, want := range append(append([]string{v.Booking, "Expected every booking to be charged exactly once", "specs/singlecharge_test.go:"}, v.Keys...), v.RequestIDs...) {
		if !strings.Contains(failures, want) {
			t.Errorf("failures section lacks %q", want)
		}
		if want != "specs/singlecharge_test.go:" && !strings.Contains(summary, want) && want != "Expected every booking to be charged exactly once" && want != v.Booking {
			t.Errorf("summary.json lacks %q", want)
		}
	}
	var table bytes.Buffer
	if err := WriteTable(&table, a); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "FAIL") || !strings.Contains(table.String(), v.Booking) {
		t.Errorf("terminal table does not point at the failure:\n%s", table.String())
	}
}

func TestFailedSpecAloneFails(t *testing.T) {
	reports := loadFixture(t)
	reports[0].SpecReports[0].State = types.SpecStatePanicked
	a := build(t, reports)
	if a.Verdict != "fail" || a.Specs.Failed != 1 {
		t.Errorf("verdict %q with %d failed specs, want fail with 1", a.Verdict, a.Specs.Failed)
	}
}

func TestNegativeControlsDoNotFail(t *testing.T) {
	a := build(t, loadFixture(t))
	if a.Controls.Duplicates == 0 {
		t.Fatal("fixture has no duplicate in its negative controls")
	}
	if !a.Pass() {
		t.Errorf("verdict %q: negative controls must not count against the verdict", a.Verdict)
	}
}

func TestSecretsNeverReachOutputs(t *testing.T) {
	reports, _ := failing(t)
	editRuns(t, reports, func(sr *types.SpecReport, r *Run) bool {
		if r.Scenario != "key reuse: new key" {
			return false
		}
		r.Report.Violations[0].Detail += " with sk_test_abc123456789 and pi_x_secret_y"
		r.Outcomes[0].Attempts[0].Error = "sent with Authorization: Bearer sk_test_abc123456789; client_secret pi_x_secret_y"
		sr.Failure.Message += "; key sk_test_abc123456789"
		return true
	})
	a := build(t, reports)
	summary, html := render(t, a)
	var table bytes.Buffer
	if err := WriteTable(&table, a); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"summary.json": summary, "audit.html": html, "table": table.String()} {
		for _, secret := range []string{"sk_test_abc123456789", "pi_x_secret_y", "abc12345"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s discloses %q", name, secret)
			}
		}
	}
	if !strings.Contains(html, "sk_test_…6789") || !strings.Contains(summary, "sk_test_…6789") {
		t.Error("the masked key (sk_test_…6789) should still say which key it was")
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"key sk_test_abc123456789 used": "key sk_test_…6789 used",
		"sk_live_ZZZZ1234abcd":          "sk_live_…abcd",
		"rk_live_9999xyz0":              "rk_live_…xyz0",
		"secret pi_3Abc_secret_Qwerty9": "secret pi_3Abc_secret_…rty9",
		"pi_x_secret_y":                 "pi_x_secret_…",
		"pi_Rogr2Nf9WH205bx tb:v1:a:b":  "pi_Rogr2Nf9WH205bx tb:v1:a:b",
		"":                              "",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMoney(t *testing.T) {
	for _, c := range []struct {
		cur  string
		amt  int64
		want string
	}{
		{"eur", 240000, "EUR 2,400.00"},
		{"eur", 185005, "EUR 1,850.05"},
		{"usd", 99, "USD 0.99"},
		{"eur", 123456789012, "EUR 1,234,567,890.12"},
		{"eur", -310000, "EUR -3,100.00"},
	} {
		if got := money(c.cur, c.amt); got != c.want {
			t.Errorf("money(%q, %d) = %q, want %q", c.cur, c.amt, got, c.want)
		}
	}
	if got := moneyMap(map[string]int64{"usd": 100, "eur": 5}); got != "EUR 0.05, USD 1.00" {
		t.Errorf("moneyMap = %q", got)
	}
}

func TestChartFlagsDelaysOutsideTheEnvelope(t *testing.T) {
	ms := time.Millisecond
	c := newChart(Backoff{Policy: "p", Base: 10 * ms, Cap: 80 * ms,
		Delays: []time.Duration{5 * ms, 30 * ms, 90 * ms}, Lo: []time.Duration{0, 10 * ms, 20 * ms}, Hi: []time.Duration{10 * ms, 20 * ms, 40 * ms}})
	if c.Outside != 2 || !c.Points[1].Out || !c.Points[2].Out || c.Points[0].Out {
		t.Errorf("outside = %d, points %+v", c.Outside, c.Points)
	}
	bottom, top := float64(c.Plot.Y+c.Plot.H), float64(c.Plot.Y)
	for _, p := range c.Points {
		if p.Y > bottom || p.Y < top {
			t.Errorf("point %+v is off the plot (%v..%v)", p, top, bottom)
		}
	}
}

func TestLoadSaysWhatIsWrong(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "report.json")); !errors.Is(err, ErrNoReport) {
		t.Errorf("missing file: %v, want ErrNoReport", err)
	}
	bad := filepath.Join(t.TempDir(), "report.json")
	os.WriteFile(bad, []byte("{not json"), 0o644)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "not a Ginkgo JSON report") {
		t.Errorf("broken file: %v", err)
	}
}

func TestAuditTrailRenderedWhenPresent(t *testing.T) {
	a := build(t, loadFixture(t))
	_, html := render(t, a)
	if !strings.Contains(html, "No audit trail recorded") {
		t.Error("without a trail the page must say no audit trail was recorded")
	}
	reports := loadFixture(t)
	sr := &reports[0].SpecReports[0]
	sr.ReportEntries = append(sr.ReportEntries, types.ReportEntry{Name: EntryAudit, Value: types.WrapEntryValue(AuditTrail{
		Store: "sqlite", Path: "reports/keys.db", Rows: []AuditRow{{Key: "tb:v1:ag_9:bk_trail:create_payment", Booking: "bk_trail", State: "succeeded", Attempts: 2, PaymentIntent: "pi_trail"}}})})
	_, html = render(t, build(t, reports))
	if strings.Contains(html, "No audit trail recorded") || !strings.Contains(html, "tb:v1:ag_9:bk_trail:create_payment") {
		t.Error("the key store's trail is not rendered")
	}
}
