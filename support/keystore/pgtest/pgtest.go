// Package pgtest starts throwaway PostgreSQL clusters for tests: initdb
// into a temporary directory, a postgres server on a free loopback port
// with fsync off, removed again by Stop. Under root (initdb refuses root)
// both run as the user nobody. Where no PostgreSQL binaries exist, the
// testing helpers skip with a message saying how to provide them, unless
// PGTEST_REQUIRE=1 asks them to fail instead (for CI, where a skip would
// hide a missing install).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries means no initdb/postgres pair was found.
var ErrNoBinaries = errors.New("pgtest: no PostgreSQL binaries found (looked in $PG_BIN, /usr/lib/postgresql/*/bin and PATH); install them with `apt-get install postgresql` or set PG_BIN to the directory holding initdb and postgres")

// BinDir returns the directory holding initdb and postgres: $PG_BIN if
// set, else the newest /usr/lib/postgresql/*/bin, else the one on PATH.
func BinDir() (string, error) {
	ok := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if d := os.Getenv("PG_BIN"); d != "" {
		if ok(d) {
			return d, nil
		}
		return "", fmt.Errorf("pgtest: PG_BIN=%s holds no initdb and postgres; point it at PostgreSQL's bin directory", d)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if ok(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && ok(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", ErrNoBinaries
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Cluster is one running throwaway server.
type Cluster struct {
	// Dir holds the data directory, the socket and postgres.log; Stop
	// removes it.
	Dir  string
	Port int

	cmd  *exec.Cmd
	done chan struct{}
	err  error // of cmd.Wait, valid once done is closed

	// external is set when the server was started by someone else (CI's
	// script, through ONECHARGE_PG_URL); Stop then leaves it running.
	external *url.URL
}

// FromEnv returns the server ONECHARGE_PG_URL names (a superuser DSN such
// as postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable), or nil
// when it is unset. .ci/run starts one and sets it, so that CI proves the
// keystore against a server it started itself.
func FromEnv() (*Cluster, error) {
	raw := os.Getenv("ONECHARGE_PG_URL")
	if raw == "" {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("pgtest: ONECHARGE_PG_URL is not a postgres:// URL; unset it to start a throwaway cluster")
	}
	return &Cluster{external: u}, nil
}

// StartCluster runs initdb in a new directory under parent (os.TempDir()
// when empty) and starts postgres on a free 127.0.0.1 port, returning once
// it accepts connections. Call Stop to shut it down and remove everything.
func StartCluster(parent string) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	if parent == "" {
		parent = os.TempDir()
	}
	dir, err := os.MkdirTemp(parent, "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: creating a directory under %s: %w", parent, err)
	}
	c := &Cluster{Dir: dir}
	if err := c.start(bin); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// creds returns who runs initdb and postgres: nobody when we are root.
func creds() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	uid, gid := uint32(65534), uint32(65534)
	if u, err := user.Lookup("nobody"); err == nil {
		if n, err := strconv.Atoi(u.Uid); err == nil {
			uid = uint32(n)
		}
		if n, err := strconv.Atoi(u.Gid); err == nil {
			gid = uint32(n)
		}
	}
	return &syscall.Credential{Uid: uid, Gid: gid}, nil
}

func (c *Cluster) start(bin string) error {
	cred, err := creds()
	if err != nil {
		return err
	}
	if cred != nil {
		if err := os.Chmod(c.Dir, 0o755); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		if err := os.Chown(c.Dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("pgtest: handing %s to uid %d: %w", c.Dir, cred.Uid, err)
		}
		if err := searchable(filepath.Dir(c.Dir)); err != nil {
			return err
		}
	}
	data := filepath.Join(c.Dir, "data")
	logPath := filepath.Join(c.Dir, "postgres.log")
	env := []string{"PATH=" + bin + ":/usr/bin:/bin", "LC_ALL=C", "LANG=C", "TZ=UTC"}

	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Env = env
	initdb.Dir = c.Dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb failed (%v): %s", err, lastLines(string(out), 5))
	}

	var lastErr error
	for try := 0; try < 3; try++ { // a free port can be taken before postgres binds it
		port, err := freePort()
		if err != nil {
			return err
		}
		c.Port = port
		if lastErr = c.serve(bin, data, logPath, env, cred); lastErr == nil {
			return nil
		}
		if !strings.Contains(lastErr.Error(), "could not bind") && !strings.Contains(lastErr.Error(), "could not create") {
			return lastErr
		}
	}
	return lastErr
}

func (c *Cluster) serve(bin, data, logPath string, env []string, cred *syscall.Credential) error {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(c.Port),
		"-h", "127.0.0.1", "-k", c.Dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=64MB")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig: if the test binary dies, so does the server (Go sets it
	// after switching user, so the kernel keeps it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: starting postgres: %w", err)
	}
	c.cmd, c.done = cmd, make(chan struct{})
	go func() { c.err = cmd.Wait(); close(c.done) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, c.DSN("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-c.done:
			log, _ := os.ReadFile(logPath)
			c.cmd = nil
			return fmt.Errorf("pgtest: postgres exited (%v): %s", c.err, lastLines(string(log), 5))
		case <-time.After(50 * time.Millisecond): // polling a real process, not testing time
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("pgtest: postgres did not accept connections on 127.0.0.1:%d within 30s: %s", c.Port, lastLines(string(log), 5))
		}
	}
}

// searchable checks that nobody can reach dir's children: every ancestor
// needs the execute bit for others.
func searchable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("pgtest: %s is not searchable by others, so the server (run as nobody under root) cannot reach its data; pass a parent directory like /tmp", d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// DSN returns a URL for database on the cluster, as the superuser postgres.
func (c *Cluster) DSN(database string) string {
	if c.external != nil {
		u := *c.external
		u.Path = "/" + database
		return u.String()
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable&connect_timeout=5", c.Port, database)
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_]+`)

// CreateDatabase creates a database named after name (lowercased, other
// characters replaced by _) and returns its DSN.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	db := unsafeName.ReplaceAllString(strings.ToLower(name), "_")
	if c.external != nil {
		// A shared server outlives runs: keep names unique across them.
		db = fmt.Sprintf("%s_%d_%d", db, os.Getpid(), time.Now().UnixNano()%1e9)
	}
	if len(db) > 60 {
		db = db[len(db)-60:]
	}
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE DATABASE "`+db+`"`); err != nil {
		return "", fmt.Errorf("pgtest: creating database %s: %w", db, err)
	}
	return c.DSN(db), nil
}

// Stop shuts the server down (fast shutdown, then SIGKILL after 10s) and
// removes the cluster's directory.
func (c *Cluster) Stop() error {
	if c.external != nil {
		return nil
	}
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Signal(syscall.SIGINT) // fast shutdown: disconnects clients
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-c.done
		}
		c.cmd = nil
	}
	if c.Dir == "" {
		return nil
	}
	return os.RemoveAll(c.Dir)
}

// Start starts a cluster for t alone, stops it when t ends, and returns
// the DSN of an empty database. It skips t when there are no binaries.
// Tests that share one cluster should use a Shared from TestMain instead.
func Start(t testing.TB) string {
	t.Helper()
	c, err := FromEnv()
	if c == nil && err == nil {
		c, err = StartCluster("")
	}
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() { c.Stop() })
	dsn, err := c.CreateDatabase(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoBinaries) && os.Getenv("PGTEST_REQUIRE") != "1" {
		t.Skip(err.Error())
	}
	t.Fatal(err)
}

// Shared is one cluster per test binary, started on first use: declare a
// package variable, call Database from tests, and Stop from TestMain after
// m.Run.
type Shared struct {
	mu  sync.Mutex
	c   *Cluster
	err error
	n   int
}

// Cluster returns the shared cluster, starting it on first use.
func (s *Shared) Cluster() (*Cluster, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil && s.err == nil {
		s.c, s.err = FromEnv()
		if s.c == nil && s.err == nil {
			s.c, s.err = StartCluster("")
		}
	}
	return s.c, s.err
}

// Database returns the DSN of a new, empty database for t on the shared
// cluster, skipping t when there are no binaries.
func (s *Shared) Database(t testing.TB) string {
	t.Helper()
	c, err := s.Cluster()
	if err != nil {
		skipOrFail(t, err)
	}
	s.mu.Lock()
	s.n++
	n := s.n
	s.mu.Unlock()
	dsn, err := c.CreateDatabase(context.Background(), fmt.Sprintf("t%d_%s", n, t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// Stop stops the shared cluster if it was started.
func (s *Shared) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil {
		s.c.Stop()
		s.c = nil
	}
}
