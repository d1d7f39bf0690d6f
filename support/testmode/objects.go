package testmode

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/ledger"
	"github.com/travelbook/onecharge/support/stripeapi"
)

const pathPaymentIntents = "/v1/payment_intents"

// intent is what the stand-in remembers of a PaymentIntent beyond the
// stack's ledger: stripe-mock keeps nothing, and answers metadata: {}.
type intent struct {
	metadata   map[string]string
	created    time.Time
	canceledAt time.Time
	reason     string
}

// objects is the stand-in's upstream, in front of stripe-mock: it keeps
// the PaymentIntents that were really created and answers the two calls
// the read-back needs, which stripe-mock cannot (it ignores created[gte]
// and returns fixtures): listing PaymentIntents, and canceling one.
//
// It is a RoundTripper under the stack's proxy, so it sits inside the
// emulated idempotency layer, as Stripe's own endpoints do: a cancel
// retried with the same key is replayed, not executed twice, and a create
// replay never reaches it.
type objects struct {
	next   http.RoundTripper // to stripe-mock
	clk    clock.Clock
	ledger func() []ledger.Object

	mu      sync.Mutex
	intents map[string]*intent
}

func (o *objects) RoundTrip(r *http.Request) (*http.Response, error) {
	p := r.URL.Path
	switch {
	case p == pathPaymentIntents && r.Method == http.MethodGet:
		return o.list(r), nil
	case p == pathPaymentIntents && r.Method == http.MethodPost:
		return o.create(r)
	case strings.HasPrefix(p, pathPaymentIntents+"/") && strings.HasSuffix(p, "/cancel") && r.Method == http.MethodPost:
		id := strings.TrimSuffix(strings.TrimPrefix(p, pathPaymentIntents+"/"), "/cancel")
		return o.cancel(r, id), nil
	}
	return o.next.RoundTrip(r)
}

// create forwards to stripe-mock, remembers the request's metadata, and
// puts it (and a real creation time) into the answer, as Stripe would.
func (o *objects) create(r *http.Request) (*http.Response, error) {
	body, err := stripeapi.ReadBody(r)
	if err != nil {
		return nil, err
	}
	resp, err := o.next.RoundTrip(r)
	if err != nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, err
	}
	out, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var pi map[string]any
	if json.Unmarshal(out, &pi) == nil {
		if id, ok := pi["id"].(string); ok && id != "" {
			in := &intent{metadata: metadataOf(stripeapi.Form(body)), created: o.clk.Now()}
			o.mu.Lock()
			o.intents[id] = in
			o.mu.Unlock()
			pi["metadata"] = in.metadata
			pi["created"] = in.created.Unix()
			pi["livemode"] = false
			out, _ = json.Marshal(pi)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	return resp, nil
}

func metadataOf(form map[string][]string) map[string]string {
	md := map[string]string{}
	for k, v := range form {
		if name, ok := strings.CutPrefix(k, "metadata["); ok && strings.HasSuffix(name, "]") && len(v) > 0 {
			md[strings.TrimSuffix(name, "]")] = v[0]
		}
	}
	return md
}

// list answers GET /v1/payment_intents like Stripe: newest first, the
// created[gt|gte|lt|lte] and created filters, limit (1-100, default 10),
// starting_after and ending_before.
// See https://docs.stripe.com/api/payment_intents/list and https://docs.stripe.com/api/pagination.
func (o *objects) list(r *http.Request) *http.Response {
	q := r.URL.Query()
	limit := 10
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return errorResponse(r, http.StatusBadRequest, stripeapi.Error{Type: stripeapi.TypeInvalidRequest, Param: "limit",
				Message: "Invalid limit: must be an integer between 1 and 100"})
		}
		limit = n
	}
	keep, bad := createdFilter(q)
	if bad != "" {
		return errorResponse(r, http.StatusBadRequest, stripeapi.Error{Type: stripeapi.TypeInvalidRequest, Param: bad,
			Message: "Invalid integer: " + q.Get(bad)})
	}
	all := o.snapshot()
	var items []map[string]any
	for _, pi := range all {
		if keep(pi["created"].(int64)) {
			items = append(items, pi)
		}
	}
	from, to := 0, len(items)
	if after := q.Get("starting_after"); after != "" {
		i := indexOf(items, after)
		if i < 0 {
			return missing(r, "starting_after", after)
		}
		from = i + 1
		to = min(from+limit, len(items))
	} else if before := q.Get("ending_before"); before != "" {
		i := indexOf(items, before)
		if i < 0 {
			return missing(r, "ending_before", before)
		}
		to = i
		from = max(0, to-limit)
	} else {
		to = min(limit, len(items))
	}
	hasMore := to < len(items)
	if q.Get("ending_before") != "" {
		hasMore = from > 0
	}
	page := items[from:to]
	if page == nil {
		page = []map[string]any{}
	}
	return jsonResponse(r, http.StatusOK, map[string]any{
		"object": "list", "data": page, "has_more": hasMore, "url": pathPaymentIntents,
	})
}

// createdFilter reads created, created[gt], created[gte], created[lt] and
// created[lte]; bad names a parameter that is not an integer.
func createdFilter(q map[string][]string) (keep func(int64) bool, bad string) {
	type bound struct {
		name string
		ok   func(c, v int64) bool
	}
	bounds := []bound{
		{"created", func(c, v int64) bool { return c == v }},
		{"created[gt]", func(c, v int64) bool { return c > v }},
		{"created[gte]", func(c, v int64) bool { return c >= v }},
		{"created[lt]", func(c, v int64) bool { return c < v }},
		{"created[lte]", func(c, v int64) bool { return c <= v }},
	}
	var tests []func(int64) bool
	for _, b := range bounds {
		vs, ok := q[b.name]
		if !ok || len(vs) == 0 {
			continue
		}
		v, err := strconv.ParseInt(vs[0], 10, 64)
		if err != nil {
			return nil, b.name
		}
		test := b.ok
		tests = append(tests, func(c int64) bool { return test(c, v) })
	}
	return func(c int64) bool {
		for _, t := range tests {
			if !t(c) {
				return false
			}
		}
		return true
	}, ""
}

// snapshot is every PaymentIntent the ledger recorded, as Stripe's JSON,
// newest first (ties: the later record first).
func (o *objects) snapshot() []map[string]any {
	recs := o.ledger()
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []map[string]any
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Object == ledger.ObjectPaymentIntent {
			out = append(out, o.jsonOf(recs[i]))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i]["created"].(int64) > out[j]["created"].(int64) })
	return out
}

// jsonOf renders a recorded PaymentIntent; o.mu must be held.
func (o *objects) jsonOf(rec ledger.Object) map[string]any {
	in := o.intents[rec.ID]
	if in == nil { // recorded, but not through create (never expected)
		in = &intent{metadata: map[string]string{}, created: rec.CreatedAt}
		if rec.Reference != "" {
			in.metadata["booking_id"] = rec.Reference
		}
	}
	pi := map[string]any{
		"id": rec.ID, "object": ledger.ObjectPaymentIntent, "amount": rec.Amount, "currency": rec.Currency,
		"metadata": in.metadata, "created": in.created.Unix(), "livemode": false,
		"status": "requires_payment_method", "client_secret": clientSecret(rec.ID),
		"canceled_at": nil, "cancellation_reason": nil,
	}
	if !in.canceledAt.IsZero() {
		pi["status"] = "canceled"
		pi["canceled_at"] = in.canceledAt.Unix()
		if in.reason != "" {
			pi["cancellation_reason"] = in.reason
		}
	}
	return pi
}

// clientSecret is a stable, Stripe-shaped client secret, so that the
// redaction of evidence meets the real thing.
func clientSecret(id string) string {
	h := sha256.Sum256([]byte("onecharge-standin:" + id))
	return id + "_secret_" + hex.EncodeToString(h[:12])
}

// cancel marks a PaymentIntent canceled, or answers as Stripe does when it
// is unknown (404) or already canceled (400 payment_intent_unexpected_state).
// See https://docs.stripe.com/api/payment_intents/cancel.
func (o *objects) cancel(r *http.Request, id string) *http.Response {
	body, _ := stripeapi.ReadBody(r)
	reason := stripeapi.Form(body).Get("cancellation_reason")
	var rec *ledger.Object
	for _, x := range o.ledger() {
		if x.ID == id {
			rec = &x
			break
		}
	}
	if rec == nil {
		return missing(r, "intent", id)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	in := o.intents[id]
	if in == nil {
		in = &intent{metadata: map[string]string{}, created: rec.CreatedAt}
		o.intents[id] = in
	}
	if !in.canceledAt.IsZero() {
		body, _ := json.Marshal(map[string]any{"error": map[string]any{
			"type": stripeapi.TypeInvalidRequest, "code": "payment_intent_unexpected_state",
			"message":        "You cannot cancel this PaymentIntent because it has a status of canceled. Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing.",
			"payment_intent": o.jsonOf(*rec),
		}})
		return rawResponse(r, http.StatusBadRequest, body)
	}
	in.canceledAt, in.reason = o.clk.Now(), reason
	return jsonResponse(r, http.StatusOK, o.jsonOf(*rec))
}

func indexOf(items []map[string]any, id string) int {
	for i, it := range items {
		if it["id"] == id {
			return i
		}
	}
	return -1
}

func missing(r *http.Request, param, id string) *http.Response {
	return errorResponse(r, http.StatusNotFound, stripeapi.Error{Type: stripeapi.TypeInvalidRequest, Code: "resource_missing",
		Param: param, Message: fmt.Sprintf("No such payment_intent: '%s'", id)})
}

func errorResponse(r *http.Request, status int, e stripeapi.Error) *http.Response {
	return jsonResponse(r, status, map[string]any{"error": e})
}

func jsonResponse(r *http.Request, status int, v any) *http.Response {
	body, _ := json.Marshal(v)
	return rawResponse(r, status, body)
}

func rawResponse(r *http.Request, status int, body []byte) *http.Response {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r,
	}
}
