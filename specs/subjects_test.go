package specs_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/travelbook/onecharge/support/faults"
	"github.com/travelbook/onecharge/support/guarantee"
	"github.com/travelbook/onecharge/support/payments"
	"github.com/travelbook/onecharge/support/stack"
	"github.com/travelbook/onecharge/support/subject"
)

// The worked examples under examples/: payment code that is not in this
// repository, run as external subjects through the same faults and held to
// the same ledger property as the Safe client.
var _ = Describe("Example subjects", Label("examples"), func() {
	seed := suiteSeed()

	// command runs cmd (from the repository root) as the subject against st.
	command := func(st *stack.Stack, cmd string) *subject.Command {
		return &subject.Command{Cmd: cmd, Dir: "..", BaseURL: st.URL, APIKey: testKey,
			Timeout: 20 * time.Second, Seen: seenBy(st), Stderr: GinkgoWriter}
	}
	need := func(tool, why string) {
		if _, err := exec.LookPath(tool); err != nil {
			Skip(fmt.Sprintf("%s is not installed (%s): %s", tool, err, why))
		}
	}
	// hang holds the first attempt of every key past the clients' 1 s
	// timeout: the TravelBook incident, for libraries whose timeout cannot
	// go below a second.
	hang := faults.Rule{Fault: faults.DropResponse, Method: "POST", Path: "/v1/payment_intents", KeyAttempts: []int{1},
		Delay: faults.Duration(1500 * time.Millisecond)}

	// holds charges bookings with sub under rules and expects the
	// single-charge guarantee to hold with every booking charged.
	holds := func(scenario string, sub payments.Client, st *stack.Stack, bs []payments.Booking, workers int, want payments.Result) {
		GinkgoHelper()
		outs := chargeAll(sub, bs, workers)
		record(scenario, "hold", st, outs)
		expectSubjectBehaved(outs)
		Expect(outs).To(ChargeEachBookingExactlyOnce(st.Ledger), sub.Name())
		for _, o := range outs {
			Expect(o.Result).To(Equal(want), "%s, booking %s: %s", sub.Name(), o.Booking.ID, o.Error)
			Expect(stackKeys(st, o.Booking.ID)).To(HaveLen(1), "%s: one key for every attempt of booking %s", sub.Name(), o.Booking.ID)
		}
	}

	Describe("curl: the smallest correct client (examples/curl/charge.sh)", func() {
		BeforeEach(func() { need("curl", "install the Debian package curl (.ci/run does) to run this example") })

		var entries []TableEntry
		for _, c := range retryCases {
			entries = append(entries, Entry(fmt.Sprintf("%s (delay %v) on the first 3 attempts", c.kind, c.delay), c))
		}
		DescribeTable("holds under every fault kind", func(c faultCase) {
			st := newStackWith(seed, faults.Rule{Fault: c.kind, Method: "POST", Path: "/v1/payment_intents", KeyAttempts: []int{1, 2, 3}, Delay: faults.Duration(c.delay)})
			bs := bookings(fmt.Sprintf("curl_%s_%d", c.kind, c.delay.Milliseconds()), 2, seed)
			holds("example curl: "+string(c.kind), command(st, "sh examples/curl/charge.sh"), st, bs, 2, c.want)
			Expect(st.Faults.Counts()[c.kind]).To(BeNumerically(">=", 1))
		}, entries)
	})

	Describe("Node.js with the official stripe package (examples/node)", Ordered, func() {
		BeforeAll(func(sctx SpecContext) {
			need("node", "install Node.js 20 or later to run the Node examples")
			need("npm", "install npm to run the Node examples")
			if _, err := os.Stat(filepath.Join("..", "examples", "node", "node_modules", "stripe")); err == nil {
				return
			}
			npm := exec.CommandContext(sctx, "npm", "install", "--no-audit", "--no-fund")
			npm.Dir = filepath.Join("..", "examples", "node")
			out, err := npm.CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "npm install in examples/node failed; it needs the npm registry:\n%s", out)
		}, NodeTimeout(4*time.Minute))

		It("safe.js (the library's retries, an explicit key per booking) holds when each first attempt hangs past its timeout", func() {
			st := newStackWith(seed, hang)
			holds("example node safe.js: hang past the timeout", command(st, "node examples/node/safe.js"), st,
				bookings("node_safe_hang", 3, seed), 3, payments.Succeeded)
			Expect(st.Faults.Counts()[faults.DropResponse]).To(Equal(3))
		})

		It("safe.js holds through two 503s in a row", func() {
			st := newStackWith(seed, faults.Rule{Fault: faults.Unavailable, Method: "POST", Path: "/v1/payment_intents", KeyAttempts: []int{1, 2}})
			holds("example node safe.js: 503 twice", command(st, "node examples/node/safe.js"), st,
				bookings("node_safe_503", 3, seed), 3, payments.Succeeded)
		})

		It("newkey.js (an application retry that mints a new key) is caught, its duplicate bookings named", func() {
			st := newStackWith(seed, hang)
			bs := bookings("node_newkey", 3, seed)
			sub := command(st, "node examples/node/newkey.js")
			outs := chargeAll(sub, bs, 3)
			rep := record("example node newkey.js: hang past the timeout", "break", st, outs)
			expectSubjectBehaved(outs)
			Expect(outs).NotTo(ChargeEachBookingExactlyOnce(st.Ledger), sub.Name())
			var dup []string
			for _, v := range rep.Violations {
				if v.Kind == guarantee.Duplicate {
					dup = append(dup, v.Booking)
					Expect(len(v.PaymentIntents)).To(BeNumerically(">", 1))
					Expect(len(v.Keys)+len(stackKeys(st, v.Booking))).To(BeNumerically(">", 1), "a new key per retry")
				}
			}
			Expect(dup).To(ConsistOf(bs[0].ID, bs[1].ID, bs[2].ID), "every booking was charged more than once:\n%s", rep.String())
			Expect(rep.DoubleCharged["eur"]).To(BeNumerically(">", 0))
		})
	})

	Describe("Python with the stripe package (examples/python/charge.py)", func() {
		It("holds when each first attempt hangs past its timeout", func() {
			need("python3", "install Python 3 to run the Python example")
			if out, err := exec.Command("python3", "-c", "import stripe").CombinedOutput(); err != nil {
				Skip(fmt.Sprintf("the stripe Python package is not installed (python3 -c 'import stripe': %s): pip install stripe to run examples/python/charge.py, see examples/python/README.md", firstLine(out)))
			}
			st := newStackWith(seed, hang)
			holds("example python charge.py: hang past the timeout", command(st, "python3 examples/python/charge.py"), st,
				bookings("python_hang", 3, seed), 3, payments.Succeeded)
		})
	})

	// A subject that misbehaves is reported as such, naming the booking,
	// and never hangs the suite.
	DescribeTable("a misbehaving subject is reported, never a hang", func(cmd string, timeout time.Duration, says string) {
		st := newStack()
		sub := command(st, cmd)
		sub.Timeout = timeout
		b := bookings("misbehave", 1, seed)[0]
		o := sub.Charge(ctx(), b)
		Expect(subject.IsSubjectError(o.Err)).To(BeTrue(), o.Error)
		Expect(o.Error).To(ContainSubstring(says))
		Expect(o.Error).To(ContainSubstring(b.ID))
	},
		Entry("hangs", "sleep 30", 300*time.Millisecond, "subject timed out after 300ms"),
		Entry("crashes", "echo boom >&2; exit 3", 5*time.Second, "exited with status 3 and printed no JSON result line"),
		Entry("prints garbage", "echo 'payment ok!'", 5*time.Second, "printed no JSON result line"),
		Entry("ignores STRIPE_API_BASE (talks to nothing)", `echo '{"result":"succeeded","payment_intent":"pi_elsewhere"}'`, 5*time.Second,
			"the stack saw no request for booking"),
	)
})

// firstLine is the first line of a command's output, for a skip message.
func firstLine(out []byte) string {
	for i, c := range out {
		if c == '\n' {
			return string(out[:i])
		}
	}
	return string(out)
}
