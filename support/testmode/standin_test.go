package testmode

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/payments"
	"github.com/travelbook/onecharge/support/stack"
)

const testKey = "sk_test_onechargeStandIn01"

var (
	standIn *StandIn
	// standInClock is the stand-in's clock: tests move it instead of
	// waiting for Stripe's one-second created resolution.
	standInClock = clock.NewOffset(nil)
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	s, err := StartStandIn(ctx, StandInOptions{Clock: standInClock})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start the test-mode stand-in:", err)
		os.Exit(1)
	}
	standIn = s
	code := m.Run()
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "closing the stand-in:", err)
	}
	os.Exit(code)
}

// apiAt is a stripe-go v76 client for baseURL over rt, with its own
// retries off so that every call is one request.
func apiAt(baseURL, key string, rt http.RoundTripper) *client.API {
	return payments.NewStripeAPI(baseURL, key, &http.Client{Timeout: 10 * time.Second, Transport: rt}, 0)
}

func standInAPI() *client.API { return apiAt(standIn.URL, testKey, standIn.Transport()) }

func create(t *testing.T, api *client.API, booking, run string, amount int64, key string) *stripe.PaymentIntent {
	t.Helper()
	p := &stripe.PaymentIntentParams{Amount: stripe.Int64(amount), Currency: stripe.String("eur")}
	p.AddMetadata(MetadataBooking, booking)
	if run != "" {
		p.AddMetadata(MetadataRun, run)
	}
	if key != "" {
		p.SetIdempotencyKey(key)
	}
	pi, err := api.PaymentIntents.New(p)
	if err != nil {
		t.Fatalf("creating a PaymentIntent for %s: %v", booking, err)
	}
	return pi
}

func TestReadBackAndCleanupThroughTheStandIn(t *testing.T) {
	api := standInAPI()
	run, other := RunID(), RunID()
	// Objects from before the run, and from another run, must not be read back.
	create(t, api, "bk_old", run, 100, "")
	standInClock.Advance(time.Hour)
	since := standInClock.Now()
	const n = 23
	want := map[string]string{} // id → booking
	for i := range n {
		booking := fmt.Sprintf("bk_%03d", i)
		pi := create(t, api, booking, run, int64(1000+i), "")
		if pi.Metadata[MetadataRun] != run || pi.Metadata[MetadataBooking] != booking {
			t.Fatalf("the create answer lost its metadata: %v", pi.Metadata)
		}
		want[pi.ID] = booking
		if i%5 == 0 {
			create(t, api, booking, other, 1, "")
		}
	}

	virtual := clock.NewVirtual(time.Unix(0, 0))
	opts := Options{PageSize: 4, Sleeper: virtual, Clock: virtual}
	got, err := Ledger(context.Background(), api, since, run, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("read back %d objects, want %d", len(got), n)
	}
	for i, o := range got {
		if want[o.ID] != o.Reference || o.Object != "payment_intent" || o.Currency != "eur" || o.Path != "/v1/payment_intents" {
			t.Errorf("object %d = %+v, want booking %q", i, o, want[o.ID])
		}
		if o.CreatedAt.Before(since.Truncate(time.Second)) {
			t.Errorf("object %s created %v, before the run began %v", o.ID, o.CreatedAt, since)
		}
		if wantRef := fmt.Sprintf("bk_%03d", i); o.Reference != wantRef {
			t.Errorf("object %d is %s, want oldest first (%s)", i, o.Reference, wantRef)
		}
	}

	// One is canceled by someone else first: Cleanup still counts it.
	if _, err := api.PaymentIntents.Cancel(got[0].ID, nil); err != nil {
		t.Fatal(err)
	}
	canceled, calls, err := Cleanup(context.Background(), api, got, opts)
	if err != nil || canceled != n || calls != n {
		t.Fatalf("Cleanup = %d canceled, %d calls, %v; want %d, %d, nil", canceled, calls, err, n, n)
	}
	if s := virtual.Sleeps(); len(s) != 0 {
		t.Errorf("Cleanup backed off without a 429: %v", s)
	}
	p := &stripe.PaymentIntentListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	p.Limit = stripe.Int64(100)
	it := api.PaymentIntents.List(p)
	statuses := map[stripe.PaymentIntentStatus]int{}
	for it.Next() {
		pi := it.PaymentIntent()
		if pi.Metadata[MetadataRun] == run {
			statuses[pi.Status]++
		}
	}
	if it.Err() != nil || statuses[stripe.PaymentIntentStatusCanceled] != n || len(statuses) != 1 {
		t.Fatalf("after Cleanup the run's statuses are %v (%v), want all %d canceled", statuses, it.Err(), n)
	}
	// The other run's PaymentIntents were left alone.
	if _, err := Ledger(context.Background(), api, since, other, opts); err != nil {
		t.Fatal(err)
	}
}

func TestStandInRunsTheIdempotencyLayer(t *testing.T) {
	api := standInAPI()
	run := RunID()
	before := len(standIn.Stack.Ledger.Objects())
	a := create(t, api, "bk_idem", run, 2400, "key-"+run)
	b := create(t, api, "bk_idem", run, 2400, "key-"+run)
	if a.ID != b.ID {
		t.Fatalf("same key gave two PaymentIntents %s and %s: the emulated idempotency layer is off", a.ID, b.ID)
	}
	if b.LastResponse.Header.Get("Idempotent-Replayed") != "true" {
		t.Error("the second answer was not marked Idempotent-Replayed")
	}
	if after := len(standIn.Stack.Ledger.Objects()); after != before+1 {
		t.Errorf("the ledger grew by %d, want 1", after-before)
	}
	// Same key, other parameters: Stripe's idempotency_error.
	p := &stripe.PaymentIntentParams{Amount: stripe.Int64(9999), Currency: stripe.String("eur")}
	p.SetIdempotencyKey("key-" + run)
	_, err := api.PaymentIntents.New(p)
	var se *stripe.Error
	if !errors.As(err, &se) || se.Type != stripe.ErrorTypeIdempotency {
		t.Errorf("reusing a key with other parameters gave %v, want an idempotency_error", err)
	}
}

func TestStandInServesRealTLS(t *testing.T) {
	if !strings.HasPrefix(standIn.URL, "https://127.0.0.1:") {
		t.Fatalf("URL = %s", standIn.URL)
	}
	// A client that trusts only the system roots refuses the certificate.
	api := apiAt(standIn.URL, testKey, &http.Transport{})
	_, err := api.PaymentIntents.New(&stripe.PaymentIntentParams{Amount: stripe.Int64(100), Currency: stripe.String("eur")})
	var unknown x509.UnknownAuthorityError
	if err == nil || !errors.As(err, &unknown) {
		t.Fatalf("a client without the run's CA got %v, want an x509 unknown-authority error", err)
	}
	// Another run's CA is not trusted either.
	otherCA, err := newRunCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rt := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: otherCA.pool}}
	if _, err := apiAt(standIn.URL, testKey, rt).PaymentIntents.New(&stripe.PaymentIntentParams{Amount: stripe.Int64(100), Currency: stripe.String("eur")}); !errors.As(err, &unknown) {
		t.Fatalf("a client trusting another run's CA got %v", err)
	}
	if !strings.Contains(string(standIn.CAPEM()), "BEGIN CERTIFICATE") {
		t.Error("CAPEM is not PEM")
	}
	// localhost is in the certificate too.
	url := strings.Replace(standIn.URL, "127.0.0.1", "localhost", 1)
	req, _ := http.NewRequest("GET", url+"/v1/payment_intents?limit=1", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := (&http.Client{Transport: standIn.Transport()}).Do(req)
	if err != nil {
		t.Fatalf("https via localhost: %v", err)
	}
	resp.Body.Close()
}

func TestStandInRefusesWhatStripeRefuses(t *testing.T) {
	do := func(auth, method, path string) (int, string) {
		req, _ := http.NewRequest(method, standIn.URL+path, strings.NewReader("amount=100&currency=eur"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := (&http.Client{Transport: standIn.Transport()}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cases := []struct {
		auth, method, path string
		status             int
		says               string
	}{
		{"", "POST", "/v1/payment_intents", 401, "did not provide an API key"},
		{"Bearer sk_live_abcdefgh1234", "POST", "/v1/payment_intents", 401, "sk_live_…1234"},
		{"Bearer pk_test_abcdefgh1234", "GET", "/v1/payment_intents", 401, "Invalid API Key"},
		{"Bearer rk_test_abcdefgh1234", "POST", "/v1/payment_intents", 200, `"object":"payment_intent"`},
		{"Bearer " + testKey, "GET", "/_onecharge/ledger", 404, "Unrecognized request URL"},
		{"Bearer " + testKey, "GET", "/v1/payment_intents?limit=101", 400, `"param":"limit"`},
		{"Bearer " + testKey, "GET", "/v1/payment_intents?created[gte]=soon", 400, `created[gte]`},
		{"Bearer " + testKey, "GET", "/v1/payment_intents?starting_after=pi_nope", 404, "No such payment_intent"},
		{"Bearer " + testKey, "POST", "/v1/payment_intents/pi_nope/cancel", 404, "No such payment_intent: 'pi_nope'"},
	}
	for _, c := range cases {
		status, body := do(c.auth, c.method, c.path)
		if status != c.status || !strings.Contains(body, c.says) {
			t.Errorf("%s %s with %q = %d %s; want %d saying %q", c.method, c.path, c.auth, status, body, c.status, c.says)
		}
		if strings.Contains(body, "abcdefgh1234") {
			t.Errorf("the answer echoed the key: %s", body)
		}
	}
}

func TestListPagesBothWays(t *testing.T) {
	api := standInAPI()
	run := RunID()
	standInClock.Advance(time.Hour)
	since := standInClock.Now()
	var ids []string
	for i := range 5 {
		ids = append(ids, create(t, api, fmt.Sprintf("bk_page_%d", i), run, 100, "").ID)
		standInClock.Advance(time.Second)
	}
	get := func(q string) (data []string, hasMore bool) {
		req, _ := http.NewRequest("GET", standIn.URL+"/v1/payment_intents?"+q, nil)
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := (&http.Client{Transport: standIn.Transport()}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var l struct {
			Object  string `json:"object"`
			URL     string `json:"url"`
			HasMore bool   `json:"has_more"`
			Data    []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&l); err != nil || l.Object != "list" || l.URL != "/v1/payment_intents" {
			t.Fatalf("list %q: %+v %v", q, l, err)
		}
		for _, d := range l.Data {
			data = append(data, d.ID)
		}
		return data, l.HasMore
	}
	gte := fmt.Sprintf("created[gte]=%d", since.Unix())
	first, more := get(gte + "&limit=2")
	if fmt.Sprint(first) != fmt.Sprint([]string{ids[4], ids[3]}) || !more {
		t.Fatalf("first page %v (more %v), want newest first %v", first, more, []string{ids[4], ids[3]})
	}
	last, more := get(gte + "&limit=2&starting_after=" + ids[1])
	if fmt.Sprint(last) != fmt.Sprint([]string{ids[0]}) || more {
		t.Fatalf("last page %v (more %v)", last, more)
	}
	back, more := get(gte + "&limit=2&ending_before=" + ids[1])
	if fmt.Sprint(back) != fmt.Sprint([]string{ids[3], ids[2]}) || !more {
		t.Fatalf("ending_before page %v (more %v)", back, more)
	}
	window, _ := get(fmt.Sprintf("created[gt]=%d&created[lte]=%d", since.Unix()+1, since.Unix()+3))
	if fmt.Sprint(window) != fmt.Sprint([]string{ids[3], ids[2]}) {
		t.Fatalf("created window %v", window)
	}
}

// TestTestModePathEndToEnd is the suite's test-mode wiring: the stack with
// its emulation off, forwarding to the stand-in over TLS, tagging every
// create with the run id; a client that knows nothing of the run.
func TestTestModePathEndToEnd(t *testing.T) {
	run := RunID()
	since := standInClock.Now()
	st, err := stack.Start(stack.Config{
		Upstream:  standIn.URL,
		Target:    stack.TargetTestMode,
		Transport: TagRun(standIn.Transport(), run),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Idempotency != nil {
		t.Fatal("the stack emulates idempotency in test mode")
	}
	api := apiAt(st.URL, testKey, &http.Transport{})
	a := create(t, api, "bk_e2e_1", "", 240000, "e2e-"+run)
	b := create(t, api, "bk_e2e_1", "", 240000, "e2e-"+run) // a retry
	c := create(t, api, "bk_e2e_2", "", 185000, "")
	if a.ID != b.ID {
		t.Fatalf("a retry with the same key created %s and %s: Stripe's (the stand-in's) layer did not answer", a.ID, b.ID)
	}
	if a.Metadata[MetadataRun] != run {
		t.Fatalf("the create was not tagged with the run: %v", a.Metadata)
	}
	got, err := Ledger(context.Background(), standInAPI(), since, run)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != a.ID || got[0].Reference != "bk_e2e_1" || got[0].Amount != 240000 || got[1].ID != c.ID {
		t.Fatalf("read back %+v", got)
	}
	// Cleanup through the stack, as the suite does.
	canceled, calls, err := Cleanup(context.Background(), api, got)
	if err != nil || canceled != 2 || calls != 2 {
		t.Fatalf("Cleanup = %d, %d, %v", canceled, calls, err)
	}
}
