package apikey

import (
	"bytes"
	"encoding/base64"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/travelbook/onecharge/support/stripeapi"
)

var (
	// keyPattern is any Stripe API key, test or live, secret, restricted
	// or publishable. Redacted text ("sk_test_…abcd") no longer matches, so
	// redacting twice changes nothing.
	keyPattern = regexp.MustCompile(`(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9]+`)
	// clientSecretPattern is the secret half of a client secret, whatever
	// object it belongs to: pi_…_secret_…, seti_…_secret_…, cs_test_…_secret_….
	clientSecretPattern = regexp.MustCompile(`_secret_([A-Za-z0-9]+)`)
	// jsonClientSecret is a "client_secret" field's string value, also when
	// the JSON is itself quoted inside JSON (Ginkgo's report.json keeps
	// captured output as strings).
	jsonClientSecret = regexp.MustCompile(`(\\*"client_secret\\*"\s*:\s*\\*")([^"\\]*)`)
	// formClientSecret is client_secret in a query string or form body.
	formClientSecret = regexp.MustCompile(`(client_secret=)([^&\s"'\\]+)`)
	// basicAuth carries a key base64-encoded, which no other pattern sees.
	basicAuth = regexp.MustCompile(`(Basic\s+)([A-Za-z0-9+/]{8,}={0,2})`)
	// webhookSecret is a webhook signing secret.
	webhookSecret = regexp.MustCompile(`whsec_[A-Za-z0-9+/=]+`)
)

// Redact masks every API key and client secret in s, keeping a short
// suffix so that a reader can still tell which one was meant:
//
//	sk_test_51H…           → sk_test_…wxyz
//	pi_3Mt_secret_Ab12Cd34 → pi_3Mt_secret…Cd34
//	"client_secret": "x…"  → "client_secret": "…wxyz"
//	Authorization: Basic … → Authorization: Basic …
//
// The masked forms never contain "_secret_" or a whole key, so ScanDir
// does not flag redacted text.
func Redact(s string) string { return (&Redactor{}).Redact(s) }

// Redactor is Redact plus secrets of the caller's own (a key that does not
// look like a Stripe key, say), masked wherever they appear.
type Redactor struct {
	secrets []string
}

// NewRedactor returns a Redactor that also masks each non-empty secret.
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		if s != "" {
			r.secrets = append(r.secrets, s)
		}
	}
	return r
}

// Redact masks s; see the package function Redact.
func (r *Redactor) Redact(s string) string {
	for _, secret := range r.secrets {
		if strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, maskSecret(secret))
		}
	}
	s = clientSecretPattern.ReplaceAllStringFunc(s, func(m string) string {
		return "_secret" + suffix(strings.TrimPrefix(m, "_secret_"))
	})
	s = jsonClientSecret.ReplaceAllStringFunc(s, func(m string) string {
		sub := jsonClientSecret.FindStringSubmatch(m)
		return sub[1] + maskValue(sub[2])
	})
	s = formClientSecret.ReplaceAllStringFunc(s, func(m string) string {
		sub := formClientSecret.FindStringSubmatch(m)
		return sub[1] + maskValue(sub[2])
	})
	s = basicAuth.ReplaceAllStringFunc(s, func(m string) string {
		sub := basicAuth.FindStringSubmatch(m)
		if _, err := base64.StdEncoding.DecodeString(sub[2]); err != nil {
			return m
		}
		return sub[1] + "…"
	})
	s = webhookSecret.ReplaceAllStringFunc(s, func(m string) string {
		return "whsec_" + suffix(strings.TrimPrefix(m, "whsec_"))
	})
	return keyPattern.ReplaceAllStringFunc(s, stripeapi.Redact)
}

// suffix is "…" and the last four characters, or only "…" when that would
// show too much of a short secret.
func suffix(rest string) string {
	if len(rest) < 12 {
		return "…"
	}
	return "…" + rest[len(rest)-4:]
}

// maskValue masks a client_secret field's value unless an earlier pattern
// already did (it then holds "…").
func maskValue(v string) string {
	if v == "" || strings.Contains(v, "…") {
		return v
	}
	return suffix(v)
}

// maskSecret masks a caller's secret like a key when it is one.
func maskSecret(s string) string {
	if keyPattern.MatchString(s) {
		return stripeapi.Redact(s)
	}
	return suffix(s)
}

// maxLine bounds how much Writer holds back waiting for a newline; a longer
// line is redacted and written in pieces (a secret cut in two by the
// boundary could then slip through, so keep log lines shorter).
const maxLine = 1 << 20

// Writer redacts whatever passes through it, a line at a time, so that a
// key split across two Write calls is still seen whole. Call Flush (or
// Close) at the end to write a last line that has no newline. It is safe
// for concurrent use.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	r   *Redactor
	buf []byte
}

// RedactingWriter returns a Writer that redacts into w, masking the given
// secrets as well as every key and client secret.
func RedactingWriter(w io.Writer, secrets ...string) *Writer {
	return &Writer{w: w, r: NewRedactor(secrets...)}
}

// Write buffers p and writes every complete line, redacted. It reports
// len(p) unless the underlying writer failed.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	end := bytes.LastIndexByte(w.buf, '\n') + 1
	if end == 0 && len(w.buf) >= maxLine {
		end = len(w.buf)
	}
	if end == 0 {
		return len(p), nil
	}
	out := w.r.Redact(string(w.buf[:end]))
	w.buf = append(w.buf[:0], w.buf[end:]...)
	if _, err := io.WriteString(w.w, out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes what is buffered, redacted, even without a final newline.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) == 0 {
		return nil
	}
	out := w.r.Redact(string(w.buf))
	w.buf = w.buf[:0]
	_, err := io.WriteString(w.w, out)
	return err
}

// Close flushes; it does not close the underlying writer.
func (w *Writer) Close() error { return w.Flush() }
