package tfcli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakes holds stand-in engines written once in TestMain. Tests link to them
// instead of writing executables themselves: executing a file while another
// goroutine's fork still holds it open for writing fails with ETXTBSY.
var fakes string

// fakeEngines maps a fake's name to its product line and version. The
// "broken" fake exits non-zero.
var fakeEngines = map[string][2]string{
	"opentofu-1.12.6":       {"OpenTofu", "1.12.6"},
	"opentofu-1.12.5":       {"OpenTofu", "1.12.5"},
	"opentofu-1.12.6-dev":   {"OpenTofu", "1.12.6-dev"},
	"opentofu-1.12.6-as-tf": {"OpenTofu", "1.12.6"},
	"terraform-1.11.4":      {"Terraform", "1.11.4"},
	"terraform-1.10.5":      {"Terraform", "1.10.5"},
	"terraform-1.11.0-rc1":  {"Terraform", "1.11.0-rc1"},
	"terraform-2.0.0":       {"Terraform", "2.0.0"},
}

// fakeScript behaves like `tofu version` / `terraform version [-json]`,
// including the warning both print on stdout when TF_CLI_CONFIG_FILE names
// a missing file.
const fakeScript = `#!/bin/sh
if [ ! -f "$TF_CLI_CONFIG_FILE" ]; then
  echo "Warning: Unable to open CLI configuration file"
  echo
fi
[ "$1" = version ] || { echo "unexpected arguments: $*" >&2; exit 1; }
if [ "$2" = "-json" ]; then
  printf '{\n  "terraform_version": "%%s",\n  "platform": "linux_amd64"\n}\n' %[2]q
else
  printf '%%s v%%s\non linux_amd64\n' %[1]q %[2]q
fi
`

func TestMain(m *testing.M) {
	os.Exit(func() int {
		if runtime.GOOS == "windows" {
			return m.Run() // the fakes are shell scripts; tests that need them skip
		}
		dir, err := os.MkdirTemp("", "tfcli-fakes-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		for name, pv := range fakeEngines {
			if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, fakeScript, pv[0], pv[1]), 0o755); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "broken"), []byte("#!/bin/sh\necho boom >&2\nexit 7\n"), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fakes = dir
		return m.Run()
	}())
}

func needFakes(t *testing.T) {
	t.Helper()
	if fakes == "" {
		t.Skip("fake engines are shell scripts; not available on " + runtime.GOOS)
	}
}

// link places the named fake at dst.
func link(t *testing.T, fake, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(dst)
	if err := os.Symlink(filepath.Join(fakes, fake), dst); err != nil {
		t.Fatal(err)
	}
}

// testEnv is a minimal environment with a TF_CLI_CONFIG_FILE that names a
// missing file, as some machines have: the code under test must override it.
func testEnv(extra ...string) []string {
	return append([]string{
		"PATH=/nonexistent-bin",
		"HOME=/nonexistent-home",
		"TF_CLI_CONFIG_FILE=/nonexistent-home/.terraformrc",
	}, extra...)
}

// builder returns a Build func that installs the named fake and counts calls.
func builder(fake string, calls *atomic.Int32) func(context.Context, Config, string) error {
	return func(_ context.Context, _ Config, dst string) error {
		calls.Add(1)
		if err := os.Remove(dst); err != nil {
			return err
		}
		return os.Symlink(filepath.Join(fakes, fake), dst)
	}
}

func noBuild(t *testing.T) func(context.Context, Config, string) error {
	return func(context.Context, Config, string) error {
		t.Error("build called; want the existing binary used")
		return errors.New("unexpected build")
	}
}

// leftovers lists temporary build files in the cache's tofu directory.
func leftovers(t *testing.T, cache string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(filepath.Dir(TofuPath(cache)), ".tofu-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTofu_EnvOverride(t *testing.T) {
	t.Parallel()
	needFakes(t)
	for _, tc := range []struct {
		name, fake string
		wantWarn   bool
	}{
		{name: "same release", fake: "opentofu-1.12.6"},
		{name: "other release warns", fake: "opentofu-1.12.5", wantWarn: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cache := t.TempDir()
			bin := filepath.Join(t.TempDir(), "mytofu")
			link(t, tc.fake, bin)
			var log strings.Builder
			got, err := Tofu(context.Background(), Config{
				CacheDir: cache,
				Env:      testEnv("BIPSYNC_TOFU=" + bin),
				Log:      &log,
				Build:    noBuild(t),
			})
			if err != nil {
				t.Fatalf("Tofu: %v", err)
			}
			if got != bin {
				t.Errorf("got %q; want %q", got, bin)
			}
			if warned := strings.Contains(log.String(), "warning:"); warned != tc.wantWarn {
				t.Errorf("got warning %v (log %q); want %v", warned, log.String(), tc.wantWarn)
			}
		})
	}
}

func TestTofu_EnvOverrideFromPATH(t *testing.T) {
	t.Parallel()
	needFakes(t)
	bindir := t.TempDir()
	link(t, "opentofu-1.12.6", filepath.Join(bindir, "tofu"))
	got, err := Tofu(context.Background(), Config{
		CacheDir: t.TempDir(),
		Env:      append(testEnv("BIPSYNC_TOFU=tofu"), "PATH="+bindir),
		Build:    noBuild(t),
	})
	if err != nil {
		t.Fatalf("Tofu: %v", err)
	}
	if want := filepath.Join(bindir, "tofu"); got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestTofu_EnvOverrideUnusable(t *testing.T) {
	t.Parallel()
	needFakes(t)
	for _, tc := range []struct{ name, fake string }{
		{name: "missing"},
		{name: "fails", fake: "broken"},
		{name: "not tofu", fake: "terraform-1.11.4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bin := filepath.Join(t.TempDir(), "tofu")
			if tc.fake != "" {
				link(t, tc.fake, bin)
			}
			_, err := Tofu(context.Background(), Config{
				CacheDir: t.TempDir(),
				Env:      testEnv("BIPSYNC_TOFU=" + bin),
				Build:    noBuild(t),
			})
			if err == nil || !strings.Contains(err.Error(), "BIPSYNC_TOFU=") {
				t.Errorf("got error %v; want one naming BIPSYNC_TOFU", err)
			}
		})
	}
}

func TestTofu_Cached(t *testing.T) {
	t.Parallel()
	needFakes(t)
	cache := t.TempDir()
	link(t, "opentofu-1.12.6", TofuPath(cache))
	var log strings.Builder
	got, err := Tofu(context.Background(), Config{CacheDir: cache, Env: testEnv(), Log: &log, Build: noBuild(t)})
	if err != nil {
		t.Fatalf("Tofu: %v", err)
	}
	if got != TofuPath(cache) {
		t.Errorf("got %q; want %q", got, TofuPath(cache))
	}
	if log.Len() != 0 {
		t.Errorf("got log %q; want none for a warm cache", log.String())
	}
}

func TestTofu_CacheDirFromEnv(t *testing.T) {
	t.Parallel()
	needFakes(t)
	cache := t.TempDir()
	link(t, "opentofu-1.12.6", TofuPath(cache))
	got, err := Tofu(context.Background(), Config{Env: testEnv(CacheDirEnv + "=" + cache), Build: noBuild(t)})
	if err != nil {
		t.Fatalf("Tofu: %v", err)
	}
	if got != TofuPath(cache) {
		t.Errorf("got %q; want %q", got, TofuPath(cache))
	}
}

func TestTofu_Builds(t *testing.T) {
	t.Parallel()
	needFakes(t)
	for _, tc := range []struct {
		name   string
		cached string // fake already in the cache, if any
		logs   []string
	}{
		{name: "empty cache", logs: []string{"building OpenTofu 1.12.6 from the Go module proxy into", "first run only"}},
		{name: "wrong release cached", cached: "opentofu-1.12.5", logs: []string{"rebuilding the cached OpenTofu", "1.12.5"}},
		{name: "dev build cached", cached: "opentofu-1.12.6-dev", logs: []string{"rebuilding the cached OpenTofu", "1.12.6-dev"}},
		{name: "broken binary cached", cached: "broken", logs: []string{"rebuilding the cached OpenTofu", "boom"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cache := t.TempDir()
			if tc.cached != "" {
				link(t, tc.cached, TofuPath(cache))
			}
			var calls atomic.Int32
			var log strings.Builder
			got, err := Tofu(context.Background(), Config{
				CacheDir: cache,
				Env:      testEnv(),
				Log:      &log,
				Build:    builder("opentofu-1.12.6", &calls),
			})
			if err != nil {
				t.Fatalf("Tofu: %v", err)
			}
			if got != TofuPath(cache) {
				t.Errorf("got %q; want %q", got, TofuPath(cache))
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("got %d builds; want 1", n)
			}
			if target, err := os.Readlink(got); err != nil || filepath.Base(target) != "opentofu-1.12.6" {
				t.Errorf("got cached binary -> %q (%v); want the new build", target, err)
			}
			for _, want := range tc.logs {
				if !strings.Contains(log.String(), want) {
					t.Errorf("got log %q; want it to contain %q", log.String(), want)
				}
			}
			if l := leftovers(t, cache); len(l) != 0 {
				t.Errorf("got leftover files %v; want none", l)
			}
		})
	}
}

func TestTofu_BuildFailureLeavesCacheEmpty(t *testing.T) {
	t.Parallel()
	needFakes(t)
	for _, tc := range []struct {
		name    string
		build   func(context.Context, Config, string) error
		wantErr string
	}{
		{
			name:    "build fails",
			build:   func(context.Context, Config, string) error { return errors.New("compiler exploded") },
			wantErr: "compiler exploded",
		},
		{
			name: "build produces the wrong release",
			build: func(_ context.Context, _ Config, dst string) error {
				os.Remove(dst)
				return os.Symlink(filepath.Join(fakes, "opentofu-1.12.5"), dst)
			},
			wantErr: "not usable",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cache := t.TempDir()
			_, err := Tofu(context.Background(), Config{CacheDir: cache, Env: testEnv(), Build: tc.build})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got error %v; want one containing %q", err, tc.wantErr)
			}
			if _, err := os.Lstat(TofuPath(cache)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("got %v from Lstat of the cached path; want it absent", err)
			}
			if l := leftovers(t, cache); len(l) != 0 {
				t.Errorf("got leftover files %v; want none", l)
			}
		})
	}
}

func TestTofu_ConcurrentRunsBuildOnce(t *testing.T) {
	t.Parallel()
	needFakes(t)
	cache := t.TempDir()
	var calls atomic.Int32
	const runs = 4
	var wg sync.WaitGroup
	paths := make([]string, runs)
	errs := make([]error, runs)
	for i := range runs {
		wg.Go(func() {
			paths[i], errs[i] = Tofu(context.Background(), Config{
				CacheDir: cache,
				Env:      testEnv(),
				Build:    builder("opentofu-1.12.6", &calls),
			})
		})
	}
	wg.Wait()
	for i := range runs {
		if errs[i] != nil || paths[i] != TofuPath(cache) {
			t.Errorf("run %d: got (%q, %v); want (%q, nil)", i, paths[i], errs[i], TofuPath(cache))
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("got %d builds; want 1", n)
	}
}

func TestLockFile_Excludes(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := lockFile(context.Background(), p, func() { t.Error("first lock waited") })
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{})
	acquired := make(chan error, 1)
	go func() {
		u, err := lockFile(context.Background(), p, func() { close(waiting) })
		if err == nil {
			u()
		}
		acquired <- err
	}()
	<-waiting // the second taker saw the lock held
	select {
	case err := <-acquired:
		t.Fatalf("got second lock (err %v) while the first is held; want it to wait", err)
	default:
	}
	unlock()
	if err := <-acquired; err != nil {
		t.Errorf("got %v taking the released lock; want nil", err)
	}
}

func TestLockFile_Cancel(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := lockFile(context.Background(), p, func() {})
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	_, err = lockFile(ctx, p, cancel) // gives up as soon as it has to wait
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v; want context.Canceled", err)
	}
}

func TestTerraform(t *testing.T) {
	t.Parallel()
	needFakes(t)
	for _, tc := range []struct {
		name    string
		fake    string // linked as "terraform" on PATH; empty: none
		wantErr string // empty: found
	}{
		{name: "1.11.4", fake: "terraform-1.11.4"},
		{name: "2.0.0", fake: "terraform-2.0.0"},
		{name: "too old", fake: "terraform-1.10.5", wantErr: "is Terraform 1.10.5"},
		{name: "prerelease of the minimum", fake: "terraform-1.11.0-rc1", wantErr: "is Terraform 1.11.0-rc1"},
		{name: "tofu named terraform", fake: "opentofu-1.12.6-as-tf", wantErr: "is not Terraform"},
		{name: "fails to run", fake: "broken", wantErr: "exit status 7"},
		{name: "absent", wantErr: "not found on PATH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bindir := t.TempDir()
			if tc.fake != "" {
				link(t, tc.fake, filepath.Join(bindir, "terraform"))
			}
			env := append(testEnv(), "PATH="+filepath.Join(t.TempDir(), "empty")+string(os.PathListSeparator)+bindir)
			got, err := Terraform(context.Background(), Config{CacheDir: t.TempDir(), Env: env})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Terraform: %v", err)
				}
				if want := filepath.Join(bindir, "terraform"); got != want {
					t.Errorf("got %q; want %q", got, want)
				}
				return
			}
			if !errors.Is(err, ErrNoTerraform) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got error %v; want ErrNoTerraform containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestAtLeast(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v, floor string
		want     bool
		wantErr  bool
	}{
		{v: "1.11.4", floor: "1.11.0", want: true},
		{v: "1.11.0", floor: "1.11.0", want: true},
		{v: "v1.12.0", floor: "1.11.0", want: true},
		{v: "2.0.0", floor: "1.11.0", want: true},
		{v: "1.10.9", floor: "1.11.0", want: false},
		{v: "0.15.0", floor: "1.11.0", want: false},
		{v: "1.11.0-rc1", floor: "1.11.0", want: false},
		{v: "1.11.1-rc1", floor: "1.11.0", want: true},
		{v: "1.11.0-rc2", floor: "1.11.0-rc1", want: true},
		{v: "1.11", floor: "1.11.0", wantErr: true},
		{v: "1.x.0", floor: "1.11.0", wantErr: true},
		{v: "", floor: "1.11.0", wantErr: true},
	} {
		got, err := AtLeast(tc.v, tc.floor)
		if (err != nil) != tc.wantErr {
			t.Errorf("AtLeast(%q, %q): got error %v; want error %v", tc.v, tc.floor, err, tc.wantErr)
			continue
		}
		if got != tc.want {
			t.Errorf("AtLeast(%q, %q): got %v; want %v", tc.v, tc.floor, got, tc.want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, out string
		want      Engine
		wantErr   bool
	}{
		{name: "opentofu", out: "OpenTofu v1.12.6\non linux_amd64\n", want: Engine{OpenTofu: true, Version: "1.12.6"}},
		{name: "terraform", out: "Terraform v1.11.4\non linux_amd64\n", want: Engine{Version: "1.11.4"}},
		{name: "development build", out: "OpenTofu v1.12.6-dev\n", want: Engine{OpenTofu: true, Version: "1.12.6-dev"}},
		{name: "after a warning", out: "Warning: Unable to open CLI configuration file\n\nTerraform v1.11.4\n",
			want: Engine{Version: "1.11.4"}},
		{name: "json", out: `{"terraform_version":"1.11.4"}`, wantErr: true},
		{name: "another program", out: "Vault v1.15.0\n", wantErr: true},
		{name: "no version", out: "Terraform v\n", wantErr: true},
		{name: "empty", out: "", wantErr: true},
	} {
		got, err := parseVersion([]byte(tc.out))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: got (%+v, %v); want (%+v, error %v)", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestIdentify(t *testing.T) {
	t.Parallel()
	needFakes(t)
	for fake, want := range map[string]string{
		"opentofu-1.12.6":       "OpenTofu v1.12.6 registry.opentofu.org",
		"opentofu-1.12.6-as-tf": "OpenTofu v1.12.6 registry.opentofu.org",
		"terraform-1.11.4":      "Terraform v1.11.4 registry.terraform.io",
	} {
		bin := filepath.Join(t.TempDir(), "terraform")
		link(t, fake, bin)
		e, err := Identify(context.Background(), Config{CacheDir: t.TempDir(), Env: testEnv()}, bin)
		if err != nil {
			t.Errorf("%s: %v", fake, err)
			continue
		}
		if got := e.String() + " " + e.RegistryHost(); got != want || e.Path != bin {
			t.Errorf("%s: got %q at %s; want %q at %s", fake, got, e.Path, want, bin)
		}
	}
	if _, err := Identify(context.Background(), Config{CacheDir: t.TempDir(), Env: testEnv()}, filepath.Join(fakes, "broken")); err == nil {
		t.Error("a binary that fails: got no error; want one")
	}
}

func TestMirrorConfig(t *testing.T) {
	t.Parallel()
	want := "provider_installation {\n  filesystem_mirror {\n    path = \"/tmp/a \\\"b\\\"\"\n  }\n}\n"
	if got := MirrorConfig(`/tmp/a "b"`); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestMirrorBinary(t *testing.T) {
	t.Parallel()
	got := MirrorBinary("/m", "registry.opentofu.org", "bipsync/bipsync", "0.0.1")
	want := filepath.Join("/m", "registry.opentofu.org", "bipsync", "bipsync", "0.0.1", runtime.GOOS+"_"+runtime.GOARCH,
		exeName("terraform-provider-bipsync_v0.0.1"))
	if got != want {
		t.Errorf("got %s; want %s", got, want)
	}
}

func TestEngineEnv(t *testing.T) {
	t.Parallel()
	base := []string{"PATH=/bin", "HOME=/root", "TF_LOG=trace", "TF_CLI_ARGS_plan=-parallelism=1", "TF_VAR_seeds=[]",
		"BIPSYNC_BASE_URL=https://x", "CI=true", "CHECKPOINT_DISABLE=", "TF_CLI_CONFIG_FILE=/home/me/.terraformrc",
		"TF_IN_AUTOMATION=", "CIRCLECI=true"}
	got := EngineEnv(base, "/c/empty.tfrc", "BIPSYNC_CLIENT_SECRET=s", "TF_LOG=debug")
	want := []string{"PATH=/bin", "HOME=/root", "CIRCLECI=true", "TF_CLI_CONFIG_FILE=/c/empty.tfrc", "CHECKPOINT_DISABLE=1",
		"TF_IN_AUTOMATION=1", "TF_INPUT=0", "BIPSYNC_CLIENT_SECRET=s", "TF_LOG=debug"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestDevOverrides(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "cli.tfrc")
	if err := WriteDevOverrides(path, `/tmp/x "y"/provider`, map[string]string{"mastercard/restapi": "/tmp/stubs"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The CLI configuration is HCL 1, which no library here reads; the engine runs of the demo, the benchmarks and the
	// examples test prove that engines accept it.
	want := "provider_installation {\n  dev_overrides {\n" +
		"    \"bipsync/bipsync\" = \"/tmp/x \\\"y\\\"/provider\"\n" +
		"    \"mastercard/restapi\" = \"/tmp/stubs\"\n" +
		"  }\n  direct {}\n}\n"
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if fi, err := os.Stat(path); runtime.GOOS != "windows" && (err != nil || fi.Mode().Perm() != 0o600) {
		t.Errorf("mode: got %v, %v; want 0600", fi, err)
	}
}

func TestEmptyCLIConfig(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "new", "cache")
	p, err := EmptyCLIConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A config someone edited is reset: tests must not pick up settings.
	if err := os.WriteFile(p, []byte(`provider_installation { dev_overrides {} }`), 0o644); err != nil {
		t.Fatal(err)
	}
	p2, err := EmptyCLIConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p2)
	if err != nil {
		t.Fatal(err)
	}
	if p2 != p || fi.Size() != 0 {
		t.Errorf("got %q of %d bytes; want %q empty", p2, fi.Size(), p)
	}
}

func TestParseDownload(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, out, want string
		wantErr         string
	}{
		{name: "ok", out: `{"Path":"github.com/opentofu/opentofu","Version":"v1.12.6","Dir":"/m/opentofu@v1.12.6"}`, want: "/m/opentofu@v1.12.6"},
		{name: "proxy error", out: `{"Path":"github.com/opentofu/opentofu","Error":"403 Forbidden"}`, wantErr: "403 Forbidden"},
		{name: "no dir", out: `{"Path":"github.com/opentofu/opentofu"}`, wantErr: "no module directory"},
		{name: "empty", out: ``, wantErr: "decode"},
	} {
		got, err := parseDownload([]byte(tc.out))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: got error %v; want one containing %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got (%q, %v); want (%q, nil)", tc.name, got, err, tc.want)
		}
	}
}

func TestCopyTree_MakesWritableCopy(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "cmd", "tofu"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"go.mod": "module x\n", "cmd/tofu/main.go": "package main\n"}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "copy")
	if err := copyTree(src, dst); err != nil {
		t.Fatalf("copyTree: %v", err)
	}
	for name, body := range files {
		p := filepath.Join(dst, name)
		b, err := os.ReadFile(p)
		if err != nil || string(b) != body {
			t.Errorf("%s: got (%q, %v); want %q", name, b, err, body)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o200 == 0 {
			t.Errorf("%s: got mode %v; want owner-writable", name, fi.Mode())
		}
	}
}
