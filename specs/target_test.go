package specs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/travelbook/onecharge/support/apikey"
	"github.com/travelbook/onecharge/support/ledger"
	"github.com/travelbook/onecharge/support/payments"
	"github.com/travelbook/onecharge/support/stack"
	"github.com/travelbook/onecharge/support/stripemock"
	"github.com/travelbook/onecharge/support/testmode"
)

// target is what the suite charges against, chosen once by process 1 and
// shared with every process: stripe-mock behind the emulated idempotency
// layer (the default), or Stripe test mode when STRIPE_API_KEY is set.
type targetInfo struct {
	Target   string    `json:"target"`
	Upstream string    `json:"upstream"`
	CAPEM    []byte    `json:"ca_pem,omitempty"` // the stand-in's per-run CA
	RunID    string    `json:"run_id"`
	Since    time.Time `json:"since"`
	Key      string    `json:"-"` // from the environment in each process, never passed around
}

var target targetInfo

// standIn is the local stand-in for Stripe, on process 1 only.
var standIn *testmode.StandIn

// Labels of specs that can run against Stripe test mode; every other spec
// needs the emulator (its clock, the control API, or faults raised inside
// Stripe) and is skipped there, with the reason.
var testModeLabels = []string{"testmode"}

// chooseTarget runs on process 1 before the suite. Any key that is not a
// test-mode secret key is refused before a single request is sent.
func chooseTarget(ctx context.Context) (targetInfo, func()) {
	key := os.Getenv(apikey.EnvVar)
	if key == "" {
		srv, err := stripemock.FromEnv(ctx, stripemock.Options{Log: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred(), "the suite needs stripe-mock")
		return targetInfo{Target: stack.TargetStripeMock, Upstream: srv.URL}, func() { _ = srv.Stop() }
	}
	if err := apikey.Check(key); err != nil {
		AbortSuite(err.Error())
	}
	t := targetInfo{Target: stack.TargetTestMode, Upstream: env("STRIPE_API_BASE", "https://api.stripe.com"), RunID: testmode.RunID(), Since: time.Now().Add(-time.Minute)}
	stop := func() {}
	if os.Getenv("ONECHARGE_TESTMODE_STANDIN") == "1" {
		// This machine cannot reach Stripe: a local stand-in that behaves
		// like it where it matters, over TLS with a certificate made for
		// this run and trusted by this run only.
		si, err := testmode.StartStandIn(ctx, testmode.StandInOptions{Log: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		standIn = si
		t.Upstream, t.CAPEM, stop = si.URL, si.CAPEM(), func() { _ = si.Close() }
	}
	GinkgoWriter.Printf("onecharge: target Stripe test mode at %s, run %s, key %s\n", t.Upstream, t.RunID, apikey.Redact(key))
	return t, stop
}

func (t targetInfo) encode() []byte {
	b, _ := json.Marshal(t)
	return b
}

func decodeTarget(b []byte) targetInfo {
	var t targetInfo
	Expect(json.Unmarshal(b, &t)).To(Succeed())
	t.Key = os.Getenv(apikey.EnvVar)
	return t
}

// testMode reports whether the suite runs against Stripe test mode.
func testMode() bool { return target.Target == stack.TargetTestMode }

// applyTarget points a stack's upstream at the target.
func applyTarget(cfg *stack.Config) {
	if !testMode() {
		cfg.Upstream = target.Upstream
		return
	}
	cfg.Target = stack.TargetTestMode
	cfg.Upstream = target.Upstream
	cfg.Transport = testmode.TagRun(upstreamTransport(), target.RunID)
}

func upstreamTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	if len(target.CAPEM) > 0 {
		pool := x509.NewCertPool()
		Expect(pool.AppendCertsFromPEM(target.CAPEM)).To(BeTrue())
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return tr
}

// upstreamAPI is a stripe-go client straight to the target (not through
// the stack), for reading the ledger back and cleaning up.
func upstreamAPI() *client.API {
	return payments.NewStripeAPI(target.Upstream, target.Key, &http.Client{Timeout: 20 * time.Second, Transport: upstreamTransport()}, 0)
}

// ledgerObjects is what the single-charge matcher reads: the stack's
// ledger against stripe-mock; in test mode, the PaymentIntents read back
// from Stripe itself (created since the run began, tagged with its run id).
func ledgerObjects(l *ledger.Ledger) []ledger.Object {
	if !testMode() {
		return l.Objects()
	}
	objs, err := testmode.Ledger(context.Background(), upstreamAPI(), target.Since, target.RunID)
	Expect(err).NotTo(HaveOccurred(), "reading the ledger back from Stripe")
	return objs
}

// cleanupTestMode cancels what the run created in test mode and says so.
func cleanupTestMode() {
	if !testMode() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	objs, err := testmode.Ledger(ctx, upstreamAPI(), target.Since, target.RunID)
	if err != nil {
		fmt.Fprintf(GinkgoWriter, "onecharge: could not list this run's PaymentIntents to cancel them: %v\n", err)
		return
	}
	canceled, calls, err := testmode.Cleanup(ctx, upstreamAPI(), objs)
	msg := fmt.Sprintf("onecharge: test mode clean-up: canceled %d of %d PaymentIntents of run %s in %d API calls", canceled, len(objs), target.RunID, calls)
	if err != nil {
		msg += ": " + err.Error()
	}
	if standIn != nil {
		msg += fmt.Sprintf("; the whole run made %d API calls to the stand-in", standIn.Calls())
	}
	fmt.Fprintln(GinkgoWriter, msg)
	_ = os.WriteFile(env("ONECHARGE_REPORTS", "reports")+"/testmode-cleanup.txt", []byte(apikey.Redact(msg)+"\n"), 0o644)
}

// Specs that need the emulator are skipped in test mode, with the reason.
var _ = BeforeEach(func() {
	if testMode() && !slices.ContainsFunc(CurrentSpecReport().Labels(), func(l string) bool { return slices.Contains(testModeLabels, l) }) {
		Skip("needs the emulated idempotency layer (its clock, the control API or faults inside Stripe): not available against Stripe test mode")
	}
}, OncePerOrdered)
