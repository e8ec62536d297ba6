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
