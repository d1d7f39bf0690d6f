package faults

import (
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/stripeapi"
)

// Injection records one fault actually applied to a request.
type Injection struct {
	At             time.Time `json:"at"`
	Fault          Kind      `json:"fault"`
	Method         string    `json:"method"`
	Path           string    `json:"path"`
	IdempotencyKey string    `json:"idempotency_key"`
	Reference      string    `json:"reference"`
	// Rule is the index of the rule that selected the request.
	Rule int `json:"rule"`
	// Seed is the schedule's seed, so a failing run can be replayed.
	Seed  int64    `json:"seed"`
	Delay Duration `json:"delay,omitempty"`
}

// Config configures an Injector. Every field is optional.
type Config struct {
	// Clock stamps injections. Defaults to clock.Real{}.
	Clock clock.Clock
	// Sleeper waits for delay and slow, and holds drop_response.
	// Defaults to clock.Real{}.
	Sleeper clock.Sleeper
	// Reference is the request parameter that names the business
	// reference recorded with each injection. Defaults to
	// stripeapi.DefaultReference.
	Reference string
	// Log, when set, receives one line per injection, with the seed.
	Log io.Writer
}

// Injector holds a schedule and applies it to requests through the
// Network and Inside middleware. It is safe for concurrent use.
type Injector struct {
	clock     clock.Clock
	sleeper   clock.Sleeper
	reference string

	mu       sync.Mutex
	log      io.Writer
	schedule Schedule
	rng      *rand.Rand
	matched  []int          // per rule: requests that matched method and path
	used     []int          // per rule: injections decided
	attempts map[string]int // per (scope, idempotency key): requests seen
	injected []Injection

	// armed is false while the schedule has no rule: requests then pass
	// untouched (no body read, no per-key counter that would grow without
	// bound in a long-running serve). Set resets the counters anyway, so
	// skipping them meanwhile changes nothing.
	armed atomic.Bool
}

// New returns an Injector with an empty schedule.
func New(cfg Config) *Injector {
	i := &Injector{clock: cfg.Clock, sleeper: cfg.Sleeper, reference: cfg.Reference, log: cfg.Log}
	if i.clock == nil {
		i.clock = clock.Real{}
	}
	if i.sleeper == nil {
		i.sleeper = clock.Real{}
	}
	if i.reference == "" {
		i.reference = stripeapi.DefaultReference
	}
	i.resetLocked(Schedule{})
	return i
}

// Set validates s and makes it the schedule. It starts afresh: match and
// per-key attempt counters are cleared and the random source is seeded
// from s.Seed, so the same schedule over the same requests makes the same
// decisions. The injection log is kept.
func (i *Injector) Set(s Schedule) error {
	if err := s.Validate(); err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.resetLocked(s.clone())
	return nil
}

func (i *Injector) resetLocked(s Schedule) {
	i.schedule = s
	i.armed.Store(len(s.Rules) > 0)
	// PCG wants two words of seed; the second is a fixed constant so that
	// one int64 is all a user has to note down to replay a run.
	i.rng = rand.New(rand.NewPCG(uint64(s.Seed), 0x6f6e656368617267))
	i.matched = make([]int, len(s.Rules))
	i.used = make([]int, len(s.Rules))
	i.attempts = map[string]int{}
}

// Schedule returns a copy of the current schedule.
func (i *Injector) Schedule() Schedule {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.schedule.clone()
}

// Clear removes every rule and clears the counters; the injection log is
// kept, so a report can still show what was injected.
func (i *Injector) Clear() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.resetLocked(Schedule{})
}

// Reset removes every rule, clears the counters and empties the log.
func (i *Injector) Reset() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.resetLocked(Schedule{})
	i.injected = nil
}

// Injected returns a copy of every injection so far, in order.
func (i *Injector) Injected() []Injection {
	i.mu.Lock()
	defer i.mu.Unlock()
	return slices.Clone(i.injected)
}

// Counts returns the number of injections by kind.
func (i *Injector) Counts() map[Kind]int {
	i.mu.Lock()
	defer i.mu.Unlock()
	c := map[Kind]int{}
	for _, in := range i.injected {
		c[in.Fault]++
	}
	return c
}

// request is what the rules look at.
type request struct {
	method, path, key, reference string
	scope                        string // account scope of the key
}

// planned is one rule's fault chosen for a request.
type planned struct {
	fault Kind
	rule  int
	delay time.Duration
}

// decision is everything the schedule chose for one request.
type decision struct {
	req    request
	seed   int64
	delays []planned // every matching delay rule, in rule order
	fault  *planned  // the first matching rule of any other kind
}

// decide bumps the key's attempt counter and evaluates every rule in
// order. Each rule whose method and path match counts the request, so nth
// positions do not depend on other rules; once a fault is chosen, later
// non-delay rules only count (they draw nothing and spend no count).
func (i *Injector) decide(req request) decision {
	i.mu.Lock()
	defer i.mu.Unlock()
	attempt := 1
	if req.key != "" {
		k := req.scope + "\x00" + req.key
		i.attempts[k]++
		attempt = i.attempts[k]
	}
	d := decision{req: req, seed: i.schedule.Seed}
	for n, r := range i.schedule.Rules {
		if !r.matches(req.method, req.path) {
			continue
		}
		i.matched[n]++
		if r.Fault != Delay && d.fault != nil {
			continue
		}
		if len(r.Nth) > 0 && !slices.Contains(r.Nth, i.matched[n]) {
			continue
		}
		if len(r.KeyAttempts) > 0 && !slices.Contains(r.KeyAttempts, attempt) {
			continue
		}
		if r.Count > 0 && i.used[n] >= r.Count {
			continue
		}
		// Draw only here, so the sequence of draws depends on nothing
		// but the requests that reached this point.
		if r.Probability > 0 && i.rng.Float64() >= r.Probability {
			continue
		}
		i.used[n]++
		p := planned{fault: r.Fault, rule: n, delay: r.Delay.D()}
		if r.Fault == Delay {
			d.delays = append(d.delays, p)
		} else {
			d.fault = &p
		}
	}
	return d
}

// record logs that p was applied to the request d describes.
func (i *Injector) record(d decision, p planned) {
	in := Injection{
		At:             i.clock.Now(),
		Fault:          p.fault,
		Method:         d.req.method,
		Path:           d.req.path,
		IdempotencyKey: d.req.key,
		Reference:      d.req.reference,
		Rule:           p.rule,
		Seed:           d.seed,
		Delay:          Duration(p.delay),
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.injected = append(i.injected, in)
	if i.log != nil {
		fmt.Fprintln(i.log, in.line())
	}
}

// line is the log line for an injection; it carries the seed so that a
// failing run can be replayed.
func (in Injection) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "onecharge: fault %s seed=%d rule=%d %s %s key=%s reference=%s",
		in.Fault, in.Seed, in.Rule, in.Method, in.Path, orDash(in.IdempotencyKey), orDash(in.Reference))
	if in.Delay > 0 {
		fmt.Fprintf(&b, " delay=%s", in.Delay)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
