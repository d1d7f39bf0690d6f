package apikey

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	liveKey  = "sk_live_51HxYzAbCdEfGhIjKlMnOpQrStUvWx9876"
	testKey1 = "sk_test_51HxYzAbCdEfGhIjKlMnOpQrStUvWx1234"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		key  string
		want error
		says string
	}{
		{testKey1, nil, ""},
		{"rk_test_abcdefgh", nil, ""},
		{liveKey, ErrLive, "STRIPE_API_KEY is a live-mode key (sk_live_…9876): onecharge never sends requests with live keys; use a test-mode key (sk_test_…) from the Stripe dashboard"},
		{"rk_live_abcdefgh5678", ErrLive, "rk_live_…5678"},
		{`"` + liveKey + `"`, ErrLive, "live-mode key"},
		{"pk_test_abcdefgh4321", ErrPublishable, "publishable key (pk_test_…4321)"},
		{"pk_live_abcdefgh4321", ErrPublishable, "publishable key"},
		{"", ErrEmpty, "is empty"},
		{"   ", ErrEmpty, "is empty"},
		{"sk_test_123", ErrMalformed, "truncated"},
		{"sk_test_abc_defghijkl", ErrMalformed, "truncated"},
		{testKey1 + "\n", ErrMalformed, "spaces or quotes"},
		{"'" + testKey1 + "'", ErrMalformed, "spaces or quotes"},
		{"sk_TEST_abcdefgh", ErrMalformed, "not a Stripe API key"},
		{"hunter2hunter2hunter2", ErrMalformed, "not a Stripe API key (…ter2)"},
		{"short", ErrMalformed, "(…)"},
	}
	for _, c := range cases {
		err := Check(c.key)
		if c.want == nil {
			if err != nil {
				t.Errorf("Check(%q) = %v, want nil", c.key, err)
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("Check(%q) = %v, want %v", c.key, err, c.want)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.says) {
			t.Errorf("Check(%q) = %q, want it to say %q", c.key, msg, c.says)
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("Check(%q): message is not one line: %q", c.key, msg)
		}
		if bare := strings.Trim(strings.TrimSpace(c.key), `"'`); len(bare) > 8 && strings.Contains(msg, bare) {
			t.Errorf("Check(%q) echoed the key: %q", c.key, msg)
		}
	}
}

func TestRedact(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Authorization: Bearer " + testKey1, "Authorization: Bearer sk_test_…1234"},
		{"key=" + liveKey + ".", "key=sk_live_…9876."},
		{"rk_test_abcdefgh5678 and pk_live_abcdefgh4321", "rk_test_…5678 and pk_live_…4321"},
		{"sk_test_123", "sk_test_…"},
		{`{"id":"pi_3Mt","client_secret":"pi_3Mt_secret_AbCdEfGh1234WxYz"}`, `{"id":"pi_3Mt","client_secret":"pi_3Mt_secret…WxYz"}`},
		{`seti_1Nx_secret_QwErTyUiOpAs9999 done`, `seti_1Nx_secret…9999 done`},
		{`cs_test_a1_secret_short`, `cs_test_a1_secret…`},
		{`"client_secret": "opaque-value-0000-1111"`, `"client_secret": "…1111"`},
		{`{\"client_secret\":\"opaque-value-0000-1111\"}`, `{\"client_secret\":\"…1111\"}`},
		{`"client_secret": null`, `"client_secret": null`},
		{`GET /v1/payment_intents/pi_1?client_secret=abcdefghijkl5678&expand=x`, `GET /v1/payment_intents/pi_1?client_secret=…5678&expand=x`},
		{"Authorization: Basic c2tfdGVzdF9hYmNkZWZnaDo=", "Authorization: Basic …"},
		{"whsec_abcdefghijklmnop", "whsec_…mnop"},
		{"nothing secret here: pi_123, req_abc", "nothing secret here: pi_123, req_abc"},
	}
	for _, c := range cases {
		got := Redact(c.in)
		if got != c.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
		if again := Redact(got); again != got {
			t.Errorf("Redact is not idempotent on %q: %q", got, again)
		}
	}
}

func TestRedactorMasksGivenSecrets(t *testing.T) {
	r := NewRedactor("my-own-token-abcd", "")
	if got := r.Redact("token=my-own-token-abcd;"); got != "token=…abcd;" {
		t.Fatalf("got %q", got)
	}
}

func TestWriterRedactsKeysSplitAcrossWrites(t *testing.T) {
	var out bytes.Buffer
	w := RedactingWriter(&out, "custom-secret-zz99")
	line := "using " + testKey1 + " and custom-secret-zz99\nlast line " + liveKey
	for i := 0; i < len(line); i += 5 { // a key never arrives whole in one Write
		end := min(i+5, len(line))
		if n, err := w.Write([]byte(line[i:end])); err != nil || n != end-i {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if strings.Contains(out.String(), "last line") {
		t.Fatalf("a partial line was written before Flush: %q", out.String())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "using sk_test_…1234 and …zz99\nlast line sk_live_…9876"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}

func TestScanDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	clean := Redact("key " + testKey1 + "\n" + `{"client_secret":"pi_1_secret_AbCdEfGh1234WxYz"}` + "\nsk_test_123 is stripe-mock's key\n")
	write("clean.txt", clean)
	write("sub/leak.json", "{\n"+`"client_secret": "pi_1_secret_AbCdEfGh1234WxYz"`+"\n}\n")
	write("sub/deeper/log.txt", "ok\nok\nAuthorization: Bearer "+testKey1+"\n")
	write("custom.txt", "token tok-0123456789\n")
	write("quoted.json", `{"out":"{\"client_secret\":\"opaque-value-0000-1111\"}"}`)

	got, err := ScanDir(dir, testKey1, "tok-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		filepath.Join(dir, "custom.txt") + ":1: the given secret …6789":                 true,
		filepath.Join(dir, "quoted.json") + ":1: a client_secret value …1111":           true,
		filepath.Join(dir, "sub/deeper/log.txt") + ":3: the given secret sk_test_…1234": true,
		filepath.Join(dir, "sub/leak.json") + ":2: a client secret pi_1_secret…WxYz":    true,
	}
	if len(got) != len(want) {
		t.Errorf("got %d findings, want %d: %v", len(got), len(want), got)
	}
	for _, f := range got {
		if !want[f.String()] {
			t.Errorf("unexpected finding %q", f)
		}
		if strings.Contains(f.What, testKey1) || strings.Contains(f.What, "_secret_") {
			t.Errorf("finding shows the secret: %q", f)
		}
	}
	// Without the key given, a whole key is still found by its shape.
	got, _ = ScanDir(filepath.Join(dir, "sub", "deeper"))
	if len(got) != 1 || got[0].What != "an API key sk_test_…1234" {
		t.Errorf("shape scan: %v", got)
	}
	if _, err := ScanDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing directory was scanned without error")
	}
}
