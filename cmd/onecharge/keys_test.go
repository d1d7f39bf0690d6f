package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckKeyRefusesAnythingButTestKeys(t *testing.T) {
	for key, want := range map[string]int{
		"":                                 0,
		"sk_test_4eC39HqLyjWDarjtT1zdp7dc": 0,
		"rk_test_4eC39HqLyjWDarjtT1zdp7dc": 0,
		"sk_live_4eC39HqLyjWDarjtT1zdp7dc": 2,
		"rk_live_4eC39HqLyjWDarjtT1zdp7dc": 2,
		"pk_test_4eC39HqLyjWDarjtT1zdp7dc": 2,
		"not-a-key":                        2,
	} {
		t.Setenv("STRIPE_API_KEY", key)
		var out, errb bytes.Buffer
		if got := run([]string{"check-key"}, &out, &errb); got != want {
			t.Errorf("check-key with %q exited %d, want %d (%s)", key, got, want, errb.String())
		}
		if key != "" && strings.Contains(out.String()+errb.String(), key) {
			t.Errorf("check-key echoed the whole key %q", key)
		}
		if want == 2 && strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
			t.Errorf("want one line, got %q", errb.String())
		}
	}
}

// `STRIPE_API_KEY=sk_live_... make verify` must stop before the suite
// starts: no stripe-mock, no stack, no request, no report.
func TestMakeVerifyRefusesALiveKey(t *testing.T) {
	if testing.Short() {
		t.Skip("runs make")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	reports := t.TempDir()
	cmd := exec.Command("make", "-s", "verify", "REPORTS="+reports)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "STRIPE_API_KEY=sk_live_anything1234567")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("make verify accepted a live key:\n%s", out)
	}
	if !strings.Contains(string(out), "live-mode key") || strings.Contains(string(out), "sk_live_anything1234567") {
		t.Fatalf("want one sentence naming a live-mode key, without the key; got:\n%s", out)
	}
	if entries, _ := os.ReadDir(reports); len(entries) != 0 {
		t.Fatalf("the refused run wrote %d files to %s", len(entries), reports)
	}
}

func TestScanFindsALeakedKey(t *testing.T) {
	dir := t.TempDir()
	secret := "sk_test_leakedKey0123456789"
	if err := os.WriteFile(filepath.Join(dir, "audit.html"), []byte("<p>key "+secret+"</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STRIPE_API_KEY", secret)
	var out, errb bytes.Buffer
	if got := run([]string{"scan", "--dir", dir}, &out, &errb); got != 1 {
		t.Fatalf("scan exited %d on a leaked key: %s", got, errb.String())
	}
	if strings.Contains(errb.String(), secret) {
		t.Fatalf("the scan's own message leaked the key: %s", errb.String())
	}
}
