package ledger

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/travelbook/onecharge/support/clock"
)

var start = time.Date(2025, 9, 9, 10, 50, 0, 0, time.UTC)

func pi(id, ref string, amount int64, currency string) Object {
	return Object{ID: id, Object: ObjectPaymentIntent, Path: "/v1/payment_intents", Reference: ref, Amount: amount, Currency: currency}
}

func TestRecordKeepsOrderAndStampsTime(t *testing.T) {
	clk := clock.NewVirtual(start)
	l := New(clk)
	l.Record(pi("pi_1", "b1", 100, "eur"))
	clk.Advance(time.Minute)
	given := start.Add(-time.Hour)
	l.Record(Object{ID: "pi_2", Object: ObjectPaymentIntent, CreatedAt: given})
	got := l.Objects()
	if len(got) != 2 || got[0].ID != "pi_1" || got[1].ID != "pi_2" {
		t.Fatalf("Objects() = %+v", got)
	}
	if !got[0].CreatedAt.Equal(start) {
		t.Errorf("CreatedAt = %v, want the clock's %v", got[0].CreatedAt, start)
	}
	if !got[1].CreatedAt.Equal(given) {
		t.Errorf("CreatedAt = %v, want the given %v", got[1].CreatedAt, given)
	}
	got[0].ID = "changed"
	if l.Objects()[0].ID != "pi_1" {
		t.Error("Objects() returned the ledger's own slice")
	}
}

func TestDuplicatesAndDoubleCharged(t *testing.T) {
	l := New(clock.NewVirtual(start))
	for _, o := range []Object{
		pi("pi_a1", "bk_a", 240000, "eur"),
		pi("pi_b1", "bk_b", 5000, "usd"),
		pi("pi_a2", "bk_a", 240000, "eur"),
		pi("pi_c1", "bk_c", 185000, "eur"), // charged once: not a duplicate
		pi("pi_b2", "bk_b", 7000, "usd"),
		pi("pi_a3", "bk_a", 310000, "eur"),
		pi("pi_n1", "", 100, "eur"), // no reference: never grouped
		pi("pi_n2", "", 100, "eur"),
		{ID: "cus_1", Object: "customer", Reference: "bk_d"}, // not a PaymentIntent
		{ID: "cus_2", Object: "customer", Reference: "bk_d"},
	} {
		l.Record(o)
	}
	want := []Duplicate{
		{Reference: "bk_a", IDs: []string{"pi_a1", "pi_a2", "pi_a3"}, Amount: 550000, Currency: "eur"},
		{Reference: "bk_b", IDs: []string{"pi_b1", "pi_b2"}, Amount: 7000, Currency: "usd"},
	}
	if got := l.Duplicates(); !reflect.DeepEqual(got, want) {
		t.Errorf("Duplicates() =\n%+v\nwant\n%+v", got, want)
	}
	if got, want := l.DoubleCharged(), map[string]int64{"eur": 550000, "usd": 7000}; !reflect.DeepEqual(got, want) {
		t.Errorf("DoubleCharged() = %v, want %v", got, want)
	}
	if got := l.PaymentIntents("bk_a"); len(got) != 3 || got[0].ID != "pi_a1" || got[2].ID != "pi_a3" {
		t.Errorf("PaymentIntents(bk_a) = %+v", got)
	}
	if got := l.PaymentIntents("bk_d"); len(got) != 0 {
		t.Errorf("PaymentIntents(bk_d) = %+v, want none (customers only)", got)
	}
	l.Reset()
	if len(l.Objects()) != 0 || len(l.Duplicates()) != 0 || len(l.DoubleCharged()) != 0 {
		t.Error("Reset left objects behind")
	}
}

func TestSnapshotJSON(t *testing.T) {
	l := New(clock.NewVirtual(start))
	empty, err := json.Marshal(l.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if string(empty) != `{"objects":[],"duplicates":[]}` {
		t.Fatalf("empty snapshot = %s", empty)
	}

	o := pi("pi_1", "bk_1", 120000, "eur")
	o.IdempotencyKey, o.RequestID = "key-1", "req_abc"
	l.Record(o)
	l.Record(pi("pi_2", "bk_1", 120000, "eur"))
	raw, err := json.Marshal(l.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Objects    []map[string]any `json:"objects"`
		Duplicates []map[string]any `json:"duplicates"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	wantObject := map[string]any{
		"id": "pi_1", "object": "payment_intent", "path": "/v1/payment_intents", "reference": "bk_1",
		"amount": 120000.0, "currency": "eur", "idempotency_key": "key-1", "request_id": "req_abc",
		"created_at": "2025-09-09T10:50:00Z",
	}
	if len(got.Objects) != 2 || !reflect.DeepEqual(got.Objects[0], wantObject) {
		t.Errorf("objects[0] = %v\nwant %v", got.Objects, wantObject)
	}
	wantDup := map[string]any{"reference": "bk_1", "ids": []any{"pi_1", "pi_2"}, "amount": 120000.0, "currency": "eur"}
	if len(got.Duplicates) != 1 || !reflect.DeepEqual(got.Duplicates[0], wantDup) {
		t.Errorf("duplicates = %v\nwant [%v]", got.Duplicates, wantDup)
	}
}

func TestConcurrentRecord(t *testing.T) {
	l := New(nil)
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range each {
				l.Record(pi(fmt.Sprintf("pi_%d_%d", w, i), fmt.Sprintf("bk_%d", i), 100, "eur"))
			}
		}()
		go func() { // readers race the writers
			defer wg.Done()
			for range each {
				_ = l.Snapshot()
				_ = l.DoubleCharged()
			}
		}()
	}
	wg.Wait()
	if n := len(l.Objects()); n != writers*each {
		t.Fatalf("recorded %d objects, want %d", n, writers*each)
	}
	// Each of the 50 references got one PaymentIntent per writer.
	if d := l.Duplicates(); len(d) != each || len(d[0].IDs) != writers {
		t.Fatalf("got %d duplicate groups (first has %d ids), want %d of %d", len(d), len(d[0].IDs), each, writers)
	}
	if got := l.DoubleCharged()["eur"]; got != int64(each*(writers-1)*100) {
		t.Fatalf("double charged %d, want %d", got, each*(writers-1)*100)
	}
}
