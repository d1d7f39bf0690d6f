package keystore_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/travelbook/onecharge/support/keystore"
)

// The concurrency spec: procs processes × goroutines goroutines reserve
// bookings; each booking is covered by cover processes, and all processes
// walk the bookings in the same order, so the ones covering a booking reach
// it at about the same time.
const (
	procs      = 8
	goroutines = 50
	bookings   = 1000
	cover      = 4
	// raceBookings is the SQLite spec's size under -race, which makes
	// modernc.org/sqlite about six times slower; the full size runs without
	// -race (make test, go test without -race).
	raceBookings = 200
)

// mine lists the bookings process p reserves: those whose index mod procs
// is one of p, p+1, ..., p+cover-1 (mod procs).
func mine(p, bookings int) []int {
	var out []int
	for i := 0; i < bookings; i++ {
		if (i%procs-p+procs)%procs < cover {
			out = append(out, i)
		}
	}
	return out
}

func TestConcurrentReservationsSQLite(t *testing.T) {
	path := t.TempDir() + "/keys.db" // created by the racing processes themselves
	n := bookings
	if raceEnabled {
		n = raceBookings
	}
	runConcurrency(t, "sqlite", path, n, func() keystore.Store {
		s, err := keystore.OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConcurrentReservationsPostgres(t *testing.T) {
	dsn := pg.Database(t) // empty: the racing processes create the schema too
	runConcurrency(t, "postgres", dsn, bookings, func() keystore.Store {
		s, err := keystore.OpenPostgres(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func runConcurrency(t *testing.T, kind, target string, bookings int, open func() keystore.Store) {
	if testing.Short() {
		t.Skip("-short: skipping the multi-process concurrency spec")
	}
	start := time.Now()
	type child struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Scanner
	}
	children := make([]child, procs)
	for p := range children {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), "KEYSTORE_HELPER="+kind, "KEYSTORE_TARGET="+target, "KEYSTORE_PROC="+strconv.Itoa(p), "KEYSTORE_BOOKINGS="+strconv.Itoa(bookings))
		cmd.Stderr = os.Stderr
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		children[p] = child{cmd, stdin, bufio.NewScanner(stdout)}
	}
	// Barrier: every process has opened the store before any reserves.
	for p, c := range children {
		if !c.out.Scan() || c.out.Text() != "ready" {
			t.Fatalf("process %d did not get ready: %q %v", p, c.out.Text(), c.out.Err())
		}
	}
	for _, c := range children {
		io.WriteString(c.stdin, "go\n")
		c.stdin.Close()
	}
	seen := make([]map[string]int, bookings) // booking → key → processes that got it
	for i := range seen {
		seen[i] = map[string]int{}
	}
	created := 0
	for p, c := range children {
		lines := 0
		for c.out.Scan() {
			f := strings.Fields(c.out.Text())
			if len(f) != 3 {
				t.Fatalf("process %d wrote %q", p, c.out.Text())
			}
			i, _ := strconv.Atoi(strings.TrimPrefix(f[0], "booking-"))
			seen[i][f[1]]++
			if f[2] == "created" {
				created++
			}
			lines++
		}
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v", p, err)
		}
		if lines != len(mine(p, bookings)) {
			t.Fatalf("process %d reported %d reservations, want %d", p, lines, len(mine(p, bookings)))
		}
	}
	s := open()
	defer s.Close()
	ctx := context.Background()
	all, err := s.Query(ctx, keystore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != bookings || created != bookings {
		t.Fatalf("%d keys stored and %d reported created, want exactly one per booking (%d)", len(all), created, bookings)
	}
	rows := 0
	for i, keys := range seen {
		if len(keys) != 1 {
			t.Fatalf("booking-%04d got %d different keys: %v", i, len(keys), keys)
		}
		for k, n := range keys {
			got, err := s.Get(ctx, fmt.Sprintf("booking-%04d", i), "charge")
			if err != nil || got.Key != k || n != cover || got.Attempts != cover {
				t.Fatalf("booking-%04d: stored %+v (%v), processes saw %s %d times", i, got, err, k, n)
			}
			a, err := s.Attempts(ctx, k)
			if err != nil || len(a) != cover {
				t.Fatalf("booking-%04d: %d audit rows, want one per process (%d): %v", i, len(a), cover, err)
			}
			rows += len(a)
		}
	}
	t.Logf("%s: %d processes × %d goroutines, %d bookings, %d reservations, %d audit rows, in %v",
		kind, procs, goroutines, bookings, bookings*cover, rows, time.Since(start).Round(time.Millisecond))
}

// TestHelperProcess is a child of runConcurrency, not a test on its own.
func TestHelperProcess(t *testing.T) {
	kind := os.Getenv("KEYSTORE_HELPER")
	if kind == "" {
		t.Skip("runs only as a child of the concurrency spec")
	}
	p, _ := strconv.Atoi(os.Getenv("KEYSTORE_PROC"))
	target := os.Getenv("KEYSTORE_TARGET")
	ctx := context.Background()
	var s keystore.Store
	var err error
	if kind == "sqlite" {
		s, err = keystore.OpenSQLite(target)
	} else {
		s, err = keystore.OpenPostgres(ctx, target)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer s.Close()
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(3)
	}
	n, _ := strconv.Atoi(os.Getenv("KEYSTORE_BOOKINGS"))
	list := mine(p, n)
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	fail := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := g; j < len(list); j += goroutines {
				booking := fmt.Sprintf("booking-%04d", list[j])
				mint := func() (string, error) { return uuid.NewString(), nil }
				k, created, err := s.Reserve(ctx, booking, "charge", mint, time.Now())
				if err == nil {
					var n int
					if n, err = s.BeginAttempt(ctx, k.Key, time.Now()); err == nil {
						err = s.RecordAttempt(ctx, keystore.Attempt{Key: k.Key, N: n, At: time.Now(), Outcome: "proc " + strconv.Itoa(p)})
					}
				}
				if err != nil {
					fail <- err
					return
				}
				word := "found"
				if created {
					word = "created"
				}
				mu.Lock()
				fmt.Fprintf(out, "%s %s %s\n", booking, k.Key, word)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	out.Flush()
	select {
	case err := <-fail:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	default:
	}
	os.Exit(0)
}
