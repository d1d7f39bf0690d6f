package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/travelbook/onecharge/support/clock"
)

// Attempt records one call made by Loop.Do.
type Attempt struct {
	// N is the attempt number, 1 for the first call.
	N int
	// Start is when the call began, by the loop's Clock.
	Start time.Time
	// Delay is how long the loop waited before this attempt (0 for the
	// first).
	Delay time.Duration
	// Err is what the call returned.
	Err error
	// Class is Classify(Err).
	Class Class
}

// Why a loop stopped while the last attempt still asked for a retry.
var (
	ErrAttemptsExhausted = errors.New("retry: maximum attempts reached")
	ErrElapsedExhausted  = errors.New("retry: maximum elapsed time reached")
)

// Error is what Loop.Do returns when the last attempt did not succeed.
// Use errors.As to read the final Class, or IsIndeterminate, IsCollision
// and IsExhausted.
type Error struct {
	// Class is the classification of the last attempt.
	Class Class
	// Attempts is every attempt made, in order.
	Attempts []Attempt
	// Err is the last attempt's error.
	Err error
	// Stopped is why the loop gave up on a retryable error:
	// ErrAttemptsExhausted, ErrElapsedExhausted or the context's error. It
	// is nil when the last attempt's Class itself ended the loop.
	Stopped error
}

func (e *Error) Error() string {
	n := len(e.Attempts)
	switch {
	case n == 0:
		return fmt.Sprintf("no attempt made: %v", e.Stopped)
	case e.Stopped != nil:
		return fmt.Sprintf("gave up after %d attempt(s) (%v), the last one %s: %v; the outcome is unknown, so retry later with the same idempotency key", n, e.Stopped, e.Class.Reason, e.Err)
	case e.Class.Decision == Indeterminate:
		return fmt.Sprintf("attempt %d ended indeterminate (%s, request %q): %v; reconcile with Stripe before anything else, and never retry with a new key", n, e.Class.Reason, e.Class.RequestID, e.Err)
	case e.Class.Decision == Collision:
		return fmt.Sprintf("attempt %d collided (%s): %v; the key belongs to another request, so fix the parameters rather than minting a new key", n, e.Class.Reason, e.Err)
	}
	return fmt.Sprintf("attempt %d failed (%s): %v", n, e.Class.Reason, e.Err)
}

// Unwrap gives errors.Is and errors.As both the last attempt's error and
// the reason the loop stopped.
func (e *Error) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.Err, e.Stopped} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func finalClass(err error) (Class, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Class, true
	}
	return Class{}, false
}

// IsIndeterminate reports whether err ended a loop with an outcome Stripe
// may or may not have executed: flag it for reconciliation.
func IsIndeterminate(err error) bool {
	c, ok := finalClass(err)
	return ok && c.Decision == Indeterminate
}

// IsCollision reports whether err ended a loop on an idempotency collision.
func IsCollision(err error) bool {
	c, ok := finalClass(err)
	return ok && c.Decision == Collision
}

// IsExhausted reports whether err ended a loop that ran out of attempts or
// time while the last error was still retryable. Such an outcome is
// unknown too (a timeout may have been executed), but retrying later with
// the same key is safe.
func IsExhausted(err error) bool {
	var e *Error
	return errors.As(err, &e) && (errors.Is(e.Stopped, ErrAttemptsExhausted) || errors.Is(e.Stopped, ErrElapsedExhausted))
}

// Loop runs a call under a Policy.
type Loop struct {
	Policy Policy
	// Clock measures elapsed time and stamps attempts. Defaults to
	// clock.Real.
	Clock clock.Clock
	// Sleeper waits between attempts. Defaults to clock.Real.
	Sleeper clock.Sleeper
	// OnAttempt, if set, is called after each attempt is classified.
	OnAttempt func(Attempt)
}

// Do calls fn until it succeeds or the policy says stop. fn gets the
// attempt number (1 for the first call) and must send the same
// idempotency key on every attempt. Do retries while the attempt's
// Decision is Retry, fewer than Policy.MaxAttempts calls were made, and
// the time elapsed since the first call plus the next delay stays within
// Policy.MaxElapsed. It checks ctx before every call and during every
// wait; a cancelled ctx ends the loop with an *Error wrapping ctx.Err().
//
// Do returns every attempt and nil on success, or an *Error.
func (l *Loop) Do(ctx context.Context, fn func(ctx context.Context, attempt int) error) ([]Attempt, error) {
	p := &l.Policy
	if err := p.Validate(); err != nil {
		return nil, err
	}
	clk, sleeper := l.Clock, l.Sleeper
	if clk == nil {
		clk = clock.Real{}
	}
	if sleeper == nil {
		sleeper = clock.Real{}
	}
	var (
		attempts []Attempt
		start    = clk.Now()
		delay    time.Duration
		prev     time.Duration
	)
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return attempts, stopped(attempts, err)
		}
		a := Attempt{N: n, Start: clk.Now(), Delay: delay}
		a.Err = fn(ctx, n)
		a.Class = Classify(a.Err)
		attempts = append(attempts, a)
		if l.OnAttempt != nil {
			l.OnAttempt(a)
		}
		if a.Err == nil {
			return attempts, nil
		}
		if err := ctx.Err(); err != nil {
			return attempts, stopped(attempts, err)
		}
		if a.Class.Decision != Retry {
			return attempts, &Error{Class: a.Class, Attempts: attempts, Err: a.Err}
		}
		if n >= p.attempts() {
			return attempts, stopped(attempts, ErrAttemptsExhausted)
		}
		delay = p.Delay(n, prev)
		if p.MaxElapsed > 0 && clk.Now().Sub(start)+delay > p.MaxElapsed {
			return attempts, stopped(attempts, ErrElapsedExhausted)
		}
		if err := sleeper.Sleep(ctx, delay); err != nil {
			return attempts, stopped(attempts, err)
		}
		prev = delay
	}
}

func stopped(attempts []Attempt, why error) *Error {
	e := &Error{Attempts: attempts, Stopped: why}
	if n := len(attempts); n > 0 {
		e.Class, e.Err = attempts[n-1].Class, attempts[n-1].Err
	}
	return e
}
