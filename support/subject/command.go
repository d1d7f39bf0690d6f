package subject

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/travelbook/onecharge/support/payments"
)

// Command is an external subject: a shell command run once per booking,
// with the booking and the stack in its environment:
//
//	ONECHARGE_BOOKING_ID, ONECHARGE_AGENCY_ID, ONECHARGE_AMOUNT (minor units),
//	ONECHARGE_CURRENCY, STRIPE_API_BASE (the stack, http://127.0.0.1:PORT),
//	STRIPE_API_KEY (a test key).
//
// Its last JSON line on stdout gives the outcome (see the package doc); its
// exit status must agree (0 for succeeded). It runs in a process group of
// its own, which is killed whole when the booking's time is up.
type Command struct {
	// Cmd is run with `sh -c`.
	Cmd string
	// Dir is the working directory. Defaults to the current one.
	Dir string
	// BaseURL is the Stripe API the subject must use: the stack's URL.
	BaseURL string
	// APIKey is a test-mode secret key. Defaults to sk_test_123.
	APIKey string
	// Timeout bounds each booking. Defaults to DefaultTimeout.
	Timeout time.Duration
	// Seen, when set, counts what the stack saw for a booking (objects
	// created plus faults met), so a subject that answers without ever
	// reaching the stack is caught.
	Seen func(booking string) int
	// Stderr receives the subject's stderr. Defaults to discarding it.
	Stderr io.Writer
	// Env is added to the subject's environment (KEY=value).
	Env []string
}

// Name is "cmd:" and the command.
func (c *Command) Name() string { return "cmd:" + c.Cmd }

// Charge runs the command for b and reads its answer.
func (c *Command) Charge(ctx context.Context, b payments.Booking) payments.Outcome {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	key := c.APIKey
	if key == "" {
		key = "sk_test_123"
	}
	cmd := exec.Command("sh", "-c", c.Cmd)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Env = append(cmd.Env,
		"ONECHARGE_BOOKING_ID="+b.ID,
		"ONECHARGE_AGENCY_ID="+b.Agency,
		"ONECHARGE_AMOUNT="+strconv.FormatInt(b.Amount, 10),
		"ONECHARGE_CURRENCY="+b.Currency,
		"STRIPE_API_BASE="+c.BaseURL,
		"STRIPE_API_KEY="+key,
	)
	var stdout bytes.Buffer
	stderr := &tail{max: 2000}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	if c.Stderr != nil {
		cmd.Stderr = io.MultiWriter(stderr, lockedWriter(c.Stderr))
	}
	ownGroup(cmd)
	// A child that keeps stdout open after the subject exits must not hold
	// Wait for ever.
	cmd.WaitDelay = 2 * time.Second
	name := c.Name()
	if err := cmd.Start(); err != nil {
		return misbehaved(name, b, "subject could not be started for booking %s: %v", b.ID, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-done:
	case <-timer.C:
		killGroup(cmd)
		<-done
		return misbehaved(name, b, "subject timed out after %v for booking %s (killed); stderr ends: %s", timeout, b.ID, clip(stderr.String()))
	case <-ctx.Done():
		killGroup(cmd)
		<-done
		return misbehaved(name, b, "subject was stopped for booking %s (killed): %v", b.ID, ctx.Err())
	}
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		return misbehaved(name, b, "subject failed for booking %s: %v", b.ID, err)
	}
	reply, found, perr := parseReply(stdout.Bytes())
	switch {
	case perr != nil:
		return misbehaved(name, b, "subject printed an unreadable result for booking %s (exit status %d): %v", b.ID, code, perr)
	case !found && code != 0:
		return misbehaved(name, b, "subject exited with status %d and printed no JSON result line for booking %s; stderr ends: %s", code, b.ID, clip(stderr.String()))
	case !found:
		return misbehaved(name, b, "subject printed no JSON result line for booking %s; stdout was: %s", b.ID, clip(stdout.String()))
	case reply.Result == "succeeded" && code != 0:
		return misbehaved(name, b, "subject exited with status %d but printed result succeeded (%s) for booking %s: exit 0 on success, non-zero otherwise", code, reply.PaymentIntent, b.ID)
	}
	return checkSeen(outcome(name, b, reply), c.Seen, fmt.Sprintf("exited %d", code))
}

// tail keeps the last max bytes written to it, for error messages.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// lockedWriter serialises writes from subjects run in parallel.
func lockedWriter(w io.Writer) io.Writer { return &locked{w: w} }

type locked struct{ w io.Writer }

// writeMu is shared because every subject's stderr goes to one writer.
var writeMu sync.Mutex

func (l *locked) Write(p []byte) (int, error) {
	writeMu.Lock()
	defer writeMu.Unlock()
	return l.w.Write(p)
}
