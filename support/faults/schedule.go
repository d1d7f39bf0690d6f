package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind names a fault.
type Kind string

// The kinds of fault an Injector can inject. The first four play the
// network, the next three what Stripe answers before its idempotency layer,
// and the last two failures while Stripe executes.
const (
	// DropResponse lets the request execute upstream, then discards the
	// response and closes the connection, after holding it for the rule's
	// delay if one is set (the TravelBook incident: the charge happened,
	// the client never heard).
	DropResponse Kind = "drop_response"
	// ResetBefore resets the connection; the request never reaches Stripe.
	ResetBefore Kind = "reset_before"
	// ResetAfter lets the request execute, then resets the connection.
	ResetAfter Kind = "reset_after"
	// Delay holds the request for the rule's delay, then carries on.
	Delay Kind = "delay"
	// RateLimit answers 429 rate_limit without executing.
	RateLimit Kind = "rate_limit"
	// LockTimeout answers 429 lock_timeout without executing.
	LockTimeout Kind = "lock_timeout"
	// Unavailable answers 503 without executing.
	Unavailable Kind = "unavailable"
	// ServerError executes the request, then answers 500 instead of the
	// result; the idempotency layer saves and replays that 500.
	ServerError Kind = "server_error"
	// Slow makes Stripe take the rule's delay before executing, while the
	// idempotency key stays locked.
	Slow Kind = "slow"
)

var kinds = []Kind{DropResponse, ResetBefore, ResetAfter, Delay, RateLimit, LockTimeout, Unavailable, ServerError, Slow}

// Kinds returns every fault kind, in a stable order.
func Kinds() []Kind { return slices.Clone(kinds) }

// Valid reports whether k is one of Kinds.
func (k Kind) Valid() bool { return slices.Contains(kinds, k) }

// Inside reports whether k is injected by the inner fault point, after
// the idempotency layer.
func (k Kind) Inside() bool { return k == ServerError || k == Slow }

// usesDelay reports whether a rule of kind k reads its delay.
func (k Kind) usesDelay() bool { return k == Delay || k == Slow || k == DropResponse }

func kindList() string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string such as "300ms" or "25h".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String returns the duration as time.Duration formats it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string such as "300ms".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string such as "300ms"; numbers are
// refused because a bare 300 is ambiguous (nanoseconds? milliseconds?).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("must be a duration string such as \"300ms\", not %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration; write it like \"300ms\" or \"2s\"", s)
	}
	*d = Duration(v)
	return nil
}

// Rule selects requests and names the fault to inject into them. All the
// conditions that are set must hold.
type Rule struct {
	// Fault is the kind to inject (required).
	Fault Kind `json:"fault"`
	// Method matches the request method, ignoring case; empty matches any.
	Method string `json:"method,omitempty"`
	// Path matches the URL path exactly, or as a prefix when it ends in
	// "*"; empty matches any.
	Path string `json:"path,omitempty"`
	// Nth holds 1-based positions among the requests that match this
	// rule's method and path.
	Nth []int `json:"nth,omitempty"`
	// KeyAttempts holds 1-based attempt numbers per idempotency key;
	// a request without a key counts as attempt 1.
	KeyAttempts []int `json:"key_attempts,omitempty"`
	// Probability is the chance, drawn from the schedule's seed, that a
	// request meeting the other conditions is hit; 0 means always.
	Probability float64 `json:"probability,omitempty"`
	// Count is the most injections this rule makes; 0 means no limit.
	Count int `json:"count,omitempty"`
	// Delay is how long delay and slow wait, and how long drop_response
	// holds the connection before closing it.
	Delay Duration `json:"delay,omitempty"`
}

// Schedule is a seed and rules evaluated in order for every request.
type Schedule struct {
	Seed  int64  `json:"seed"`
	Rules []Rule `json:"rules"`
}

// FieldError is a schedule error that names the offending field, such as
// "rules[1].delay", or "body" when the JSON itself is broken. The control
// API answers it as 400 {"error":{"message","param"}}.
type FieldError struct {
	Param   string
	Message string
}

// Error returns the message, which already names the field.
func (e *FieldError) Error() string { return e.Message }

func fieldErr(param, format string, args ...any) *FieldError {
	return &FieldError{Param: param, Message: param + " " + fmt.Sprintf(format, args...)}
}

const example = `{"seed":7,"rules":[{"fault":"drop_response","path":"/v1/payment_intents","nth":[1]}]}`

// ParseSchedule reads a schedule from JSON strictly: unknown fields,
// wrong types and trailing data are refused, and the result is validated.
// Every error is a *FieldError naming the field.
func ParseSchedule(data []byte) (Schedule, error) {
	var s Schedule
	if len(bytes.TrimSpace(data)) == 0 {
		return s, &FieldError{Param: "body", Message: "the fault schedule is empty; send a JSON object such as " + example}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil || top == nil {
		msg := "the fault schedule is not a JSON object"
		if err != nil {
			msg = fmt.Sprintf("the fault schedule is not valid JSON (%v)", err)
		}
		return s, &FieldError{Param: "body", Message: msg + "; send a JSON object such as " + example}
	}
	if err := unknownFields(top, "", "seed", "rules"); err != nil {
		return s, err
	}
	if raw, ok := top["seed"]; ok {
		if err := json.Unmarshal(raw, &s.Seed); err != nil {
			return s, fieldErr("seed", "must be an integer, not %s", raw)
		}
	}
	var rawRules []json.RawMessage
	if raw, ok := top["rules"]; ok {
		if err := json.Unmarshal(raw, &rawRules); err != nil {
			return s, fieldErr("rules", "must be a list of rules, not %s", raw)
		}
	}
	for i, raw := range rawRules {
		r, err := parseRule(fmt.Sprintf("rules[%d]", i), raw)
		if err != nil {
			return s, err
		}
		s.Rules = append(s.Rules, r)
	}
	if err := s.Validate(); err != nil {
		return s, err
	}
	return s, nil
}

func parseRule(param string, raw json.RawMessage) (Rule, error) {
	var r Rule
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return r, fieldErr(param, "must be a JSON object such as {\"fault\":\"drop_response\"}, not %s", raw)
	}
	fields := []struct {
		name string
		dst  any
		want string
	}{
		{"fault", &r.Fault, "a string"},
		{"method", &r.Method, "a string"},
		{"path", &r.Path, "a string"},
		{"nth", &r.Nth, "a list of integers"},
		{"key_attempts", &r.KeyAttempts, "a list of integers"},
		{"probability", &r.Probability, "a number"},
		{"count", &r.Count, "an integer"},
		{"delay", &r.Delay, ""},
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	if err := unknownFields(obj, param+".", names...); err != nil {
		return r, err
	}
	for _, f := range fields {
		v, ok := obj[f.name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			if f.want == "" {
				return r, fieldErr(param+"."+f.name, "%v", err)
			}
			return r, fieldErr(param+"."+f.name, "must be %s, not %s", f.want, v)
		}
	}
	return r, nil
}

// unknownFields refuses the first key of obj (in sorted order, so the
// error is stable) that is not among known.
func unknownFields(obj map[string]json.RawMessage, prefix string, known ...string) error {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(known, k) {
			return fieldErr(prefix+k, "is not a known field; use %s", strings.Join(known, ", "))
		}
	}
	return nil
}

// Validate checks every rule and returns a *FieldError for the first
// problem found.
func (s Schedule) Validate() error {
	for i, r := range s.Rules {
		if err := r.validate(fmt.Sprintf("rules[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func (r Rule) validate(p string) error {
	switch {
	case r.Fault == "":
		return fieldErr(p+".fault", "is required; use one of %s", kindList())
	case !r.Fault.Valid():
		return fieldErr(p+".fault", "%q is not a fault; use one of %s", r.Fault, kindList())
	case strings.ContainsAny(r.Method, " \t\r\n/"):
		return fieldErr(p+".method", "%q is not an HTTP method; use e.g. \"POST\" or leave it out to match any", r.Method)
	case r.Path != "" && r.Path != "*" && !strings.HasPrefix(r.Path, "/"):
		return fieldErr(p+".path", "%q must start with \"/\", e.g. \"/v1/payment_intents\"", r.Path)
	case strings.Contains(strings.TrimSuffix(r.Path, "*"), "*"):
		return fieldErr(p+".path", "%q may hold \"*\" only at its end, as a prefix match", r.Path)
	case !(r.Probability >= 0 && r.Probability <= 1):
		return fieldErr(p+".probability", "is %v; use a number from 0 to 1 (0 means always)", r.Probability)
	case r.Count < 0:
		return fieldErr(p+".count", "is %d; use 0 for no limit or a positive number", r.Count)
	case r.Delay < 0:
		return fieldErr(p+".delay", "is %v; use a positive duration such as \"300ms\"", r.Delay)
	case r.Delay > 0 && !r.Fault.usesDelay():
		return fieldErr(p+".delay", "has no effect on %s; remove it (only delay, slow and drop_response use a delay)", r.Fault)
	case r.Delay == 0 && (r.Fault == Delay || r.Fault == Slow):
		return fieldErr(p+".delay", "is required for %s; set a duration such as \"300ms\"", r.Fault)
	}
	for _, n := range r.Nth {
		if n < 1 {
			return fieldErr(p+".nth", "holds %d; positions start at 1", n)
		}
	}
	for _, n := range r.KeyAttempts {
		if n < 1 {
			return fieldErr(p+".key_attempts", "holds %d; attempts start at 1", n)
		}
	}
	return nil
}

// clone returns a deep copy, so callers cannot change a live schedule.
func (s Schedule) clone() Schedule {
	c := Schedule{Seed: s.Seed, Rules: make([]Rule, len(s.Rules))}
	for i, r := range s.Rules {
		r.Nth = slices.Clone(r.Nth)
		r.KeyAttempts = slices.Clone(r.KeyAttempts)
		c.Rules[i] = r
	}
	return c
}

// matches reports whether the rule's method and path select the request.
func (r Rule) matches(method, path string) bool {
	if r.Method != "" && !strings.EqualFold(r.Method, method) {
		return false
	}
	if prefix, ok := strings.CutSuffix(r.Path, "*"); ok {
		return strings.HasPrefix(path, prefix)
	}
	return r.Path == "" || r.Path == path
}
