package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportExitCodes(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"report", "--in", "../../support/evidence/testdata/report.json", "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d on the passing fixture: %s", code, stderr.String())
	}
	for _, f := range []string{"audit.html", "summary.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	if !strings.Contains(stdout.String(), "PaymentIntents") || !strings.Contains(stdout.String(), "PASS") {
		t.Errorf("no table or verdict in:\n%s", stdout.String())
	}

	stderr.Reset()
	if code := run([]string{"report", "--in", filepath.Join(out, "missing.json"), "--out", out}, &stdout, &stderr); code != 2 {
		t.Errorf("exit %d on a missing report, want 2", code)
	}
	if !strings.Contains(stderr.String(), "run `make verify` first") {
		t.Errorf("stderr %q does not say what to do", stderr.String())
	}

	// The negative controls put behind the gate: their duplicates now fail it.
	fixture, err := os.ReadFile("../../support/evidence/testdata/report.json")
	if err != nil {
		t.Fatal(err)
	}
	gated := filepath.Join(out, "gated.json")
	os.WriteFile(gated, bytes.ReplaceAll(fixture, []byte(`\"expect\":\"break\"`), []byte(`\"expect\":\"hold\"`)), 0o644)
	stdout.Reset()
	if code := run([]string{"report", "--in", gated, "--out", out}, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d with duplicates behind the gate, want 1:\n%s", code, stdout.String())
	}
	if !strings.Contains(stdout.String(), "FAIL") {
		t.Errorf("no FAIL verdict in:\n%s", stdout.String())
	}

	bad := filepath.Join(out, "bad.json")
	os.WriteFile(bad, []byte("[{"), 0o644)
	if code := run([]string{"report", "--in", bad, "--out", out}, &stdout, &stderr); code != 2 {
		t.Errorf("exit %d on a broken report, want 2", code)
	}
}
