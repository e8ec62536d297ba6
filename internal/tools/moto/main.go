// Command moto makes sure the s3 token store's tests have an S3 protocol server to start, for `make test`:
//
//	go run ./internal/tools/moto [-dry-run]
//
// It looks for moto_server the way the tests' harness does (internal/tokenstore/mototest: PATH, pyenv's shims,
// ~/.local/bin). When there is none and python3 has pip, it installs moto's server with pip (for this user). Otherwise
// it prints a loud SKIP line: the tests skip too. With CI=true that is a failure instead (exit 1), since CI must run
// them. It says which of these it did in one line, and prints pip's output only when that fails.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/mototest"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
)

// Requirement is the moto release the tests are written against.
const Requirement = "moto[server]==5.2.1"

// plan is what the tool does on this machine.
type plan struct {
	// found is the moto_server already there (nothing to do).
	found string
	// install is the command that installs it.
	install []string
	// skip is why there is no server and none can be installed.
	skip string
}

// decide chooses what to do from what Find reported and whether python3 has pip.
func decide(found string, findErr error, havePip bool) plan {
	switch {
	case found != "":
		return plan{found: found}
	case havePip:
		return plan{install: []string{"python3", "-m", "pip", "install", "--user", "--quiet", Requirement}}
	default:
		return plan{skip: fmt.Sprintf("%v, and python3 has no pip to install it with", findErr)}
	}
}

func main() {
	dryRun := flag.Bool("dry-run", false, "print what would be done, without installing anything")
	flag.Parse()
	found, findErr := mototest.Find()
	havePip := exec.Command("python3", "-m", "pip", "--version").Run() == nil
	p := decide(found, findErr, havePip)

	switch {
	case p.found != "":
		fmt.Printf("    moto: found %s\n", p.found)
	case p.skip != "":
		if pgtest.Required() {
			fmt.Printf("FAIL moto: %s; CI=true requires the s3 store's tests to run\n", p.skip)
			os.Exit(1)
		}
		fmt.Printf("SKIP moto: %s; the s3 token store's tests will be skipped\n", p.skip)
	case *dryRun:
		fmt.Printf("    moto: not found; would run: %s\n", strings.Join(p.install, " "))
	default:
		fmt.Printf("    moto: not found; installing %s with pip\n", Requirement)
		var out bytes.Buffer
		cmd := exec.Command(p.install[0], p.install[1:]...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			fmt.Printf("%s\nFAIL moto: %s: %v\n", out.String(), strings.Join(p.install, " "), err)
			os.Exit(1)
		}
		path, err := mototest.Find()
		if err != nil {
			fmt.Printf("FAIL moto: installed %s, but: %v\n", Requirement, err)
			os.Exit(1)
		}
		fmt.Printf("    moto: installed %s\n", path)
	}
}
