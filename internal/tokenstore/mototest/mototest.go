// Package mototest starts moto_server (https://github.com/getmoto/moto), an S3 protocol server, for tests: one per
// Start, listening on 127.0.0.1 at a free port, working in a temporary directory of its own, and stopped and removed
// when the test ends.
//
//	func TestX(t *testing.T) {
//		endpoint := mototest.Start(t)
//		cmd := exec.Command("aws", "s3api", "create-bucket", "--bucket", "b")
//		cmd.Env = append(os.Environ(), mototest.Env(endpoint)...)
//		...
//	}
//
// When moto_server cannot be found, the test is skipped with a line "SKIP moto: <why>" on stderr, and fails instead
// when CI=true (the same rule pgtest applies to PostgreSQL: pgtest.Required): CI must run these tests.
package mototest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
)

const (
	// Program is the name of moto's server on PATH.
	Program = "moto_server"
	// startTimeout bounds the start of a server: moto is a Python program and takes a few seconds on a busy machine.
	startTimeout = 60 * time.Second
	// stopTimeout bounds the wait for the server to exit after SIGTERM before it is killed.
	stopTimeout = 10 * time.Second
)

// pyenvShims is where pyenv puts moto_server when pip installed it into a pyenv Python that is not on PATH.
var pyenvShims = []string{"/root/.pyenv/shims"}

// Find returns the path of moto_server: on PATH, else in pyenv's shims directory (PYENV_ROOT, ~/.pyenv, /root/.pyenv),
// else in ~/.local/bin, where `pip install --user` puts it.
// The error says where it looked and how to install it.
func Find() (string, error) {
	if p, err := exec.LookPath(Program); err == nil {
		return p, nil
	}
	var dirs []string
	if r := os.Getenv("PYENV_ROOT"); r != "" {
		dirs = append(dirs, filepath.Join(r, "shims"))
	}
	if h, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(h, ".pyenv", "shims"))
	}
	dirs = append(dirs, pyenvShims...)
	if h, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(h, ".local", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, Program)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("no %s found (looked on PATH and in %s); install moto's server: pip install 'moto[server]==5.2.1'",
		Program, strings.Join(dirs, ", "))
}

// Env is the environment the aws CLI and the AWS SDK need to talk to the server at endpoint: dummy credentials (moto
// accepts any), region us-east-1, the endpoint, and no instance metadata lookups (which would wait for a timeout
// off EC2).
func Env(endpoint string) []string {
	return []string{
		"AWS_ACCESS_KEY_ID=mototest-access-key",
		"AWS_SECRET_ACCESS_KEY=mototest-secret-key",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL=" + endpoint,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Start starts a moto_server of the test's own and returns its endpoint, e.g. "http://127.0.0.1:41234". The server
// is stopped and its directory removed when the test ends.
func Start(t testing.TB) (endpoint string) {
	t.Helper()
	return start(t, nil)
}

// StartAuth is Start for a server that checks credentials: it serves the first free requests (to create a bucket, say)
// with any credentials, as Start's does, and from then on refuses every request with InvalidAccessKeyId, since no
// access key is known to it. Tests of wrong credentials use it.
func StartAuth(t testing.TB, free int) (endpoint string) {
	t.Helper()
	return start(t, []string{"INITIAL_NO_AUTH_ACTION_COUNT=" + strconv.Itoa(free)})
}

func start(t testing.TB, env []string) string {
	t.Helper()
	prog, err := Find()
	if err != nil {
		unavailable(t, err.Error())
		return ""
	}
	dir := t.TempDir() // removed after the server stops: cleanups run last first
	s := &server{prog: prog, dir: dir, extraEnv: env}
	t.Cleanup(s.stop)
	if err := s.start(); err != nil {
		t.Fatalf("moto: %v", err)
	}
	return s.endpoint
}

// Server is a moto_server that Launch started for a program (the benchmark) rather than a test.
type Server struct {
	s *server
}

// Endpoint is the server's URL, e.g. "http://127.0.0.1:41234".
func (m *Server) Endpoint() string { return m.s.endpoint }

// Stop stops the server and removes its directory.
func (m *Server) Stop() {
	m.s.stop()
	_ = os.RemoveAll(m.s.dir)
}

// Launch starts a moto_server in a temporary directory of its own, for a program; the caller stops it.
func Launch() (*Server, error) {
	prog, err := Find()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mototest-")
	if err != nil {
		return nil, err
	}
	s := &server{prog: prog, dir: dir}
	if err := s.start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return &Server{s: s}, nil
}

// unavailable skips the test, loudly, or fails it under CI=true.
func unavailable(t testing.TB, reason string) {
	t.Helper()
	if pgtest.Required() {
		t.Fatalf("moto: %s (CI=true: the s3 store's tests must run; install moto first)", reason)
		return
	}
	skipOnce.Do(func() { fmt.Fprintln(os.Stderr, "SKIP moto: "+reason) })
	t.Skip("SKIP moto: " + reason)
}

var skipOnce sync.Once

type server struct {
	prog     string
	dir      string
	extraEnv []string
	endpoint string

	mu   sync.Mutex
	proc *os.Process
	done chan struct{}
}

// start picks a free port and starts the server on it, and tries another port if that one was taken meanwhile.
func (s *server) start() error {
	var err error
	for range 5 {
		var port int
		if port, err = freePort(); err != nil {
			return err
		}
		if err = s.startOnce(port); err == nil {
			return nil
		}
		if !strings.Contains(err.Error(), "in use") {
			return err
		}
	}
	return err
}

// env is the server's environment: the test's own, without AWS settings that could change what moto does, and with
// temporary files in the server's own directory.
func (s *server) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "TMPDIR=") || strings.HasPrefix(kv, "MOTO_") ||
			strings.HasPrefix(kv, "INITIAL_NO_AUTH_ACTION_COUNT=") {
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, "TMPDIR="+s.dir, "PYTHONUNBUFFERED=1"), s.extraEnv...)
}

func (s *server) startOnce(port int) error {
	logPath := filepath.Join(s.dir, "moto.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.prog, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Env = s.env()
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	proc, done, err := pgtest.StartTied(cmd)
	if err != nil {
		return fmt.Errorf("start %s: %w", s.prog, err)
	}
	s.mu.Lock()
	s.proc, s.done = proc, done
	s.mu.Unlock()
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/moto-api/", nil)
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			cancel()
			s.endpoint = endpoint
			return nil
		}
		cancel()
		select {
		case <-done:
			return fmt.Errorf("%s exited while starting: %s", s.prog, readLog(logPath))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("%s did not answer on %s within %s (last error: %w): %s", s.prog, endpoint, startTimeout, err, readLog(logPath))
		}
	}
}

func readLog(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "(no log)"
	}
	return strings.TrimSpace(string(b))
}

// stop ends the server: SIGTERM, then SIGKILL if it has not exited within stopTimeout.
func (s *server) stop() {
	s.mu.Lock()
	proc, done := s.proc, s.done
	s.proc, s.done = nil, nil
	s.mu.Unlock()
	if proc == nil {
		return
	}
	_ = proc.Signal(syscall.SIGTERM) // it may have exited already; done tells
	select {
	case <-done:
	case <-time.After(stopTimeout):
		_ = proc.Kill()
		<-done
	}
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
		return 0, errors.New("listener address is not TCP: " + l.Addr().String())
	}
	return addr.Port, nil
}
