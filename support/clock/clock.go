// Package clock is the one seam for time in onecharge: the idempotency
// layer's 24-hour window, the ledger's timestamps and the retry loop's
// backoff all read time through it, so specs can cross a day or a backoff
// schedule without sleeping.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

// Sleeper waits for d or until ctx is done, whichever comes first, and
// returns ctx.Err() in the latter case.
type Sleeper interface {
	Sleep(ctx context.Context, d time.Duration) error
}

// Real is the wall clock; its Sleep really waits.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Sleep waits for d or for ctx.
func (Real) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Offset is the wall clock plus an offset that only grows. The stack uses
// it so that `POST /_onecharge/clock {"advance":"25h"}` moves the
// idempotency layer past Stripe's 24-hour window while real requests go on.
type Offset struct {
	mu     sync.Mutex
	offset time.Duration
	base   func() time.Time
}

// NewOffset returns an Offset over base (time.Now when nil).
func NewOffset(base func() time.Time) *Offset {
	if base == nil {
		base = time.Now
	}
	return &Offset{base: base}
}

// Now returns the base time plus the accumulated offset.
func (o *Offset) Now() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.base().Add(o.offset)
}

// Advance moves the clock forward by d (negative d is ignored: Stripe's
// clock never runs backwards) and returns the new time.
func (o *Offset) Advance(d time.Duration) time.Time {
	o.mu.Lock()
	if d > 0 {
		o.offset += d
	}
	o.mu.Unlock()
	return o.Now()
}

// Reset drops the offset.
func (o *Offset) Reset() {
	o.mu.Lock()
	o.offset = 0
	o.mu.Unlock()
}

// Virtual is a manual clock: time moves only when Advance or Sleep is
// called. Sleep returns at once after moving the clock, and records every
// requested sleep so a spec can check a backoff schedule without waiting.
type Virtual struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

// NewVirtual returns a Virtual clock that starts at start.
func NewVirtual(start time.Time) *Virtual { return &Virtual{now: start} }

// Now returns the virtual time.
func (v *Virtual) Now() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.now
}

// Advance moves the virtual time forward by d.
func (v *Virtual) Advance(d time.Duration) time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.now = v.now.Add(d)
	return v.now
}

// Sleep records d and advances the clock by it, unless ctx is already done.
func (v *Virtual) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v.mu.Lock()
	v.sleeps = append(v.sleeps, d)
	if d > 0 {
		v.now = v.now.Add(d)
	}
	v.mu.Unlock()
	return nil
}

// Sleeps returns a copy of every duration passed to Sleep, in order.
func (v *Virtual) Sleeps() []time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]time.Duration(nil), v.sleeps...)
}
