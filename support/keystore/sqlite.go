package keystore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go, no cgo)
)

// sqliteSchema is applied on every open; it is idempotent. Times are unix
// microseconds. The partial unique index is what gives one current key per
// operation while superseded keys stay in the trail.
const sqliteSchema = `
CREATE TABLE IF NOT EXISTS keys (
	key                   TEXT PRIMARY KEY,
	booking               TEXT NOT NULL,
	operation             TEXT NOT NULL,
	state                 TEXT NOT NULL,
	created_at            INTEGER NOT NULL,
	updated_at            INTEGER NOT NULL,
	payment_intent        TEXT NOT NULL DEFAULT '',
	payment_intent_status TEXT NOT NULL DEFAULT '',
	attempts              INTEGER NOT NULL DEFAULT 0,
	note                  TEXT NOT NULL DEFAULT '',
	superseded_by         TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS keys_current ON keys (booking, operation) WHERE superseded_by = '';
CREATE INDEX IF NOT EXISTS keys_created ON keys (created_at);
CREATE INDEX IF NOT EXISTS keys_state ON keys (state, updated_at);
CREATE TABLE IF NOT EXISTS attempts (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	key         TEXT NOT NULL REFERENCES keys (key),
	n           INTEGER NOT NULL,
	at          INTEGER NOT NULL,
	outcome     TEXT NOT NULL,
	http_status INTEGER NOT NULL,
	request_id  TEXT NOT NULL,
	error       TEXT NOT NULL,
	replayed    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_key ON attempts (key, id);
CREATE TRIGGER IF NOT EXISTS attempts_append_only BEFORE UPDATE ON attempts
BEGIN SELECT RAISE(ABORT, 'keystore: audit rows are append-only'); END;
`

type sqliteStore struct {
	db   *sql.DB
	path string
}

// OpenSQLite opens (creating if needed) the SQLite key store at path. The
// database runs in WAL mode with synchronous=FULL, so a committed record
// survives a crash of the process or the machine, and every write is a
// BEGIN IMMEDIATE transaction with a busy timeout, so several processes can
// share one file. It never falls back to memory: a path it cannot use is an
// error that says what to do.
func OpenSQLite(path string) (Store, error) {
	if path == "" || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("keystore sqlite: %q is not a file path; pass the path of a database file, e.g. reports/keys.db", path)
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("keystore sqlite: cannot create %s because %s is not a directory; create the directory or choose another path", path, dir)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("keystore sqlite: %s is a directory; pass the path of a database file inside it", path)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(20000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, sqliteOpenError(path, err)
	}
	// One connection per process: goroutines queue in Go, which is far
	// cheaper than SQLite's busy-wait, and processes still share the file.
	db.SetMaxOpenConns(1)
	s := &sqliteStore{db: db, path: path}
	if err := s.init(); err != nil {
		db.Close()
		return nil, sqliteOpenError(path, err)
	}
	return s, nil
}

func (s *sqliteStore) init() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if mode != "wal" {
		return fmt.Errorf("journal mode is %q, not wal", mode)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, sqliteSchema); err != nil {
		return err
	}
	return tx.Commit()
}

func sqliteOpenError(path string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "not a database"), strings.Contains(msg, "malformed"):
		return fmt.Errorf("keystore sqlite: %s is not a valid SQLite database (%v); move it aside or choose another path", path, err)
	case strings.Contains(msg, "readonly"), strings.Contains(msg, "unable to open"), strings.Contains(msg, "permission"), strings.Contains(msg, "cannot open"):
		return fmt.Errorf("keystore sqlite: cannot write %s (%v); make its directory writable or choose another path", path, err)
	}
	return fmt.Errorf("keystore sqlite: cannot open %s (%v); check the file and its directory", path, err)
}

func (s *sqliteStore) wrap(what string, err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrSuperseded) || strings.HasPrefix(err.Error(), "keystore ") {
		return err
	}
	return fmt.Errorf("keystore sqlite (%s): %s: %w", s.path, what, err)
}

const keyColumns = `key, booking, operation, state, created_at, updated_at, payment_intent, payment_intent_status, attempts, note, superseded_by`

type scanner interface{ Scan(...any) error }

func scanSQLiteKey(r scanner) (Key, error) {
	var k Key
	var created, updated int64
	var state string
	err := r.Scan(&k.Key, &k.Booking, &k.Operation, &state, &created, &updated,
		&k.PaymentIntent, &k.PaymentIntentStatus, &k.Attempts, &k.Note, &k.SupersededBy)
	k.State = State(state)
	k.CreatedAt = time.UnixMicro(created).UTC()
	k.UpdatedAt = time.UnixMicro(updated).UTC()
	return k, err
}

func (s *sqliteStore) Reserve(ctx context.Context, booking, operation string, mint func() (string, error), now time.Time) (Key, bool, error) {
	if err := checkOperation("sqlite", booking, operation); err != nil {
		return Key{}, false, err
	}
	key, err := mintKey("sqlite", mint)
	if err != nil {
		return Key{}, false, err
	}
	// Fast path without the write lock: retries and the other processes'
	// reservations find the key here.
	if k, err := s.Get(ctx, booking, operation); err == nil {
		return k, false, nil
	}
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: see _txlock
	if err != nil {
		return Key{}, false, s.wrap("reserve", err)
	}
	defer tx.Rollback()
	k, created, err := reserveSQLite(ctx, tx, key, booking, operation, ts(now).UnixMicro())
	if err != nil {
		return Key{}, false, s.wrap("reserve", err)
	}
	return k, created, s.wrap("reserve", tx.Commit())
}

func reserveSQLite(ctx context.Context, tx *sql.Tx, key, booking, operation string, now int64) (Key, bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO keys (key, booking, operation, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, key, booking, operation, string(Reserved), now, now)
	if err != nil {
		return Key{}, false, err
	}
	n, _ := res.RowsAffected()
	k, err := scanSQLiteKey(tx.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys
		WHERE booking = ? AND operation = ? AND superseded_by = ''`, booking, operation))
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, false, fmt.Errorf("keystore sqlite: minted key %q is already used by another operation; make the mint function produce unique keys", key)
	}
	return k, n == 1, err
}

func (s *sqliteStore) BeginAttempt(ctx context.Context, key string, now time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `UPDATE keys SET state = ?, attempts = attempts + 1, updated_at = ?
		WHERE key = ? AND superseded_by = '' RETURNING attempts`,
		string(InFlight), ts(now).UnixMicro(), key).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		if _, gerr := s.getByKey(ctx, key); gerr == nil {
			return 0, ErrSuperseded
		}
		return 0, fmt.Errorf("%w %q", ErrNotFound, key)
	}
	return n, s.wrap("begin attempt", err)
}

func (s *sqliteStore) getByKey(ctx context.Context, key string) (Key, error) {
	k, err := scanSQLiteKey(s.db.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys WHERE key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, fmt.Errorf("%w %q", ErrNotFound, key)
	}
	return k, s.wrap("get", err)
}

func (s *sqliteStore) RecordAttempt(ctx context.Context, a Attempt) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO attempts (key, n, at, outcome, http_status, request_id, error, replayed)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, a.Key, a.N, ts(a.At).UnixMicro(), a.Outcome, a.HTTPStatus, a.RequestID, a.Error, a.Replayed)
	if err != nil && strings.Contains(err.Error(), "FOREIGN KEY") {
		return fmt.Errorf("%w %q", ErrNotFound, a.Key)
	}
	return s.wrap("record attempt", err)
}

func (s *sqliteStore) Finish(ctx context.Context, key string, r Result, now time.Time) error {
	if err := checkFinal("sqlite", r.State); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE keys SET state = ?, payment_intent = ?, payment_intent_status = ?, note = ?, updated_at = ?
		WHERE key = ?`, string(r.State), r.PaymentIntent, r.PaymentIntentStatus, r.Note, ts(now).UnixMicro(), key)
	if err != nil {
		return s.wrap("finish", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w %q", ErrNotFound, key)
	}
	return nil
}

func (s *sqliteStore) Supersede(ctx context.Context, old, note string, mint func() (string, error), now time.Time) (Key, error) {
	key, err := mintKey("sqlite", mint)
	if err != nil {
		return Key{}, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Key{}, s.wrap("supersede", err)
	}
	defer tx.Rollback()
	prev, err := scanSQLiteKey(tx.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys WHERE key = ?`, old))
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, fmt.Errorf("%w %q", ErrNotFound, old)
	}
	if err != nil {
		return Key{}, s.wrap("supersede", err)
	}
	if prev.SupersededBy == "" {
		t := ts(now).UnixMicro()
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET state = ?, note = ?, superseded_by = ?, updated_at = ? WHERE key = ?`,
			string(Failed), note, key, t, old); err != nil {
			return Key{}, s.wrap("supersede", err)
		}
		if _, _, err := reserveSQLite(ctx, tx, key, prev.Booking, prev.Operation, t); err != nil {
			return Key{}, s.wrap("supersede", err)
		}
	}
	k, err := scanSQLiteKey(tx.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys
		WHERE booking = ? AND operation = ? AND superseded_by = ''`, prev.Booking, prev.Operation))
	if err != nil {
		return Key{}, s.wrap("supersede", err)
	}
	return k, s.wrap("supersede", tx.Commit())
}

func (s *sqliteStore) Get(ctx context.Context, booking, operation string) (Key, error) {
	k, err := scanSQLiteKey(s.db.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys
		WHERE booking = ? AND operation = ? AND superseded_by = ''`, booking, operation))
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, fmt.Errorf("%w for booking %q operation %q", ErrNotFound, booking, operation)
	}
	return k, s.wrap("get", err)
}

func (s *sqliteStore) Query(ctx context.Context, f Filter) ([]Key, error) {
	q := `SELECT ` + keyColumns + ` FROM keys WHERE 1 = 1`
	var args []any
	if f.State != "" {
		q += ` AND state = ?`
		args = append(args, string(f.State))
	}
	if f.Booking != "" {
		q += ` AND booking = ?`
		args = append(args, f.Booking)
	}
	if !f.Since.IsZero() {
		q += ` AND created_at >= ?`
		args = append(args, ts(f.Since).UnixMicro())
	}
	if !f.Until.IsZero() {
		q += ` AND created_at < ?`
		args = append(args, ts(f.Until).UnixMicro())
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY created_at, key`, args...)
	if err != nil {
		return nil, s.wrap("query", err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		k, err := scanSQLiteKey(rows)
		if err != nil {
			return nil, s.wrap("query", err)
		}
		out = append(out, k)
	}
	return out, s.wrap("query", rows.Err())
}

func (s *sqliteStore) Attempts(ctx context.Context, key string) ([]Attempt, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key, n, at, outcome, http_status, request_id, error, replayed
		FROM attempts WHERE key = ? ORDER BY id`, key)
	if err != nil {
		return nil, s.wrap("attempts", err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		var at int64
		if err := rows.Scan(&a.Key, &a.N, &at, &a.Outcome, &a.HTTPStatus, &a.RequestID, &a.Error, &a.Replayed); err != nil {
			return nil, s.wrap("attempts", err)
		}
		a.At = time.UnixMicro(at).UTC()
		out = append(out, a)
	}
	return out, s.wrap("attempts", rows.Err())
}

func (s *sqliteStore) Prune(ctx context.Context, before time.Time) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, s.wrap("prune", err)
	}
	defer tx.Rollback()
	const doomed = `SELECT key FROM keys WHERE state IN ('succeeded', 'failed', 'collision') AND updated_at < ?`
	b := ts(before).UnixMicro()
	if _, err := tx.ExecContext(ctx, `DELETE FROM attempts WHERE key IN (`+doomed+`)`, b); err != nil {
		return 0, s.wrap("prune", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM keys WHERE key IN (`+doomed+`)`, b)
	if err != nil {
		return 0, s.wrap("prune", err)
	}
	n, _ := res.RowsAffected()
	return int(n), s.wrap("prune", tx.Commit())
}

func (s *sqliteStore) Close() error { return s.db.Close() }
