package stripemock

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ModulePath is the module whose go.mod pins stripe-mock with a `tool` line.
const ModulePath = "github.com/travelbook/onecharge"

// ErrBinaryNotFound is wrapped by every error that means no stripe-mock
// binary could be found or built, so tests can skip rather than fail.
var ErrBinaryNotFound = errors.New("stripe-mock binary not found")

// buildTimeout bounds `go tool -n stripe-mock`, which compiles stripe-mock on
// a cold machine (about 30 s); it is separate from Options.StartTimeout,
// which only bounds starting a binary that already exists.
const buildTimeout = 5 * time.Minute

// buildNotice is how long `go tool -n` may run before we tell the user that
// it is probably compiling; a warm build cache answers well within it.
const buildNotice = time.Second

// resolved caches what `go tool -n stripe-mock` printed, per module root, so
// a suite that starts many servers asks the go command once.
var resolved struct {
	mu    sync.Mutex
	paths map[string]string
}

// notFound builds the one-sentence error for a binary that cannot be found.
func notFound(what string) error {
	return fmt.Errorf("%w: %s; run `go tool -n stripe-mock` from the onecharge repo to build it, or set STRIPE_MOCK_BIN to its path, or STRIPE_MOCK_URL to a running stripe-mock",
		ErrBinaryNotFound, what)
}

// Binary returns the stripe-mock executable Start would run: opts.Bin, else
// $STRIPE_MOCK_BIN, else the path `go tool -n stripe-mock` prints in the
// module root (building it first if the build cache is cold).
func Binary(ctx context.Context, opts Options) (string, error) {
	if opts.Bin != "" {
		return lookPath(opts.Bin, "Options.Bin")
	}
	if env := os.Getenv("STRIPE_MOCK_BIN"); env != "" {
		return lookPath(env, "STRIPE_MOCK_BIN")
	}
	return goTool(ctx, opts.Log)
}

func lookPath(bin, source string) (string, error) {
	p, err := exec.LookPath(bin)
	if err != nil {
		return "", notFound(fmt.Sprintf("%s=%s is not an executable (%v)", source, bin, unwrapExec(err)))
	}
	return p, nil
}

// unwrapExec drops exec.Error's repetition of the file name.
func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

func goTool(ctx context.Context, log io.Writer) (string, error) {
	root := moduleRoot()
	resolved.mu.Lock()
	defer resolved.mu.Unlock()
	if p, ok := resolved.paths[root]; ok {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", notFound("the go command is not on PATH")
	}
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "tool", "-n", "stripe-mock")
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if log != nil {
		notice := time.AfterFunc(buildNotice, func() {
			fmt.Fprintln(log, "onecharge: building stripe-mock (first run only)...")
		})
		defer notice.Stop()
	}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", notFound(fmt.Sprintf("`go tool -n stripe-mock` in %s did not finish within %s", root, buildTimeout))
		}
		return "", notFound(fmt.Sprintf("`go tool -n stripe-mock` in %s failed: %s", root, lastLine(stderr.String(), err.Error())))
	}
	p := strings.TrimSpace(stdout.String())
	if _, err := os.Stat(p); p == "" || err != nil {
		return "", notFound(fmt.Sprintf("`go tool -n stripe-mock` in %s printed %q, which is not a file", root, p))
	}
	if resolved.paths == nil {
		resolved.paths = map[string]string{}
	}
	resolved.paths[root] = p
	return p, nil
}

// moduleRoot walks up from the working directory to the go.mod that
// declares ModulePath, so the go command sees the `tool` line that pins
// stripe-mock; it falls back to the working directory.
func moduleRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for dir := wd; ; {
		if modulePathOf(filepath.Join(dir, "go.mod")) == ModulePath {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return wd
		}
		dir = parent
	}
}

// modulePathOf returns the module path a go.mod declares, or "".
func modulePathOf(gomod string) string {
	f, err := os.Open(gomod)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// lastLine returns the last non-blank line of s, or fallback.
func lastLine(s, fallback string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return fallback
}
