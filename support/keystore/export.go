package keystore

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// CSVHeader is the first row ExportCSV writes: the key's columns, then the
// attempt's. A key with no attempts gets one row with empty attempt columns.
var CSVHeader = []string{
	"key", "booking", "operation", "state", "created_at", "updated_at",
	"payment_intent", "payment_intent_status", "attempts", "note", "superseded_by",
	"attempt_n", "attempt_at", "outcome", "http_status", "request_id", "error", "replayed",
}

// Collect reads the keys that match f and their audit rows, ready for
// ExportCSV or ExportJSON.
func Collect(ctx context.Context, s Store, f Filter) ([]Key, map[string][]Attempt, error) {
	keys, err := s.Query(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	attempts := make(map[string][]Attempt, len(keys))
	for _, k := range keys {
		a, err := s.Attempts(ctx, k.Key)
		if err != nil {
			return nil, nil, err
		}
		attempts[k.Key] = a
	}
	return keys, attempts, nil
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ExportCSV writes one row per attempt (times in RFC 3339, UTC) for an
// auditor's spreadsheet, headed by CSVHeader.
func ExportCSV(w io.Writer, keys []Key, attempts map[string][]Attempt) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("keystore: writing CSV: %w", err)
	}
	for _, k := range keys {
		base := []string{k.Key, k.Booking, k.Operation, string(k.State), rfc3339(k.CreatedAt), rfc3339(k.UpdatedAt),
			k.PaymentIntent, k.PaymentIntentStatus, strconv.Itoa(k.Attempts), k.Note, k.SupersededBy}
		rows := attempts[k.Key]
		if len(rows) == 0 {
			if err := cw.Write(append(base, "", "", "", "", "", "", "")); err != nil {
				return fmt.Errorf("keystore: writing CSV: %w", err)
			}
			continue
		}
		for _, a := range rows {
			status := ""
			if a.HTTPStatus != 0 {
				status = strconv.Itoa(a.HTTPStatus)
			}
			row := append(append([]string(nil), base...), strconv.Itoa(a.N), rfc3339(a.At), a.Outcome, status,
				a.RequestID, a.Error, strconv.FormatBool(a.Replayed))
			if err := cw.Write(row); err != nil {
				return fmt.Errorf("keystore: writing CSV: %w", err)
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("keystore: writing CSV: %w", err)
	}
	return nil
}

// ExportedKey is a key with its audit rows, as ExportJSON writes it.
type ExportedKey struct {
	Key
	AuditTrail []Attempt `json:"audit_trail"`
}

// ExportJSON writes {"keys":[{...key fields..., "audit_trail":[...]}]},
// indented, with times in RFC 3339.
func ExportJSON(w io.Writer, keys []Key, attempts map[string][]Attempt) error {
	out := struct {
		Keys []ExportedKey `json:"keys"`
	}{Keys: make([]ExportedKey, 0, len(keys))}
	for _, k := range keys {
		a := attempts[k.Key]
		if a == nil {
			a = []Attempt{}
		}
		out.Keys = append(out.Keys, ExportedKey{Key: k, AuditTrail: a})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("keystore: writing JSON: %w", err)
	}
	return nil
}
