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

// exampleDirs are the example directories the docs are generated from. examples/demo belongs to `make demo`,
// which runs it against a real engine itself.
var exampleDirs = []string{"provider", "resources", "ephemeral-resources", "data-sources", "guides"}

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

// TestExamples_validate runs `validate` on every example file on its own, as a reader would copy it: the bipsync
// provider built from this tree, and stand-ins for the third-party providers, installed with dev_overrides. A file
// without a required_providers block gets one for bipsync/bipsync. `.tofu` files (OpenTofu-only syntax) are
// validated only when the engine is OpenTofu. Only the dev_overrides warning is allowed: an example that makes
// the engine or the provider warn is a bad example.
func TestExamples_validate(t *testing.T) {
	t.Parallel()
	engine := currentEngine(t)
	root := exampleRepoRoot(t)

	bin := t.TempDir()
	goBuildExample(t, root, filepath.Join(bin, tfcli.ProviderBinary()), ".")
	stub := filepath.Join(t.TempDir(), "stubprovider")
	goBuildExample(t, root, stub, "./internal/provider/testdata/stubprovider")
	stubs := map[string]string{}
	for name, source := range stubProviders {
		if err := os.Link(stub, filepath.Join(bin, "terraform-provider-"+name)); err != nil {
			t.Fatal(err)
		}
		stubs[source] = bin
	}
	overrides := filepath.Join(t.TempDir(), "cli.tfrc")
	if err := tfcli.WriteDevOverrides(overrides, bin, stubs); err != nil {
		t.Fatal(err)
	}

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
			if !bytes.Contains(src, []byte("required_providers")) {
				writeExampleFile(t, filepath.Join(dir, "required_providers.tf"),
					"terraform {\n  required_providers {\n    bipsync = {\n      source = \""+provideraddr.Source+"\"\n    }\n  }\n}\n")
			}
			validateExample(t, engine.Path, overrides, dir)
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

// validateExample runs `validate -json` in dir and fails on any diagnostic but the dev_overrides warning.
func validateExample(t *testing.T, engine, overrides, dir string) {
	t.Helper()
	cmd := exec.Command(engine, "validate", "-json", "-no-color")
	cmd.Dir = dir
	cmd.Env = tfcli.EngineEnv(os.Environ(), overrides)
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
		if d.Summary == "Provider development overrides are in effect" {
			continue
		}
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
