package keystore_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/client"

	"github.com/travelbook/onecharge/support/keystore"
	"github.com/travelbook/onecharge/support/payments"
)

// fakeList serves GET /v1/payment_intents in two pages from pages, and
// checks the created[gte] filter.
func fakeList(t *testing.T, since time.Time, pages [][]string) *client.API {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/payment_intents" || r.URL.Query().Get("created[gte]") != fmt.Sprint(since.Unix()) {
			t.Errorf("unexpected request %s", r.URL)
		}
		page := 0
		if r.URL.Query().Get("starting_after") != "" {
			page = 1
		}
		if pages == nil {
			w.WriteHeader(500)
			fmt.Fprint(w, `{"error":{"type":"api_error","message":"boom"}}`)
			return
		}
		var data []string
		for _, item := range pages[page] { // "id:booking"
			id, booking, _ := strings.Cut(item, ":")
			data = append(data, fmt.Sprintf(`{"id":%q,"object":"payment_intent","status":"succeeded","metadata":{"booking_id":%q}}`, id, booking))
		}
		fmt.Fprintf(w, `{"object":"list","url":"/v1/payment_intents","has_more":%v,"data":[%s]}`, page == 0 && len(pages) > 1, strings.Join(data, ","))
	}))
	t.Cleanup(srv.Close)
	return payments.NewStripeAPI(srv.URL, "sk_test_123", &http.Client{}, 0)
}

func TestStripeLookup(t *testing.T) {
	since := t0
	cases := []struct {
		name    string
		pages   [][]string
		id      string
		found   bool
		wantErr string
	}{
		{"found on the second page", [][]string{{"pi_1:B9", "pi_2:B8"}, {"pi_3:B1"}}, "pi_3", true, ""},
		{"none", [][]string{{"pi_1:B9"}}, "", false, ""},
		{"two is a double charge", [][]string{{"pi_1:B1"}, {"pi_2:B1"}}, "", false, "charged more than once"},
		{"API error", nil, "", false, "listing PaymentIntents"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := keystore.StripeLookup{API: fakeList(t, since, tc.pages)}
			id, status, found, err := l.FindPaymentIntent(context.Background(), "B1", since)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || id != tc.id || found != tc.found || (found && status != "succeeded") {
				t.Fatalf("FindPaymentIntent = %q, %q, %v, %v", id, status, found, err)
			}
		})
	}
}
