// Package subject makes the acceptance suite's subject pluggable: the
// payment code held to the single-charge guarantee may be the in-repo Safe
// client, an external command run once per booking (Command), or the HTTP
// endpoint of a team's own running service (HTTP). Every subject is a
// payments.Client, so the same fault scenarios and the same ledger check
// apply to all of them; the check reads what the stack really created, never
// what the subject claims.
//
// The contract with an external subject: it creates one PaymentIntent for
// the booking against the Stripe base URL it is given (STRIPE_API_BASE for
// a command; the service's own configuration for an URL), with the booking
// id in metadata[booking_id], and answers with one JSON line:
//
//	{"result":"succeeded|failed|indeterminate","payment_intent":"pi_...","error":"..."}
//
// "indeterminate" means Stripe may or may not have created the
// PaymentIntent (the subject must then reconcile, never charge again under
// a new key). A failed or indeterminate result needs an error saying why.
package subject

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/travelbook/onecharge/support/payments"
)

// DefaultTimeout bounds one booking's charge by an external subject.
const DefaultTimeout = 30 * time.Second

// Error is a subject that misbehaved on a booking: it hung, crashed, printed
// no readable result, or never reached the stack. Specs fail on it with its
// message, which names the booking and what the subject did.
type Error struct {
	Subject string
	Booking string
	What    string
}

func (e *Error) Error() string { return e.What }

// Reply is the JSON line (or HTTP body) a subject answers with.
type Reply struct {
	Result        string `json:"result"`
	PaymentIntent string `json:"payment_intent,omitempty"`
	Error         string `json:"error,omitempty"`
}

// results are the values Reply.Result may take.
var results = map[string]payments.Result{
	"succeeded":     payments.Succeeded,
	"failed":        payments.Failed,
	"indeterminate": payments.Indeterminate,
	"collision":     payments.Collision,
}

// parseReply reads the last line of out that looks like a JSON object: a
// subject may log freely before it, on stdout as well as stderr.
func parseReply(out []byte) (Reply, bool, error) {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r Reply
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return Reply{}, true, fmt.Errorf("its last JSON-looking line is not JSON (%v): %s", err, clip(line))
		}
		if _, ok := results[r.Result]; !ok {
			return Reply{}, true, fmt.Errorf("its result %q is none of succeeded, failed, indeterminate: %s", r.Result, clip(line))
		}
		if r.Result == "succeeded" && !strings.HasPrefix(r.PaymentIntent, "pi_") {
			return Reply{}, true, fmt.Errorf("it says succeeded but names no PaymentIntent (\"payment_intent\":\"pi_...\"): %s", clip(line))
		}
		return r, true, nil
	}
	return Reply{}, false, nil
}

// outcome turns a reply into the payments.Outcome the suite checks.
func outcome(name string, b payments.Booking, r Reply) payments.Outcome {
	o := payments.Outcome{Client: name, Booking: b, Result: results[r.Result], PaymentIntent: r.PaymentIntent, Error: r.Error}
	if r.Error != "" {
		o.Err = fmt.Errorf("%s", r.Error)
	}
	return o
}

// misbehaved is the outcome of a subject that gave no usable answer. It is
// indeterminate (the subject may have charged), and carries an *Error.
func misbehaved(name string, b payments.Booking, format string, args ...any) payments.Outcome {
	e := &Error{Subject: name, Booking: b.ID, What: fmt.Sprintf(format, args...)}
	return payments.Outcome{Client: name, Booking: b, Result: payments.Indeterminate, Err: e, Error: e.What}
}

// checkSeen flags a subject that answered but left no trace on the stack
// for the booking: no PaymentIntent created and no fault met. It most
// likely talks to another Stripe (or to nothing) than the one it was given.
func checkSeen(o payments.Outcome, seen func(string) int, how string) payments.Outcome {
	if seen == nil || o.Err != nil && isSubjectError(o.Err) || seen(o.Booking.ID) > 0 {
		return o
	}
	e := &Error{Subject: o.Client, Booking: o.Booking.ID, What: fmt.Sprintf(
		"subject %s (result %q) but the stack saw no request for booking %s (no PaymentIntent created, no fault met): does it use %s and send metadata[booking_id]?",
		how, o.Result, o.Booking.ID, baseHint(o.Client))}
	if o.Error != "" {
		e.What += " Its error: " + o.Error
	}
	o.Err, o.Error = e, e.What
	return o
}

func baseHint(name string) string {
	if strings.HasPrefix(name, "url:") {
		return "the stack's base URL (ONECHARGE_STACK_ADDR)"
	}
	return "STRIPE_API_BASE"
}

// IsSubjectError reports whether err says that the subject itself
// misbehaved, rather than that a payment failed.
func IsSubjectError(err error) bool { return isSubjectError(err) }

func isSubjectError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// clip shortens s for an error message.
func clip(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "(nothing)"
	}
	const max = 400
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
