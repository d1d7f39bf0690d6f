package evidence

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
)

//go:embed audit.html.tmpl
var auditTemplate string

var page = template.Must(template.New("audit").Funcs(template.FuncMap{
	"money":    money,
	"moneyMap": moneyMap,
	"total":    total,
	"ms":       ms,
	"redact":   redact,
	"join":     func(s []string) string { return strings.Join(s, ", ") },
	"upper":    strings.ToUpper,
	"add":      func(a, b int) int { return a + b },
	"divide":   func(a, b int) int { return a / b },
	"minus":    func(a, b float64) float64 { return a - b },
}).Parse(auditTemplate))

// view is what the template reads: the Audit and what is derived from it.
type view struct {
	*Audit
	Timelines  map[string][]runTimeline
	Comparison []comparisonRow
	KeyRows    []keyRow
	Replayed   []replayedAttempt
	NReplayed  int
	Charts     []chart
	ReplayJSON string
	Command    string
	Faults     []kindCount
}

type kindCount struct {
	Kind string
	N    int
}

// WriteHTML renders audit.html: one self-contained page (inline CSS, SVG
// and a few lines of script; nothing fetched), with every secret masked.
func WriteHTML(w io.Writer, a *Audit) error {
	v := view{Audit: a, Timelines: map[string][]runTimeline{}, Comparison: comparison(a), KeyRows: keyRows(a),
		Charts: charts(a.Backoffs), ReplayJSON: replayDoc(a), Command: replayCommand(a)}
	v.Replayed, v.NReplayed = replayed(a, 6)
	for _, sc := range a.Scenarios {
		for _, r := range sc.Runs {
			v.Timelines[sc.Name] = append(v.Timelines[sc.Name], timeline(r))
		}
	}
	for k, n := range a.Injected {
		v.Faults = append(v.Faults, kindCount{string(k), n})
	}
	sortKinds(v.Faults)
	var buf bytes.Buffer
	if err := page.Execute(&buf, v); err != nil {
		return fmt.Errorf("render audit.html: %w", err)
	}
	if _, err := w.Write(redactBytes(buf.Bytes())); err != nil {
		return fmt.Errorf("write audit.html: %w", err)
	}
	return nil
}

func sortKinds(s []kindCount) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && (s[j].N > s[j-1].N || (s[j].N == s[j-1].N && s[j].Kind < s[j-1].Kind)); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
