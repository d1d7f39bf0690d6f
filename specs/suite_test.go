// Package specs is onecharge's acceptance suite: real Stripe clients driven
// through injected faults against the Stripe-faithful local stack.
package specs_test

import (
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// mockURL is the stripe-mock every process of the suite shares.
var mockURL string

func TestSpecs(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "onecharge acceptance")
}

// One stripe-mock for all parallel processes: process 1 starts it (or
// adopts STRIPE_MOCK_URL) and hands its URL to the others. It is stopped
// after the suite, also on Ctrl-C (Ginkgo runs cleanup on interrupt), and
// the kernel kills it should this process die (Pdeathsig).
var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	t, stop := chooseTarget(ctx)
	DeferCleanup(stop)
	return t.encode()
}, func(data []byte) {
	target = decodeTarget(data)
	mockURL = target.Upstream
	if testMode() {
		testKey = target.Key
	}
	SetDefaultEventuallyTimeout(5 * time.Second)
}, NodeTimeout(6*time.Minute))

// In test mode, cancel what the run created, once every process is done.
var _ = SynchronizedAfterSuite(func() {}, cleanupTestMode)

// env returns an environment variable or a default.
func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
