package retry

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/stripe/stripe-go/v76"
	"github.com/travelbook/onecharge/support/stripeapi"
)

// Decision is what to do after an attempt.
type Decision int

// Decisions. The zero value is Stop, so a Class nobody filled in never
// retries.
const (
	// Stop: the outcome is known (success, or a failure that retrying
	// cannot change); do not retry.
	Stop Decision = iota
	// Retry: try again with the same idempotency key.
	Retry
	// Indeterminate: Stripe may or may not have executed the request (a
	// saved 500). Stop, flag the operation for reconciliation, and never
	// try it with a new key.
	Indeterminate
	// Collision: the key was already used with other parameters or on
	// another endpoint (400 idempotency_error). Stop; a new key would turn
	// a caught mistake into a second charge.
	Collision
)

// String returns "retry", "stop", "indeterminate" or "collision".
func (d Decision) String() string {
	switch d {
	case Stop:
		return "stop"
	case Retry:
		return "retry"
	case Indeterminate:
		return "indeterminate"
	case Collision:
		return "collision"
	}
	return "Decision(" + strconv.Itoa(int(d)) + ")"
}

// Class is the classification of one attempt's result.
type Class struct {
	Decision Decision
	// Reason says in a few words why, for logs and reports.
	Reason string
	// Status is the HTTP status Stripe answered, 0 if none arrived.
	Status int
	// Code and Type are Stripe's error code and type, if any.
	Code string
	Type string
	// RequestID is Stripe's Request-Id of the response, if any.
	RequestID string
	// Replayed is true when the response carried Idempotent-Replayed: true,
	// that is Stripe answered from a saved result without executing.
	Replayed bool
	// Network is true when no complete response arrived (connection
	// refused, reset, closed, or timed out); the request may or may not
	// have reached Stripe.
	Network bool
}

// Classify says what to do with what a stripe-go v76 call returned.
//
// nil is Stop with Reason "succeeded": a success is final. A cancelled
// context is Stop: the caller gave up. Network errors and timeouts are
// Retry, because with the same key Stripe either executes the request once
// or replays it. Stripe errors follow their status:
//
//	409 (idempotency_key_in_use)      Retry: the first request is still running
//	429 (rate_limit, lock_timeout)    Retry: rate limiters run before the idempotency layer
//	503                               Retry: not executed
//	500 and other 5xx                 Indeterminate: saved and replayed on POST
//	400 idempotency_error             Collision
//	402 and other 4xx                 Stop
//
// A Stripe-Should-Retry header on the response overrides this: "false"
// turns Retry into Stop, "true" turns Stop or Indeterminate into Retry. It
// never turns a Collision into a retry, and "false" leaves Indeterminate as
// it is: it forbids retrying but does not say the request was not executed.
// Any other error (not a network error, not one Stripe sent) is
// Indeterminate: nothing says whether Stripe executed the request.
func Classify(err error) Class {
	if err == nil {
		return Class{Decision: Stop, Reason: "succeeded"}
	}
	var se *stripe.Error
	if errors.As(err, &se) {
		return override(fromStatus(se), responseHeader(se))
	}
	if errors.Is(err, context.Canceled) {
		return Class{Decision: Stop, Reason: "cancelled by the caller"}
	}
	if c, ok := network(err); ok {
		return c
	}
	if strings.Contains(err.Error(), "cannot use an idempotency key longer than") {
		return Class{Decision: Stop, Reason: "key refused by stripe-go before sending"}
	}
	// stripe-go reports an error status with a body that is not JSON (a
	// proxy's HTML page, say) only as text; the status is still in it.
	if m := undecodable.FindStringSubmatch(err.Error()); m != nil {
		status, _ := strconv.Atoi(m[1])
		c := fromStatus(&stripe.Error{HTTPStatusCode: status})
		c.Reason += " (body not Stripe's JSON)"
		return c
	}
	return Class{Decision: Indeterminate, Reason: "unrecognised error: " + err.Error()}
}

var undecodable = regexp.MustCompile(`Couldn't deserialize JSON \(response status: (\d+)`)

// fromStatus classifies a Stripe error by its status, code and type.
func fromStatus(se *stripe.Error) Class {
	c := Class{Status: se.HTTPStatusCode, Code: string(se.Code), Type: string(se.Type), RequestID: se.RequestID}
	if h := responseHeader(se); h != nil {
		c.Replayed = h.Get(stripeapi.HeaderIdempotentReplayed) == "true"
	}
	s := c.Status
	switch {
	case s == http.StatusConflict:
		// Checked before the type: the emulator (and perhaps Stripe) sends
		// idempotency_error with code idempotency_key_in_use.
		c.Decision, c.Reason = Retry, "another request with this key is in progress"
	case se.Type == stripe.ErrorTypeIdempotency:
		c.Decision, c.Reason = Collision, "idempotency key reused with other parameters or another endpoint"
	case s == http.StatusTooManyRequests:
		c.Decision, c.Reason = Retry, "rate limited or lock timeout"
	case s == http.StatusServiceUnavailable:
		c.Decision, c.Reason = Retry, "Stripe unavailable, request not executed"
	case s >= 500 && c.Replayed:
		c.Decision, c.Reason = Indeterminate, "saved server error replayed"
	case s >= 500:
		c.Decision, c.Reason = Indeterminate, "server error, outcome unknown"
	case s == http.StatusPaymentRequired:
		c.Decision, c.Reason = Stop, "request failed (402)"
	case s >= 400:
		c.Decision, c.Reason = Stop, fmt.Sprintf("request rejected (%d)", s)
	default:
		c.Decision, c.Reason = Indeterminate, fmt.Sprintf("unexpected Stripe error with status %d", s)
	}
	return c
}

func responseHeader(se *stripe.Error) http.Header {
	if se.LastResponse == nil {
		return nil
	}
	return se.LastResponse.Header
}

// override applies Stripe-Should-Retry.
func override(c Class, h http.Header) Class {
	if h == nil || c.Decision == Collision {
		return c
	}
	switch h.Get(stripeapi.HeaderShouldRetry) {
	case "true":
		if c.Decision != Retry {
			c.Decision = Retry
			c.Reason += "; Stripe-Should-Retry: true"
		}
	case "false":
		if c.Decision == Retry {
			c.Decision = Stop
			c.Reason += "; Stripe-Should-Retry: false"
		}
	}
	return c
}

// network recognises errors where no complete response arrived. Like
// stripe-go, it does not retry redirect loops, a wrong URL scheme or an
// untrusted certificate: those are configuration, not weather.
func network(err error) (Class, bool) {
	c := Class{Decision: Retry, Network: true}
	var ue *url.Error
	if errors.As(err, &ue) {
		msg := ue.Error()
		var unknownCA x509.UnknownAuthorityError
		if strings.Contains(msg, "unsupported protocol scheme") || strings.HasSuffix(msg, "redirects") || errors.As(ue.Err, &unknownCA) {
			return Class{Decision: Stop, Reason: "client configuration: " + msg}, true
		}
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		c.Reason = "timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		c.Reason = "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		c.Reason = "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		c.Reason = "connection closed before the response"
	case errors.As(err, &ne), ue != nil:
		c.Reason = "network error"
	default:
		return Class{}, false
	}
	return c, true
}
