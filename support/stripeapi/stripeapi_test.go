package stripeapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWriteErrorIsStripeShaped(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, 409, Error{Type: TypeIdempotency, Code: "idempotency_key_in_use", Message: "m"})
	var body map[string]map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 409 || body["error"]["code"] != "idempotency_key_in_use" || body["error"]["type"] != TypeIdempotency {
		t.Fatalf("got %d %v", rec.Code, body)
	}
}

func TestScopeSeparatesAccounts(t *testing.T) {
	a := httptest.NewRequest("POST", "/v1/payment_intents", nil)
	a.Header.Set("Authorization", "Bearer sk_test_1")
	b := a.Clone(a.Context())
	b.Header.Set(HeaderStripeAccount, "acct_2")
	c := httptest.NewRequest("POST", "/v1/payment_intents", nil)
	c.SetBasicAuth("sk_test_1", "")
	if Scope(a) == Scope(b) || Scope(a) != Scope(c) {
		t.Fatalf("scopes: %q %q %q", Scope(a), Scope(b), Scope(c))
	}
}

func TestReadBodyRestoresBody(t *testing.T) {
	r := httptest.NewRequest("POST", "/", strings.NewReader("amount=100&currency=eur"))
	b, err := ReadBody(r)
	if err != nil || string(b) != "amount=100&currency=eur" {
		t.Fatal(b, err)
	}
	again, _ := ReadBody(r)
	if string(again) != string(b) {
		t.Fatal("body not restored")
	}
	if Form(b).Get("currency") != "eur" {
		t.Fatal("form not parsed")
	}
}

func TestRequestIDsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewRequestID()
		if !strings.HasPrefix(id, "req_") || len(id) != 18 || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	_ = http.StatusOK
}

func TestRedactKeepsOnlyASuffix(t *testing.T) {
	got := Redact("sk_test_51HxyzSECRETabcd")
	if got != "sk_test_…abcd" || strings.Contains(got, "SECRET") {
		t.Fatalf("Redact = %q", got)
	}
}
