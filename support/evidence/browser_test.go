package evidence

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const chromiumPath = "/usr/bin/chromium"

// sectionIDs are the sections every audit.html has, in order.
var sectionIDs = []string{"verdict", "keys", "retries", "collision", "audit-trail", "recommendations", "comparison", "backoff", "replay"}

// chromium runs headless Chromium on a local file and returns what it
// wrote to stdout and stderr. Everything that would reach the network
// (updates, sync, QUIC) is off: the page must render from the file alone.
func chromium(t *testing.T, page string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0"}
	cmd := exec.CommandContext(ctx, chromiumPath, append(append(base, args...), "file://"+page)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
	}
	return out.String(), errb.String()
}

// consoleErrors picks the page's console output out of Chromium's log.
// Chromium logs every console message as "INFO:CONSOLE" whatever its
// level, and audit.html writes nothing to the console, so any console
// line, and any uncaught exception, is an error.
func consoleErrors(stderr string) []string {
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, ":CONSOLE") || strings.Contains(line, "Uncaught") {
			out = append(out, line)
		}
	}
	return out
}

func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skip("install Debian's chromium package (apt-get install -y chromium) to run the browser check")
	}
}

func writePage(t *testing.T, dir string, a *Audit) string {
	t.Helper()
	page := filepath.Join(dir, "audit.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := WriteHTML(f, a); err != nil {
		t.Fatal(err)
	}
	return page
}

func TestAuditHTMLInChromium(t *testing.T) {
	needChromium(t)
	cases := map[string]func(t *testing.T) *Audit{
		"passing": func(t *testing.T) *Audit { return build(t, loadFixture(t)) },
		"failing": func(t *testing.T) *Audit { r, _ := failing(t); return build(t, r) },
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			a := mk(t)
			page := writePage(t, t.TempDir(), a)
			dom, stderr := chromium(t, page, "--dump-dom")
			if errs := consoleErrors(stderr); len(errs) > 0 {
				t.Errorf("audit.html wrote to the console:\n%s", strings.Join(errs, "\n"))
			}
			want := sectionIDs
			if !a.Pass() {
				want = append([]string{"verdict", "failures"}, sectionIDs[1:]...)
			}
			last := -1
			for _, id := range want {
				i := strings.Index(dom, `<section id="`+id+`"`)
				if i < 0 {
					t.Errorf("the rendered page has no section #%s", id)
					continue
				}
				if i < last {
					t.Errorf("section #%s is out of order", id)
				}
				last = i
			}
			if name != "passing" {
				return
			}
			dir := os.Getenv("ONECHARGE_SCREENSHOT_DIR")
			if dir == "" {
				dir = t.TempDir()
			}
			shot, err := filepath.Abs(filepath.Join(dir, "audit.png"))
			if err != nil {
				t.Fatal(err)
			}
			os.Remove(shot)
			chromium(t, page, "--screenshot="+shot, "--window-size=1280,2400")
			if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
				t.Errorf("no screenshot at %s (%v)", shot, err)
			} else {
				t.Logf("screenshot: %s", shot)
			}
		})
	}
}

// The console check must be able to fail: a page that throws is caught.
func TestConsoleErrorsAreCaught(t *testing.T) {
	needChromium(t)
	page := filepath.Join(t.TempDir(), "bad.html")
	os.WriteFile(page, []byte(`<!DOCTYPE html><p>x</p><script>notDefined();</script>`), 0o644)
	_, stderr := chromium(t, page, "--dump-dom")
	if len(consoleErrors(stderr)) == 0 {
		t.Errorf("an uncaught ReferenceError went unnoticed; Chromium's log:\n%s", stderr)
	}
}
