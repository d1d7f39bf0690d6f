// Package keys makes and checks Stripe idempotency keys for business
// operations.
//
// A key is what lets a retry be safe: Stripe saves the first response for a
// key and replays it to every later request with the same key, so a retry
// after a timeout returns the PaymentIntent the first attempt created
// instead of creating a second one
// (https://docs.stripe.com/api/idempotent_requests). That only works if the
// retry sends the same key as the attempt it repeats, so what matters about
// a strategy is where the key comes from on the second attempt, possibly in
// another process after a restart:
//
//   - Composite ("tb:v1:<agency>:<booking>:<operation>") derives the key from
//     the business fields that identify the operation. It is readable in the
//     Stripe dashboard and in logs, and every process derives the same key
//     for the same operation, with nothing to store. It is right whenever
//     the business fields identify the operation: one payment per booking.
//   - UUIDv5 is the same derivation hashed into a UUID: just as stable, but
//     opaque (no booking ids in Stripe's logs) and always 36 characters, so
//     long agency or booking ids can never push it over Stripe's limit.
//   - Random (UUIDv4) carries no meaning, so a retry can only send the same
//     key if the key was stored with the operation before the first send
//     (see support/keystore). Minted in memory, a crash or restart between
//     the send and the answer mints a new key on the retry, and the retry
//     charges the customer a second time.
//
// Do not put a hash of the request parameters (amount, currency) into a
// key. It looks safer but removes the protection it seems to add: if a
// retry is sent with a changed amount, Stripe would answer the old key with
// a 400 idempotency_error (a collision the caller must look at), whereas a
// parameter hash makes it a new key, and so a second, silent charge.
package keys

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/google/uuid"
)

// MaxLength is the longest idempotency key Stripe accepts; stripe-go
// refuses longer keys before sending them.
const MaxLength = 255

// Prefix starts every composite key: the product ("tb", TravelBook) and the
// version of the key format, so that a future format cannot collide with
// keys already saved at Stripe.
const Prefix = "tb:v1"

// Namespace is the fixed UUIDv5 namespace of onecharge keys. It is
// uuid.NewSHA1(uuid.NameSpaceURL, "https://github.com/travelbook/onecharge/idempotency-keys/v1"),
// written out so that it can never drift: changing it would change every
// UUIDv5 key, and a retry after a deploy would charge again.
var Namespace = uuid.MustParse("0a3d74fb-ddfc-5693-8264-511f13afc9be")

// Validate reports whether key can be sent as an Idempotency-Key: not
// empty, at most MaxLength characters, printable ASCII (0x20 to 0x7e), and
// no leading or trailing space, because stripe-go trims it and two keys
// that differ only there would then be one key at Stripe.
func Validate(key string) error {
	switch {
	case key == "":
		return errors.New("the idempotency key is empty; derive one from the operation (keys.Composite) or mint and store one (keys.Random)")
	case len(key) > MaxLength:
		return fmt.Errorf("the idempotency key is %d characters long, more than Stripe's %d; use keys.UUIDv5 for long business ids", len(key), MaxLength)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("the idempotency key has byte 0x%02x at position %d, but only printable ASCII (0x20 to 0x7e) is allowed; percent-escape it or use keys.UUIDv5", c, i)
		}
	}
	if key[0] == ' ' || key[len(key)-1] == ' ' {
		return errors.New("the idempotency key starts or ends with a space, which stripe-go trims; remove the space")
	}
	return nil
}

// Operation names one business operation: the agency, the booking and what
// is done to it, for example {"ag_42", "bk_1001", "create_payment"}. Two
// attempts at the same Operation must get the same key; two different
// operations must never share one.
type Operation struct {
	Agency    string
	Booking   string
	Operation string
}

// fields checks that every field is set, because an empty booking id would
// give all bookings without one the same key, and the second booking would
// be answered with the first one's PaymentIntent.
func (op Operation) fields() ([3]string, error) {
	f := [3]string{op.Agency, op.Booking, op.Operation}
	for i, name := range [3]string{"agency", "booking", "operation"} {
		if f[i] == "" {
			return f, fmt.Errorf("the operation's %s is empty; set it, since it is part of what makes the key unique", name)
		}
	}
	return f, nil
}

// compose joins the escaped fields; it does not check them.
func (op Operation) compose() string {
	return Prefix + ":" + escape(op.Agency) + ":" + escape(op.Booking) + ":" + escape(op.Operation)
}

// escape percent-escapes '%', ':' and every byte outside 0x21..0x7e, so
// that ':' only ever separates fields (booking "a:b" cannot read as two
// fields) and the key stays printable ASCII whatever the ids contain.
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' || c == ':' || c <= 0x20 || c >= 0x7f {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Composite returns the readable deterministic key of op,
// "tb:v1:<agency>:<booking>:<operation>", with each field percent-escaped.
// It fails if a field is empty or the key would not be valid (too long).
func Composite(op Operation) (string, error) {
	if _, err := op.fields(); err != nil {
		return "", err
	}
	key := op.compose()
	if err := Validate(key); err != nil {
		return "", err
	}
	return key, nil
}

// UUIDv5 returns the opaque deterministic key of op: the UUIDv5 of its
// composite form in Namespace. It is 36 characters whatever the fields
// hold. It does not check that the fields are set; UUIDv5Strategy does.
func UUIDv5(op Operation) string {
	return uuid.NewSHA1(Namespace, []byte(op.compose())).String()
}

// RandomSource mints a UUID; uuid.NewRandom is the production source.
// SourceFrom turns a reader into one.
type RandomSource func() (uuid.UUID, error)

// SourceFrom returns a RandomSource that draws version 4 UUIDs from r.
func SourceFrom(r io.Reader) RandomSource {
	return func() (uuid.UUID, error) { return uuid.NewRandomFromReader(r) }
}

// Random returns a version 4 UUID drawn from src: crypto/rand.Reader in
// production, a seeded reader in tests. The key means nothing, so it is
// safe only if stored with the operation before the first send.
func Random(src io.Reader) (string, error) {
	u, err := uuid.NewRandomFromReader(src)
	if err != nil {
		return "", fmt.Errorf("minting a random idempotency key: %w", err)
	}
	return u.String(), nil
}

// Strategy makes the idempotency key of an operation.
type Strategy interface {
	// Name identifies the strategy in reports: "composite", "uuidv5" or
	// "random_uuidv4".
	Name() string
	// Key returns the key for op, or why none can be made.
	Key(op Operation) (string, error)
}

type compositeStrategy struct{}

func (compositeStrategy) Name() string                     { return "composite" }
func (compositeStrategy) Key(op Operation) (string, error) { return Composite(op) }

type uuidv5Strategy struct{}

func (uuidv5Strategy) Name() string { return "uuidv5" }

func (uuidv5Strategy) Key(op Operation) (string, error) {
	if _, err := op.fields(); err != nil {
		return "", err
	}
	return UUIDv5(op), nil
}

// The deterministic strategies: the same operation gets the same key in
// every process, so a retry after a restart is still recognised by Stripe.
var (
	CompositeStrategy Strategy = compositeStrategy{}
	UUIDv5Strategy    Strategy = uuidv5Strategy{}
)

type randomStrategy struct {
	mu  sync.Mutex // a seeded reader is not safe for concurrent use
	src io.Reader
}

// RandomStrategy returns a strategy that mints a new UUIDv4 from src on
// every call, whatever the operation. A caller must store the key with the
// operation before the first send and reuse the stored key on every retry
// (support/keystore does this); calling Key again for a retry mints a new
// key, and a new key is a second charge.
func RandomStrategy(src io.Reader) Strategy { return &randomStrategy{src: src} }

func (*randomStrategy) Name() string { return "random_uuidv4" }

func (s *randomStrategy) Key(Operation) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Random(s.src)
}
