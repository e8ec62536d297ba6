package provider

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bipsync/terraform-provider-bipsync/internal/provideraddr"
	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
)

// exampleDirs are the example directories: those the docs are generated from, and examples/local (README, "Try it
// locally"). examples/demo belongs to `make demo`, which runs it against a real engine itself.
var exampleDirs = []string{"provider", "resources", "ephemeral-resources", "data-sources", "guides", "local"}

// stubProviders are the third-party providers the examples hand tokens to. They cannot be installed offline, so
// TestExamples_validate serves stand-ins built from testdata/stubprovider (see there for what that does and does
// not check).
var stubProviders = map[string]string{
	"restapi": "mastercard/restapi",
	"aws":     "hashicorp/aws",
	"http":    "hashicorp/http",
}

// exampleRepoRoot is the module root, two levels above this package.
func exampleRepoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	return root
}

// TestExamples_validate runs every example file on its own, as a reader would after copying it into an empty
// directory: `init`, then `validate`. Providers come from a filesystem mirror, the only installation source: the
// bipsync provider built from this tree as bipsync/bipsync 0.0.1, and stand-ins for the third-party providers (see
// testdata/stubprovider for what they do and do not check). So an example that does not declare the providers it
// uses fails at `init` as it would for the reader (Terraform would look for hashicorp/bipsync, which exists nowhere).
// `init` skips the backend (-backend=false): the examples' backends need their cloud. `.tofu` files (OpenTofu-only
// syntax) are run only when the engine is OpenTofu. Any diagnostic fails: an example that makes the engine or the
// provider warn is a bad example.
func TestExamples_validate(t *testing.T) {
	t.Parallel()
	engine := currentEngine(t)
	root := exampleRepoRoot(t)

	bin := t.TempDir()
	provider := filepath.Join(bin, tfcli.ProviderBinary())
	goBuildExample(t, root, provider, ".")
	stub := filepath.Join(bin, "stubprovider")
	goBuildExample(t, root, stub, "./internal/provider/testdata/stubprovider")
	mirror := t.TempDir()
	install := map[string]string{provideraddr.Source: provider}
	for _, source := range stubProviders {
		install[source] = stub
	}
	for source, built := range install {
		for _, host := range []string{tfcli.TerraformRegistry, tfcli.OpenTofuRegistry} {
			dst := tfcli.MirrorBinary(mirror, host, source, "0.0.1")
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(built, dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	mirrorConfig := filepath.Join(t.TempDir(), "mirror.tfrc")
	writeExampleFile(t, mirrorConfig, tfcli.MirrorConfig(mirror))

	files := exampleFiles(t, root)
	if len(files) < 10 {
		t.Fatalf("got %d example files; want at least 10 (is the examples directory there?)", len(files))
	}
	for _, rel := range files {
		t.Run(filepath.ToSlash(rel), func(t *testing.T) {
			t.Parallel()
			if filepath.Ext(rel) == ".tofu" && !engine.OpenTofu {
				t.Skip(".tofu files hold OpenTofu-only syntax; this engine ignores them")
			}
			src, err := os.ReadFile(filepath.Join(root, "examples", rel))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			writeExampleFile(t, filepath.Join(dir, filepath.Base(rel)), string(src))
			initExample(t, engine.Path, mirrorConfig, dir)
			validateExample(t, engine.Path, mirrorConfig, dir)
		})
	}
}

// TestExamples_format checks that the examples are formatted as `tofu fmt` (or `terraform fmt`) writes them.
func TestExamples_format(t *testing.T) {
	t.Parallel()
	engine := currentEngine(t)
	root := exampleRepoRoot(t)
	for _, d := range exampleDirs {
		cmd := exec.Command(engine.Path, "fmt", "-check", "-diff", "-recursive", filepath.Join(root, "examples", d))
		cmd.Env = tfcli.EngineEnv(os.Environ(), cliConfig)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("examples/%s is not formatted (run make fmt): %v\n%s", d, err, out)
		}
	}
}

// exampleFiles lists the .tf and .tofu files under the example directories, relative to examples/.
func exampleFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	for _, d := range exampleDirs {
		err := filepath.WalkDir(filepath.Join(root, "examples", d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() && e.Name() == ".terraform" {
				return filepath.SkipDir
			}
			if ext := filepath.Ext(p); !e.IsDir() && (ext == ".tf" || ext == ".tofu") {
				rel, err := filepath.Rel(filepath.Join(root, "examples"), p)
				if err != nil {
					return err
				}
				files = append(files, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("examples/%s: %v", d, err)
		}
	}
	return files
}

// initExample runs `init` in dir, as a reader would before anything else, and fails with its output if it fails.
func initExample(t *testing.T, engine, cliConfig, dir string) {
	t.Helper()
	cmd := exec.Command(engine, "init", "-input=false", "-no-color", "-backend=false")
	cmd.Dir = dir
	cmd.Env = tfcli.EngineEnv(os.Environ(), cliConfig)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
}

// validateExample runs `validate -json` in dir and fails on any diagnostic.
func validateExample(t *testing.T, engine, cliConfig, dir string) {
	t.Helper()
	cmd := exec.Command(engine, "validate", "-json", "-no-color")
	cmd.Dir = dir
	cmd.Env = tfcli.EngineEnv(os.Environ(), cliConfig)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var result struct {
		Valid       bool `json:"valid"`
		Diagnostics []struct {
			Severity string `json:"severity"`
			Summary  string `json:"summary"`
			Detail   string `json:"detail"`
		} `json:"diagnostics"`
	}
	if err := json.Unmarshal(out, &result); err != nil {
		t.Fatalf("validate: %v; output is not JSON (%v)\nstdout: %s\nstderr: %s", runErr, err, out, stderr.String())
	}
	for _, d := range result.Diagnostics {
		t.Errorf("validate: got %s %q: %s", d.Severity, d.Summary, d.Detail)
	}
	if !result.Valid {
		t.Errorf("validate: got an invalid configuration; want valid (stderr: %s)", stderr.String())
	}
}

// goBuildExample builds pkg into out with the user's Go build cache. TestMain points XDG_CACHE_HOME at a temporary
// directory (the token store's default lives there), which would otherwise give go build an empty cache and a
// cold build of every dependency.
func goBuildExample(t *testing.T, root, out, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOCACHE="+userGoCache(t))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// userGoCache is the Go build cache the test process was started with: GOCACHE if set, else go's default under the
// user cache directory as it was before TestMain replaced XDG_CACHE_HOME.
func userGoCache(t *testing.T) string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XDG_CACHE_HOME=") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command("go", "env", "GOCACHE")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go env GOCACHE: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func writeExampleFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
