package retry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/travelbook/onecharge/support/clock"
)

var epoch = time.Date(2025, 9, 9, 10, 50, 0, 0, time.UTC)

func apiErr(status int, typ stripe.ErrorType, code stripe.ErrorCode, headers ...string) error {
	h := http.Header{}
	for i := 0; i+1 < len(headers); i += 2 {
		h.Set(headers[i], headers[i+1])
	}
	e := &stripe.Error{HTTPStatusCode: status, Type: typ, Code: code, RequestID: "req_x"}
	e.SetLastResponse(&stripe.APIResponse{Header: h})
	return e
}

var (
	unavailable = apiErr(503, stripe.ErrorTypeAPI, "")
	serverError = apiErr(500, stripe.ErrorTypeAPI, "", "Idempotent-Replayed", "true")
	collision   = apiErr(400, stripe.ErrorTypeIdempotency, "")
	declined    = apiErr(402, stripe.ErrorTypeCard, stripe.ErrorCodeCardDeclined)
	dropped     = &url.Error{Op: "Post", URL: "http://127.0.0.1/v1/payment_intents", Err: io.EOF}
)

// script returns fn that answers attempt n with errs[n-1] (the last one
// repeats) and takes latency of virtual time per call.
func script(v *clock.Virtual, latency time.Duration, errs ...error) (func(context.Context, int) error, *int) {
	calls := 0
	return func(ctx context.Context, n int) error {
		calls++
		if n != calls {
			panic("attempt numbers are not 1, 2, 3, ...")
		}
		v.Advance(latency)
		return errs[min(n, len(errs))-1]
	}, &calls
}

func newLoop(p Policy) (*Loop, *clock.Virtual) {
	v := clock.NewVirtual(epoch)
	return &Loop{Policy: p, Clock: v, Sleeper: v}, v
}

// replay draws the delays a fresh copy of p (same seed) gives.
func replay(kind Kind, seed uint64, n int) []time.Duration {
	p := policy(kind, seed)
	var out []time.Duration
	var prev time.Duration
	for retry := 1; retry <= n; retry++ {
		prev = p.Delay(retry, prev)
		out = append(out, prev)
	}
	return out
}

func TestRetriesThenSucceeds(t *testing.T) {
	l, v := newLoop(policy(FullJitter, 1))
	var seen []Attempt
	l.OnAttempt = func(a Attempt) { seen = append(seen, a) }
	fn, calls := script(v, 10*time.Millisecond, unavailable, dropped, nil)
	attempts, err := l.Do(context.Background(), fn)
	if err != nil || *calls != 3 || len(attempts) != 3 || len(seen) != 3 {
		t.Fatalf("err %v after %d calls, %d attempts, %d reported", err, *calls, len(attempts), len(seen))
	}
	want := replay(FullJitter, 1, 2)
	if got := v.Sleeps(); !equal(got, want) {
		t.Fatalf("slept %v, the policy's delays are %v", got, want)
	}
	if attempts[0].Delay != 0 || attempts[1].Delay != want[0] || attempts[2].Delay != want[1] {
		t.Fatalf("attempt delays %v %v %v, want 0 %v %v", attempts[0].Delay, attempts[1].Delay, attempts[2].Delay, want[0], want[1])
	}
	if s := attempts[2].Start.Sub(attempts[1].Start); s != 10*time.Millisecond+want[1] {
		t.Fatalf("attempt 3 started %v after attempt 2, want latency + delay = %v", s, 10*time.Millisecond+want[1])
	}
	if attempts[0].Class.Decision != Retry || !attempts[1].Class.Network || attempts[2].Class.Reason != "succeeded" {
		t.Fatalf("classes: %+v", attempts)
	}
}

func TestStopsAtMaxAttempts(t *testing.T) {
	p := policy(EqualJitter, 2)
	p.MaxAttempts = 4
	l, v := newLoop(p)
	fn, calls := script(v, 0, unavailable)
	attempts, err := l.Do(context.Background(), fn)
	if *calls != 4 || len(attempts) != 4 || len(v.Sleeps()) != 3 {
		t.Fatalf("%d calls, %d attempts, %d sleeps; want 4, 4, 3", *calls, len(attempts), len(v.Sleeps()))
	}
	var e *Error
	if !errors.As(err, &e) || !IsExhausted(err) || !errors.Is(err, ErrAttemptsExhausted) || e.Class.Status != 503 || len(e.Attempts) != 4 {
		t.Fatalf("err = %v", err)
	}
	var se *stripe.Error
	if !errors.As(err, &se) || IsIndeterminate(err) || IsCollision(err) {
		t.Fatalf("the last stripe error must stay reachable: %v", err)
	}
}

func TestMaxAttemptsZeroMeansOneCall(t *testing.T) {
	l, v := newLoop(Policy{})
	fn, calls := script(v, 0, dropped)
	_, err := l.Do(context.Background(), fn)
	if *calls != 1 || !IsExhausted(err) {
		t.Fatalf("%d calls, err %v", *calls, err)
	}
}

func TestNonePolicyRetriesImmediately(t *testing.T) {
	l, v := newLoop(Policy{Kind: None, MaxAttempts: 5})
	fn, calls := script(v, 0, dropped)
	_, err := l.Do(context.Background(), fn)
	if *calls != 5 || !equal(v.Sleeps(), []time.Duration{0, 0, 0, 0}) || !IsExhausted(err) {
		t.Fatalf("%d calls, sleeps %v, err %v", *calls, v.Sleeps(), err)
	}
}

func TestStopsBeforeExceedingMaxElapsed(t *testing.T) {
	const seed = 5
	p := policy(EqualJitter, seed)
	p.Base, p.Cap, p.MaxAttempts, p.MaxElapsed = time.Second, 10*time.Second, 100, 20*time.Second
	p.Rand = NewRand(seed)
	l, v := newLoop(p)
	fn, _ := script(v, 500*time.Millisecond, dropped)
	attempts, err := l.Do(context.Background(), fn)
	if !errors.Is(err, ErrElapsedExhausted) || !IsExhausted(err) {
		t.Fatalf("err = %v", err)
	}
	elapsed := v.Now().Sub(epoch)
	if elapsed > p.MaxElapsed {
		t.Fatalf("ran for %v, beyond MaxElapsed %v", elapsed, p.MaxElapsed)
	}
	// The loop drew one more delay than it slept: the one that would have
	// crossed the limit.
	again := Policy{Kind: EqualJitter, Base: p.Base, Cap: p.Cap, Rand: NewRand(seed)}
	var next, prev time.Duration
	for retry := 1; retry <= len(attempts); retry++ {
		next = again.Delay(retry, prev)
		prev = next
	}
	if elapsed+next <= p.MaxElapsed {
		t.Fatalf("stopped after %v with the next delay %v still within %v", elapsed, next, p.MaxElapsed)
	}
	if len(attempts) < 3 {
		t.Fatalf("only %d attempts: the limit should allow several", len(attempts))
	}
}

func TestFinalClassesAreNotRetried(t *testing.T) {
	cases := []struct {
		name          string
		err           error
		indeterminate bool
		collision     bool
	}{
		{"indeterminate", serverError, true, false},
		{"collision", collision, false, true},
		{"declined", declined, false, false},
	}
	for _, c := range cases {
		l, v := newLoop(policy(DecorrelatedJitter, 3))
		fn, calls := script(v, 0, c.err, nil)
		attempts, err := l.Do(context.Background(), fn)
		if *calls != 1 || len(attempts) != 1 || len(v.Sleeps()) != 0 {
			t.Errorf("%s: %d calls and %d sleeps, want 1 and 0", c.name, *calls, len(v.Sleeps()))
		}
		if IsIndeterminate(err) != c.indeterminate || IsCollision(err) != c.collision || IsExhausted(err) {
			t.Errorf("%s: err %v: indeterminate %v, collision %v", c.name, err, IsIndeterminate(err), IsCollision(err))
		}
		var e *Error
		if !errors.As(err, &e) || e.Err != c.err {
			t.Errorf("%s: the *Error does not carry the last error: %v", c.name, err)
		}
	}
	if IsIndeterminate(serverError) || IsCollision(collision) {
		t.Error("only a loop's *Error is classified by IsIndeterminate and IsCollision")
	}
	l, v := newLoop(policy(FullJitter, 1))
	fn, _ := script(v, 0, serverError)
	_, err := l.Do(context.Background(), fn)
	var e *Error
	if !errors.As(err, &e) || !e.Class.Replayed {
		t.Errorf("the replayed 500 lost its flag: %+v", e)
	}
}

// cancelOnSleep cancels the context when the loop first waits, as a
// caller giving up between attempts would.
type cancelOnSleep struct {
	v      *clock.Virtual
	cancel context.CancelFunc
}

func (s cancelOnSleep) Sleep(ctx context.Context, d time.Duration) error {
	s.cancel()
	return s.v.Sleep(ctx, d)
}

func TestCancellationBetweenAttempts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v := clock.NewVirtual(epoch)
	l := &Loop{Policy: policy(FullJitter, 1), Clock: v, Sleeper: cancelOnSleep{v, cancel}}
	fn, calls := script(v, 0, unavailable, nil)
	attempts, err := l.Do(ctx, fn)
	if *calls != 1 || len(attempts) != 1 || !errors.Is(err, context.Canceled) || IsExhausted(err) {
		t.Fatalf("%d calls, err %v", *calls, err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Class.Decision != Retry || e.Err != unavailable {
		t.Fatalf("the *Error must keep the last attempt: %+v", e)
	}
}

func TestCancelledBeforeTheFirstCall(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l, v := newLoop(policy(FullJitter, 1))
	fn, calls := script(v, 0, nil)
	attempts, err := l.Do(ctx, fn)
	if *calls != 0 || len(attempts) != 0 || !errors.Is(err, context.Canceled) || err.Error() == "" {
		t.Fatalf("%d calls, err %v", *calls, err)
	}
}

func TestCancellationDuringACall(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, _ := newLoop(policy(FullJitter, 1))
	calls := 0
	_, err := l.Do(ctx, func(ctx context.Context, n int) error {
		calls++
		cancel()
		return &url.Error{Op: "Post", URL: "u", Err: ctx.Err()}
	})
	if calls != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("%d calls, err %v", calls, err)
	}
}

func TestSleepsMatchThePolicyForEveryKind(t *testing.T) {
	for _, kind := range Kinds {
		p := policy(kind, 11)
		p.MaxAttempts = 8
		l, v := newLoop(p)
		fn, _ := script(v, time.Millisecond, dropped)
		attempts, _ := l.Do(context.Background(), fn)
		want := replay(kind, 11, 7)
		if got := v.Sleeps(); !equal(got, want) {
			t.Errorf("%s: slept %v, want %v", kind, got, want)
		}
		for i, a := range attempts[1:] {
			if a.Delay != want[i] {
				t.Errorf("%s: attempt %d recorded delay %v, want %v", kind, a.N, a.Delay, want[i])
			}
		}
	}
}

func TestInvalidPolicyMakesNoCall(t *testing.T) {
	l, v := newLoop(Policy{Kind: FullJitter, Base: time.Second, MaxAttempts: 3})
	fn, calls := script(v, 0, nil)
	if _, err := l.Do(context.Background(), fn); err == nil || *calls != 0 {
		t.Fatalf("err %v after %d calls", err, *calls)
	}
}

func TestDefaultsToTheRealClock(t *testing.T) {
	l := &Loop{Policy: Policy{Kind: None, MaxAttempts: 2}}
	n := 0
	_, err := l.Do(context.Background(), func(context.Context, int) error {
		n++
		if n == 1 {
			return dropped
		}
		return nil
	})
	if err != nil || n != 2 {
		t.Fatalf("err %v after %d calls", err, n)
	}
}
