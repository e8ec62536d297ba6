// Command install builds the provider into a local plugin directory, as one version, under both registries' host
// names, so that `terraform init` and `tofu init` install bipsync/bipsync from there without asking a registry:
// offline, and before the provider is published. It also puts the same binary in a directory for commands
// ($(go env GOBIN), or $(go env GOPATH)/bin), so that its subcommands (authorize, status, rotate, restore), which the
// docs and the diagnostics name as `terraform-provider-bipsync ...`, can be run by that name; it says where, and
// whether that directory is on PATH.
//
//	go run ./internal/tools/install [-dir DIR] [-version 0.0.1] [-bin-dir DIR | -bin-dir=-]
//
// The default plugin directory is the one both engines search when the CLI configuration has no provider_installation
// block (~/.terraform.d/plugins); with such a block, name the same directory in a filesystem_mirror (README,
// "Installing"). A configuration's .terraform.lock.hcl records the checksum of the build it was initialised with:
// after a new build of the same version, remove the bipsync entry and run init again.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/bipsync/terraform-provider-bipsync/internal/provideraddr"
	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
)

// noBinDir is the -bin-dir value that skips the command directory.
const noBinDir = "-"

func main() {
	dir := flag.String("dir", "", "plugin directory (default: the engines' local plugin directory, ~/.terraform.d/plugins)")
	version := flag.String("version", "0.0.1", "version to install the build as")
	binDir := flag.String("bin-dir", "", "directory for the terraform-provider-bipsync command (default: $(go env GOBIN), "+
		"or $(go env GOPATH)/bin); - to skip it")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := options{pluginDir: *dir, version: *version, binDir: *binDir, build: goBuild, path: os.Getenv("PATH"),
		out: os.Stdout}
	if err := run(ctx, opts); err != nil {
		fmt.Fprintf(os.Stderr, "install: %v\n", err)
		os.Exit(1)
	}
}

// options are the inputs of run; build and path are fields so that a test needs neither a Go build nor its own PATH.
type options struct {
	pluginDir, version, binDir string
	// build writes the provider binary to the path it is given.
	build func(ctx context.Context, dst string) error
	// path is the PATH to look the command directory up in.
	path string
	out  io.Writer
}

func run(ctx context.Context, o options) error {
	if o.pluginDir == "" {
		d, err := tfcli.LocalPluginDir()
		if err != nil {
			return fmt.Errorf("find the local plugin directory (pass -dir): %w", err)
		}
		o.pluginDir = d
	}
	if o.binDir == "" {
		d, err := goBinDir(ctx)
		if err != nil {
			return fmt.Errorf("find the Go command directory (pass -bin-dir, or -bin-dir=- to skip it): %w", err)
		}
		o.binDir = d
	}
	tmp, err := os.MkdirTemp("", "bipsync-install-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, tfcli.ProviderBinary())
	if err := o.build(ctx, bin); err != nil {
		return err
	}
	fmt.Fprintf(o.out, "provider bipsync/bipsync %s, for terraform init and tofu init:\n", o.version)
	for _, host := range []string{tfcli.TerraformRegistry, tfcli.OpenTofuRegistry} {
		dst := tfcli.MirrorBinary(o.pluginDir, host, provideraddr.Source, o.version)
		if err := copyExecutable(bin, dst); err != nil {
			return err
		}
		fmt.Fprintf(o.out, "  %s\n", dst)
	}
	if o.binDir == noBinDir {
		return nil
	}
	dst := filepath.Join(o.binDir, tfcli.ProviderBinary())
	if err := copyExecutable(bin, dst); err != nil {
		return err
	}
	fmt.Fprintf(o.out, "command %s (authorize, status, rotate, restore):\n  %s\n", provideraddr.Binary, dst)
	if onPath(o.binDir, o.path) {
		fmt.Fprintf(o.out, "  %s is on PATH: run it as %s\n", o.binDir, provideraddr.Binary)
	} else {
		fmt.Fprintf(o.out, "  %s is NOT on PATH: run it as %s, or add the directory to PATH:\n"+
			"    export PATH=\"%s%c$PATH\"\n", o.binDir, dst, o.binDir, os.PathListSeparator)
	}
	return nil
}

// goBuild builds the provider in the current directory (the module root, where make runs) to dst.
func goBuild(ctx context.Context, dst string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dst, ".")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	return nil
}

// goBinDir is where `go install` puts commands: GOBIN, or the bin directory of the first GOPATH entry.
func goBinDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != 2 {
		return "", fmt.Errorf("go env GOBIN GOPATH printed %d lines; want 2", len(lines))
	}
	if gobin := strings.TrimSpace(lines[0]); gobin != "" {
		return gobin, nil
	}
	gopath := filepath.SplitList(strings.TrimSpace(lines[1]))
	if len(gopath) == 0 || gopath[0] == "" {
		return "", errors.New("GOPATH is empty")
	}
	return filepath.Join(gopath[0], "bin"), nil
}

// onPath reports whether dir is one of the directories of the PATH list path, compared as cleaned absolute paths.
func onPath(dir, path string) bool {
	want, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			continue
		}
		if abs, err := filepath.Abs(d); err == nil && abs == want {
			return true
		}
	}
	return false
}

// copyExecutable writes src to dst through a temporary file and a rename, so that an engine never runs a half-written
// binary.
func copyExecutable(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(dst), ".install-*")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(0o755); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(out.Name(), dst)
}
