package subject

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/travelbook/onecharge/support/payments"
)

// Request is the JSON body HTTP POSTs to a team's service for a booking.
type Request struct {
	BookingID string `json:"booking_id"`
	AgencyID  string `json:"agency_id"`
	Amount    int64  `json:"amount"` // minor units
	Currency  string `json:"currency"`
}

// HTTP is an external subject reached over HTTP: the team's own running
// service, configured to use the stack as its Stripe base URL. It POSTs a
// Request per booking and reads a Reply from the response body, whatever
// the status code.
type HTTP struct {
	// URL receives the POST.
	URL string
	// Timeout bounds each booking. Defaults to DefaultTimeout.
	Timeout time.Duration
	// Seen, when set, counts what the stack saw for a booking; see Command.
	Seen func(booking string) int
	// Client sends the request. Defaults to a fresh http.Client.
	Client *http.Client
}

// Name is "url:" and the URL.
func (h *HTTP) Name() string { return "url:" + h.URL }

// Charge asks the service to charge b.
func (h *HTTP) Charge(ctx context.Context, b payments.Booking) payments.Outcome {
	name := h.Name()
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	hc := h.Client
	if hc == nil {
		hc = &http.Client{}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, _ := json.Marshal(Request{BookingID: b.ID, AgencyID: b.Agency, Amount: b.Amount, Currency: b.Currency})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return misbehaved(name, b, "subject URL %q is not usable for booking %s: %v", h.URL, b.ID, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return misbehaved(name, b, "subject timed out after %v for booking %s (request abandoned)", timeout, b.ID)
		}
		return misbehaved(name, b, "subject at %s did not answer for booking %s: %v; is the service running there?", h.URL, b.ID, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return misbehaved(name, b, "subject timed out after %v for booking %s while answering (HTTP %d)", timeout, b.ID, resp.StatusCode)
		}
		return misbehaved(name, b, "subject's answer for booking %s broke off (HTTP %d): %v", b.ID, resp.StatusCode, err)
	}
	reply, found, perr := parseReply(data)
	switch {
	case perr != nil:
		return misbehaved(name, b, "subject answered an unreadable result for booking %s (HTTP %d): %v", b.ID, resp.StatusCode, perr)
	case !found:
		return misbehaved(name, b, "subject answered HTTP %d with no JSON result for booking %s; body was: %s", resp.StatusCode, b.ID, clip(string(data)))
	case reply.Result == "succeeded" && resp.StatusCode >= 300:
		return misbehaved(name, b, "subject answered HTTP %d but result succeeded (%s) for booking %s: answer 2xx on success", resp.StatusCode, reply.PaymentIntent, b.ID)
	}
	return checkSeen(outcome(name, b, reply), h.Seen, fmt.Sprintf("answered HTTP %d", resp.StatusCode))
}
