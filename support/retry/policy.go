// Package retry decides whether and when a failed Stripe call is tried
// again: backoff policies with jitter, the classification of what
// stripe-go v76 returns, and a retry loop that reads time through an
// injected clock and sleeper.
//
// Retrying is only safe with the same idempotency key on every attempt;
// this package never makes keys, and nothing it decides calls for a new
// one. A caller gives Loop.Do a function that sends the same key each time.
package retry

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Kind names a backoff policy.
type Kind string

// The policies of the AWS Architecture Blog's "Exponential Backoff And
// Jitter" (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/),
// plus None, TravelBook's immediate retry.
const (
	None               Kind = "none"
	FullJitter         Kind = "full_jitter"
	EqualJitter        Kind = "equal_jitter"
	DecorrelatedJitter Kind = "decorrelated_jitter"
)

// Kinds lists every policy, for tables and flags.
var Kinds = []Kind{None, FullJitter, EqualJitter, DecorrelatedJitter}

// Policy says how long to wait before each retry and when to give up.
type Policy struct {
	// Kind is the backoff formula. Defaults to None (retry at once).
	Kind Kind
	// Base is the first retry's scale: the exponential ceiling of retry 1,
	// and the smallest decorrelated delay.
	Base time.Duration
	// Cap bounds every delay. Zero or less means no cap.
	Cap time.Duration
	// MaxAttempts is the most calls made, the first one included. Zero or
	// less means one call and no retry, so that a Policy left empty never
	// retries a payment by accident.
	MaxAttempts int
	// MaxElapsed stops retrying when the time since the first call plus the
	// next delay would exceed it. Zero means no limit.
	MaxElapsed time.Duration
	// Rand draws the jitter. It is required for the jitter kinds and should
	// be seeded so that a run can be replayed; NewRand gives one that is
	// also safe to share between concurrent loops.
	Rand *rand.Rand
}

// Validate reports a policy that Delay cannot follow.
func (p *Policy) Validate() error {
	switch p.Kind {
	case None, "":
	case FullJitter, EqualJitter, DecorrelatedJitter:
		if p.Rand == nil {
			return fmt.Errorf("retry policy %s has no Rand; set Policy.Rand to a seeded source such as retry.NewRand(seed)", p.Kind)
		}
		if p.Base <= 0 {
			return fmt.Errorf("retry policy %s has Base %v; set a positive Base, such as 100ms", p.Kind, p.Base)
		}
	default:
		return fmt.Errorf("unknown retry policy %q; use one of none, full_jitter, equal_jitter, decorrelated_jitter", p.Kind)
	}
	if p.MaxElapsed < 0 {
		return errors.New("retry policy has a negative MaxElapsed; use 0 for no limit")
	}
	return nil
}

// attempts is MaxAttempts with its default applied.
func (p *Policy) attempts() int { return max(p.MaxAttempts, 1) }

// Delay returns the wait before retry number retry (1 for the first retry,
// that is the second call). prev is the previous delay; only
// DecorrelatedJitter reads it, and a prev below Base (such as 0 before the
// first retry) counts as Base. Delay panics if a jitter kind has no Rand:
// call Validate first.
func (p *Policy) Delay(retry int, prev time.Duration) time.Duration {
	lo, hi := Envelope(p.Kind, p.Base, p.Cap, retry, prev)
	if lo >= hi {
		return lo
	}
	if p.Rand == nil {
		panic("retry: Policy.Rand is nil; jitter policies need a seeded source such as retry.NewRand(seed)")
	}
	// Uniform over [lo, hi], both ends included; the width fits in uint64.
	return lo + time.Duration(p.Rand.Uint64N(uint64(hi-lo)+1))
}

// Envelope returns the bounds, both included, that a correct Delay of
// kind must fall within. The exponential ceiling is
// exp = min(cap, base * 2^(retry-1)), so the first retry waits around base
// rather than twice base (the blog's formula counts attempts from 0):
//
//	none:         [0, 0]                          retry at once
//	full_jitter:  [0, exp]                        random_between(0, exp)
//	equal_jitter: [exp/2, exp/2 + exp/2]          exp/2 + random_between(0, exp/2)
//	decorrelated: [min(base, cap), min(cap, 3*prev)]  with prev ≥ base
func Envelope(kind Kind, base, cap time.Duration, retry int, prev time.Duration) (lo, hi time.Duration) {
	if cap <= 0 {
		cap = math.MaxInt64
	}
	base = max(base, 0)
	switch kind {
	case FullJitter:
		return 0, ceiling(base, cap, retry)
	case EqualJitter:
		half := ceiling(base, cap, retry) / 2
		return half, 2 * half
	case DecorrelatedJitter:
		prev = max(prev, base)
		return min(base, cap), min(cap, mulSat(prev, 3))
	default:
		return 0, 0
	}
}

// ceiling is min(cap, base * 2^(retry-1)) without overflowing the shift.
func ceiling(base, cap time.Duration, retry int) time.Duration {
	shift := max(retry-1, 0)
	if base == 0 {
		return 0
	}
	if shift >= 62 || base > cap>>shift {
		return cap
	}
	return min(cap, base<<shift)
}

// mulSat multiplies a non-negative d by n, saturating at the largest
// Duration.
func mulSat(d time.Duration, n int64) time.Duration {
	if d > math.MaxInt64/time.Duration(n) {
		return math.MaxInt64
	}
	return d * time.Duration(n)
}

// NewRand returns a *rand.Rand seeded with seed that is safe for
// concurrent use, so many loops may share one policy. Concurrent loops
// then draw in whatever order they run; for a schedule that replays
// exactly, give each loop its own NewRand.
func NewRand(seed uint64) *rand.Rand {
	return rand.New(&lockedSource{src: rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)})
}

type lockedSource struct {
	mu  sync.Mutex
	src rand.Source
}

func (s *lockedSource) Uint64() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.src.Uint64()
}
