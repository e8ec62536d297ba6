// Command install builds the provider into a local plugin directory, as one version, under both registries' host
// names, so that `terraform init` and `tofu init` install bipsync/bipsync from there without asking a registry:
// offline, and before the provider is published.
//
//	go run ./internal/tools/install [-dir DIR] [-version 0.0.1]
//
// The default directory is the one both engines search when the CLI configuration has no provider_installation
// block (~/.terraform.d/plugins); with such a block, name the same directory in a filesystem_mirror (README,
// "From source"). A configuration's .terraform.lock.hcl records the checksum of the build it was initialised
// with: after a new build of the same version, remove the bipsync entry and run init again.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"

	"github.com/bipsync/terraform-provider-bipsync/internal/provideraddr"
	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
)

func main() {
	dir := flag.String("dir", "", "plugin directory (default: the engines' local plugin directory, ~/.terraform.d/plugins)")
	version := flag.String("version", "0.0.1", "version to install the build as")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *dir, *version); err != nil {
		fmt.Fprintf(os.Stderr, "install: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir, version string) error {
	if dir == "" {
		d, err := tfcli.LocalPluginDir()
		if err != nil {
			return fmt.Errorf("find the local plugin directory (pass -dir): %w", err)
		}
		dir = d
	}
	tmp, err := os.MkdirTemp("", "bipsync-install-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, tfcli.ProviderBinary())
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	for _, host := range []string{tfcli.TerraformRegistry, tfcli.OpenTofuRegistry} {
		dst := tfcli.MirrorBinary(dir, host, provideraddr.Source, version)
		if err := copyExecutable(bin, dst); err != nil {
			return err
		}
		fmt.Println(dst)
	}
	return nil
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
