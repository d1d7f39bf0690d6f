package keystore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// postgresSchema mirrors sqliteSchema. It runs under an advisory lock so
// that instances starting together do not race on CREATE.
const postgresSchema = `
CREATE TABLE IF NOT EXISTS keystore_keys (
	key                   TEXT PRIMARY KEY,
	booking               TEXT NOT NULL,
	operation             TEXT NOT NULL,
	state                 TEXT NOT NULL,
	created_at            TIMESTAMPTZ NOT NULL,
	updated_at            TIMESTAMPTZ NOT NULL,
	payment_intent        TEXT NOT NULL DEFAULT '',
	payment_intent_status TEXT NOT NULL DEFAULT '',
	attempts              INTEGER NOT NULL DEFAULT 0,
	note                  TEXT NOT NULL DEFAULT '',
	superseded_by         TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS keystore_keys_current ON keystore_keys (booking, operation) WHERE superseded_by = '';
CREATE INDEX IF NOT EXISTS keystore_keys_created ON keystore_keys (created_at);
CREATE INDEX IF NOT EXISTS keystore_keys_state ON keystore_keys (state, updated_at);
CREATE TABLE IF NOT EXISTS keystore_attempts (
	id          BIGSERIAL PRIMARY KEY,
	key         TEXT NOT NULL REFERENCES keystore_keys (key),
	n           INTEGER NOT NULL,
	at          TIMESTAMPTZ NOT NULL,
	outcome     TEXT NOT NULL,
	http_status INTEGER NOT NULL,
	request_id  TEXT NOT NULL,
	error       TEXT NOT NULL,
	replayed    BOOLEAN NOT NULL
);
CREATE INDEX IF NOT EXISTS keystore_attempts_key ON keystore_attempts (key, id);
CREATE OR REPLACE FUNCTION keystore_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'keystore: audit rows are append-only'; END $$;
DROP TRIGGER IF EXISTS keystore_attempts_append_only ON keystore_attempts;
CREATE TRIGGER keystore_attempts_append_only BEFORE UPDATE ON keystore_attempts
	FOR EACH ROW EXECUTE FUNCTION keystore_append_only();
`

// schemaLock is an arbitrary advisory-lock id for the keystore's schema.
const schemaLock = 0x6b657973746f7265 // "keystore"

// connectTimeout bounds how long OpenPostgres waits for a server that does
// not answer, unless the DSN sets connect_timeout itself.
const connectTimeout = 5 * time.Second

type pgStore struct {
	pool  *pgxpool.Pool
	where string // host:port/database, for error messages
}

// OpenPostgres connects to the PostgreSQL key store at dsn (a URL such as
// postgres://user:pass@host:5432/db or a key=value string) and creates its
// tables if needed. It fails within a few seconds (connect_timeout, 5s
// unless the DSN says otherwise) when the server cannot be reached, with an
// error that names the server and what to check.
func OpenPostgres(ctx context.Context, dsn string) (Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("keystore postgres: the DSN is not valid (%v); pass a URL like postgres://user:password@127.0.0.1:5432/keys", redactDSN(err))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > connectTimeout {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("keystore postgres: cannot set up a pool for %s (%v); check the DSN", where, err)
	}
	s := &pgStore{pool: pool, where: where}
	ictx, cancel := context.WithTimeout(ctx, cfg.ConnConfig.ConnectTimeout+10*time.Second)
	defer cancel()
	if err := pool.Ping(ictx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("keystore postgres: cannot connect to %s (%s); check that the server is running and the DSN's host, port, user, password and database are right", where, oneLine(err))
	}
	if err := s.init(ictx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("keystore postgres: cannot create the keystore tables in %s (%s); grant the user CREATE on the database or create them once as an owner", where, oneLine(err))
	}
	return s, nil
}

// oneLine folds pgx's multi-line connect errors into one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// redactDSN keeps a password in a malformed DSN out of the error.
func redactDSN(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "://"); i >= 0 {
		if j := strings.Index(msg[i:], "@"); j >= 0 {
			return msg[:i+3] + "…" + msg[i+j:]
		}
	}
	return msg
}

func (s *pgStore) init(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(schemaLock)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, postgresSchema)
		return err
	})
}

func (s *pgStore) wrap(what string, err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrSuperseded) || strings.HasPrefix(err.Error(), "keystore ") {
		return err
	}
	return fmt.Errorf("keystore postgres (%s): %s: %w", s.where, what, err)
}

const pgKeyColumns = `key, booking, operation, state, created_at, updated_at, payment_intent, payment_intent_status, attempts, note, superseded_by`

func scanPGKey(r scanner) (Key, error) {
	var k Key
	var state string
	err := r.Scan(&k.Key, &k.Booking, &k.Operation, &state, &k.CreatedAt, &k.UpdatedAt,
		&k.PaymentIntent, &k.PaymentIntentStatus, &k.Attempts, &k.Note, &k.SupersededBy)
	k.State = State(state)
	k.CreatedAt = k.CreatedAt.UTC()
	k.UpdatedAt = k.UpdatedAt.UTC()
	return k, err
}

type pgQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func (s *pgStore) Reserve(ctx context.Context, booking, operation string, mint func() (string, error), now time.Time) (Key, bool, error) {
	if err := checkOperation("postgres", booking, operation); err != nil {
		return Key{}, false, err
	}
	key, err := mintKey("postgres", mint)
	if err != nil {
		return Key{}, false, err
	}
	// Fast path: a plain read finds the key of a retried operation without
	// a speculative insert.
	if k, err := s.Get(ctx, booking, operation); err == nil {
		return k, false, nil
	}
	k, created, err := reservePG(ctx, s.pool, key, booking, operation, ts(now))
	return k, created, s.wrap("reserve", err)
}

// reservePG inserts or finds the current key. Under READ COMMITTED the
// INSERT waits for a concurrent uncommitted insert of the same operation,
// and the SELECT, a new statement, sees it once committed.
func reservePG(ctx context.Context, q pgQuerier, key, booking, operation string, now time.Time) (Key, bool, error) {
	k, err := scanPGKey(q.QueryRow(ctx, `INSERT INTO keystore_keys (key, booking, operation, state, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING RETURNING `+pgKeyColumns, key, booking, operation, string(Reserved), now))
	if err == nil {
		return k, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Key{}, false, err
	}
	k, err = scanPGKey(q.QueryRow(ctx, `SELECT `+pgKeyColumns+` FROM keystore_keys
		WHERE booking = $1 AND operation = $2 AND superseded_by = ''`, booking, operation))
	if errors.Is(err, pgx.ErrNoRows) {
		return Key{}, false, fmt.Errorf("keystore postgres: minted key %q is already used by another operation; make the mint function produce unique keys", key)
	}
	return k, false, err
}

func (s *pgStore) BeginAttempt(ctx context.Context, key string, now time.Time) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `UPDATE keystore_keys SET state = $1, attempts = attempts + 1, updated_at = $2
		WHERE key = $3 AND superseded_by = '' RETURNING attempts`, string(InFlight), ts(now), key).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		var one int
		if s.pool.QueryRow(ctx, `SELECT 1 FROM keystore_keys WHERE key = $1`, key).Scan(&one) == nil {
			return 0, ErrSuperseded
		}
		return 0, fmt.Errorf("%w %q", ErrNotFound, key)
	}
	return n, s.wrap("begin attempt", err)
}

func (s *pgStore) RecordAttempt(ctx context.Context, a Attempt) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO keystore_attempts (key, n, at, outcome, http_status, request_id, error, replayed)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, a.Key, a.N, ts(a.At), a.Outcome, a.HTTPStatus, a.RequestID, a.Error, a.Replayed)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign_key_violation
		return fmt.Errorf("%w %q", ErrNotFound, a.Key)
	}
	return s.wrap("record attempt", err)
}

func (s *pgStore) Finish(ctx context.Context, key string, r Result, now time.Time) error {
	if err := checkFinal("postgres", r.State); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE keystore_keys SET state = $1, payment_intent = $2, payment_intent_status = $3, note = $4, updated_at = $5
		WHERE key = $6`, string(r.State), r.PaymentIntent, r.PaymentIntentStatus, r.Note, ts(now), key)
	if err != nil {
		return s.wrap("finish", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w %q", ErrNotFound, key)
	}
	return nil
}

func (s *pgStore) Supersede(ctx context.Context, old, note string, mint func() (string, error), now time.Time) (Key, error) {
	key, err := mintKey("postgres", mint)
	if err != nil {
		return Key{}, err
	}
	var out Key
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// FOR UPDATE serialises concurrent reconcilers of the same key.
		prev, err := scanPGKey(tx.QueryRow(ctx, `SELECT `+pgKeyColumns+` FROM keystore_keys WHERE key = $1 FOR UPDATE`, old))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w %q", ErrNotFound, old)
		}
		if err != nil {
			return err
		}
		if prev.SupersededBy == "" {
			t := ts(now)
			if _, err := tx.Exec(ctx, `UPDATE keystore_keys SET state = $1, note = $2, superseded_by = $3, updated_at = $4 WHERE key = $5`,
				string(Failed), note, key, t, old); err != nil {
				return err
			}
			if _, _, err := reservePG(ctx, tx, key, prev.Booking, prev.Operation, t); err != nil {
				return err
			}
		}
		out, err = scanPGKey(tx.QueryRow(ctx, `SELECT `+pgKeyColumns+` FROM keystore_keys
			WHERE booking = $1 AND operation = $2 AND superseded_by = ''`, prev.Booking, prev.Operation))
		return err
	})
	return out, s.wrap("supersede", err)
}

func (s *pgStore) Get(ctx context.Context, booking, operation string) (Key, error) {
	k, err := scanPGKey(s.pool.QueryRow(ctx, `SELECT `+pgKeyColumns+` FROM keystore_keys
		WHERE booking = $1 AND operation = $2 AND superseded_by = ''`, booking, operation))
	if errors.Is(err, pgx.ErrNoRows) {
		return Key{}, fmt.Errorf("%w for booking %q operation %q", ErrNotFound, booking, operation)
	}
	return k, s.wrap("get", err)
}

func (s *pgStore) Query(ctx context.Context, f Filter) ([]Key, error) {
	q := `SELECT ` + pgKeyColumns + ` FROM keystore_keys WHERE true`
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		q += fmt.Sprintf(" AND %s $%d", cond, len(args))
	}
	if f.State != "" {
		add("state =", string(f.State))
	}
	if f.Booking != "" {
		add("booking =", f.Booking)
	}
	if !f.Since.IsZero() {
		add("created_at >=", ts(f.Since))
	}
	if !f.Until.IsZero() {
		add("created_at <", ts(f.Until))
	}
	rows, err := s.pool.Query(ctx, q+` ORDER BY created_at, key`, args...)
	if err != nil {
		return nil, s.wrap("query", err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		k, err := scanPGKey(rows)
		if err != nil {
			return nil, s.wrap("query", err)
		}
		out = append(out, k)
	}
	return out, s.wrap("query", rows.Err())
}

func (s *pgStore) Attempts(ctx context.Context, key string) ([]Attempt, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, n, at, outcome, http_status, request_id, error, replayed
		FROM keystore_attempts WHERE key = $1 ORDER BY id`, key)
	if err != nil {
		return nil, s.wrap("attempts", err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		if err := rows.Scan(&a.Key, &a.N, &a.At, &a.Outcome, &a.HTTPStatus, &a.RequestID, &a.Error, &a.Replayed); err != nil {
			return nil, s.wrap("attempts", err)
		}
		a.At = a.At.UTC()
		out = append(out, a)
	}
	return out, s.wrap("attempts", rows.Err())
}

func (s *pgStore) Prune(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		const doomed = `SELECT key FROM keystore_keys WHERE state IN ('succeeded', 'failed', 'collision') AND updated_at < $1`
		if _, err := tx.Exec(ctx, `DELETE FROM keystore_attempts WHERE key IN (`+doomed+`)`, ts(before)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM keystore_keys WHERE key IN (`+doomed+`)`, ts(before))
		n = tag.RowsAffected()
		return err
	})
	return int(n), s.wrap("prune", err)
}

func (s *pgStore) Close() error {
	s.pool.Close()
	return nil
}
