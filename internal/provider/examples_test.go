package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
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
	goBuildExample(t, root, filepath.Join(bin, "terraform-provider-bipsync"), ".")
	stub := filepath.Join(t.TempDir(), "stubprovider")
	goBuildExample(t, root, stub, "./internal/provider/testdata/stubprovider")
	overrides := []string{fmt.Sprintf("    %q = %q", "bipsync/bipsync", bin)}
	for _, name := range slices.Sorted(maps.Keys(stubProviders)) {
		if err := os.Link(stub, filepath.Join(bin, "terraform-provider-"+name)); err != nil {
			t.Fatal(err)
		}
		overrides = append(overrides, fmt.Sprintf("    %q = %q", stubProviders[name], bin))
	}
	cliConfig := filepath.Join(t.TempDir(), "cli.tfrc")
	writeExampleFile(t, cliConfig, "provider_installation {\n  dev_overrides {\n"+strings.Join(overrides, "\n")+
		"\n  }\n  direct {}\n}\n")

	files := exampleFiles(t, root)
	if len(files) < 10 {
		t.Fatalf("got %d example files; want at least 10 (is the examples directory there?)", len(files))
	}
	for _, rel := range files {
		t.Run(filepath.ToSlash(rel), func(t *testing.T) {
			t.Parallel()
			if filepath.Ext(rel) == ".tofu" && !engine.openTofu {
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
					"terraform {\n  required_providers {\n    bipsync = {\n      source = \"bipsync/bipsync\"\n    }\n  }\n}\n")
			}
			validateExample(t, engine.path, cliConfig, dir)
		})
	}
}

// TestExamples_format checks that the examples are formatted as `tofu fmt` (or `terraform fmt`) writes them.
func TestExamples_format(t *testing.T) {
	t.Parallel()
	engine := currentEngine(t)
	root := exampleRepoRoot(t)
	for _, d := range exampleDirs {
		cmd := exec.Command(engine.path, "fmt", "-check", "-diff", "-recursive", filepath.Join(root, "examples", d))
		cmd.Env = append(os.Environ(), "CHECKPOINT_DISABLE=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("examples/%s is not formatted (run make fmt): %v\n%s", d, err, out)
		}
	}
}

// fakeAWS stands in for the AWS CLI: the Secrets Manager calls bipsync-store-aws.sh makes, over one file per
// secret in $FAKE_AWS_DIR, with the CLI's error text and exit status (254 for a service error). It logs each call's
// operation to $FAKE_AWS_DIR/calls, and fails every call with $FAKE_AWS_FAIL when that is set.
const fakeAWS = `#!/bin/sh
set -eu
[ "$1" = secretsmanager ] || { echo "fake aws: unsupported service $1" >&2; exit 252; }
op=$2
shift 2
id= value= query= output=
while [ $# -gt 0 ]; do
	case $1 in
	--secret-id|--name) id=$2 ;;
	--secret-string) value=$2 ;;
	--query) query=$2 ;;
	--output) output=$2 ;;
	*) echo "fake aws: unexpected argument $1" >&2; exit 252 ;;
	esac
	shift 2
done
echo "$op" >>"$FAKE_AWS_DIR/calls"
fail() { echo "An error occurred ($1) when calling the $2 operation: $3" >&2; exit 254; }
if [ -n "${FAKE_AWS_FAIL:-}" ]; then fail "$FAKE_AWS_FAIL" "$op" "injected"; fi
f="$FAKE_AWS_DIR/secret-$(printf %s "$id" | tr / _)"
read_value() { case $value in file://*) cat "${value#file://}" ;; *) printf %s "$value" ;; esac; }
case $op in
get-secret-value)
	[ "$query" = SecretString ] && [ "$output" = text ] || { echo "fake aws: want --query SecretString --output text" >&2; exit 252; }
	[ -f "$f" ] || fail ResourceNotFoundException GetSecretValue "Secrets Manager can't find the specified secret."
	cat "$f"; echo ;;
put-secret-value)
	[ -f "$f" ] || fail ResourceNotFoundException PutSecretValue "Secrets Manager can't find the specified secret."
	read_value >"$f.tmp"; mv "$f.tmp" "$f"; echo '{}' ;;
create-secret)
	[ ! -f "$f" ] || fail ResourceExistsException CreateSecret "The operation failed because the secret already exists."
	read_value >"$f"; echo '{}' ;;
*) echo "fake aws: unsupported operation $op" >&2; exit 252 ;;
esac
`

// awsHelper returns the argv that runs the guide's AWS Secrets Manager helper against a fake AWS CLI, and the
// fake's directory. The argv is what a user would put in token_store.command, behind env(1) to reach the fake.
func awsHelper(t *testing.T, failWith string) (argv []string, dir string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the helper is a POSIX shell script")
	}
	dir, bin := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "aws"), []byte(fakeAWS), 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(exampleRepoRoot(t), "examples", "guides", "keeping-a-chain-alive", "bipsync-store-aws.sh")
	return []string{"env", "PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "FAKE_AWS_DIR=" + dir,
		"FAKE_AWS_FAIL=" + failWith, "/bin/sh", script}, dir
}

// TestExamples_storeHelperAWS_protocol checks the guide's helper against the command store's protocol: `get` of a
// chain that has no record prints nothing and succeeds, and every other failure fails, so that the provider never
// takes a live chain for a new one.
func TestExamples_storeHelperAWS_protocol(t *testing.T) {
	t.Parallel()
	key := strings.Repeat("ab", 32)
	tests := []struct {
		name       string
		fail       string
		args       []string
		stdin      string
		wantExit   int
		wantStdout string
		wantStderr string
	}{
		{name: "get without record", args: []string{"get", key}, wantExit: 0},
		{name: "get refused", fail: "AccessDeniedException", args: []string{"get", key}, wantExit: 1, wantStderr: "AccessDeniedException"},
		{name: "put refused", fail: "AccessDeniedException", args: []string{"put", key}, stdin: "bts1.x.y.z\n", wantExit: 1, wantStderr: "AccessDeniedException"},
		{name: "unknown operation", args: []string{"list", key}, wantExit: 2, wantStderr: "unknown operation"},
		{name: "missing key", args: []string{"get"}, wantExit: 2, wantStderr: "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			argv, _ := awsHelper(t, tt.fail)
			cmd := exec.Command(argv[0], append(argv[1:], tt.args...)...)
			cmd.Stdin = strings.NewReader(tt.stdin)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			exit := 0
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee):
				exit = ee.ExitCode()
			case err != nil:
				t.Fatal(err)
			}
			if exit != tt.wantExit {
				t.Errorf("exit status: got %d; want %d (stderr: %s)", exit, tt.wantExit, stderr.String())
			}
			if stdout.String() != tt.wantStdout {
				t.Errorf("stdout: got %q; want %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr: got %q; want it to contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

// TestAccExamples_storeHelperAWS runs the guide's helper as the provider's command store, end to end: the first
// plan and apply exchange the chain once and create the secret, a second run reuses the stored token, and the
// secret holds only the encrypted record.
func TestAccExamples_storeHelperAWS(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	argv, awsDir := awsHelper(t, "")
	command, err := json.Marshal(argv)
	if err != nil {
		t.Fatal(err)
	}
	seed := f.seed()
	config := fmt.Sprintf(`
provider "bipsync" {
  base_url      = %q
  client_id     = %q
  client_secret = %q
  token_store {
    backend = "command"
    command = %s
  }
}

ephemeral "bipsync_access_token" "api" {
  refresh_token = %q
}

provider "echo" {
  data = ephemeral.bipsync_access_token.api
}

resource "echo" "token" {}
`, f.baseURL, testClientID, testClientSecret, command, seed)

	var accessToken string
	captureToken := statecheck.ExpectKnownValue("echo.token", tfjsonpath.New("data").AtMapKey("access_token"),
		knownvalue.StringFunc(func(v string) error { accessToken = v; return nil }))
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		PreCheck:                 f.ledger.reset,
		Steps: []resource.TestStep{
			{Config: config, ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.token"), captureToken}},
			{
				PreConfig:         f.ledger.expect(1, "first plan and apply, chain kept by the AWS helper"),
				Config:            config,
				ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.token")},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.expect(0, "second run and destroy, token reused from the AWS helper")()
			return nil
		},
	})

	secrets, err := filepath.Glob(filepath.Join(awsDir, "secret-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(secrets) != 1 {
		t.Fatalf("got %d secrets; want 1 (one chain)", len(secrets))
	}
	key := tokenstore.KeyFor(f.baseURL+bipsync.TokenPath, testClientID, seed)
	if got, want := filepath.Base(secrets[0]), "secret-terraform-provider-bipsync_"+string(key); got != want {
		t.Errorf("secret name: got %s; want %s (the default prefix and the chain's key)", got, want)
	}
	record, err := os.ReadFile(secrets[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(record, []byte("bts2.")) {
		t.Errorf("secret: got %.12q…; want an encrypted record (bts2.…)", record)
	}
	for name, secret := range map[string]string{"the seed": seed, "the access token": accessToken} {
		if secret == "" || bytes.Contains(record, []byte(secret)) {
			t.Errorf("secret holds %s in clear; want only the encrypted record", name)
		}
	}
	if refreshTokenShape.Match(record) {
		t.Errorf("secret holds a refresh token in clear; want only the encrypted record")
	}
	calls, err := os.ReadFile(filepath.Join(awsDir, "calls"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(calls), "create-secret"); n != 1 {
		t.Errorf("create-secret calls: got %d; want 1\ncalls:\n%s", n, calls)
	}
}

// TestSchemas_everyAttributeDescribed fails on any schema, attribute or block without a MarkdownDescription: the
// docs are generated from them. Descriptions are full sentences, so each must end with a full stop.
func TestSchemas_everyAttributeDescribed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := New("test")()

	schemas := map[string]any{}
	var pr provider.SchemaResponse
	p.Schema(ctx, provider.SchemaRequest{}, &pr)
	schemas["provider"] = pr.Schema
	for _, newResource := range p.Resources(ctx) {
		r := newResource()
		var meta fwresource.MetadataResponse
		r.Metadata(ctx, fwresource.MetadataRequest{ProviderTypeName: "bipsync"}, &meta)
		var resp fwresource.SchemaResponse
		r.Schema(ctx, fwresource.SchemaRequest{}, &resp)
		schemas["resource "+meta.TypeName] = resp.Schema
	}
	if pe, ok := p.(provider.ProviderWithEphemeralResources); ok {
		for _, newEphemeral := range pe.EphemeralResources(ctx) {
			e := newEphemeral()
			var meta ephemeral.MetadataResponse
			e.Metadata(ctx, ephemeral.MetadataRequest{ProviderTypeName: "bipsync"}, &meta)
			var resp ephemeral.SchemaResponse
			e.Schema(ctx, ephemeral.SchemaRequest{}, &resp)
			schemas["ephemeral "+meta.TypeName] = resp.Schema
		}
	}
	for _, newDataSource := range p.DataSources(ctx) {
		d := newDataSource()
		var meta datasource.MetadataResponse
		d.Metadata(ctx, datasource.MetadataRequest{ProviderTypeName: "bipsync"}, &meta)
		var resp datasource.SchemaResponse
		d.Schema(ctx, datasource.SchemaRequest{}, &resp)
		schemas["data "+meta.TypeName] = resp.Schema
	}
	if len(schemas) < 4 {
		t.Fatalf("got %d schemas; want the provider, resource, ephemeral resource and data source", len(schemas))
	}

	var described int
	for name, s := range schemas {
		walkDescriptions(reflect.ValueOf(s), name, func(path, desc string) {
			described++
			switch {
			case strings.TrimSpace(desc) == "":
				t.Errorf("%s: got an empty MarkdownDescription; want a description (the docs are generated from it)", path)
			case !strings.HasSuffix(strings.TrimSpace(desc), "."):
				t.Errorf("%s: description %q does not end with a full stop; want full sentences", path, desc)
			}
		})
	}
	if described < 40 {
		t.Errorf("checked %d descriptions; want every schema, attribute and block (at least 40)", described)
	}
}

// walkDescriptions calls fn for every schema, attribute and block in v with its MarkdownDescription. The schema
// types of the framework's packages differ but share field names: MarkdownDescription, Attributes, Blocks and
// NestedObject.
func walkDescriptions(v reflect.Value, path string, fn func(path, desc string)) {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return
	}
	if d := v.FieldByName("MarkdownDescription"); d.IsValid() && d.Kind() == reflect.String {
		fn(path, d.String())
	}
	for _, field := range []string{"Attributes", "Blocks"} {
		m := v.FieldByName(field)
		if !m.IsValid() || m.Kind() != reflect.Map {
			continue
		}
		keys := m.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			walkDescriptions(m.MapIndex(k), path+"."+k.String(), fn)
		}
	}
	if n := v.FieldByName("NestedObject"); n.IsValid() {
		walkNested(n, path, fn)
	}
}

// walkNested descends into a nested object, which has attributes (and blocks) but no description of its own.
func walkNested(v reflect.Value, path string, fn func(path, desc string)) {
	for _, field := range []string{"Attributes", "Blocks"} {
		m := v.FieldByName(field)
		if !m.IsValid() || m.Kind() != reflect.Map {
			continue
		}
		for _, k := range m.MapKeys() {
			walkDescriptions(m.MapIndex(k), path+"."+k.String(), fn)
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
func validateExample(t *testing.T, engine, cliConfig, dir string) {
	t.Helper()
	cmd := exec.Command(engine, "validate", "-json", "-no-color")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+cliConfig, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
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
