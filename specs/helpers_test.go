package specs_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/faults"
	"github.com/travelbook/onecharge/support/payments"
	"github.com/travelbook/onecharge/support/stack"
	"github.com/travelbook/onecharge/support/subject"
)

// testKey is stripe-mock's kind of key; in test mode, STRIPE_API_KEY.
var testKey = "sk_test_onechargeSpecs4242"

// newStack starts a private stack in front of the shared stripe-mock, so
// every spec has its own keys, ledger, faults and clock.
//
// When ONECHARGE_STACK_ADDR is set (a service under test, reached through
// ONECHARGE_SUBJECT_URL, was configured with that address as its Stripe
// base URL), the stack sits there instead: one per process, reset at the
// start of every spec that asks for it. Specs that change the stack's
// configuration (mods) still get a private one, since they drive no
// subject.
func newStack(mods ...func(*stack.Config)) *stack.Stack {
	if addr := os.Getenv("ONECHARGE_STACK_ADDR"); addr != "" && len(mods) == 0 {
		return fixedStack(addr)
	}
	cfg := stack.Config{Log: GinkgoWriter}
	applyTarget(&cfg)
	for _, m := range mods {
		m(&cfg)
	}
	st, err := stack.Start(cfg)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(st.Close)
	return st
}

// shared is the process's stack at ONECHARGE_STACK_ADDR, started on first
// use and left running until the process exits.
var shared struct {
	sync.Mutex
	st *stack.Stack
}

func fixedStack(addr string) *stack.Stack {
	if sc, _ := GinkgoConfiguration(); sc.ParallelTotal > 1 {
		Fail(fmt.Sprintf("ONECHARGE_STACK_ADDR=%s serves one stack, so the suite must run in one process: run with PROCS=1 (make verify) or without -p", addr))
	}
	shared.Lock()
	defer shared.Unlock()
	if shared.st == nil {
		cfg := stack.Config{Addr: addr, Log: GinkgoWriter}
		applyTarget(&cfg)
		st, err := stack.Start(cfg)
		Expect(err).NotTo(HaveOccurred(), "ONECHARGE_STACK_ADDR")
		shared.st = st
	}
	shared.st.Reset()
	return shared.st
}

// withSleeper makes the stack's delay/slow/drop_response faults wait on s.
func withSleeper(s *recordingSleeper) func(*stack.Config) {
	return func(c *stack.Config) { c.FaultSleeper = s }
}

// sdk returns a real stripe-go v76 client pointed at base, with its own
// retries off unless retries > 0, and a client-side timeout.
func sdk(base string, retries int64, timeout time.Duration) *client.API {
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	return payments.NewStripeAPI(base, testKey, hc, retries)
}

// piParams builds the PaymentIntent a booking is charged with.
func piParams(booking string, amount int64, key string) *stripe.PaymentIntentParams {
	p := &stripe.PaymentIntentParams{
		Amount:             stripe.Int64(amount),
		Currency:           stripe.String("eur"),
		PaymentMethodTypes: stripe.StringSlice([]string{"card"}),
	}
	p.AddMetadata("booking_id", booking)
	if key != "" {
		p.SetIdempotencyKey(key)
	}
	return p
}

// rawResponse is what a raw HTTP call saw.
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
	Err    error
}

// post sends a form-encoded POST as a non-Go client would.
func post(base, path, key string, form string, headers ...string) rawResponse {
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+testKey)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	return do(req, 5*time.Second)
}

func get(base, path string, headers ...string) rawResponse {
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+testKey)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return do(req, 5*time.Second)
}

func do(req *http.Request, timeout time.Duration) rawResponse {
	hc := &http.Client{Timeout: timeout}
	resp, err := hc.Do(req)
	if err != nil {
		return rawResponse{Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: body, Err: err}
}

// form encodes a PaymentIntent creation the way stripe-go would.
func piForm(booking string, amount int64) string {
	v := url.Values{}
	v.Set("amount", itoa(amount))
	v.Set("currency", "eur")
	v.Add("payment_method_types[]", "card")
	v.Set("metadata[booking_id]", booking)
	return v.Encode()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// setFaults replaces the stack's fault schedule in-process.
func setFaults(st *stack.Stack, seed int64, rules ...faults.Rule) {
	Expect(st.Faults.Set(faults.Schedule{Seed: seed, Rules: rules})).To(Succeed())
	AddReportEntry("fault schedule", faults.Schedule{Seed: seed, Rules: rules})
}

// recordingSleeper stands in for the stack's wall-clock waits: it records
// each requested wait and returns at once (or after a short real pause for
// waits meant to outlast a client's timeout).
type recordingSleeper struct {
	mu     sync.Mutex
	waits  []time.Duration
	really bool
}

func (s *recordingSleeper) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	really := s.really
	s.mu.Unlock()
	if !really {
		return ctx.Err()
	}
	return clock.Real{}.Sleep(ctx, d)
}

func (s *recordingSleeper) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// ctx is a context bounded well within a spec's life.
func ctx() context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	DeferCleanup(cancel)
	return c
}

// subjectUnder returns the payment code under test, chosen by
// ONECHARGE_SUBJECT_CMD, ONECHARGE_SUBJECT_URL or ONECHARGE_SUBJECT (the
// Safe client by default), pointed at st; timeout bounds each HTTP attempt
// of the in-repo clients.
func subjectUnder(st *stack.Stack, timeout time.Duration, seed int64) payments.Client {
	c, err := subject.FromEnv(subject.Options{
		Config:  clientConfig(st, timeout, clock.Real{}),
		Policy:  specPolicy(seed),
		Seen:    seenBy(st),
		Dir:     "..", // relative commands resolve from the repository root
		Stderr:  GinkgoWriter,
		Journal: auditJournal(),
	})
	Expect(err).NotTo(HaveOccurred())
	return c
}

// seenBy counts what st saw of a booking: PaymentIntents created and
// faults met. Zero after a subject answered means the subject never
// reached the stack.
func seenBy(st *stack.Stack) func(string) int {
	return func(ref string) int {
		n := len(st.Ledger.PaymentIntents(ref))
		for _, in := range st.Faults.Injected() {
			if in.Reference == ref {
				n++
			}
		}
		return n
	}
}

// stackKeys lists the distinct idempotency keys st saw for a booking, on
// created objects and on faulted requests: an external subject reports no
// attempts, so its keys are read from the stack.
func stackKeys(st *stack.Stack, ref string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, in := range st.Faults.Injected() {
		if in.Reference == ref {
			add(in.IdempotencyKey)
		}
	}
	for _, o := range st.Ledger.PaymentIntents(ref) {
		add(o.IdempotencyKey)
	}
	return out
}

// expectSubjectBehaved fails the spec, naming the booking, when the
// subject hung, crashed, printed no result or never reached the stack:
// such a run proves nothing about single charges.
func expectSubjectBehaved(outs []payments.Outcome) {
	GinkgoHelper()
	for _, o := range outs {
		Expect(subject.IsSubjectError(o.Err)).To(BeFalse(), "%s", o.Error)
	}
}
