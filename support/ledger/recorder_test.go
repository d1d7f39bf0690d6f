package ledger

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/stripeapi"
	"github.com/travelbook/onecharge/support/stripemock"
)

func TestRecorder(t *testing.T) {
	const piBody = `{"id":"pi_123","object":"payment_intent","amount":240000,"metadata":{}}`
	form := url.Values{"amount": {"240000"}, "currency": {"EUR"}, "metadata[booking_id]": {"bk_1"}, "metadata[order]": {"ord_9"}}.Encode()
	for _, tc := range []struct {
		name     string
		method   string
		path     string
		body     string
		refParam string
		status   int // 0: the upstream writes the body without WriteHeader
		respBody string
		want     *Object
	}{
		{name: "create", method: "POST", path: "/v1/payment_intents", body: form, status: 200, respBody: piBody,
			want: &Object{ID: "pi_123", Object: "payment_intent", Path: "/v1/payment_intents", Reference: "bk_1", Amount: 240000, Currency: "eur", IdempotencyKey: "key-1", RequestID: "req_internal"}},
		{name: "implicit 200", method: "POST", path: "/v1/payment_intents", body: form, status: 0, respBody: piBody,
			want: &Object{ID: "pi_123", Object: "payment_intent", Path: "/v1/payment_intents", Reference: "bk_1", Amount: 240000, Currency: "eur", IdempotencyKey: "key-1", RequestID: "req_internal"}},
		{name: "custom reference, no amount", method: "POST", path: "/v1/customers", body: "metadata[order]=ord_9", refParam: "metadata[order]", status: 200, respBody: `{"id":"cus_1","object":"customer"}`,
			want: &Object{ID: "cus_1", Object: "customer", Path: "/v1/customers", Reference: "ord_9", IdempotencyKey: "key-1", RequestID: "req_internal"}},
		{name: "action on an existing object", method: "POST", path: "/v1/payment_intents/pi_123/confirm", body: form, status: 200, respBody: piBody},
		{name: "update of an existing object", method: "POST", path: "/v1/payment_intents/pi_123", body: form, status: 200, respBody: piBody},
		{name: "card declined", method: "POST", path: "/v1/payment_intents", body: form, status: 402, respBody: `{"error":{"type":"card_error"}}`},
		{name: "server error with an object body", method: "POST", path: "/v1/payment_intents", body: form, status: 500, respBody: piBody},
		{name: "GET", method: "GET", path: "/v1/payment_intents", status: 200, respBody: piBody},
		{name: "not JSON", method: "POST", path: "/v1/payment_intents", body: form, status: 200, respBody: `pi_123`},
		{name: "no object", method: "POST", path: "/v1/payment_intents", body: form, status: 200, respBody: `{"id":"pi_123"}`},
		{name: "numeric id", method: "POST", path: "/v1/payment_intents", body: form, status: 200, respBody: `{"id":123,"object":"payment_intent"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var upstreamBody string
			upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				upstreamBody = string(b)
				w.Header().Set("Request-Id", "req_123")
				if tc.status != 0 {
					w.WriteHeader(tc.status)
				}
				_, _ = io.WriteString(w, tc.respBody)
			})
			l := New(clock.NewVirtual(start))
			h := Recorder(l, tc.refParam, upstream)
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set(stripeapi.HeaderIdempotencyKey, "key-1")
			req.Header.Set(stripeapi.HeaderInternalRequestID, "req_internal")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			wantStatus := tc.status
			if wantStatus == 0 {
				wantStatus = 200
			}
			if rec.Code != wantStatus || rec.Body.String() != tc.respBody || rec.Header().Get("Request-Id") != "req_123" {
				t.Errorf("client got %d %q (Request-Id %q), want the upstream's response unchanged", rec.Code, rec.Body, rec.Header().Get("Request-Id"))
			}
			if upstreamBody != tc.body {
				t.Errorf("upstream read body %q, want %q", upstreamBody, tc.body)
			}
			got := l.Objects()
			if tc.want == nil {
				if len(got) != 0 {
					t.Fatalf("recorded %+v, want nothing", got)
				}
				return
			}
			want := *tc.want
			want.CreatedAt = start
			if len(got) != 1 || got[0] != want {
				t.Fatalf("recorded %+v\nwant [%+v]", got, want)
			}
		})
	}
}

// TestRecorderAgainstStripeMock creates two PaymentIntents for one booking
// through the real stripe-mock, which echoes no metadata, and expects the
// ledger to see one duplicate.
func TestRecorderAgainstStripeMock(t *testing.T) {
	sm, err := stripemock.FromEnv(context.Background(), stripemock.Options{})
	if errors.Is(err, stripemock.ErrBinaryNotFound) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sm.Stop() })
	target, err := url.Parse(sm.URL)
	if err != nil {
		t.Fatal(err)
	}
	l := New(nil)
	srv := httptest.NewServer(Recorder(l, stripeapi.DefaultReference, httputil.NewSingleHostReverseProxy(target)))
	defer srv.Close()

	post := func(path string, form url.Values) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Authorization", "Bearer "+stripemock.TestSecretKey)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
	}
	booking := url.Values{"amount": {"240000"}, "currency": {"eur"}, "metadata[booking_id]": {"bk_42"}}
	post("/v1/payment_intents", booking)
	post("/v1/payment_intents", booking)
	first := l.Objects()[0].ID
	post("/v1/payment_intents/"+first+"/cancel", url.Values{})

	if n := len(l.Objects()); n != 2 {
		t.Fatalf("recorded %d objects, want 2 (the cancel creates nothing): %+v", n, l.Objects())
	}
	d := l.Duplicates()
	if len(d) != 1 || d[0].Reference != "bk_42" || len(d[0].IDs) != 2 || d[0].IDs[0] == d[0].IDs[1] || d[0].Amount != 240000 || d[0].Currency != "eur" {
		t.Fatalf("Duplicates() = %+v, want one for bk_42 with two ids and 240000 eur", d)
	}
}

func TestRecorderSkipsReplays(t *testing.T) {
	l := New(nil)
	h := Recorder(l, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Idempotent-Replayed", "true")
		_, _ = w.Write([]byte(`{"id":"pi_1","object":"payment_intent"}`))
	}))
	req := httptest.NewRequest(http.MethodPost, "/v1/payment_intents", strings.NewReader("amount=100&currency=eur&metadata[booking_id]=b1"))
	h.ServeHTTP(httptest.NewRecorder(), req)
	if n := len(l.Objects()); n != 0 {
		t.Fatalf("a replayed response was recorded as %d created objects", n)
	}
}

func TestTopLevelIDObject(t *testing.T) {
	cases := []struct {
		body, id, object string
		ok               bool
	}{
		{`{"id":"pi_1","object":"payment_intent"}`, "pi_1", "payment_intent", true},
		{` { "object" : "payment_intent", "amount": 5, "id" : "pi_2" } `, "pi_2", "payment_intent", true},
		{`{"charges":{"object":"list","data":[{"id":"ch_1","object":"charge"}]},"metadata":{"id":"x"},"id":"pi_3","object":"payment_intent"}`, "pi_3", "payment_intent", true},
		{`{"description":"a \"quoted\" {brace} id","id":"pi_4","object":"payment_intent"}`, "pi_4", "payment_intent", true},
		{`{"id":"pi_\u0035","object":"payment_intent"}`, "pi_5", "payment_intent", true},
		{`{"id":5,"object":"payment_intent"}`, "", "", false},
		{`{"object":"payment_intent"}`, "", "", false},
		{`{"nested":{"id":"pi_6","object":"payment_intent"}}`, "", "", false},
		{`[{"id":"pi_7","object":"payment_intent"}]`, "", "", false},
		{`not json`, "", "", false},
		{`{"id":"pi_8`, "", "", false},
	}
	for _, c := range cases {
		id, object, ok := topLevelIDObject([]byte(c.body))
		if ok != c.ok || (ok && (id != c.id || object != c.object)) {
			t.Errorf("topLevelIDObject(%s) = %q, %q, %v; want %q, %q, %v", c.body, id, object, ok, c.id, c.object, c.ok)
		}
	}
}

func BenchmarkTopLevelIDObject(b *testing.B) {
	body := []byte(`{"id":"pi_1","object":"payment_intent","amount":240000,"amount_capturable":0,"amount_details":{"tip":{}},"amount_received":0,"application":null,"automatic_payment_methods":null,"canceled_at":null,"cancellation_reason":null,"capture_method":"automatic","client_secret":"pi_1_secret_x","confirmation_method":"automatic","created":1,"currency":"eur","customer":null,"description":null,"last_payment_error":null,"latest_charge":null,"livemode":false,"metadata":{},"next_action":null,"on_behalf_of":null,"payment_method":null,"payment_method_options":{},"payment_method_types":["card"],"processing":null,"receipt_email":null,"review":null,"setup_future_usage":null,"shipping":null,"source":null,"statement_descriptor":null,"statement_descriptor_suffix":null,"status":"requires_payment_method","transfer_data":null,"transfer_group":null}`)
	for b.Loop() {
		if _, _, ok := topLevelIDObject(body); !ok {
			b.Fatal("not found")
		}
	}
}
