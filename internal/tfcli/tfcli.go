// Package tfcli finds the Terraform and OpenTofu command-line programs that
// the project drives (acceptance tests, the demo, the benchmarks, schema export
// for the docs and formatting checks of the examples), tells which engine a
// binary is, and writes what every one of those runs needs: the environment,
// an empty CLI configuration, and a dev_overrides CLI configuration that
// serves a local build of the provider. It is the one copy of these rules.
//
// OpenTofu is the engine the project is tested against. Its module cannot be
// installed with `go install` (its go.mod carries a replace directive), so it
// is built once from the module source fetched through the Go module proxy and
// kept in a per-user cache. A machine that has only Go can therefore run the
// whole test suite.
package tfcli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/provideraddr"
)

const (
	// TofuVersion is the OpenTofu release the provider is tested against.
	TofuVersion = "1.12.6"

	// TofuModule is the Go module OpenTofu is built from.
	TofuModule = "github.com/opentofu/opentofu"

	// MinTerraformVersion is the oldest Terraform that supports everything
	// the provider offers: ephemeral resources (1.10) and write-only
	// attributes (1.11).
	MinTerraformVersion = "1.11.0"

	// CacheDirEnv overrides the cache directory.
	CacheDirEnv = "BIPSYNC_CACHE_DIR"

	// TofuEnv names an OpenTofu binary to use instead of the cached build.
	TofuEnv = "BIPSYNC_TOFU"
)

// ErrNoTerraform reports that no usable terraform is on PATH. It is not a
// failure of the harness: the Terraform leg of the tests is optional.
var ErrNoTerraform = errors.New("no terraform >= " + MinTerraformVersion + " on PATH")

// Config carries everything the lookups depend on, so tests can run them in
// parallel without touching the process environment.
type Config struct {
	// CacheDir holds the OpenTofu build and the empty CLI configuration
	// file. Empty means DefaultCacheDir.
	CacheDir string

	// Env is the environment for lookups (BIPSYNC_TOFU, PATH) and for every
	// command started. Nil means os.Environ().
	Env []string

	// Log receives progress lines. Nil discards them.
	Log io.Writer

	// Build produces an OpenTofu binary at dst. Nil means BuildTofu.
	Build func(ctx context.Context, cfg Config, dst string) error
}

func (c Config) env() []string {
	if c.Env == nil {
		return os.Environ()
	}
	return c.Env
}

func (c Config) getenv(key string) string {
	// The last entry wins, as it does for exec.Cmd.Env.
	env := c.env()
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

func (c Config) log() io.Writer {
	if c.Log == nil {
		return io.Discard
	}
	return c.Log
}

func (c Config) cacheDir() (string, error) {
	if c.CacheDir != "" {
		return filepath.Abs(c.CacheDir)
	}
	return DefaultCacheDir(c.getenv)
}

// DefaultCacheDir is $BIPSYNC_CACHE_DIR, or terraform-provider-bipsync under
// the user cache directory.
func DefaultCacheDir(getenv func(string) string) (string, error) {
	if d := getenv(CacheDirEnv); d != "" {
		return filepath.Abs(d)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("locate the user cache directory (set %s): %w", CacheDirEnv, err)
	}
	return filepath.Join(base, "terraform-provider-bipsync"), nil
}

// TofuPath is where the cached OpenTofu build lives under cacheDir.
func TofuPath(cacheDir string) string {
	return filepath.Join(cacheDir, "tofu-"+TofuVersion, exeName("tofu"))
}

// CachedTofu returns the cached OpenTofu build, if there is one, without
// building it: for callers that would rather skip than wait minutes.
func CachedTofu(cfg Config) (string, bool) {
	dir, err := cfg.cacheDir()
	if err != nil {
		return "", false
	}
	bin := TofuPath(dir)
	return bin, executable(bin) == nil
}

// EmptyCLIConfig writes an empty CLI configuration file under dir and returns
// its path. Engines are always run with TF_CLI_CONFIG_FILE pointing at it: a
// variable naming a missing file makes them print a warning on stdout, which
// breaks every caller that parses their output, and a user's real
// configuration (mirrors, dev_overrides, credentials) must not leak into tests.
func EmptyCLIConfig(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	p := filepath.Join(dir, "empty.tfrc")
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
		return p, nil
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		return "", fmt.Errorf("write empty CLI configuration: %w", err)
	}
	return p, nil
}

// EngineEnv returns env fit for an engine run the project drives, with extra
// appended last. It drops what would change what a run does: the user's TF_*
// settings (logging, extra CLI arguments, input variables, another CLI
// configuration), the provider's BIPSYNC_* settings, and CI (on which the
// provider warns about file token stores). It adds the CLI configuration
// cliConfig, no calls to HashiCorp's checkpoint service, and no prompts.
func EngineEnv(env []string, cliConfig string, extra ...string) []string {
	out := make([]string, 0, len(env)+4+len(extra))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "TF_"), strings.HasPrefix(k, "BIPSYNC_"), k == "CI", k == "CHECKPOINT_DISABLE":
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "TF_CLI_CONFIG_FILE="+cliConfig, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_INPUT=0")
	return append(out, extra...)
}

// ProviderBinary is the file name of the provider's binary that engines look
// for in a plugin or dev_overrides directory.
func ProviderBinary() string {
	return exeName(provideraddr.Binary)
}

// DevOverrides returns a CLI configuration that serves each provider source
// in overrides (source address → directory holding its binary) from that
// directory, and installs any other provider from its registry. The engine
// then needs no init for those providers, and says at every command that an
// override is in effect.
func DevOverrides(overrides map[string]string) string {
	var b strings.Builder
	b.WriteString("provider_installation {\n  dev_overrides {\n")
	for _, source := range slices.Sorted(maps.Keys(overrides)) {
		fmt.Fprintf(&b, "    %s = %s\n", quote(source), quote(overrides[source]))
	}
	b.WriteString("  }\n  direct {}\n}\n")
	return b.String()
}

// MirrorConfig returns a CLI configuration whose only installation source is
// the filesystem mirror dir (see MirrorBinary): `init` installs from it and
// asks no registry, so a provider missing there fails as it would offline.
func MirrorConfig(dir string) string {
	return "provider_installation {\n  filesystem_mirror {\n    path = " + quote(dir) + "\n  }\n}\n"
}

// WriteDevOverrides writes a CLI configuration that serves the provider
// (provideraddr.Source) from the build in dir, plus any other overrides.
func WriteDevOverrides(path, dir string, others map[string]string) error {
	overrides := map[string]string{provideraddr.Source: dir}
	maps.Copy(overrides, others)
	if err := os.WriteFile(path, []byte(DevOverrides(overrides)), 0o600); err != nil {
		return fmt.Errorf("write the CLI configuration: %w", err)
	}
	return nil
}

// quote writes s as a string of the CLI configuration's HCL: JSON's escapes
// are HCL's.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Tofu returns the absolute path of a usable OpenTofu: $BIPSYNC_TOFU if set,
// else the cached build if it reports TofuVersion, else a fresh build into
// the cache.
func Tofu(ctx context.Context, cfg Config) (string, error) {
	dir, err := cfg.cacheDir()
	if err != nil {
		return "", err
	}
	cliConfig, err := EmptyCLIConfig(dir)
	if err != nil {
		return "", err
	}

	if p := cfg.getenv(TofuEnv); p != "" {
		bin, err := lookPath(p, cfg.getenv("PATH"))
		if err != nil {
			return "", fmt.Errorf("%s=%s: %w", TofuEnv, p, err)
		}
		// An explicit choice is honoured even when it is another release;
		// the warning keeps a surprising test result explainable.
		e, err := identify(ctx, cfg, bin, cliConfig)
		if err == nil && !e.OpenTofu {
			err = errors.New("not OpenTofu: " + e.String())
		}
		if err != nil {
			return "", fmt.Errorf("%s=%s: %w", TofuEnv, p, err)
		}
		if e.Version != TofuVersion {
			fmt.Fprintf(cfg.log(), "warning: %s is OpenTofu %s; the project is tested with %s\n", bin, e.Version, TofuVersion)
		}
		return bin, nil
	}

	bin := TofuPath(dir)
	if ok, _ := isTofu(ctx, cfg, bin, cliConfig); ok {
		return bin, nil
	}

	unlock, err := lockFile(ctx, filepath.Join(dir, "tofu-"+TofuVersion+".lock"), func() {
		fmt.Fprintf(cfg.log(), "waiting for another process building OpenTofu %s into %s\n", TofuVersion, filepath.Dir(bin))
	})
	if err != nil {
		return "", err
	}
	defer unlock()

	// Whoever held the lock before us may have finished the build.
	ok, why := isTofu(ctx, cfg, bin, cliConfig)
	if ok {
		return bin, nil
	}
	if why != nil && !errors.Is(why, os.ErrNotExist) {
		fmt.Fprintf(cfg.log(), "rebuilding the cached OpenTofu: %v\n", why)
	}

	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(bin), err)
	}
	fmt.Fprintf(cfg.log(), "building OpenTofu %s from the Go module proxy into %s (first run only, takes a few minutes)\n", TofuVersion, filepath.Dir(bin))
	start := time.Now()

	// Build under a temporary name and rename, so that an interrupted build
	// never leaves a half-written binary where the next run would trust it.
	tmp, err := os.CreateTemp(filepath.Dir(bin), ".tofu-*"+filepath.Ext(bin))
	if err != nil {
		return "", fmt.Errorf("create temporary file for the build: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName) // a no-op after the rename

	build := cfg.Build
	if build == nil {
		build = BuildTofu
	}
	if err := build(ctx, cfg, tmpName); err != nil {
		return "", fmt.Errorf("build OpenTofu %s: %w", TofuVersion, err)
	}
	if ok, why := isTofu(ctx, cfg, tmpName, cliConfig); !ok {
		return "", fmt.Errorf("the OpenTofu just built is not usable: %w", why)
	}
	if err := os.Rename(tmpName, bin); err != nil {
		return "", fmt.Errorf("move the OpenTofu build into place: %w", err)
	}
	fmt.Fprintf(cfg.log(), "built OpenTofu %s in %s: %s\n", TofuVersion, time.Since(start).Round(time.Second), bin)
	return bin, nil
}

// isTofu reports whether bin runs and says it is OpenTofu TofuVersion. The
// error says why not.
func isTofu(ctx context.Context, cfg Config, bin, cliConfig string) (bool, error) {
	if _, err := os.Stat(bin); err != nil {
		return false, err
	}
	e, err := identify(ctx, cfg, bin, cliConfig)
	if err != nil {
		return false, err
	}
	if !e.OpenTofu || e.Version != TofuVersion {
		return false, fmt.Errorf("%s is %s, not OpenTofu v%s", bin, e, TofuVersion)
	}
	return true, nil
}

// Engine is an engine binary and what it says it is.
type Engine struct {
	Path string
	// OpenTofu tells OpenTofu from Terraform.
	OpenTofu bool
	// Version is the version without the "v", such as "1.12.6". A
	// development build says so: "1.12.6-dev".
	Version string
}

// Name is "OpenTofu" or "Terraform".
func (e Engine) Name() string {
	if e.OpenTofu {
		return "OpenTofu"
	}
	return "Terraform"
}

// String is what the engine's `version` prints first: "OpenTofu v1.12.6".
func (e Engine) String() string {
	return e.Name() + " v" + e.Version
}

// Registry hosts: where Terraform and OpenTofu resolve a source address
// without a host, such as "bipsync/bipsync".
const (
	TerraformRegistry = "registry.terraform.io"
	OpenTofuRegistry  = "registry.opentofu.org"
)

// RegistryHost is the registry on which the engine resolves a source address
// without a host.
func (e Engine) RegistryHost() string {
	if e.OpenTofu {
		return OpenTofuRegistry
	}
	return TerraformRegistry
}

// MirrorBinary is where a filesystem mirror in the unpacked layout keeps the
// binary of provider source (such as "bipsync/bipsync") at version, for host
// and this platform. `init` installs a provider from such a directory without
// asking its registry.
func MirrorBinary(dir, host, source, version string) string {
	name := source[strings.LastIndex(source, "/")+1:]
	return filepath.Join(dir, host, filepath.FromSlash(source), version, runtime.GOOS+"_"+runtime.GOARCH,
		exeName("terraform-provider-"+name+"_v"+version))
}

// LocalPluginDir is the plugin directory both engines search like a
// filesystem mirror when the CLI configuration has no provider_installation
// block: ~/.terraform.d/plugins, or %APPDATA%\terraform.d\plugins on Windows.
func LocalPluginDir() (string, error) {
	if runtime.GOOS == "windows" {
		if d := os.Getenv("APPDATA"); d != "" {
			return filepath.Join(d, "terraform.d", "plugins"), nil
		}
		return "", errors.New("APPDATA is not set")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".terraform.d", "plugins"), nil
}

// Identify runs `bin version` and tells which engine bin is.
func Identify(ctx context.Context, cfg Config, bin string) (Engine, error) {
	dir, err := cfg.cacheDir()
	if err != nil {
		return Engine{}, err
	}
	cliConfig, err := EmptyCLIConfig(dir)
	if err != nil {
		return Engine{}, err
	}
	return identify(ctx, cfg, bin, cliConfig)
}

func identify(ctx context.Context, cfg Config, bin, cliConfig string) (Engine, error) {
	out, err := run(ctx, cfg, cliConfig, bin, "version")
	if err != nil {
		return Engine{}, err
	}
	e, err := parseVersion(out)
	if err != nil {
		return Engine{}, fmt.Errorf("%s version: %w", bin, err)
	}
	e.Path = bin
	return e, nil
}

// parseVersion reads the output of `version`, whose first line is "OpenTofu
// v1.12.6" or "Terraform v1.11.4" (after a warning, if the engine has one to
// give first). Only this line tells the two engines apart: a tofu installed
// under the name terraform answers `version -json` in the same shape as
// Terraform.
func parseVersion(out []byte) (Engine, error) {
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		for _, e := range []Engine{{OpenTofu: true}, {}} {
			if v, ok := strings.CutPrefix(line, e.Name()+" v"); ok && v != "" && !strings.ContainsRune(v, ' ') {
				e.Version = v
				return e, nil
			}
		}
	}
	return Engine{}, fmt.Errorf("no line %q or %q in %q", "OpenTofu v…", "Terraform v…", truncate(out, 200))
}

// Terraform returns the absolute path of a terraform on PATH whose version
// is at least MinTerraformVersion, or an error wrapping ErrNoTerraform.
func Terraform(ctx context.Context, cfg Config) (string, error) {
	bin, err := lookPath("terraform", cfg.getenv("PATH"))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoTerraform, err)
	}
	e, err := Identify(ctx, cfg, bin)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoTerraform, err)
	}
	if e.OpenTofu {
		return "", fmt.Errorf("%w: %s is not Terraform", ErrNoTerraform, bin)
	}
	ok, err := AtLeast(e.Version, MinTerraformVersion)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrNoTerraform, bin, err)
	}
	if !ok {
		return "", fmt.Errorf("%w: %s is Terraform %s", ErrNoTerraform, bin, e.Version)
	}
	return bin, nil
}

// AtLeast reports whether version v is at least floor. Both are
// MAJOR.MINOR.PATCH with an optional prerelease suffix. A prerelease counts
// as older than the release it leads to; prereleases of one release are not
// ordered among themselves, which no caller needs.
func AtLeast(v, floor string) (bool, error) {
	vn, vpre, err := parseSemver(v)
	if err != nil {
		return false, err
	}
	mn, mpre, err := parseSemver(floor)
	if err != nil {
		return false, err
	}
	for i := range vn {
		if vn[i] != mn[i] {
			return vn[i] > mn[i], nil
		}
	}
	return vpre == "" || mpre != "", nil
}

func parseSemver(s string) ([3]int, string, error) {
	var n [3]int
	core, pre, _ := strings.Cut(strings.TrimPrefix(s, "v"), "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return n, "", fmt.Errorf("version %q is not MAJOR.MINOR.PATCH", s)
	}
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return n, "", fmt.Errorf("version %q is not MAJOR.MINOR.PATCH", s)
		}
		n[i] = x
	}
	return n, pre, nil
}

// run starts an engine with the harness's engine environment and returns
// its stdout. Engines are quick to answer `version`; the timeout only guards
// against a binary that waits for input or hangs.
func run(ctx context.Context, cfg Config, cliConfig, bin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = EngineEnv(cfg.env(), cliConfig)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, truncate(stderr.Bytes(), 500))
	}
	return out, nil
}

// lookPath resolves name like a shell would with the given PATH, and makes
// the result absolute: the harness hands it to tests that run elsewhere.
func lookPath(name, path string) (string, error) {
	if strings.ContainsRune(name, os.PathSeparator) || strings.ContainsRune(name, '/') {
		p, err := filepath.Abs(name)
		if err != nil {
			return "", err
		}
		if err := executable(p); err != nil {
			return "", err
		}
		return p, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, exeName(name))
		if executable(p) == nil {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("%s not found on PATH", name)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory", p)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", p)
	}
	return nil
}

func exeName(name string) string {
	if runtime.GOOS == "windows" && filepath.Ext(name) == "" {
		return name + ".exe"
	}
	return name
}

func truncate(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
