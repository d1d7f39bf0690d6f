package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/travelbook/onecharge/support/clock"
	"github.com/travelbook/onecharge/support/idempotency"
	"github.com/travelbook/onecharge/support/stripeapi"
	"github.com/travelbook/onecharge/support/stripemock"
)

// IdempotencyCost is the idempotency layer measured alone.
type IdempotencyCost struct {
	// Command is the go test invocation whose benchmarks are below.
	Command    string      `json:"command"`
	Benchmarks []GoBench   `json:"benchmarks"`
	Skipped    string      `json:"skipped,omitempty"`
	Error      string      `json:"error,omitempty"`
	Memory     MemoryCheck `json:"memory"`
}

// GoBench is one line of `go test -bench -benchmem` output.
type GoBench struct {
	Name        string             `json:"name"`
	Iterations  int64              `json:"iterations"`
	NsPerOp     float64            `json:"ns_per_op"`
	BytesPerOp  float64            `json:"bytes_per_op"`
	AllocsPerOp float64            `json:"allocs_per_op"`
	Metrics     map[string]float64 `json:"metrics,omitempty"` // custom units, such as B/key
}

// MemoryCheck is the heap held by the layer after Keys first requests
// spread evenly over Windows pruning windows on a virtual clock: only
// the last window's keys should stay live.
type MemoryCheck struct {
	Keys      int `json:"keys"`
	Windows   int `json:"windows"`
	LiveKeys  int `json:"live_keys"`
	MaxLive   int `json:"max_live_keys"` // one window's keys, plus one
	BodyBytes int `json:"body_bytes"`    // size of each saved response body
	// HeapInuse is runtime.MemStats.HeapInuse after a GC, less what it
	// was before the layer was made.
	HeapInuse       uint64  `json:"heap_inuse_bytes"`
	BytesPerLiveKey float64 `json:"bytes_per_live_key"`
	// Bound is the heap the check allows: live keys × (BytesPerLiveKey +
	// the body).
	Bound   uint64  `json:"bound_bytes"`
	Seconds float64 `json:"seconds"`
}

func measureIdempotency(ctx context.Context, cfg Config) IdempotencyCost {
	var ic IdempotencyCost
	args := []string{"test", "-run", "^$", "-bench", ".", "-benchmem", "./support/idempotency/"}
	ic.Command = "go " + strings.Join(args, " ")
	switch {
	case cfg.SkipGoBench || cfg.Quick:
		ic.Skipped = "not run in a quick run"
	case cfg.ModuleDir == "":
		ic.Skipped = "the onecharge module root was not found from the working directory; run from the repository"
	default:
		ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = cfg.ModuleDir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		cancel()
		ic.Benchmarks = ParseGoBench(bytes.NewReader(out))
		if err != nil {
			ic.Error = fmt.Sprintf("%s failed (%v): %s", ic.Command, err, strings.TrimSpace(lastLines(stderr.String()+string(out), 5)))
		}
	}
	ic.Memory = checkMemory(cfg.MemoryKeys, cfg.MemoryWindows)
	return ic
}

// ParseGoBench reads benchmark lines such as
//
//	BenchmarkReplay-2   1000000   1234 ns/op   560 B/op   7 allocs/op
//
// and ignores every other line. The -N GOMAXPROCS suffix is dropped.
func ParseGoBench(r io.Reader) []GoBench {
	var out []GoBench
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		iters, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		b := GoBench{Name: name, Iterations: iters}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				b.NsPerOp = v
			case "B/op":
				b.BytesPerOp = v
			case "allocs/op":
				b.AllocsPerOp = v
			default:
				if b.Metrics == nil {
					b.Metrics = map[string]float64{}
				}
				b.Metrics[f[i+1]] = v
			}
		}
		out = append(out, b)
	}
	return out
}

// memBody is a saved answer of the size the idempotency benchmarks use;
// a stripe-mock PaymentIntent is ~1.5 KB and would add that per key.
const memBody = `{"id":"pi_3MtwBwLkdIwHu7ix28a3tqPa","object":"payment_intent","amount":240000,"currency":"eur"}`

// discard is a ResponseWriter that keeps nothing.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }

// checkMemory inserts keys first requests into a layer whose virtual
// clock crosses windows pruning windows on the way, and measures the
// heap it holds at the end.
func checkMemory(keys, windows int) MemoryCheck {
	began := time.Now()
	const window = time.Hour
	m := MemoryCheck{Keys: keys, Windows: windows, BodyBytes: len(memBody)}
	upstream := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, memBody)
	})
	step := time.Duration(int64(windows) * int64(window) / int64(max(keys, 1)))
	m.MaxLive = int(int64(window)/int64(max(step, 1))) + 1

	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)

	vc := clock.NewVirtual(time.Date(2025, 9, 9, 10, 50, 0, 0, time.UTC))
	l := idempotency.New(upstream, idempotency.Config{Clock: vc, Window: window})
	body := []byte(createBody("bk_mem", 240000))
	rd := bytes.NewReader(body)
	r, _ := http.NewRequest(http.MethodPost, "http://stack/v1/payment_intents", nil)
	r.Header.Set("Authorization", "Bearer "+stripemock.TestSecretKey)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := &discard{h: http.Header{}}
	for i := range keys {
		// stripe-go's key shape, <unixnano>_<6 chars>: ~26 bytes.
		r.Header[stripeapi.HeaderIdempotencyKey] = []string{"1757415000000000000_" + strconv.Itoa(100000+i)}
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		clear(w.h)
		l.ServeHTTP(w, r)
		vc.Advance(step)
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	m.LiveKeys = l.Len()
	if after.HeapInuse > before.HeapInuse {
		m.HeapInuse = after.HeapInuse - before.HeapInuse
	}
	if m.LiveKeys > 0 {
		m.BytesPerLiveKey = float64(m.HeapInuse) / float64(m.LiveKeys)
	}
	m.Bound = uint64(m.LiveKeys) * uint64(BytesPerLiveKey+m.BodyBytes)
	runtime.KeepAlive(l)
	m.Seconds = time.Since(began).Seconds()
	return m
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
