package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// Install is a PostgreSQL installation found on this machine: the directory holding initdb and postgres.
type Install struct {
	BinDir string
	// Version is what `postgres --version` says, e.g. "15.14".
	Version string
}

func (i *Install) bin(name string) string { return filepath.Join(i.BinDir, name) }

// debianRoot is where Debian's postgresql-NN packages put their binaries (/usr/lib/postgresql/NN/bin), off PATH.
const debianRoot = "/usr/lib/postgresql"

var versionPattern = regexp.MustCompile(`\(PostgreSQL\) ([0-9]+(\.[0-9]+)*)`)

// Find looks for a PostgreSQL server installation: the newest /usr/lib/postgresql/NN/bin (Debian and Ubuntu), then
// initdb and postgres on PATH. The error says where it looked.
func Find() (*Install, error) {
	var dirs []string
	if entries, err := os.ReadDir(debianRoot); err == nil {
		var majors []int
		for _, e := range entries {
			if n, err := strconv.Atoi(e.Name()); err == nil {
				majors = append(majors, n)
			}
		}
		slices.Sort(majors)
		for _, m := range slices.Backward(majors) {
			dirs = append(dirs, filepath.Join(debianRoot, strconv.Itoa(m), "bin"))
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		inst := &Install{BinDir: d}
		if !isExecutable(inst.bin("initdb")) || !isExecutable(inst.bin("postgres")) {
			continue
		}
		out, err := exec.Command(inst.bin("postgres"), "--version").Output()
		if err != nil {
			continue
		}
		m := versionPattern.FindStringSubmatch(string(out))
		if m == nil {
			continue
		}
		inst.Version = m[1]
		return inst, nil
	}
	return nil, errors.New("no PostgreSQL server found (looked for initdb and postgres in " + debianRoot +
		"/*/bin and on PATH); install Debian's postgresql package: apt-get install postgresql")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Required tells whether a missing server must fail rather than skip: CI=true, as .ci/run sets it, or what a TestMain
// passed to RequireIfCI. `make postgres` (internal/tools/postgres) asks it too, so that the tool and the tests agree.
func Required() bool {
	return truthy(os.Getenv("CI")) || requiredByCI.Load()
}

func truthy(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	return v != "" && v != "false" && v != "0"
}

var requiredByCI atomic.Bool

// RequireIfCI makes a missing server fail the tests when ci, the value CI had, says this is a CI run. A TestMain that
// takes CI out of the environment (the provider's does, so that its tests are not taken for runs on a throw-away
// runner) passes on what it was, so that CI still runs the postgres tests or fails.
func RequireIfCI(ci string) { requiredByCI.Store(truthy(ci)) }

// String names the installation for logs.
func (i *Install) String() string { return fmt.Sprintf("PostgreSQL %s in %s", i.Version, i.BinDir) }
