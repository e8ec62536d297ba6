// Command docs regenerates docs/ from the provider schema, templates/ and
// examples/ with tfplugindocs, using OpenTofu only:
//
//	go run ./internal/tools/docs [-validate]
//
// tfplugindocs normally exports the schema itself by running `terraform
// init` against a provider it builds, and it cannot do that with tofu (it
// looks the provider up under the wrong registry). So the schema is exported
// here: the provider is built into a local plugin directory, `tofu init
// -plugin-dir` installs it under registry.terraform.io/hashicorp/bipsync (the
// address tfplugindocs looks for), and `tofu providers schema -json` writes
// the file handed to `tfplugindocs generate --providers-schema`.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/provideraddr"
	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
)

const (
	// tfplugindocs is pinned so that docs/ only changes when the provider,
	// the templates or the examples do.
	tfplugindocs = "github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs@v0.25.0"
)

func main() {
	dir := flag.String("provider-dir", ".", "root of the provider repository")
	tofu := flag.String("tofu", "", "OpenTofu binary (default: the one ./internal/tools/engine provides)")
	validate := flag.Bool("validate", false, "also run `tfplugindocs validate` on the result")
	keep := flag.Bool("keep", false, "keep the working directory for inspection")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *dir, *tofu, *validate, *keep); err != nil {
		fmt.Fprintf(os.Stderr, "docs: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, providerDir, tofu string, validate, keep bool) error {
	start := time.Now()
	root, err := filepath.Abs(providerDir)
	if err != nil {
		return err
	}
	cfg := tfcli.Config{Log: os.Stderr}
	if tofu == "" {
		if tofu, err = tfcli.Tofu(ctx, cfg); err != nil {
			return err
		}
	}
	cacheDir, err := tfcli.DefaultCacheDir(os.Getenv)
	if err != nil {
		return err
	}
	cliConfig, err := tfcli.EmptyCLIConfig(cacheDir)
	if err != nil {
		return err
	}

	work, err := os.MkdirTemp("", "bipsync-docs-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintf(os.Stderr, "working directory: %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}

	// The version only has to match between the plugin directory and the
	// constraint below; it never appears in the docs.
	plugin := tfcli.MirrorBinary(filepath.Join(work, "plugins"), tfcli.TerraformRegistry, "hashicorp/"+provideraddr.Name, "0.0.1")
	fmt.Fprintln(os.Stderr, "building the provider")
	if err := command(ctx, root, os.Environ(), nil, "go", "build", "-o", plugin, "."); err != nil {
		return err
	}

	mainTF := `terraform {
  required_providers {
    ` + provideraddr.Name + ` = {
      source  = "registry.terraform.io/hashicorp/` + provideraddr.Name + `"
      version = "0.0.1"
    }
  }
}
`
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(mainTF), 0o644); err != nil {
		return err
	}

	env := tfcli.EngineEnv(os.Environ(), cliConfig)
	fmt.Fprintln(os.Stderr, "exporting the provider schema with", tofu)
	// init's advice about lock files is noise here; it is shown only if
	// init fails.
	var initOut bytes.Buffer
	if err := commandCombined(ctx, work, env, &initOut, tofu, "init", "-input=false", "-no-color", "-plugin-dir="+filepath.Join(work, "plugins")); err != nil {
		os.Stderr.Write(initOut.Bytes())
		return err
	}
	var schema bytes.Buffer
	if err := command(ctx, work, env, &schema, tofu, "providers", "schema", "-json"); err != nil {
		return err
	}
	schemaFile := filepath.Join(work, "schema.json")
	if err := os.WriteFile(schemaFile, schema.Bytes(), 0o644); err != nil {
		return err
	}

	fmt.Fprintln(os.Stderr, "running", tfplugindocs)
	args := []string{"run", tfplugindocs, "generate",
		"--provider-dir", root,
		"--provider-name", provideraddr.Name,
		"--providers-schema", schemaFile,
	}
	if err := command(ctx, root, os.Environ(), nil, "go", args...); err != nil {
		return err
	}
	if validate {
		args := []string{"run", tfplugindocs, "validate",
			"--provider-dir", root,
			"--provider-name", provideraddr.Name,
			"--providers-schema", schemaFile,
		}
		// validate logs every file it looks at; that is worth reading only
		// when it fails.
		var out bytes.Buffer
		if err := commandCombined(ctx, root, os.Environ(), &out, "go", args...); err != nil {
			os.Stderr.Write(out.Bytes())
			return err
		}
		fmt.Fprintln(os.Stderr, "tfplugindocs validate: ok")
	}
	fmt.Fprintf(os.Stderr, "docs generated in %s\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// command runs name with args in dir. Its stdout goes to stdout if given,
// else to our stderr, which also receives its stderr: stdout of this
// program stays free for callers.
func command(ctx context.Context, dir string, env []string, stdout *bytes.Buffer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stderr = os.Stderr
	cmd.Stdout = os.Stderr
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", filepath.Base(name), strings.Join(args, " "), err)
	}
	return nil
}

// commandCombined runs name with args in dir and collects its stdout and
// stderr in out.
func commandCombined(ctx context.Context, dir string, env []string, out *bytes.Buffer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", filepath.Base(name), strings.Join(args, " "), err)
	}
	return nil
}
