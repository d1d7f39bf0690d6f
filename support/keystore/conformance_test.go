package keystore_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/keystore"
)

// t0 pins time for every conformance check.
var t0 = time.Date(2025, 9, 9, 10, 50, 0, 0, time.UTC)

// newDB makes a fresh, empty database and returns a function that opens
// it; calling that twice gives two independent handles on the same data,
// as two processes or a restart would have.
type newDB func(t *testing.T) (open func() keystore.Store)

// counter mints k1, k2, ... so tests can predict keys.
func counter(prefix string) func() (string, error) {
	var n atomic.Int64
	return func() (string, error) { return fmt.Sprintf("%s%d", prefix, n.Add(1)), nil }
}

// RunConformance checks that a Store implementation keeps every promise of
// the Store interface and works under a Manager.
func RunConformance(t *testing.T, db newDB) {
	ctx := context.Background()
	fresh := func(t *testing.T) keystore.Store {
		open := db(t)
		s := open()
		t.Cleanup(func() { s.Close() })
		return s
	}

	t.Run("same operation same key, across handles and restarts", func(t *testing.T) {
		open := db(t)
		a, b := open(), open()
		defer b.Close()
		k1, created, err := a.Reserve(ctx, "B1", "charge", counter("a"), t0)
		if err != nil || !created || k1.Key != "a1" || k1.State != keystore.Reserved || k1.Attempts != 0 {
			t.Fatalf("first Reserve = %+v, %v, %v", k1, created, err)
		}
		if !k1.CreatedAt.Equal(t0) || k1.Booking != "B1" || k1.Operation != "charge" {
			t.Fatalf("first Reserve = %+v", k1)
		}
		k2, created, err := b.Reserve(ctx, "B1", "charge", counter("b"), t0.Add(time.Hour))
		if err != nil || created || k2.Key != "a1" || !k2.CreatedAt.Equal(t0) {
			t.Fatalf("second handle's Reserve = %+v, %v, %v; want a1 not created", k2, created, err)
		}
		a.Close()
		c := open()
		defer c.Close()
		got, err := c.Get(ctx, "B1", "charge")
		if err != nil || got.Key != "a1" {
			t.Fatalf("after reopening, Get = %+v, %v", got, err)
		}
	})

	t.Run("different operations different keys", func(t *testing.T) {
		s := fresh(t)
		seen := map[string]bool{}
		for _, op := range [][2]string{{"B1", "charge"}, {"B1", "refund"}, {"B2", "charge"}} {
			k, created, err := s.Reserve(ctx, op[0], op[1], counter(op[0]+op[1]), t0)
			if err != nil || !created {
				t.Fatalf("Reserve(%v) = %+v, %v, %v", op, k, created, err)
			}
			if seen[k.Key] {
				t.Fatalf("key %s handed to two operations", k.Key)
			}
			seen[k.Key] = true
		}
		if _, err := s.Get(ctx, "B3", "charge"); !errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("Get of an unknown operation = %v, want ErrNotFound", err)
		}
	})

	t.Run("bad reservations are refused", func(t *testing.T) {
		s := fresh(t)
		if _, _, err := s.Reserve(ctx, "", "charge", counter("k"), t0); err == nil {
			t.Error("Reserve accepted an empty booking")
		}
		boom := errors.New("no entropy")
		if _, _, err := s.Reserve(ctx, "B1", "charge", func() (string, error) { return "", boom }, t0); !errors.Is(err, boom) {
			t.Errorf("Reserve with a failing mint = %v, want it wrapped", err)
		}
		long := func() (string, error) { return strings.Repeat("k", 256), nil }
		if _, _, err := s.Reserve(ctx, "B1", "charge", long, t0); err == nil {
			t.Error("Reserve accepted a 256-character key, over Stripe's limit")
		}
		same := func() (string, error) { return "dup", nil }
		if _, _, err := s.Reserve(ctx, "B1", "charge", same, t0); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Reserve(ctx, "B2", "charge", same, t0); err == nil || !strings.Contains(err.Error(), "already used") {
			t.Errorf("Reserve with a key another operation holds = %v, want a refusal", err)
		}
	})

	t.Run("state transitions", func(t *testing.T) {
		s := fresh(t)
		k, _, err := s.Reserve(ctx, "B1", "charge", counter("k"), t0)
		if err != nil {
			t.Fatal(err)
		}
		for want := 1; want <= 2; want++ {
			n, err := s.BeginAttempt(ctx, k.Key, t0.Add(time.Duration(want)*time.Minute))
			if err != nil || n != want {
				t.Fatalf("BeginAttempt = %d, %v; want %d", n, err, want)
			}
			if got, _ := s.Get(ctx, "B1", "charge"); got.State != keystore.InFlight || got.Attempts != want {
				t.Fatalf("after BeginAttempt: %+v", got)
			}
			if err := s.Finish(ctx, k.Key, keystore.Result{State: keystore.Indeterminate}, t0.Add(time.Duration(want)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		done := t0.Add(time.Hour)
		if err := s.Finish(ctx, k.Key, keystore.Result{State: keystore.Succeeded, PaymentIntent: "pi_1", PaymentIntentStatus: "requires_payment_method"}, done); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "B1", "charge")
		want := keystore.Key{Key: k.Key, Booking: "B1", Operation: "charge", State: keystore.Succeeded, CreatedAt: t0, UpdatedAt: done,
			PaymentIntent: "pi_1", PaymentIntentStatus: "requires_payment_method", Attempts: 2}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Get = %+v, %v\nwant %+v", got, err, want)
		}
		for _, st := range []keystore.State{keystore.Reserved, keystore.InFlight, "bogus"} {
			if err := s.Finish(ctx, k.Key, keystore.Result{State: st}, done); err == nil {
				t.Errorf("Finish accepted state %q", st)
			}
		}
		if _, err := s.BeginAttempt(ctx, "nope", done); !errors.Is(err, keystore.ErrNotFound) {
			t.Errorf("BeginAttempt(unknown) = %v", err)
		}
		if err := s.Finish(ctx, "nope", keystore.Result{State: keystore.Failed}, done); !errors.Is(err, keystore.ErrNotFound) {
			t.Errorf("Finish(unknown) = %v", err)
		}
	})

	t.Run("audit rows are append-only and in order", func(t *testing.T) {
		s := fresh(t)
		k, _, _ := s.Reserve(ctx, "B1", "charge", counter("k"), t0)
		other, _, _ := s.Reserve(ctx, "B2", "charge", counter("o"), t0)
		want := []keystore.Attempt{
			{Key: k.Key, N: 1, At: t0.Add(3 * time.Second), Outcome: "timeout", Error: "context deadline exceeded"},
			{Key: k.Key, N: 2, At: t0.Add(time.Second), Outcome: "server_error", HTTPStatus: 500, RequestID: "req_2", Replayed: true},
			{Key: k.Key, N: 3, At: t0.Add(2 * time.Second), Outcome: "succeeded", HTTPStatus: 200, RequestID: "req_3"},
		}
		for i, a := range want {
			if err := s.RecordAttempt(ctx, a); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				s.RecordAttempt(ctx, keystore.Attempt{Key: other.Key, N: 1, At: t0, Outcome: "x"})
			}
		}
		got, err := s.Attempts(ctx, k.Key)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Attempts = %+v, %v\nwant (in insertion order, not time order) %+v", got, err, want)
		}
		if err := s.RecordAttempt(ctx, keystore.Attempt{Key: "nope", N: 1, At: t0}); !errors.Is(err, keystore.ErrNotFound) {
			t.Errorf("RecordAttempt(unknown key) = %v, want ErrNotFound", err)
		}
		if got, _ := s.Attempts(ctx, "nope"); len(got) != 0 {
			t.Errorf("Attempts(unknown) = %v", got)
		}
	})

	t.Run("query by state, booking and time range", func(t *testing.T) {
		s := fresh(t)
		mk := func(booking string, at time.Duration, st keystore.State) string {
			k, _, err := s.Reserve(ctx, booking, "charge", counter(booking+"-"), t0.Add(at))
			if err != nil {
				t.Fatal(err)
			}
			if st != keystore.Reserved {
				if err := s.Finish(ctx, k.Key, keystore.Result{State: st}, t0.Add(at)); err != nil {
					t.Fatal(err)
				}
			}
			return k.Key
		}
		a := mk("A", 0, keystore.Succeeded)
		b := mk("B", time.Hour, keystore.Failed)
		c := mk("C", 2*time.Hour, keystore.Succeeded)
		d := mk("D", 3*time.Hour, keystore.Reserved)
		cases := []struct {
			f    keystore.Filter
			want []string
		}{
			{keystore.Filter{}, []string{a, b, c, d}},
			{keystore.Filter{State: keystore.Succeeded}, []string{a, c}},
			{keystore.Filter{Booking: "B"}, []string{b}},
			{keystore.Filter{Since: t0.Add(time.Hour)}, []string{b, c, d}},
			{keystore.Filter{Until: t0.Add(2 * time.Hour)}, []string{a, b}},
			{keystore.Filter{State: keystore.Succeeded, Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Hour)}, []string{c}},
			{keystore.Filter{Booking: "Z"}, nil},
		}
		for _, tc := range cases {
			ks, err := s.Query(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range ks {
				got = append(got, k.Key)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Query(%+v) = %v, want %v", tc.f, got, tc.want)
			}
		}
	})

	t.Run("prune never touches unresolved keys", func(t *testing.T) {
		s := fresh(t)
		keys := map[keystore.State]string{}
		for _, st := range []keystore.State{keystore.Reserved, keystore.InFlight, keystore.Indeterminate, keystore.Succeeded, keystore.Failed, keystore.Collision} {
			k, _, _ := s.Reserve(ctx, "old-"+string(st), "charge", counter(string(st)), t0)
			keys[st] = k.Key
			if st != keystore.Reserved {
				s.BeginAttempt(ctx, k.Key, t0)
			}
			if st != keystore.Reserved && st != keystore.InFlight {
				s.Finish(ctx, k.Key, keystore.Result{State: st}, t0)
			}
			s.RecordAttempt(ctx, keystore.Attempt{Key: k.Key, N: 1, At: t0, Outcome: "x"})
		}
		recent, _, _ := s.Reserve(ctx, "recent", "charge", counter("r"), t0.Add(40*24*time.Hour))
		s.Finish(ctx, recent.Key, keystore.Result{State: keystore.Succeeded}, t0.Add(40*24*time.Hour))

		n, err := s.Prune(ctx, t0.Add(31*24*time.Hour))
		if err != nil || n != 3 {
			t.Fatalf("Prune = %d, %v; want the 3 old resolved keys", n, err)
		}
		for st, key := range keys {
			_, gerr := s.Get(ctx, "old-"+string(st), "charge")
			rows, _ := s.Attempts(ctx, key)
			if st.Resolved() {
				if !errors.Is(gerr, keystore.ErrNotFound) || len(rows) != 0 {
					t.Errorf("%s key survived Prune (%v, %d rows)", st, gerr, len(rows))
				}
			} else if gerr != nil || len(rows) != 1 {
				t.Errorf("Prune touched the %s key (%v, %d rows)", st, gerr, len(rows))
			}
		}
		if _, err := s.Get(ctx, "recent", "charge"); err != nil {
			t.Errorf("Prune deleted a recent key: %v", err)
		}
	})

	t.Run("supersede retires a key once", func(t *testing.T) {
		s := fresh(t)
		old, _, _ := s.Reserve(ctx, "B1", "charge", counter("old"), t0)
		s.BeginAttempt(ctx, old.Key, t0)
		nk, err := s.Supersede(ctx, old.Key, "why", counter("new"), t0.Add(25*time.Hour))
		if err != nil || nk.Key != "new1" || nk.State != keystore.Reserved || !nk.CreatedAt.Equal(t0.Add(25*time.Hour)) {
			t.Fatalf("Supersede = %+v, %v", nk, err)
		}
		again, err := s.Supersede(ctx, old.Key, "why", counter("other"), t0.Add(26*time.Hour))
		if err != nil || again.Key != "new1" {
			t.Fatalf("second Supersede of the same key = %+v, %v; want new1 again", again, err)
		}
		if got, _ := s.Get(ctx, "B1", "charge"); got.Key != "new1" {
			t.Fatalf("Get after Supersede = %+v", got)
		}
		if _, err := s.BeginAttempt(ctx, old.Key, t0); !errors.Is(err, keystore.ErrSuperseded) {
			t.Fatalf("BeginAttempt(superseded) = %v, want ErrSuperseded", err)
		}
		all, _ := s.Query(ctx, keystore.Filter{Booking: "B1"})
		if len(all) != 2 || all[0].SupersededBy != "new1" || all[0].State != keystore.Failed || all[0].Note != "why" {
			t.Fatalf("Query after Supersede = %+v", all)
		}
	})

	t.Run("manager refuses keys past the margin", func(t *testing.T) {
		s := fresh(t)
		vc := clock.NewVirtual(t0)
		m := &keystore.Manager{Store: s, Clock: vc}
		k, err := m.Reserve(ctx, "B1", "charge")
		if err != nil || len(k.Key) != 36 {
			t.Fatalf("Reserve = %+v, %v; want a UUID key", k, err)
		}
		never, _ := m.Reserve(ctx, "B2", "charge")
		done, _ := m.Reserve(ctx, "B3", "charge")
		m.BeginAttempt(ctx, k.Key, vc.Now())
		m.BeginAttempt(ctx, done.Key, vc.Now())
		m.Finish(ctx, done.Key, keystore.Result{State: keystore.Succeeded, PaymentIntent: "pi_3"}, vc.Now())

		vc.Advance(23 * time.Hour)
		if again, err := m.Reserve(ctx, "B1", "charge"); err != nil || again.Key != k.Key {
			t.Fatalf("at exactly the margin Reserve = %+v, %v; want the same key", again, err)
		}
		vc.Advance(time.Hour)
		_, err = m.Reserve(ctx, "B1", "charge")
		var we *keystore.WindowError
		if !errors.As(err, &we) || we.Key.Key != k.Key || we.Age != 24*time.Hour {
			t.Fatalf("past the margin Reserve = %v; want a *WindowError", err)
		}
		wantMsg := fmt.Sprintf("key %s for booking B1 is 24h old, past the 23h safety margin of Stripe's 24-hour idempotency window: reconcile before minting a new key", k.Key)
		if err.Error() != wantMsg {
			t.Errorf("message = %q\nwant      %q", err, wantMsg)
		}
		if got, err := m.Reserve(ctx, "B2", "charge"); err != nil || got.Key != never.Key {
			t.Errorf("a never-sent key was refused: %v", err)
		}
		if got, err := m.Reserve(ctx, "B3", "charge"); err != nil || got.Key != done.Key {
			t.Errorf("a succeeded key was refused: %v", err)
		}
		short := &keystore.Manager{Store: s, Clock: vc, Margin: time.Hour}
		k4, _ := short.Reserve(ctx, "B4", "charge")
		short.BeginAttempt(ctx, k4.Key, vc.Now())
		vc.Advance(61 * time.Minute)
		if _, err := short.Reserve(ctx, "B4", "charge"); !errors.As(err, &we) || we.Margin != time.Hour {
			t.Errorf("a 1h margin did not refuse a 61m-old key: %v", err)
		}
	})

	t.Run("reconcile: found records the PaymentIntent", func(t *testing.T) {
		s := fresh(t)
		vc := clock.NewVirtual(t0)
		m := &keystore.Manager{Store: s, Clock: vc, Mint: func(b, op string) (string, error) { return b + "-" + op + "-" + vc.Now().Format("15h"), nil }}
		k, _ := m.Reserve(ctx, "B1", "charge")
		m.BeginAttempt(ctx, k.Key, vc.Now())
		vc.Advance(25 * time.Hour)
		lk := &fakeLookup{id: "pi_9", status: "succeeded", found: true}
		got, err := m.Reconcile(ctx, "B1", "charge", lk)
		if err != nil || got.Key != k.Key || got.State != keystore.Succeeded || got.PaymentIntent != "pi_9" || got.PaymentIntentStatus != "succeeded" {
			t.Fatalf("Reconcile = %+v, %v", got, err)
		}
		if lk.booking != "B1" || lk.since.After(k.CreatedAt) {
			t.Errorf("lookup asked for %q since %v; want B1 since no later than %v", lk.booking, lk.since, k.CreatedAt)
		}
		if again, err := m.Reserve(ctx, "B1", "charge"); err != nil || again.Key != k.Key {
			t.Errorf("Reserve after reconcile = %+v, %v", again, err)
		}
		rows, _ := m.Attempts(ctx, k.Key)
		if len(rows) != 1 || rows[0].N != 0 || !strings.Contains(rows[0].Outcome, "pi_9") {
			t.Errorf("audit after reconcile = %+v", rows)
		}
	})

	t.Run("reconcile: none found mints a new key", func(t *testing.T) {
		s := fresh(t)
		vc := clock.NewVirtual(t0)
		m := &keystore.Manager{Store: s, Clock: vc, Mint: func(b, op string) (string, error) { return b + "-" + op + "-" + vc.Now().Format("02T15"), nil }}
		k, _ := m.Reserve(ctx, "B1", "charge")
		m.BeginAttempt(ctx, k.Key, vc.Now())
		m.Finish(ctx, k.Key, keystore.Result{State: keystore.Indeterminate}, vc.Now())
		vc.Advance(25 * time.Hour)
		if _, err := m.Reconcile(ctx, "B1", "charge", &fakeLookup{err: errors.New("api down")}); err == nil || !strings.Contains(err.Error(), "api down") {
			t.Fatalf("Reconcile with a failing lookup = %v", err)
		}
		if cur, _ := m.Get(ctx, "B1", "charge"); cur.Key != k.Key || cur.State != keystore.Indeterminate {
			t.Fatalf("a failed lookup changed the key: %+v", cur)
		}
		nk, err := m.Reconcile(ctx, "B1", "charge", &fakeLookup{})
		if err != nil || nk.Key == k.Key || nk.Key != "B1-charge-10T11" || nk.State != keystore.Reserved {
			t.Fatalf("Reconcile = %+v, %v; want a new reserved key", nk, err)
		}
		if got, err := m.Reserve(ctx, "B1", "charge"); err != nil || got.Key != nk.Key {
			t.Fatalf("Reserve after reconcile = %+v, %v", got, err)
		}
		old, _ := m.Query(ctx, keystore.Filter{Booking: "B1", Until: t0.Add(time.Hour)})
		if len(old) != 1 || old[0].State != keystore.Failed || old[0].Note != "expired, reconciled: none found" || old[0].SupersededBy != nk.Key {
			t.Fatalf("old key after reconcile = %+v", old)
		}
		rows, _ := m.Attempts(ctx, k.Key)
		if len(rows) != 1 || rows[0].Outcome != "expired, reconciled: none found" {
			t.Errorf("audit after reconcile = %+v", rows)
		}
	})

	t.Run("export CSV and JSON", func(t *testing.T) {
		s := fresh(t)
		k, _, _ := s.Reserve(ctx, "B1", "charge", counter("k"), t0)
		s.Reserve(ctx, "B2", "charge", counter("j"), t0.Add(time.Second))
		s.BeginAttempt(ctx, k.Key, t0)
		s.RecordAttempt(ctx, keystore.Attempt{Key: k.Key, N: 1, At: t0, Outcome: "timeout", Error: `read: "reset", by peer`})
		s.RecordAttempt(ctx, keystore.Attempt{Key: k.Key, N: 2, At: t0.Add(time.Second), Outcome: "succeeded", HTTPStatus: 200, RequestID: "req_1", Replayed: true})
		s.Finish(ctx, k.Key, keystore.Result{State: keystore.Succeeded, PaymentIntent: "pi_1", PaymentIntentStatus: "succeeded"}, t0.Add(time.Second))
		keys, attempts, err := keystore.Collect(ctx, s, keystore.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := keystore.ExportCSV(&buf, keys, attempts); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 4 || !reflect.DeepEqual(rows[0], keystore.CSVHeader) {
			t.Fatalf("CSV = %q", rows)
		}
		wantRow := []string{"k1", "B1", "charge", "succeeded", "2025-09-09T10:50:00Z", "2025-09-09T10:50:01Z", "pi_1", "succeeded", "1", "", "",
			"2", "2025-09-09T10:50:01Z", "succeeded", "200", "req_1", "", "true"}
		if !reflect.DeepEqual(rows[2], wantRow) || rows[1][16] != `read: "reset", by peer` {
			t.Errorf("CSV rows:\n%q\n%q\nwant row 2 %q", rows[1], rows[2], wantRow)
		}
		if rows[3][0] != "j1" || rows[3][11] != "" {
			t.Errorf("a key without attempts: %q", rows[3])
		}
		buf.Reset()
		if err := keystore.ExportJSON(&buf, keys, attempts); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Keys) != 2 || doc.Keys[0]["key"] != "k1" || doc.Keys[0]["payment_intent"] != "pi_1" || doc.Keys[0]["created_at"] != "2025-09-09T10:50:00Z" {
			t.Fatalf("JSON = %s", buf.String())
		}
		trail, _ := doc.Keys[0]["audit_trail"].([]any)
		if len(trail) != 2 || trail[1].(map[string]any)["request_id"] != "req_1" || trail[1].(map[string]any)["replayed"] != true {
			t.Fatalf("JSON audit trail = %v", doc.Keys[0]["audit_trail"])
		}
		if tr, ok := doc.Keys[1]["audit_trail"].([]any); !ok || len(tr) != 0 {
			t.Errorf("key without attempts has audit_trail %v, want []", doc.Keys[1]["audit_trail"])
		}
	})
}

type fakeLookup struct {
	id, status string
	found      bool
	err        error
	booking    string
	since      time.Time
}

func (f *fakeLookup) FindPaymentIntent(_ context.Context, booking string, since time.Time) (string, string, bool, error) {
	f.booking, f.since = booking, since
	return f.id, f.status, f.found, f.err
}
