// Command postgres makes sure the postgres token store's tests have a PostgreSQL server to start, for `make test`:
//
//	go run ./internal/tools/postgres [-dry-run]
//
// It looks for one the way the tests' harness does (internal/tokenstore/pgtest: /usr/lib/postgresql/NN/bin, then
// PATH). When there is none and it runs as root with apt-get, it installs Debian's postgresql package. Otherwise it
// prints a loud SKIP line: the tests skip too. With CI=true that is a failure instead (exit 1), since CI must run them.
// It says which of these it did in one line, and prints apt-get's output only when that fails.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
)

// plan is what the tool does on this machine.
type plan struct {
	// found is the installation already there (nothing to do).
	found *pgtest.Install
	// install is the commands that install one, each an environment-prefixed argv.
	install [][]string
	// skip is why there is no server and none can be installed.
	skip string
}

// installCommands install Debian's PostgreSQL (15 on Debian 12) without questions.
var installCommands = [][]string{
	{"apt-get", "update", "-qq"},
	{"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"},
}

// decide chooses what to do from what Find reported, the effective user ID and whether apt-get is on PATH.
func decide(found *pgtest.Install, findErr error, euid int, haveAptGet bool) plan {
	switch {
	case found != nil:
		return plan{found: found}
	case euid == 0 && haveAptGet:
		return plan{install: installCommands}
	case euid != 0:
		return plan{skip: fmt.Sprintf("%v, and not running as root, so it cannot be installed here", findErr)}
	default:
		return plan{skip: fmt.Sprintf("%v, and there is no apt-get to install it with", findErr)}
	}
}

func main() {
	dryRun := flag.Bool("dry-run", false, "print what would be done, without installing anything")
	flag.Parse()
	found, findErr := pgtest.Find()
	_, aptErr := exec.LookPath("apt-get")
	p := decide(found, findErr, os.Geteuid(), aptErr == nil)

	switch {
	case p.found != nil:
		fmt.Printf("    postgres: found %s\n", p.found)
	case p.skip != "":
		if pgtest.Required() {
			fmt.Printf("FAIL postgres: %s; CI=true requires the postgres store's tests to run\n", p.skip)
			os.Exit(1)
		}
		fmt.Printf("SKIP postgres: %s; the postgres token store's tests will be skipped\n", p.skip)
	case *dryRun:
		fmt.Println("    postgres: not found; would install Debian's postgresql package:")
		for _, argv := range p.install {
			fmt.Printf("      %s\n", strings.Join(argv, " "))
		}
	default:
		fmt.Println("    postgres: not found; installing Debian's postgresql package with apt-get")
		for _, argv := range p.install {
			var out bytes.Buffer
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				fmt.Printf("%s\nFAIL postgres: %s: %v\n", out.String(), strings.Join(argv, " "), err)
				os.Exit(1)
			}
		}
		inst, err := pgtest.Find()
		if err != nil {
			fmt.Printf("FAIL postgres: installed Debian's postgresql package, but: %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("    postgres: installed %s\n", inst)
	}
}
