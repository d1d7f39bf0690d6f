package evidence

import (
	"regexp"
	"strings"

	"github.com/travelbook/onecharge/support/stripeapi"
)

// secretPattern matches what must never reach a report: API keys (secret,
// restricted, publishable, test or live) and PaymentIntent client secrets.
var secretPattern = regexp.MustCompile(`(?:(?:sk|rk|pk)_(?:test|live)_\w+|pi_\w+?_secret_\w+)`)

// redact masks every secret in s, keeping a four-character suffix so that a
// reader can still tell which key was used ("sk_test_…6789").
func redact(s string) string {
	return secretPattern.ReplaceAllStringFunc(s, func(m string) string {
		if i := strings.Index(m, "_secret_"); i >= 0 && strings.HasPrefix(m, "pi_") {
			rest := m[i+len("_secret_"):]
			return m[:i] + "_secret_…" + suffix(rest)
		}
		return stripeapi.Redact(m)
	})
}

func suffix(s string) string {
	if len(s) <= 4 {
		return ""
	}
	return s[len(s)-4:]
}

// redactBytes masks every secret in a rendered output. Every writer passes
// its whole output through it, so a secret cannot slip into a report
// through a field the templates did not expect to hold one.
func redactBytes(b []byte) []byte {
	return secretPattern.ReplaceAllFunc(b, func(m []byte) []byte { return []byte(redact(string(m))) })
}
