package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	inst := &pgtest.Install{BinDir: "/usr/lib/postgresql/15/bin", Version: "15.14"}
	notFound := errors.New("no PostgreSQL server found")
	if p := decide(inst, nil, 0, true); p.found != inst || p.install != nil || p.skip != "" {
		t.Errorf("installed: got %+v; want it found and nothing installed", p)
	}
	p := decide(nil, notFound, 0, true)
	want := [][]string{
		{"apt-get", "update", "-qq"},
		{"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"},
	}
	if !slices.EqualFunc(p.install, want, slices.Equal) || p.skip != "" {
		t.Errorf("missing, as root with apt-get: got %+v; want %q", p, want)
	}
	for name, p := range map[string]plan{
		"not root":   decide(nil, notFound, 1000, true),
		"no apt-get": decide(nil, notFound, 0, false),
	} {
		if p.install != nil || !strings.Contains(p.skip, "no PostgreSQL server found") {
			t.Errorf("%s: got %+v; want a skip that says why", name, p)
		}
	}
}

// The tool as `make test` runs it: on a machine without PostgreSQL and without the right to install it, a loud SKIP
// line and success, or under CI=true a failure.
func TestMain_NoServerNoInstall(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the tool is for Linux and macOS CI machines")
	}
	bin := filepath.Join(t.TempDir(), "postgres-tool")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if os.Geteuid() == 0 {
		// Root could install; only a machine without apt-get and without PostgreSQL reaches the skip, and this one
		// may have PostgreSQL in /usr/lib/postgresql. Check the found path instead.
		if _, err := pgtest.Find(); err != nil {
			t.Skip("SKIP: no PostgreSQL here, and as root the tool would install it")
		}
		out, err := exec.Command(bin).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "postgres: found PostgreSQL") {
			t.Fatalf("got %q, %v; want the installation found", out, err)
		}
		return
	}
	if _, err := pgtest.Find(); err == nil {
		t.Skip("SKIP: PostgreSQL is installed here, so the tool finds it")
	}
	for ci, wantOK := range map[string]bool{"": true, "true": false} {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "CI="+ci)
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Errorf("CI=%q: got %v (%s); want success %t", ci, err, out, wantOK)
		}
		if !strings.Contains(string(out), "postgres: no PostgreSQL server found") {
			t.Errorf("CI=%q: got %q; want a line saying why", ci, out)
		}
	}
}
