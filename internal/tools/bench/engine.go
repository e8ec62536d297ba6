package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
)

// engine is the Terraform or OpenTofu binary the benchmark drives.
type engine struct {
	name    string // "OpenTofu" or "Terraform"
	bin     string
	version string
	verbose io.Writer // receives every engine's output when not nil
}

// findEngine returns OpenTofu (kind "tofu", built into the cache on first use) or a terraform >= 1.11 on PATH.
func findEngine(ctx context.Context, kind string, log io.Writer) (*engine, error) {
	cfg := tfcli.Config{Log: log}
	var (
		bin string
		err error
	)
	switch kind {
	case "tofu":
		bin, err = tfcli.Tofu(ctx, cfg)
	case "terraform":
		bin, err = tfcli.Terraform(ctx, cfg)
	default:
		return nil, fmt.Errorf("unknown engine %q: want tofu or terraform", kind)
	}
	if err != nil {
		return nil, err
	}
	id, err := tfcli.Identify(ctx, cfg, bin)
	if err != nil {
		return nil, err
	}
	return &engine{name: id.Name(), bin: bin, version: id.Version}, nil
}

// workspace is one engine working directory with its own state, token store and CLI configuration.
type workspace struct {
	dir string
	env []string
}

// newWorkspace creates dir with the configuration main.tf and the seeds (when any) in a variables file that only
// the owner can read.
func newWorkspace(dir, mainTF string, seeds []string, env []string) (*workspace, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(mainTF), 0o600); err != nil {
		return nil, err
	}
	if seeds != nil {
		b, err := json.Marshal(map[string][]string{"seeds": seeds})
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, seedsFile), b, 0o600); err != nil {
			return nil, err
		}
	}
	return &workspace{dir: dir, env: env}, nil
}

// seedsFile holds the seeds variable. It is named on the command line of plan and apply: ephemeral variables are
// not kept in a saved plan, so the apply of a plan needs them again.
const seedsFile = "seeds.tfvars.json"

func (w *workspace) hasSeeds() bool {
	_, err := os.Stat(filepath.Join(w.dir, seedsFile))
	return err == nil
}

// timing is what one engine command cost.
type timing struct {
	wall time.Duration
	// cpu is user plus system time of the engine and every provider process it started and waited for.
	cpu time.Duration
}

// run runs the engine's subcommand sub in w; rest (flags, then a plan file) comes after the common flags. The
// output is kept, and shown only when the run fails.
func (e *engine) run(ctx context.Context, w *workspace, sub string, rest ...string) (timing, error) {
	args := []string{sub, "-input=false", "-no-color", "-compact-warnings"}
	if w.hasSeeds() {
		args = append(args, "-var-file="+seedsFile)
	}
	args = append(args, rest...)
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Dir = w.dir
	cmd.Env = w.env
	// On interrupt, let the engine stop its provider processes and release the state lock, as Ctrl-C would.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if e.verbose != nil {
		cmd.Stdout = io.MultiWriter(&out, e.verbose)
		cmd.Stderr = cmd.Stdout
	}
	start := time.Now()
	err := cmd.Run()
	t := timing{wall: time.Since(start)}
	if cmd.ProcessState != nil {
		t.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return t, fmt.Errorf("%s %s in %s: %w\n%s", filepath.Base(e.bin), sub, w.dir, err, tail(out.String(), 40))
	}
	return t, nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"[...]"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
