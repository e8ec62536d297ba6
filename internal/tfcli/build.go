package tfcli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// tofuLDFlags makes the binary report a release version ("1.12.6") instead
// of a development build ("1.12.6-dev").
const tofuLDFlags = "-X 'github.com/opentofu/opentofu/version.dev=no'"

// BuildTofu compiles OpenTofu TofuVersion to dst from the module source
// served by the Go module proxy. `go install module@version` refuses the
// module because its go.mod has a replace directive, so the source is copied
// out of the module cache and built as a main module, where the replace
// applies. The go commands' output goes to build.log next to dst.
func BuildTofu(ctx context.Context, cfg Config, dst string) error {
	goBin, err := lookPath("go", cfg.getenv("PATH"))
	if err != nil {
		return fmt.Errorf("the go command is needed to build OpenTofu: %w", err)
	}
	logPath := filepath.Join(filepath.Dir(dst), "build.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("create build log: %w", err)
	}
	defer logFile.Close()

	work, err := os.MkdirTemp("", "bipsync-tofu-src-")
	if err != nil {
		return fmt.Errorf("create temporary directory: %w", err)
	}
	defer os.RemoveAll(work)

	// The repository's own go.work or module must not influence the
	// download or the build.
	env := append(cfg.env(), "GOWORK=off")

	mod := TofuModule + "@v" + TofuVersion
	fmt.Fprintf(cfg.log(), "  fetching %s (build log: %s)\n", mod, logPath)
	dl := exec.CommandContext(ctx, goBin, "mod", "download", "-json", mod)
	dl.Dir = work // no go.mod here: the download must not touch the project's go.sum
	dl.Env = env
	dl.Stderr = logFile
	out, err := dl.Output()
	src, perr := parseDownload(out)
	if perr != nil {
		if err != nil {
			// The JSON carries the reason when go got that far; otherwise
			// the reason is in the log.
			return fmt.Errorf("go mod download %s: %w: %w; last lines of %s:\n%s", mod, err, perr, logPath, tail(logPath, 20))
		}
		return fmt.Errorf("go mod download %s: %w", mod, perr)
	}

	tree := filepath.Join(work, "opentofu")
	if err := copyTree(src, tree); err != nil {
		return fmt.Errorf("copy module source: %w", err)
	}

	fmt.Fprintf(cfg.log(), "  compiling ./cmd/tofu\n")
	cmd := exec.CommandContext(ctx, goBin, "build", "-ldflags", tofuLDFlags, "-o", dst, "./cmd/tofu")
	cmd.Dir = tree
	cmd.Env = env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := runWithHeartbeat(cmd, cfg.log()); err != nil {
		return fmt.Errorf("go build ./cmd/tofu: %w; last lines of %s:\n%s", err, logPath, tail(logPath, 20))
	}
	return nil
}

// runWithHeartbeat runs cmd and prints a line every minute meanwhile: a
// compile of several minutes with no output looks hung, and some CI systems
// stop jobs that stay silent.
func runWithHeartbeat(cmd *exec.Cmd, log io.Writer) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	start := time.Now()
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			fmt.Fprintf(log, "  still compiling (%s so far)\n", time.Since(start).Round(time.Second))
		}
	}
}

// parseDownload reads the module directory from `go mod download -json`.
func parseDownload(out []byte) (string, error) {
	var m struct {
		Dir   string
		Error string
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("decode output: %w", err)
	}
	if m.Error != "" {
		return "", fmt.Errorf("%s", m.Error)
	}
	if m.Dir == "" {
		return "", fmt.Errorf("no module directory in output")
	}
	return m.Dir, nil
}

// copyTree copies the regular files under src to dst with owner write
// permission: the module cache is read-only, and the build writes nothing
// into the tree, but a read-only tree could not be removed afterwards.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil // module zips hold only regular files
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return copyFile(p, target, info.Mode().Perm()|0o600)
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// tail returns up to n last lines of the file at p, for error messages.
func tail(p string, n int) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(string(bytes.TrimRight(b, "\n")), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
