package retry

import (
	"math"
	"strings"
	"testing"
	"time"
)

func policy(kind Kind, seed uint64) Policy {
	return Policy{Kind: kind, Base: 100 * time.Millisecond, Cap: 5 * time.Second, MaxAttempts: 13, Rand: NewRand(seed)}
}

func TestDelaysStayWithinTheirEnvelope(t *testing.T) {
	for _, kind := range Kinds {
		t.Run(string(kind), func(t *testing.T) {
			for seed := range uint64(200) {
				p := policy(kind, seed)
				var prev time.Duration
				for retry := 1; retry <= 12; retry++ {
					d := p.Delay(retry, prev)
					lo, hi := Envelope(kind, p.Base, p.Cap, retry, prev)
					if d < lo || d > hi || d > p.Cap {
						t.Fatalf("seed %d retry %d: delay %v outside [%v, %v] (cap %v)", seed, retry, d, lo, hi, p.Cap)
					}
					prev = d
				}
			}
		})
	}
}

// TestEnvelopes pins the formulas, so that a wrong Envelope cannot make a
// wrong Delay look right.
func TestEnvelopes(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		kind   Kind
		retry  int
		prev   time.Duration
		lo, hi time.Duration
	}{
		{None, 3, 0, 0, 0},
		{FullJitter, 1, 0, 0, 100 * ms},
		{FullJitter, 2, 0, 0, 200 * ms},
		{FullJitter, 4, 0, 0, 800 * ms},
		{FullJitter, 7, 0, 0, 5000 * ms}, // 6.4s capped
		{EqualJitter, 1, 0, 50 * ms, 100 * ms},
		{EqualJitter, 3, 0, 200 * ms, 400 * ms},
		{EqualJitter, 12, 0, 2500 * ms, 5000 * ms},
		{DecorrelatedJitter, 1, 0, 100 * ms, 300 * ms},
		{DecorrelatedJitter, 2, 250 * ms, 100 * ms, 750 * ms},
		{DecorrelatedJitter, 5, 4 * time.Second, 100 * ms, 5000 * ms},
	}
	for _, c := range cases {
		lo, hi := Envelope(c.kind, 100*ms, 5*time.Second, c.retry, c.prev)
		if lo != c.lo || hi != c.hi {
			t.Errorf("Envelope(%s, retry %d, prev %v) = [%v, %v], want [%v, %v]", c.kind, c.retry, c.prev, lo, hi, c.lo, c.hi)
		}
	}
}

func TestShiftDoesNotOverflow(t *testing.T) {
	for _, retry := range []int{40, 63, 64, 65, 1000, math.MaxInt} {
		for _, cap := range []time.Duration{5 * time.Second, 0} {
			_, hi := Envelope(FullJitter, time.Second, cap, retry, 0)
			want := cap
			if cap == 0 {
				want = math.MaxInt64
			}
			if hi != want {
				t.Errorf("retry %d, cap %v: ceiling %v, want %v", retry, cap, hi, want)
			}
		}
	}
	_, hi := Envelope(DecorrelatedJitter, time.Second, 0, 1, math.MaxInt64/2)
	if hi != math.MaxInt64 {
		t.Errorf("decorrelated 3*prev overflowed to %v", hi)
	}
	p := Policy{Kind: FullJitter, Base: time.Second, Rand: NewRand(1)}
	if d := p.Delay(100, 0); d < 0 {
		t.Errorf("uncapped delay at retry 100 is negative: %v", d)
	}
}

func TestSameSeedSameSchedule(t *testing.T) {
	schedule := func(kind Kind, seed uint64) []time.Duration {
		p := policy(kind, seed)
		var out []time.Duration
		var prev time.Duration
		for retry := 1; retry <= 12; retry++ {
			prev = p.Delay(retry, prev)
			out = append(out, prev)
		}
		return out
	}
	for _, kind := range []Kind{FullJitter, EqualJitter, DecorrelatedJitter} {
		a, b, c := schedule(kind, 42), schedule(kind, 42), schedule(kind, 43)
		if !equal(a, b) {
			t.Errorf("%s: seed 42 gave %v then %v", kind, a, b)
		}
		if equal(a, c) {
			t.Errorf("%s: seeds 42 and 43 gave the same schedule %v", kind, a)
		}
	}
}

func equal(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestJitterSpreads checks that jitter is random at all: many seeds must
// give many different delays for the same retry, spread across the
// envelope rather than stuck at one end.
func TestJitterSpreads(t *testing.T) {
	for _, kind := range []Kind{FullJitter, EqualJitter, DecorrelatedJitter} {
		distinct := map[time.Duration]bool{}
		var lowHalf, highHalf int
		for seed := range uint64(500) {
			p := policy(kind, seed)
			d := p.Delay(4, 400*time.Millisecond)
			distinct[d] = true
			lo, hi := Envelope(kind, p.Base, p.Cap, 4, 400*time.Millisecond)
			if d < lo+(hi-lo)/2 {
				lowHalf++
			} else {
				highHalf++
			}
		}
		if len(distinct) < 400 || lowHalf < 150 || highHalf < 150 {
			t.Errorf("%s: %d distinct delays, %d in the low half and %d in the high half of 500", kind, len(distinct), lowHalf, highHalf)
		}
	}
}

func TestCapIsRespectedEvenBelowBase(t *testing.T) {
	for _, kind := range Kinds {
		p := Policy{Kind: kind, Base: time.Second, Cap: 300 * time.Millisecond, Rand: NewRand(3)}
		var prev time.Duration
		for retry := 1; retry <= 12; retry++ {
			prev = p.Delay(retry, prev)
			if prev > p.Cap {
				t.Fatalf("%s retry %d: %v above cap %v", kind, retry, prev, p.Cap)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		p       Policy
		mention string
	}{
		{Policy{Kind: FullJitter, Base: time.Second}, "Rand"},
		{Policy{Kind: EqualJitter, Rand: NewRand(1)}, "Base"},
		{Policy{Kind: "exponential"}, "unknown"},
		{Policy{Kind: None, MaxElapsed: -1}, "MaxElapsed"},
	}
	for _, c := range cases {
		err := c.p.Validate()
		if err == nil || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("Validate(%+v) = %v, want an error about %s", c.p, err, c.mention)
		}
	}
	for _, p := range []Policy{{}, {Kind: None}, policy(DecorrelatedJitter, 1)} {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", p, err)
		}
	}
}

func TestDelayWithoutRandPanicsClearly(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "Rand") {
			t.Fatalf("recovered %v", r)
		}
	}()
	p := Policy{Kind: FullJitter, Base: time.Second}
	p.Delay(1, 0)
}
