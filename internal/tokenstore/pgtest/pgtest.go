// Package pgtest starts real PostgreSQL servers for tests: Debian's postgresql package (or initdb and postgres on
// PATH), initialised into a temporary directory, listening on 127.0.0.1 at a free port and on a Unix socket directory
// of its own, and stopped and removed at the end. Nothing of the machine's own PostgreSQL clusters is touched.
//
// A test package wires the shared server into its TestMain and then asks for a database of its own per test:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }   // or: code := pgtest.Run(m); ...; os.Exit(code)
//
//	func TestX(t *testing.T) {
//		connStr := pgtest.Start(t) // a new, empty database on the package's shared server
//		...
//	}
//
// Fault tests that stop, crash or restart a server get one of their own with NewServer.
//
// When no PostgreSQL can be found, or it cannot be run (as root without a postgres user), the test is skipped with a
// line "SKIP postgres: <why>" on stderr, and fails instead when CI=true: CI must run these tests.
//
// As root, initdb and postgres run as the postgres user that Debian's package creates (PostgreSQL refuses to run as
// root), with the data directory owned by it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// Superuser is the superuser role of every server this package starts.
	Superuser = "postgres"
	// startTimeout bounds initdb and each start of a server.
	startTimeout = 60 * time.Second
	// stopTimeout bounds a fast shutdown before the server is killed.
	stopTimeout = 30 * time.Second
)

// Server is a PostgreSQL server started by this package.
type Server struct {
	inst     *Install
	base     string // everything lives beneath; removed by remove
	data     string
	sockDir  string
	logPath  string
	password string
	runAs    *runAs // nil: the current user
	port     int

	mu   sync.Mutex
	proc *os.Process
	done chan struct{} // closed when the running postmaster has exited
	dbs  int
}

// runAs is the user the server runs as when the test runs as root.
type runAs struct {
	name     string
	uid, gid uint32
}

// skipError is a reason to skip (no server to be had here), as opposed to a failure of a server that exists.
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

// Is makes errors.Is(err, ErrUnavailable) hold.
func (e *skipError) Is(target error) bool { return target == ErrUnavailable }

// ErrUnavailable marks Launch's error when there is no PostgreSQL to start on this machine (the error says why).
var ErrUnavailable = errors.New("no PostgreSQL server can be started here")

// Launch starts a server outside a test, for programs such as the benchmarks, which stop and remove it with Remove.
func Launch() (*Server, error) { return newServer() }

// Remove stops a server started by Launch and removes its files.
func (s *Server) Remove() { s.remove() }

// unavailable skips the test, loudly, or fails it under CI=true.
func unavailable(t testing.TB, reason string) {
	t.Helper()
	if Required() {
		t.Fatalf("postgres: %s (CI=true: the postgres store's tests must run; install PostgreSQL first, as `make test` does)", reason)
		return // Fatalf ends the test; this keeps a stand-in for it (in this package's tests) from going on to Skip
	}
	skipOnce.Do(func() { fmt.Fprintln(os.Stderr, "SKIP postgres: "+reason) })
	t.Skip("SKIP postgres: " + reason)
}

var skipOnce sync.Once

// NewServer starts a server of the test's own, which the test may stop, crash and restart; it is stopped and
// removed when the test ends. Tests that only need a database use Start.
func NewServer(t testing.TB) *Server {
	t.Helper()
	srv, err := newServer()
	var skip *skipError
	if errors.As(err, &skip) {
		unavailable(t, skip.reason)
	}
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	t.Cleanup(srv.remove)
	return srv
}

// newServer initialises a data directory and starts a server on it.
func newServer() (*Server, error) {
	inst, err := Find()
	if err != nil {
		return nil, &skipError{err.Error()}
	}
	s := &Server{inst: inst, password: randomHex(16)}
	if os.Geteuid() == 0 {
		if runtime.GOOS != "linux" {
			return nil, &skipError{"running as root, and this harness runs the server as another user on Linux only"}
		}
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, &skipError{"running as root and there is no postgres user to run the server as (PostgreSQL refuses to run as root): " + err.Error()}
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("user postgres has IDs %s:%s, which are not numbers", u.Uid, u.Gid)
		}
		s.runAs = &runAs{name: "postgres", uid: uint32(uid), gid: uint32(gid)}
	}
	sweepOnce.Do(func() { sweep(s.tempParent()) })
	if err := s.initdb(); err != nil {
		s.remove()
		return nil, err
	}
	if err := s.start(true); err != nil {
		s.remove()
		return nil, err
	}
	return s, nil
}

var sweepOnce sync.Once

// sweep removes the directories of servers whose test binary died without removing them (a test timeout ends the
// binary without cleanups; its server stops by itself, but its files stay). A directory is removed only when neither
// the process that made it nor its server is alive.
func sweep(parent string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, "bipsync-pgtest-*"))
	for _, d := range dirs {
		owner, err := readPID(filepath.Join(d, "owner"))
		if err != nil || processAlive(owner) {
			continue
		}
		if pm, err := readPID(filepath.Join(d, "data", "postmaster.pid")); err == nil && processAlive(pm) {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

// readPID reads the process ID on the first line of a file.
func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tempParent is where the server's directory goes. As root it must be reachable by the postgres user, which a
// private TMPDIR (or t.TempDir, 0700 and root's) is not.
func (s *Server) tempParent() string {
	dir := os.TempDir()
	if s.runAs == nil {
		return dir
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if d == filepath.Dir(d) {
			return dir
		}
	}
}

func (s *Server) initdb() error {
	base, err := os.MkdirTemp(s.tempParent(), "bipsync-pgtest-")
	if err != nil {
		return err
	}
	s.base = base
	// Whose it is, so that a later run can remove it should this process die before it does (sweep).
	if err := os.WriteFile(filepath.Join(base, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	s.data = filepath.Join(base, "data")
	s.sockDir = filepath.Join(base, "sock")
	s.logPath = filepath.Join(base, "server.log")
	pwfile := filepath.Join(base, "pwfile")
	if err := os.Mkdir(s.sockDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(s.logPath, nil, 0o600); err != nil {
		return err
	}
	if s.runAs != nil {
		for _, p := range []string{base, s.sockDir, pwfile, s.logPath} {
			if err := os.Chown(p, int(s.runAs.uid), int(s.runAs.gid)); err != nil {
				return fmt.Errorf("give %s to the postgres user: %w", p, err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.inst.bin("initdb"),
		"--pgdata="+s.data, "--username="+Superuser, "--pwfile="+pwfile, "--auth=scram-sha-256",
		"--encoding=UTF8", "--no-locale", "--no-sync")
	cmd.Env = s.env()
	cmd.Dir = base
	cmd.SysProcAttr = sysProcAttr(s.runAs, false)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb (%s) failed: %w\n%s", s.inst, err, out)
	}
	return os.Remove(pwfile)
}

// env is the environment of initdb and postgres: nothing of the test's own (PGDATA, PGHOST and the like).
func (s *Server) env() []string {
	return []string{"PATH=" + s.inst.BinDir + ":/usr/bin:/bin", "LC_ALL=C", "TZ=UTC", "HOME=" + s.base}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another process may take it before the
// server binds it; start then tries another.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, fmt.Errorf("listener address %v is not TCP", l.Addr())
	}
	return addr.Port, nil
}

// start starts the postmaster and waits until it accepts connections. With newPort it picks a free port first, and
// another one if that was taken meanwhile; without, it restarts on the port the server had.
func (s *Server) start(newPort bool) error {
	for attempt := 1; ; attempt++ {
		if newPort {
			p, err := freePort()
			if err != nil {
				return err
			}
			s.port = p
		}
		err := s.startOnce()
		if err == nil {
			return nil
		}
		if !newPort || attempt == 5 || !strings.Contains(err.Error(), "could not bind") && !strings.Contains(err.Error(), "already in use") {
			return err
		}
	}
}

func (s *Server) startOnce() error {
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, 2)
	args := []string{
		"-D", s.data, "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + s.sockDir,
		"-c", "max_connections=200",
		"-c", "shared_buffers=16MB",
		// Throw-away data: durability costs time and proves nothing here. A restart (Stop, or Crash's immediate
		// shutdown) still keeps every committed row, since the operating system keeps the files.
		"-c", "fsync=off", "-c", "full_page_writes=off",
	}
	cmd := exec.Command(s.inst.bin("postgres"), args...)
	cmd.Env = s.env()
	cmd.Dir = s.base
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr(s.runAs, true)
	proc, done, err := StartTied(cmd)
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.mu.Lock()
	s.proc, s.done = proc, done
	s.mu.Unlock()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.ConnStr("postgres"))
		if err == nil {
			err = conn.Close(ctx)
			cancel()
			return err
		}
		cancel()
		select {
		case <-done:
			return fmt.Errorf("postgres exited while starting: %s", s.logSince(logStart))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.signal(syscall.SIGKILL)
			return fmt.Errorf("postgres did not accept connections within %s (last error: %w): %s", startTimeout, err, s.logSince(logStart))
		}
	}
}

func (s *Server) logSince(offset int64) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil || int64(len(b)) < offset {
		return "(no log)"
	}
	return strings.TrimSpace(string(b[offset:]))
}

func (s *Server) signal(sig os.Signal) (done chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	_ = s.proc.Signal(sig) // it may have exited already; done tells
	return s.done
}

// stop shuts the server down with sig (SIGINT: fast shutdown; SIGQUIT: immediate, as after a crash) and waits.
func (s *Server) stop(sig os.Signal) {
	done := s.signal(sig)
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(stopTimeout):
		s.signal(syscall.SIGKILL)
		<-done
	}
	s.mu.Lock()
	s.proc, s.done = nil, nil
	s.mu.Unlock()
}

func (s *Server) remove() {
	s.stop(syscall.SIGINT)
	if s.base != "" {
		_ = os.RemoveAll(s.base)
	}
}

// Stop shuts the server down (a fast shutdown: clients are disconnected, sessions and their locks end).
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.stop(syscall.SIGINT)
}

// Crash stops the server the way a crash does: an immediate shutdown, with recovery at the next start.
func (s *Server) Crash(t testing.TB) {
	t.Helper()
	s.stop(syscall.SIGQUIT)
}

// Start starts a stopped server again, on the same port.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if err := s.start(false); err != nil {
		t.Fatalf("postgres: start again: %v", err)
	}
}

// Restart stops the server and starts it again on the same port.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	s.Start(t)
}

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// Password is the superuser's password, so that tests can check it never leaks.
func (s *Server) Password() string { return s.password }

// SocketDir is the server's own Unix socket directory.
func (s *Server) SocketDir() string { return s.sockDir }

// Version is the server's PostgreSQL version.
func (s *Server) Version() string { return s.inst.Version }

// ConnStr is a libpq connection string for database dbname as the superuser, over TCP on 127.0.0.1.
func (s *Server) ConnStr(dbname string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s sslmode=disable connect_timeout=10",
		s.port, Superuser, s.password, dbname)
}

// Exec runs SQL as the superuser in database dbname, failing the test on error.
func (s *Server) Exec(t testing.TB, dbname, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.ConnStr(dbname))
	if err != nil {
		t.Fatalf("postgres: connect to %s: %v", dbname, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("postgres: %s: %v", sql, err)
	}
}

// CreateDatabase creates a new, empty database, dropped when the test ends, and returns its connection string
// (ConnStr).
func (s *Server) CreateDatabase(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	s.dbs++
	name := fmt.Sprintf("t%04d", s.dbs)
	s.mu.Unlock()
	s.Exec(t, "postgres", "CREATE DATABASE "+name)
	t.Cleanup(func() {
		// Best effort: the server may be stopped by then, and it is removed at the end anyway.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, s.ConnStr("postgres")); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = conn.Close(ctx)
		}
	})
	return s.ConnStr(name)
}

// DatabaseName returns the dbname of a connection string this package made.
func DatabaseName(connStr string) string {
	for _, f := range strings.Fields(connStr) {
		if v, ok := strings.CutPrefix(f, "dbname="); ok {
			return v
		}
	}
	return ""
}

// shared is the package run's server that Start hands databases of.
var shared struct {
	sync.Mutex
	wired bool
	srv   *Server
	err   error
}

// Run runs the tests and then stops and removes the shared server, if one was started. Use it in TestMain when it
// does more than run the tests; else Main.
func Run(m *testing.M) int {
	shared.Lock()
	shared.wired = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.srv != nil {
		shared.srv.remove()
		shared.srv = nil
	}
	return code
}

// Main is a whole TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Start returns the connection string of a new, empty database on the test package's shared server, starting the
// server on first use. The database is dropped when the test ends. The package's TestMain must use Run or Main, which
// remove the server at the end.
func Start(t testing.TB) string {
	t.Helper()
	return Shared(t).CreateDatabase(t)
}

// Shared returns the test package's shared server, starting it on first use. Tests must not stop it: NewServer
// gives a test a server of its own for that.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.wired {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Run or pgtest.Main, which remove the shared server at the end")
	}
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = newServer()
	}
	var skip *skipError
	if errors.As(shared.err, &skip) {
		unavailable(t, skip.reason)
	}
	if shared.err != nil {
		t.Fatalf("postgres: %v", shared.err)
	}
	return shared.srv
}

// StartTied starts a test server's process, whose SysProcAttr asks for a signal when the thread that started it ends
// (Pdeathsig, Linux): it is started from a goroutine that keeps its OS thread until the process exits, so a test
// binary that dies without cleaning up takes the server with it. done is closed once the process has exited; the
// reason is in whatever cmd logs to. The moto launcher (mototest) starts its servers the same way.
func StartTied(cmd *exec.Cmd) (proc *os.Process, done chan struct{}, err error) {
	started := make(chan error, 1)
	done = make(chan struct{})
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait() // its exit is observed through done
		close(done)
	}()
	if err := <-started; err != nil {
		return nil, nil, err
	}
	return cmd.Process, done, nil
}
