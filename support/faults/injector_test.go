package faults

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/travelbook/onecharge/support/clock"
)

// chosen runs the schedule's decision for one request and names the
// non-delay fault chosen, or "" for none.
func chosen(i *Injector, method, path, key string) Kind {
	d := i.decide(request{method: method, path: path, key: key})
	if d.fault == nil {
		return ""
	}
	return d.fault.fault
}

func mustSet(t *testing.T, i *Injector, s Schedule) {
	t.Helper()
	if err := i.Set(s); err != nil {
		t.Fatal(err)
	}
}

func TestNthCountsOnlyRequestsMatchingTheRule(t *testing.T) {
	i := New(Config{})
	mustSet(t, i, Schedule{Rules: []Rule{{Fault: ResetBefore, Method: "post", Path: "/v1/payment_intents", Nth: []int{2, 4}}}})
	var got []Kind
	for n := range 5 {
		chosen(i, "GET", "/v1/payment_intents", "") // other method: not counted
		chosen(i, "POST", "/v1/customers", "")      // other path: not counted
		got = append(got, chosen(i, "POST", "/v1/payment_intents", fmt.Sprint("k", n)))
	}
	want := []Kind{"", ResetBefore, "", ResetBefore, ""}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decisions = %q, want %q", got, want)
	}
}

func TestKeyAttemptsCountPerKey(t *testing.T) {
	i := New(Config{})
	mustSet(t, i, Schedule{Rules: []Rule{{Fault: DropResponse, KeyAttempts: []int{1}}, {Fault: RateLimit, KeyAttempts: []int{3}}}})
	steps := []struct {
		key  string
		want Kind
	}{
		{"a", DropResponse}, {"a", ""}, {"b", DropResponse}, {"a", RateLimit}, {"a", ""},
		{"", DropResponse}, {"", DropResponse}, // no key: always attempt 1
	}
	for n, s := range steps {
		if got := chosen(i, "POST", "/v1/payment_intents", s.key); got != s.want {
			t.Fatalf("step %d (key %q): %q, want %q", n, s.key, got, s.want)
		}
	}
}

func TestKeyAttemptsAreScopedToTheAccount(t *testing.T) {
	i := New(Config{})
	mustSet(t, i, Schedule{Rules: []Rule{{Fault: RateLimit, KeyAttempts: []int{1}}}})
	a := i.decide(request{method: "POST", path: "/", key: "k", scope: "sk_a"})
	b := i.decide(request{method: "POST", path: "/", key: "k", scope: "sk_b"})
	if a.fault == nil || b.fault == nil {
		t.Fatal("the same key under two accounts is two keys, each on attempt 1")
	}
}

func TestCountLimitsInjections(t *testing.T) {
	i := New(Config{})
	mustSet(t, i, Schedule{Rules: []Rule{{Fault: Unavailable, Count: 2}, {Fault: RateLimit, Nth: []int{3}}}})
	var got []Kind
	for range 4 {
		got = append(got, chosen(i, "POST", "/v1/payment_intents", ""))
	}
	// The third request falls through to the second rule, whose own nth
	// counter saw every request.
	want := []Kind{Unavailable, Unavailable, RateLimit, ""}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decisions = %q, want %q", got, want)
	}
}

func TestFirstNonDelayRuleWinsAndDelaysAddUp(t *testing.T) {
	i := New(Config{})
	mustSet(t, i, Schedule{Rules: []Rule{
		{Fault: Delay, Delay: Duration(time.Second)},
		{Fault: RateLimit, Count: 1},
		{Fault: Unavailable, Count: 1},
		{Fault: Delay, Delay: Duration(2 * time.Second)},
	}})
	d := i.decide(request{method: "POST", path: "/"})
	if d.fault == nil || d.fault.fault != RateLimit || len(d.delays) != 2 || d.delays[0].delay+d.delays[1].delay != 3*time.Second {
		t.Fatalf("first decision: fault %+v delays %+v", d.fault, d.delays)
	}
	// The unavailable rule did not spend its count on the first request.
	if got := chosen(i, "POST", "/", ""); got != Unavailable {
		t.Fatalf("second decision = %q, want unavailable", got)
	}
}

func TestPathPrefix(t *testing.T) {
	i := New(Config{})
	mustSet(t, i, Schedule{Rules: []Rule{{Fault: ServerError, Path: "/v1/payment_intents*"}}})
	for path, want := range map[string]Kind{
		"/v1/payment_intents":                 ServerError,
		"/v1/payment_intents/pi_1/confirm":    ServerError,
		"/v1/customers":                       "",
		"/v1/payment_intent":                  "",
		"/_onecharge/v1/payment_intents/pi_1": "",
	} {
		if got := chosen(i, "POST", path, ""); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
	mustSet(t, i, Schedule{Rules: []Rule{{Fault: ServerError, Path: "*"}}})
	if chosen(i, "GET", "/anything", "") != ServerError {
		t.Error(`path "*" should match every request`)
	}
}

// run returns the decisions for n requests under a probability rule.
func run(t *testing.T, i *Injector, seed int64, n int) string {
	mustSet(t, i, Schedule{Seed: seed, Rules: []Rule{{Fault: Unavailable, Probability: 0.3}}})
	var b strings.Builder
	for range n {
		if chosen(i, "POST", "/v1/payment_intents", "") != "" {
			b.WriteByte('x')
		} else {
			b.WriteByte('.')
		}
	}
	return b.String()
}

func TestProbabilityIsReproducibleFromTheSeed(t *testing.T) {
	i := New(Config{})
	a, again, other := run(t, i, 7, 200), run(t, i, 7, 200), run(t, i, 8, 200)
	if a != again {
		t.Fatalf("same seed, different decisions:\n%s\n%s", a, again)
	}
	if a == other {
		t.Fatalf("seeds 7 and 8 made the same 200 decisions: %s", a)
	}
	if hits := strings.Count(a, "x"); hits < 30 || hits > 90 {
		t.Fatalf("probability 0.3 hit %d of 200", hits)
	}
}

func TestProbabilityDrawsOnlyWhenOtherConditionsHold(t *testing.T) {
	// With nth set, requests outside nth must not consume draws, so adding
	// unmatched traffic does not change which matched requests are hit.
	i := New(Config{})
	decide := func(noise bool) string {
		mustSet(t, i, Schedule{Seed: 3, Rules: []Rule{{Fault: Unavailable, KeyAttempts: []int{2}, Probability: 0.5}}})
		var b strings.Builder
		for n := range 100 {
			key := fmt.Sprint("k", n)
			chosen(i, "POST", "/", key) // attempt 1: never draws
			if noise {
				chosen(i, "POST", "/", fmt.Sprint("noise", n))
			}
			fmt.Fprint(&b, chosen(i, "POST", "/", key) != "")
		}
		return b.String()
	}
	if decide(false) != decide(true) {
		t.Fatal("requests that failed key_attempts consumed random draws")
	}
}

func TestSetResetsCountersAndClearKeepsTheLog(t *testing.T) {
	var log bytes.Buffer
	start := time.Date(2025, 9, 9, 10, 50, 0, 0, time.UTC)
	i := New(Config{Clock: clock.NewVirtual(start), Log: &log})
	s := Schedule{Seed: 7, Rules: []Rule{{Fault: RateLimit, Method: "POST", Nth: []int{1}, KeyAttempts: []int{1}}}}
	h := i.Network(http.NotFoundHandler())
	hit := func() int {
		r := httptest.NewRequest("POST", "/v1/payment_intents", strings.NewReader("amount=100&metadata[booking_id]=BK-1"))
		r.Header.Set("Idempotency-Key", "key-1")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	mustSet(t, i, s)
	if a, b := hit(), hit(); a != 429 || b != 404 {
		t.Fatalf("statuses %d, %d; want 429, 404", a, b)
	}
	mustSet(t, i, s) // fresh counters: nth 1 and attempt 1 again
	if c := hit(); c != 429 {
		t.Fatalf("after Set: %d, want 429", c)
	}
	want := Injection{At: start, Fault: RateLimit, Method: "POST", Path: "/v1/payment_intents",
		IdempotencyKey: "key-1", Reference: "BK-1", Rule: 0, Seed: 7}
	if got := i.Injected(); len(got) != 2 || got[0] != want {
		t.Fatalf("Injected() = %+v", got)
	}
	if line := "onecharge: fault rate_limit seed=7 rule=0 POST /v1/payment_intents key=key-1 reference=BK-1\n"; !strings.HasPrefix(log.String(), line) {
		t.Fatalf("log = %q, want it to start with %q", log.String(), line)
	}
	i.Clear()
	if len(i.Schedule().Rules) != 0 || hit() != 404 {
		t.Fatal("Clear left rules in place")
	}
	if c := i.Counts(); c[RateLimit] != 2 || len(c) != 1 {
		t.Fatalf("Counts() after Clear = %v", c)
	}
	i.Reset()
	if len(i.Injected()) != 0 || len(i.Counts()) != 0 {
		t.Fatal("Reset kept the log")
	}
}

func TestScheduleReturnsACopy(t *testing.T) {
	i := New(Config{})
	mustSet(t, i, Schedule{Seed: 1, Rules: []Rule{{Fault: ResetBefore, Nth: []int{1}}}})
	s := i.Schedule()
	s.Rules[0].Nth[0] = 5
	if i.Schedule().Rules[0].Nth[0] != 1 {
		t.Fatal("Schedule() shares memory with the live schedule")
	}
	if err := i.Set(Schedule{Rules: []Rule{{Fault: "bogus"}}}); err == nil {
		t.Fatal("Set accepted an invalid schedule")
	}
	if i.Schedule().Seed != 1 {
		t.Fatal("a refused Set replaced the schedule")
	}
}

func TestConcurrentRequests(t *testing.T) {
	i := New(Config{Sleeper: clock.NewVirtual(time.Time{})})
	mustSet(t, i, Schedule{Seed: 1, Rules: []Rule{
		{Fault: Delay, Delay: Duration(time.Millisecond), Probability: 0.5},
		{Fault: RateLimit, Count: 50},
	}})
	h := i.Network(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := range 25 {
				r := httptest.NewRequest("POST", "/v1/payment_intents", strings.NewReader("a=1"))
				r.Header.Set("Idempotency-Key", fmt.Sprint(g, "-", n%3))
				h.ServeHTTP(httptest.NewRecorder(), r)
				_ = i.Counts()
			}
		})
	}
	wg.Go(func() { _ = i.Schedule(); _ = i.Injected() })
	wg.Wait()
	if c := i.Counts(); c[RateLimit] != 50 || c[Delay] == 0 {
		t.Fatalf("Counts() = %v, want 50 rate limits and some delays", c)
	}
}
