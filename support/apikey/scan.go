package apikey

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Finding is a secret found in a file. What names the kind of secret and
// shows it redacted, never whole.
type Finding struct {
	Path string
	Line int
	What string
}

func (f Finding) String() string { return fmt.Sprintf("%s:%d: %s", f.Path, f.Line, f.What) }

var (
	// fullKey is an unredacted secret or restricted key. Publishable keys
	// are public by design; stripe-mock's "sk_test_123" is a well-known
	// dummy, shorter than any real key.
	fullKey = regexp.MustCompile(`(?:sk|rk)_(?:test|live)_[A-Za-z0-9]{8,}`)
	// rawClientSecret is an unredacted client secret.
	rawClientSecret = regexp.MustCompile(`[A-Za-z0-9_]*_secret_[A-Za-z0-9]+`)
)

// ScanDir reads every regular file under dir and reports each line holding
// one of secrets (each non-empty one), a client secret (…_secret_…), a
// whole sk_ or rk_ key, or a "client_secret" JSON value that is not
// redacted. It is how the suite proves that no secret reached reports/.
// Paths in findings are dir joined with the file's relative path.
func ScanDir(dir string, secrets ...string) ([]Finding, error) {
	var wanted []string
	for _, s := range secrets {
		if s != "" {
			wanted = append(wanted, s)
		}
	}
	var out []Finding
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out = append(out, scan(path, b, wanted)...)
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("scanning %s for secrets: %w", dir, err)
	}
	return out, nil
}

func scan(path string, b []byte, secrets []string) []Finding {
	var out []Finding
	for i, line := range bytes.Split(b, []byte("\n")) {
		s := string(line)
		add := func(what string) { out = append(out, Finding{Path: path, Line: i + 1, What: what}) }
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				add("the given secret " + maskSecret(secret))
			}
		}
		for _, m := range fullKey.FindAllString(s, -1) {
			if given(m, secrets) {
				continue // already reported as the given secret
			}
			add("an API key " + Redact(m))
		}
		for _, m := range rawClientSecret.FindAllString(s, -1) {
			add("a client secret " + Redact(m))
		}
		for _, m := range jsonClientSecret.FindAllStringSubmatch(s, -1) {
			if v := m[2]; v != "" && !strings.Contains(v, "…") && !strings.Contains(v, "_secret_") {
				add("a client_secret value " + suffix(v))
			}
		}
	}
	return out
}

func given(m string, secrets []string) bool {
	for _, s := range secrets {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}
