package stripemock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// realBinary resolves stripe-mock the way Start does, or skips the test.
func realBinary(t *testing.T) string {
	t.Helper()
	bin, err := Binary(context.Background(), Options{})
	if errors.Is(err, ErrBinaryNotFound) {
		t.Skipf("skipping: no stripe-mock binary: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// gone reports whether pid no longer runs: it does not exist, or it is a
// zombie waiting for a parent (PID 1 in a container may never reap it).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// waitGone polls until pid is gone: the kernel delivers signals
// asynchronously, so there is no event to wait on.
func waitGone(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !gone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d still runs %s later", pid, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-stripe-mock")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStartHealthyStop(t *testing.T) {
	t.Parallel()
	realBinary(t)
	s, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") || strings.HasSuffix(s.URL, ":0") {
		t.Fatalf("URL = %q, want http://127.0.0.1:PORT", s.URL)
	}
	if s.External() {
		t.Fatal("External() = true for a started server")
	}
	if err := Healthy(context.Background(), s.URL); err != nil {
		t.Fatal(err)
	}
	pid := s.PID()
	if pid <= 0 {
		t.Fatalf("PID() = %d", pid)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	// Stop reaps the process, so the pid must be gone at once.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("kill(%d, 0) after Stop = %v, want ESRCH", pid, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := Healthy(context.Background(), s.URL); err == nil {
		t.Fatal("Healthy after Stop = nil")
	}
}

func TestMissingBinaryFailsFast(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-stripe-mock")
	for _, tc := range []struct {
		name string
		opts Options
		env  string
	}{
		{name: "Options.Bin", opts: Options{Bin: missing}},
		{name: "STRIPE_MOCK_BIN", env: missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("STRIPE_MOCK_BIN", tc.env)
			begin := time.Now()
			s, err := Start(context.Background(), tc.opts)
			if err == nil {
				_ = s.Stop()
				t.Fatal("Start with a missing binary succeeded")
			}
			if !errors.Is(err, ErrBinaryNotFound) {
				t.Errorf("error %v does not wrap ErrBinaryNotFound", err)
			}
			for _, want := range []string{"STRIPE_MOCK_BIN", "go tool -n stripe-mock", "STRIPE_MOCK_URL", missing} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if d := time.Since(begin); d > DefaultStartTimeout { // the promise: an error within 10 s, never a hang
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestBrokenBinaryFailsFast(t *testing.T) {
	t.Parallel()
	bin := writeScript(t, "echo 'garbage on stdout'\necho 'fatal: something broke' >&2\nexit 1")
	begin := time.Now()
	s, err := Start(context.Background(), Options{Bin: bin})
	if err == nil {
		_ = s.Stop()
		t.Fatal("Start with a broken binary succeeded")
	}
	for _, want := range []string{"exited before it was ready", "fatal: something broke", "exit status 1", "STRIPE_MOCK_BIN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("took %s, want well under the 10s StartTimeout", d)
	}
}

func TestSilentBinaryTimesOutAndIsKilledWithItsChildren(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	// The grandchild holds the output pipe open: only a process-group kill
	// (and WaitDelay) lets Start return.
	bin := writeScript(t, "echo 'loading forever'\nsleep 30 &\necho $! > "+pidFile+"\nwait")
	begin := time.Now()
	s, err := Start(context.Background(), Options{Bin: bin, StartTimeout: 300 * time.Millisecond})
	if err == nil {
		_ = s.Stop()
		t.Fatal("Start with a binary that never listens succeeded")
	}
	for _, want := range []string{"within 300ms", "loading forever"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, child, 3*time.Second)
}

func TestAddressInUseFailsFast(t *testing.T) {
	t.Parallel()
	realBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	begin := time.Now()
	s, err := Start(context.Background(), Options{Addr: addr})
	if err == nil {
		_ = s.Stop()
		t.Fatal("Start on a busy address succeeded")
	}
	for _, want := range []string{addr, "already in use", "pick another address"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if d := time.Since(begin); d > DefaultStartTimeout {
		t.Errorf("took %s", d)
	}
}

func TestFromEnvUnreachableNamesURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	t.Setenv("STRIPE_MOCK_URL", url)
	begin := time.Now()
	s, err := FromEnv(context.Background(), Options{})
	if err == nil {
		_ = s.Stop()
		t.Fatal("FromEnv with a closed port succeeded")
	}
	for _, want := range []string{"STRIPE_MOCK_URL=" + url, "go tool stripe-mock -http-port 12111"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if d := time.Since(begin); d > DefaultStartTimeout { // the promise: an error within 10 s, never a hang
		t.Errorf("took %s", d)
	}
}

func TestFromEnvUsesRunningServer(t *testing.T) {
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		if r.URL.Path != "/v1/customers" || r.URL.Query().Get("limit") != "1" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"object":"list","data":[]}`))
	}))
	defer srv.Close()
	t.Setenv("STRIPE_MOCK_URL", srv.URL+"/")
	s, err := FromEnv(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !s.External() || s.PID() != 0 || s.URL != srv.URL {
		t.Fatalf("External=%v PID=%d URL=%q, want true 0 %q", s.External(), s.PID(), s.URL, srv.URL)
	}
	if auth != "Bearer "+TestSecretKey {
		t.Errorf("health check sent Authorization %q", auth)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := Healthy(context.Background(), srv.URL); err != nil {
		t.Fatalf("Stop on an external server stopped it: %v", err)
	}
}

func TestHealthyRejectsNon200(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	if err := Healthy(context.Background(), srv.URL); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Healthy = %v, want an error naming 401", err)
	}
}

func TestWatcherFindsAddressAcrossWrites(t *testing.T) {
	w := newWatcher()
	for _, chunk := range []string{"stripe-mock master\nRouting to 419 path(s)\nListening for HT", "TP at address: 127.0.0.1:4", "4545\nerror listening at address: boom"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-w.listening:
	default:
		t.Fatal("listening not signalled")
	}
	if got := w.Addr(); got != "127.0.0.1:44545" {
		t.Fatalf("Addr() = %q", got)
	}
	if got := lastLine(w.Output(), ""); got != "error listening at address: boom" {
		t.Fatalf("last line = %q, want the unterminated fatal error", got)
	}
}

func TestModuleRootFindsOnecharge(t *testing.T) {
	root := moduleRoot()
	if got := modulePathOf(filepath.Join(root, "go.mod")); got != ModulePath {
		t.Fatalf("moduleRoot() = %s, whose go.mod declares %q", root, got)
	}
}

// TestHelperProcess is not a test: TestChildDiesWithParent runs the test
// binary with it as a process that starts stripe-mock, prints its pid and
// waits to be killed.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("STRIPEMOCK_TEST_HELPER") != "1" {
		t.Skip("helper process only")
	}
	s, err := Start(context.Background(), Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("pid", s.PID())
	select {}
}

func TestChildDiesWithParent(t *testing.T) {
	t.Parallel()
	bin := realBinary(t)
	helper := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	helper.Env = append(os.Environ(), "STRIPEMOCK_TEST_HELPER=1", "STRIPE_MOCK_BIN="+bin)
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = helper.Process.Kill(); _ = helper.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper printed nothing: %v", err)
	}
	var child int
	if _, err := fmt.Sscanf(line, "pid %d", &child); err != nil {
		t.Fatalf("helper printed %q", line)
	}
	defer func() { _ = syscall.Kill(child, syscall.SIGKILL) }()
	if gone(child) {
		t.Fatalf("stripe-mock %d is not running while the helper is", child)
	}
	// SIGKILL: the helper gets no chance to call Stop; only Pdeathsig helps.
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	waitGone(t, child, 5*time.Second)
}
