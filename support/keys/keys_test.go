package keys

import (
	"bytes"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/uuid"
)

var sample = Operation{Agency: "ag_42", Booking: "bk_1001", Operation: "create_payment"}

func TestNamespaceIsItsDocumentedDerivation(t *testing.T) {
	want := uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/travelbook/onecharge/idempotency-keys/v1"))
	if Namespace != want {
		t.Fatalf("Namespace = %s, its doc comment derives %s", Namespace, want)
	}
}

// TestKeysArePinned fails if the key format changes: a changed format
// means a retry after a deploy sends a new key and charges again.
func TestKeysArePinned(t *testing.T) {
	c, err := Composite(sample)
	if err != nil || c != "tb:v1:ag_42:bk_1001:create_payment" {
		t.Fatalf("Composite = %q, %v", c, err)
	}
	u := UUIDv5(sample)
	if u != uuid.NewSHA1(Namespace, []byte(c)).String() {
		t.Fatalf("UUIDv5 = %q, not the UUIDv5 of %q", u, c)
	}
	if parsed := uuid.MustParse(u); parsed.Version() != 5 || len(u) != 36 {
		t.Fatalf("UUIDv5 = %q is not a version 5 UUID", u)
	}
}

func TestDeterministicStrategiesAreStable(t *testing.T) {
	for _, s := range []Strategy{CompositeStrategy, UUIDv5Strategy} {
		a, err1 := s.Key(sample)
		b, err2 := s.Key(Operation{Agency: "ag_42", Booking: "bk_1001", Operation: "create_payment"})
		if err1 != nil || err2 != nil || a != b {
			t.Errorf("%s: %q (%v) then %q (%v) for the same operation", s.Name(), a, err1, b, err2)
		}
		if err := Validate(a); err != nil {
			t.Errorf("%s made an invalid key %q: %v", s.Name(), a, err)
		}
	}
}

// childEnv makes the test binary print keys instead of running tests.
const childEnv = "ONECHARGE_KEYS_CHILD"

func stableOps() []Operation {
	return []Operation{
		sample,
		{Agency: "ag:1", Booking: "bk 2%", Operation: "refund"},
		{Agency: "agence-é", Booking: "bk_3", Operation: "create_payment"},
	}
}

func printKeys(w *bytes.Buffer) {
	for _, op := range stableOps() {
		c, err := Composite(op)
		fmt.Fprintf(w, "%s %v %s\n", c, err, UUIDv5(op))
	}
}

func TestHelperProcess(t *testing.T) {
	if os.Getenv(childEnv) != "1" {
		t.Skip("only runs as the child of TestStableAcrossProcesses")
	}
	var b bytes.Buffer
	printKeys(&b)
	fmt.Print("KEYS\n" + b.String())
	os.Exit(0)
}

func TestStableAcrossProcesses(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child process: %v\n%s", err, out)
	}
	_, got, ok := strings.Cut(string(out), "KEYS\n")
	if !ok {
		t.Fatalf("child printed no keys:\n%s", out)
	}
	var want bytes.Buffer
	printKeys(&want)
	if got != want.String() {
		t.Fatalf("another process derived other keys:\n got %q\nwant %q", got, want.String())
	}
}

func TestDistinctOperationsGetDistinctKeys(t *testing.T) {
	seen := map[string]Operation{}
	for _, s := range []Strategy{CompositeStrategy, UUIDv5Strategy, RandomStrategy(rand.Reader)} {
		clear(seen)
		for i := range 10000 {
			op := Operation{Agency: fmt.Sprintf("ag_%d", i%7), Booking: fmt.Sprintf("bk_%d", i), Operation: []string{"create_payment", "refund"}[i%2]}
			k, err := s.Key(op)
			if err != nil {
				t.Fatalf("%s: %v", s.Name(), err)
			}
			if prev, dup := seen[k]; dup {
				t.Fatalf("%s: %+v and %+v share key %q", s.Name(), prev, op, k)
			}
			seen[k] = op
		}
	}
}

// TestEscapingPreventsCollisions covers fields whose plain join would be
// the same string: "a:b" + "c" and "a" + "b:c".
func TestEscapingPreventsCollisions(t *testing.T) {
	pairs := [][2]Operation{
		{{"a:b", "c", "pay"}, {"a", "b:c", "pay"}},
		{{"a", "b:c", "pay"}, {"a", "b", "c:pay"}},
		{{"a%3Ab", "c", "pay"}, {"a:b", "c", "pay"}},
		{{"a b", "c", "pay"}, {"a%20b", "c", "pay"}},
	}
	for _, p := range pairs {
		k1, err1 := Composite(p[0])
		k2, err2 := Composite(p[1])
		if err1 != nil || err2 != nil {
			t.Fatalf("%v %v", err1, err2)
		}
		if k1 == k2 || UUIDv5(p[0]) == UUIDv5(p[1]) {
			t.Errorf("%+v and %+v collide: %q", p[0], p[1], k1)
		}
		if strings.Count(k1, ":") != 4 || strings.Count(k2, ":") != 4 {
			t.Errorf("a field's ':' was not escaped: %q, %q", k1, k2)
		}
	}
	k, _ := Composite(Operation{"agence-é", "bk\n1", "pay"})
	if k != "tb:v1:agence-%C3%A9:bk%0A1:pay" {
		t.Errorf("non-ASCII and control bytes: got %q", k)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name, key string
		ok        bool
		mention   string
	}{
		{"255 characters", strings.Repeat("k", 255), true, ""},
		{"256 characters", strings.Repeat("k", 256), false, "256"},
		{"empty", "", false, "empty"},
		{"non-ASCII", "tb:v1:agence-é", false, "0xc3"},
		{"newline", "tb:v1\n", false, "0x0a"},
		{"NUL", "tb\x00v1", false, "0x00"},
		{"DEL", "tb\x7f", false, "0x7f"},
		{"inner space", "tb v1", true, ""},
		{"leading space", " tb", false, "space"},
		{"trailing space", "tb ", false, "space"},
		{"all printable", "!~ 0aZ_-:%", true, ""},
	}
	for _, c := range cases {
		err := Validate(c.key)
		if (err == nil) != c.ok {
			t.Errorf("%s: Validate = %v, want ok=%v", c.name, err, c.ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%s: %q does not say %q", c.name, err, c.mention)
		}
	}
}

func TestCompositeRejectsBadOperations(t *testing.T) {
	for _, op := range []Operation{
		{"", "bk", "pay"}, {"ag", "", "pay"}, {"ag", "bk", ""},
		{"ag", strings.Repeat("b", 250), "pay"},
	} {
		if k, err := Composite(op); err == nil {
			t.Errorf("Composite(%+v) = %q, want an error", op, k)
		}
	}
	if _, err := UUIDv5Strategy.Key(Operation{Agency: "ag", Operation: "pay"}); err == nil || !strings.Contains(err.Error(), "booking") {
		t.Errorf("UUIDv5Strategy accepted an empty booking: %v", err)
	}
	long := Operation{"ag", strings.Repeat("b", 250), "pay"}
	if k, err := UUIDv5Strategy.Key(long); err != nil || len(k) != 36 {
		t.Errorf("UUIDv5 of a long booking id: %q, %v", k, err)
	}
}

func seeded(seed uint64) *mrand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	return mrand.NewChaCha8(s)
}

func TestSeededRandomIsReproducible(t *testing.T) {
	draw := func(seed uint64) []string {
		s := RandomStrategy(seeded(seed))
		var out []string
		for range 5 {
			k, err := s.Key(sample)
			if err != nil {
				t.Fatal(err)
			}
			if uuid.MustParse(k).Version() != 4 {
				t.Fatalf("%q is not a version 4 UUID", k)
			}
			out = append(out, k)
		}
		return out
	}
	a, b, c := draw(7), draw(7), draw(8)
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatalf("seed 7 gave %v then %v", a, b)
	}
	if a[0] == a[1] {
		t.Fatalf("two draws gave the same key %q: the same operation must get a new key each call", a[0])
	}
	if a[0] == c[0] {
		t.Fatalf("seeds 7 and 8 gave the same key %q", a[0])
	}
	k, err := Random(seeded(7))
	if err != nil || k != a[0] {
		t.Fatalf("Random(seed 7) = %q, %v; RandomStrategy gave %q", k, err, a[0])
	}
	u, err := SourceFrom(seeded(7))()
	if err != nil || u.String() != a[0] {
		t.Fatalf("SourceFrom(seed 7) = %v, %v", u, err)
	}
}

func TestRandomReportsAnExhaustedSource(t *testing.T) {
	if _, err := Random(strings.NewReader("short")); err == nil {
		t.Fatal("Random accepted a source with 5 bytes")
	}
}
