package subject

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/travelbook/onecharge/support/payments"
)

var booking = payments.Booking{Agency: "ag_7", ID: "bk_1", Amount: 240000, Currency: "eur"}

func seen(n int) func(string) int { return func(string) int { return n } }

func TestCommand(t *testing.T) {
	cases := []struct {
		name      string
		cmd       string
		seen      func(string) int
		timeout   time.Duration
		result    payments.Result
		pi        string
		misbehave bool     // the outcome carries an *Error
		contains  []string // in Outcome.Error
	}{
		{name: "good", cmd: `echo 'charging...'; echo '{"result":"succeeded","payment_intent":"pi_'$ONECHARGE_BOOKING_ID'"}'`,
			seen: seen(1), result: payments.Succeeded, pi: "pi_bk_1"},
		{name: "environment", cmd: `echo "{\"result\":\"failed\",\"error\":\"$ONECHARGE_BOOKING_ID $ONECHARGE_AGENCY_ID $ONECHARGE_AMOUNT $ONECHARGE_CURRENCY $STRIPE_API_BASE $STRIPE_API_KEY\"}"; exit 1`,
			seen: seen(1), result: payments.Failed, contains: []string{"bk_1 ag_7 240000 eur http://127.0.0.1:9 sk_test_123"}},
		{name: "indeterminate", cmd: `echo '{"result":"indeterminate","error":"saved 500"}'; exit 2`,
			seen: seen(1), result: payments.Indeterminate, contains: []string{"saved 500"}},
		{name: "hang", cmd: `sleep 30`, timeout: 200 * time.Millisecond, seen: seen(1), result: payments.Indeterminate, misbehave: true,
			contains: []string{"subject timed out after 200ms for booking bk_1 (killed)"}},
		{name: "hang in a child holding stdout", cmd: `(sleep 30; echo late) & wait`, timeout: 200 * time.Millisecond, seen: seen(1),
			result: payments.Indeterminate, misbehave: true, contains: []string{"timed out after 200ms for booking bk_1"}},
		{name: "crash", cmd: `echo 'Traceback: boom' >&2; exit 3`, seen: seen(1), result: payments.Indeterminate, misbehave: true,
			contains: []string{"exited with status 3 and printed no JSON result line for booking bk_1", "Traceback: boom"}},
		{name: "no JSON", cmd: `echo 'all good'`, seen: seen(1), result: payments.Indeterminate, misbehave: true,
			contains: []string{"subject printed no JSON result line for booking bk_1; stdout was: all good"}},
		{name: "broken JSON", cmd: `echo '{"result": succeeded'`, seen: seen(1), result: payments.Indeterminate, misbehave: true,
			contains: []string{"unreadable result for booking bk_1", "not JSON"}},
		{name: "unknown result", cmd: `echo '{"result":"maybe"}'`, seen: seen(1), result: payments.Indeterminate, misbehave: true,
			contains: []string{`result "maybe" is none of`}},
		{name: "succeeded without a PaymentIntent", cmd: `echo '{"result":"succeeded"}'`, seen: seen(1), result: payments.Indeterminate, misbehave: true,
			contains: []string{"names no PaymentIntent"}},
		{name: "succeeded with a non-zero exit", cmd: `echo '{"result":"succeeded","payment_intent":"pi_1"}'; exit 1`, seen: seen(1),
			result: payments.Indeterminate, misbehave: true, contains: []string{"exited with status 1 but printed result succeeded"}},
		{name: "never reached the stack", cmd: `echo '{"result":"succeeded","payment_intent":"pi_elsewhere"}'`, seen: seen(0),
			result: payments.Succeeded, pi: "pi_elsewhere", misbehave: true,
			contains: []string{"subject exited 0", "the stack saw no request for booking bk_1", "does it use STRIPE_API_BASE"}},
		{name: "no Seen hook: trusted", cmd: `echo '{"result":"succeeded","payment_intent":"pi_2"}'`, result: payments.Succeeded, pi: "pi_2"},
		{name: "missing command", cmd: `/nonexistent/charge.sh`, seen: seen(1), result: payments.Indeterminate, misbehave: true,
			contains: []string{"exited with status 127", "not found"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sub := &Command{Cmd: c.cmd, BaseURL: "http://127.0.0.1:9", Timeout: c.timeout, Seen: c.seen}
			start := time.Now()
			o := sub.Charge(context.Background(), booking)
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("Charge took %v: the timeout did not stop the subject", took)
			}
			check(t, o, sub.Name(), c.result, c.pi, c.misbehave, c.contains)
		})
	}
}

func check(t *testing.T, o payments.Outcome, name string, result payments.Result, pi string, misbehave bool, contains []string) {
	t.Helper()
	if o.Client != name || o.Booking != booking {
		t.Errorf("outcome names client %q booking %+v, want %q and %+v", o.Client, o.Booking, name, booking)
	}
	if o.Result != result || o.PaymentIntent != pi {
		t.Errorf("result %q %q, want %q %q (error: %s)", o.Result, o.PaymentIntent, result, pi, o.Error)
	}
	if IsSubjectError(o.Err) != misbehave {
		t.Errorf("subject error = %v, want %v (error: %v)", IsSubjectError(o.Err), misbehave, o.Err)
	}
	for _, s := range contains {
		if !strings.Contains(o.Error, s) {
			t.Errorf("error %q does not say %q", o.Error, s)
		}
	}
}

func TestCommandName(t *testing.T) {
	if got := (&Command{Cmd: "examples/curl/charge.sh"}).Name(); got != "cmd:examples/curl/charge.sh" {
		t.Fatalf("Name() = %q", got)
	}
}

func TestHTTP(t *testing.T) {
	var got Request
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/good":
			_ = json.NewDecoder(r.Body).Decode(&got)
			fmt.Fprintf(w, `{"result":"succeeded","payment_intent":"pi_%s"}`, got.BookingID)
		case "/failed":
			w.WriteHeader(http.StatusPaymentRequired)
			fmt.Fprint(w, `{"result":"failed","error":"card declined"}`)
		case "/garbage":
			fmt.Fprint(w, `<html>oops</html>`)
		case "/crash":
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `Internal Server Error`)
		case "/hang":
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}
	}))
	defer srv.Close()
	defer close(release) // before Close, which waits for handlers
	cases := []struct {
		path      string
		seen      func(string) int
		result    payments.Result
		pi        string
		misbehave bool
		contains  []string
	}{
		{"/good", seen(1), payments.Succeeded, "pi_bk_1", false, nil},
		{"/failed", seen(1), payments.Failed, "", false, []string{"card declined"}},
		{"/good", seen(0), payments.Succeeded, "pi_bk_1", true, []string{"answered HTTP 200", "stack saw no request for booking bk_1"}},
		{"/garbage", seen(1), payments.Indeterminate, "", true, []string{"answered HTTP 200 with no JSON result for booking bk_1; body was: <html>oops</html>"}},
		{"/crash", seen(1), payments.Indeterminate, "", true, []string{"HTTP 500 with no JSON result for booking bk_1"}},
		{"/hang", seen(1), payments.Indeterminate, "", true, []string{"subject timed out after 200ms for booking bk_1"}},
	}
	for _, c := range cases {
		sub := &HTTP{URL: srv.URL + c.path, Timeout: 200 * time.Millisecond, Seen: c.seen}
		t.Run(c.path, func(t *testing.T) {
			check(t, sub.Charge(context.Background(), booking), sub.Name(), c.result, c.pi, c.misbehave, c.contains)
		})
	}
	if got != (Request{BookingID: "bk_1", AgencyID: "ag_7", Amount: 240000, Currency: "eur"}) {
		t.Errorf("the service was sent %+v", got)
	}
	t.Run("nothing listening", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		url := dead.URL
		dead.Close()
		sub := &HTTP{URL: url, Timeout: time.Second}
		check(t, sub.Charge(context.Background(), booking), sub.Name(), payments.Indeterminate, "", true,
			[]string{"did not answer for booking bk_1", "is the service running there?"})
	})
}

func TestFromEnv(t *testing.T) {
	cases := []struct {
		env  map[string]string
		name string
		err  string
	}{
		{env: nil, name: "safe"},
		{env: map[string]string{EnvName: "safe"}, name: "safe"},
		{env: map[string]string{EnvName: "naive"}, name: "naive"},
		{env: map[string]string{EnvName: "sdk"}, name: "sdk"},
		{env: map[string]string{EnvName: "fast"}, err: `ONECHARGE_SUBJECT="fast" is not a subject`},
		{env: map[string]string{EnvURL: "http://127.0.0.1:8080/charge", EnvName: "naive"}, name: "url:http://127.0.0.1:8080/charge"},
		{env: map[string]string{EnvCmd: "./charge.sh", EnvURL: "http://127.0.0.1:8080/charge"}, name: "cmd:./charge.sh"},
		{env: map[string]string{EnvCmd: "./charge.sh", EnvTimeout: "soon"}, err: `ONECHARGE_SUBJECT_TIMEOUT="soon" is not a duration`},
	}
	for _, c := range cases {
		c := c
		sub, err := FromEnv(Options{Config: payments.Config{BaseURL: "http://127.0.0.1:9", APIKey: "sk_test_123"},
			Getenv: func(k string) string { return c.env[k] }})
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: error %v, want %q", c.env, err, c.err)
			}
			continue
		}
		if err != nil || sub.Name() != c.name {
			t.Errorf("%v: got %v %v, want %s", c.env, sub, err, c.name)
		}
	}
	sub, _ := FromEnv(Options{Config: payments.Config{BaseURL: "http://127.0.0.1:9"}, Dir: "/tmp",
		Getenv: func(k string) string { return map[string]string{EnvCmd: "x", EnvTimeout: "5s"}[k] }})
	if c := sub.(*Command); c.Timeout != 5*time.Second || c.BaseURL != "http://127.0.0.1:9" || c.Dir != "/tmp" {
		t.Errorf("command built as %+v", c)
	}
}
