package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func query(t *testing.T, connStr, sql string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connStr)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var s string
	err = conn.QueryRow(ctx, sql).Scan(&s)
	return s, err
}

// Each test gets a database of its own on the shared server, and the server is a real PostgreSQL reached over TCP
// with the superuser's password.
func TestStart_DatabasePerTest(t *testing.T) {
	a, b := Start(t), Start(t)
	if DatabaseName(a) == DatabaseName(b) || DatabaseName(a) == "" {
		t.Fatalf("got databases %q and %q; want two different ones", DatabaseName(a), DatabaseName(b))
	}
	got, err := query(t, a, "SELECT current_database() || ' ' || current_user || ' ' || inet_server_addr()::text")
	if err != nil {
		t.Fatal(err)
	}
	if want := DatabaseName(a) + " " + Superuser + " 127.0.0.1/32"; got != want {
		t.Fatalf("got %q; want %q", got, want)
	}
	srv := Shared(t)
	wrong := strings.Replace(a, srv.Password(), "wrong", 1)
	if _, err := query(t, wrong, "SELECT 'x'"); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("with a wrong password: got %v; want the server to refuse the login", err)
	}
}

// A server of a test's own stops, starts again on its port with its data, survives a crash, and is removed at the end.
func TestNewServer_StopCrashRestart(t *testing.T) {
	var base string
	t.Run("server", func(t *testing.T) {
		srv := NewServer(t)
		base = srv.base
		db := srv.CreateDatabase(t)
		srv.Exec(t, DatabaseName(db), "CREATE TABLE kept (v text)")
		srv.Exec(t, DatabaseName(db), "INSERT INTO kept VALUES ('before')")
		srv.Stop(t)
		if _, err := query(t, db, "SELECT 'x'"); err == nil {
			t.Fatal("a stopped server answered")
		}
		srv.Start(t)
		if got, err := query(t, db, "SELECT v FROM kept"); err != nil || got != "before" {
			t.Fatalf("after a restart: got %q, %v; want the row kept", got, err)
		}
		srv.Exec(t, DatabaseName(db), "UPDATE kept SET v = 'committed'")
		srv.Crash(t)
		srv.Start(t)
		if got, err := query(t, db, "SELECT v FROM kept"); err != nil || got != "committed" {
			t.Fatalf("after a crash: got %q, %v; want the committed row", got, err)
		}
		if fi, err := os.Stat(filepath.Join(srv.SocketDir(), ".s.PGSQL."+strconv.Itoa(srv.Port()))); err != nil || fi.Mode()&os.ModeSocket == 0 {
			t.Fatalf("got %v, %v; want the server's socket in its own directory", fi, err)
		}
	})
	if _, err := os.Stat(base); !os.IsNotExist(err) {
		t.Fatalf("got %v for %s; want the server's directory removed", err, base)
	}
}

// A server directory left by a test binary that died is removed by the next run; one whose owner lives is kept.
func TestSweep(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skipf("SKIP: no true command: %v", err)
	}
	for name, pid := range map[string]int{"bipsync-pgtest-dead": dead.Process.Pid, "bipsync-pgtest-live": os.Getpid()} {
		if err := os.MkdirAll(filepath.Join(parent, name, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(parent, name, "owner"), []byte(strconv.Itoa(pid)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A dead owner whose server still runs (here: this process stands in for it) is kept too.
	if err := os.MkdirAll(filepath.Join(parent, "bipsync-pgtest-serving", "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	for file, pid := range map[string]int{"owner": dead.Process.Pid, "data/postmaster.pid": os.Getpid()} {
		if err := os.WriteFile(filepath.Join(parent, "bipsync-pgtest-serving", file), []byte(strconv.Itoa(pid)+"\n/x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sweep(parent)
	for name, kept := range map[string]bool{"bipsync-pgtest-dead": false, "bipsync-pgtest-live": true, "bipsync-pgtest-serving": true} {
		if _, err := os.Stat(filepath.Join(parent, name)); (err == nil) != kept {
			t.Errorf("%s: got stat error %v; want kept %t", name, err, kept)
		}
	}
}

// recordingTB stands in for a test, recording Skip and Fatal instead of ending it.
type recordingTB struct {
	testing.TB
	skipped, fatal string
}

func (r *recordingTB) Helper()                           {}
func (r *recordingTB) Skip(args ...any)                  { r.skipped = fmt.Sprint(args...) }
func (r *recordingTB) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

// Without PostgreSQL a test skips with a loud SKIP postgres line, and under CI=true fails instead. Not parallel: it
// sets CI.
func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		ci, passedOn string // CI in the environment, and what a TestMain passed to RequireIfCI
		wantFail     bool
	}{
		{"", "", false}, {"false", "", false}, {"true", "", true}, {"1", "", true},
		{"", "true", true}, // a TestMain took CI out of the environment and passed its value on
		{"", "false", false},
	} {
		t.Setenv("CI", tc.ci)
		RequireIfCI(tc.passedOn)
		r := &recordingTB{TB: t}
		unavailable(r, "no PostgreSQL server found")
		RequireIfCI("")
		switch {
		case tc.wantFail && (r.fatal == "" || !strings.Contains(r.fatal, "no PostgreSQL server found") || r.skipped != ""):
			t.Errorf("CI=%q, passed on %q: got fatal %q, skip %q; want a failure that says why", tc.ci, tc.passedOn, r.fatal, r.skipped)
		case !tc.wantFail && (r.skipped != "SKIP postgres: no PostgreSQL server found" || r.fatal != ""):
			t.Errorf("CI=%q, passed on %q: got skip %q, fatal %q; want the SKIP postgres line", tc.ci, tc.passedOn, r.skipped, r.fatal)
		}
	}
}

// Launch starts a server outside a test (for the benchmarks): it answers on 127.0.0.1 with the superuser's password,
// and Remove stops it and removes its files.
func TestLaunch(t *testing.T) {
	srv, err := Launch()
	if errors.Is(err, ErrUnavailable) {
		unavailable(t, err.Error()) // a skip, or a failure under CI=true, as for every other test here
	}
	if err != nil {
		t.Fatal(err)
	}
	base := srv.base
	if got, err := query(t, srv.ConnStr("postgres"), "SELECT current_user"); err != nil || got != Superuser {
		srv.Remove()
		t.Fatalf("got (%q, %v); want the superuser", got, err)
	}
	srv.Remove()
	if _, err := query(t, srv.ConnStr("postgres"), "SELECT 'x'"); err == nil {
		t.Error("the server still answers after Remove")
	}
	if _, err := os.Stat(base); !os.IsNotExist(err) {
		t.Errorf("its directory: got %v; want it removed", err)
	}
}
