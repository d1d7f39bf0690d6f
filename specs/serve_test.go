package specs_test

import (
	"bufio"
	"io"
	"os/exec"
	"regexp"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
)

// The integration tier: build the real binary once and drive `onecharge
// serve` over HTTP, as a team whose payment code is not Go would.
var _ = Describe("onecharge serve", Ordered, Label("cli"), func() {
	var bin string
	BeforeAll(func() { bin = buildOnecharge() })

	// start runs serve and returns the session and the URL from its first line.
	start := func(env ...string) (*exec.Cmd, chan struct{}, string) {
		cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
		cmd.Env = append(cmd.Environ(), env...)
		out, err := cmd.StdoutPipe()
		Expect(err).NotTo(HaveOccurred())
		cmd.Stderr = GinkgoWriter
		Expect(cmd.Start()).To(Succeed())
		first, err := bufio.NewReader(out).ReadString('\n')
		Expect(err).NotTo(HaveOccurred(), "serve printed no first line")
		go func() { _, _ = io.Copy(io.Discard, out) }()
		m := regexp.MustCompile(`^onecharge: serving Stripe API at (http://127\.0\.0\.1:\d+) `).FindStringSubmatch(first)
		Expect(m).To(HaveLen(2), "first line was %q", first)
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		DeferCleanup(func() { _ = cmd.Process.Kill() })
		return cmd, exited, m[1]
	}

	It("serves the emulated idempotency layer and the control API, and stops on SIGTERM", func() {
		cmd, exited, url := start("STRIPE_MOCK_URL=" + mockURL)
		Expect(get(url, "/_onecharge/health").Status).To(Equal(200))
		a := post(url, "/v1/payment_intents", "cli-1", piForm("bk_500", 120000))
		b := post(url, "/v1/payment_intents", "cli-1", piForm("bk_500", 120000))
		Expect(b.Header.Get("Idempotent-Replayed")).To(Equal("true"))
		Expect(b.Body).To(Equal(a.Body))
		Expect(cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
		Eventually(exited, 5*time.Second).Should(BeClosed())
		Expect(cmd.ProcessState.ExitCode()).To(Equal(0))
	})

	It("starts its own stripe-mock and leaves no process behind on SIGINT", Label("slow"), func() {
		cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
		cmd.Env = append(cmd.Environ(), "STRIPE_MOCK_URL=")
		sess, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { sess.Kill() })
		Eventually(sess.Out, 60*time.Second).Should(gbytes.Say(`serving Stripe API at http://127\.0\.0\.1:\d+`))
		Eventually(sess.Err).Should(gbytes.Say(`stripe-mock \(pid (\d+)\)`))
		pid := regexp.MustCompile(`stripe-mock \(pid (\d+)\)`).FindSubmatch(sess.Err.Contents())
		Expect(pid).To(HaveLen(2))
		var n int
		for _, c := range pid[1] {
			n = n*10 + int(c-'0')
		}
		Expect(syscall.Kill(n, 0)).To(Succeed(), "stripe-mock should be running")
		sess.Interrupt()
		Eventually(sess, 10*time.Second).Should(gexec.Exit(0))
		Eventually(func() error { return syscall.Kill(n, 0) }, 5*time.Second).Should(MatchError(syscall.ESRCH))
	})

	It("says in one sentence what to do when the port is in use", func() {
		_, _, url := start("STRIPE_MOCK_URL=" + mockURL)
		addr := url[len("http://"):]
		cmd := exec.Command(bin, "serve", "--addr", addr)
		cmd.Env = append(cmd.Environ(), "STRIPE_MOCK_URL="+mockURL)
		sess, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(sess, 10*time.Second).Should(gexec.Exit(1))
		Expect(sess.Err).To(gbytes.Say(`address 127\.0\.0\.1:\d+ is already in use: stop whatever listens there or pick another port`))
	})
})

// buildOnecharge builds cmd/onecharge once per spec container that drives
// the real binary, and removes it afterwards.
func buildOnecharge() string {
	bin, err := gexec.Build("github.com/travelbook/onecharge/cmd/onecharge")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(gexec.CleanupBuildArtifacts)
	return bin
}
