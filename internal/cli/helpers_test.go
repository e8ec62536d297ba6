package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
)

const (
	pubClient   = "cli-pub"
	confClient  = "cli-conf"
	confSecret  = "sec-conf-0123456789"
	envChildArg = "BIPSYNC_CLI_TEST_CHILD_ARGS"
)

// TestMain clears the BIPSYNC_* settings a developer may have exported (the commands fall back to them), and lets the
// test binary act as the provider binary running a subcommand, for tests that need a second process. It removes the
// PostgreSQL server the postgres store's tests share at the end.
func TestMain(m *testing.M) {
	if raw := os.Getenv(envChildArg); raw != "" {
		var args []string
		if err := json.Unmarshal([]byte(raw), &args); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(ExitFailure)
		}
		os.Exit(Run(context.Background(), args, IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, Options{}))
	}
	// PG*: libpq's variables, which the postgres store reads; a developer's PGHOST must not decide where tests go. AWS_*:
	// the s3 store's, which get moto's dummy credentials instead (each test names its server with flags).
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "BIPSYNC_") || strings.HasPrefix(name, "PG") ||
			strings.HasPrefix(name, "AWS_") {
			os.Unsetenv(name)
		}
	}
	setS3TestEnv()
	pgtest.Main(m) // runs the tests, then removes the PostgreSQL server the postgres store's tests share
}

// fixture is a fake Bipsync on the wall clock (x/oauth2 polls on it) with a 1 s device interval, a public and a
// confidential client, and a scratch directory.
type fixture struct {
	t   *testing.T
	srv *bipsynctest.Server
	url string
	dir string
	// pgConnStr is the fixture's database for the postgres store, made on first use.
	pgConnStr string
	// s3Flags name the fixture's bucket for the s3 store, made on first use.
	s3Flags []string
}

func newFixture(t *testing.T, opts bipsynctest.Options) *fixture {
	t.Helper()
	if opts.DeviceInterval == 0 {
		opts.DeviceInterval = time.Second
	}
	opts.DeviceIntervalVisible = true
	srv := bipsynctest.NewServer(opts)
	srv.AddPublicClient(pubClient)
	srv.AddClient(confClient, confSecret)
	url := srv.Start()
	t.Cleanup(srv.Close)
	return &fixture{t: t, srv: srv, url: url, dir: t.TempDir()}
}

// result is what a command run left.
type result struct {
	code           int
	stdout, stderr string
}

// run runs the command line args with the fixture's endpoint and stdin as standard input.
func (f *fixture) run(ctx context.Context, stdin string, opts Options, args ...string) result {
	f.t.Helper()
	var stdout, stderr bytes.Buffer
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	code := Run(ctx, args, IO{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr}, opts)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// authorize runs authorize with args, with nothing on standard input.
func (f *fixture) authorize(ctx context.Context, opts Options, args ...string) result {
	f.t.Helper()
	return f.run(ctx, "", opts, append([]string{"authorize"}, args...)...)
}

// endpoint returns the flags that name the fake and a client.
func (f *fixture) endpoint(clientID string) []string {
	args := []string{"-base-url", f.url, "-client-id", clientID}
	if clientID == confClient {
		args = append(args, "-client-secret-file", f.secretFile())
	}
	return args
}

func (f *fixture) secretFile() string {
	path := f.dir + "/client-secret"
	if _, err := os.Stat(path); err != nil {
		if err := os.WriteFile(path, []byte(confSecret+"\n"), 0o600); err != nil {
			f.t.Fatal(err)
		}
	}
	return path
}

// person plays the person on the verification page: it waits for a device code and then calls decide with its user
// code. It stops with ctx.
func (f *fixture) person(ctx context.Context, decide func(userCode string)) {
	go func() {
		for {
			if codes := f.srv.PendingUserCodes(); len(codes) > 0 {
				decide(codes[0])
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
}

// approve approves the first device code that appears.
func (f *fixture) approve(ctx context.Context) {
	f.person(ctx, func(uc string) {
		if err := f.srv.ApproveDevice(uc); err != nil {
			f.t.Errorf("approve %s: %v", uc, err)
		}
	})
}

// noSecrets fails when any token the fake issued, any device or authorization code, any verifier or the client
// secret appears in texts.
func (f *fixture) noSecrets(what string, texts ...string) {
	f.t.Helper()
	secrets := append(f.srv.SeenSecrets(), confSecret)
	for _, text := range texts {
		for _, s := range secrets {
			// The whole secret, or its last 24 characters: the random part of every token, code and verifier (a JWT
			// starts with a header all tokens share).
			tail := s[max(0, len(s)-24):]
			if s != "" && (strings.Contains(text, s) || strings.Contains(text, tail)) {
				f.t.Errorf("%s holds a secret (...%.8s):\n%s", what, tail, text)
			}
		}
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("listener address %v is not TCP", l.Addr())
	}
	return addr.Port
}

// child starts the test binary as the provider binary running args, with env added and stdin.
func child(t *testing.T, stdin string, env []string, args ...string) *childProc {
	t.Helper()
	raw, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envChildArg+"="+string(raw)), env...)
	cmd.Stdin = strings.NewReader(stdin)
	p := &childProc{cmd: cmd}
	cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

type childProc struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
}

// wait returns the child's exit status.
func (p *childProc) wait() int {
	err := p.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ io.Writer = (*syncBuffer)(nil)
