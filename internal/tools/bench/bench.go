package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
	"github.com/bipsync/terraform-provider-bipsync/internal/tools/bench/internal/cpuprofile"
)

// bench holds what every section shares: the engine, the two provider builds and a scratch directory.
type bench struct {
	opts    options
	log     io.Writer
	eng     *engine
	root    string // module root
	load    string // load average when the run started
	tmp     string
	seq     int
	targets []target

	providerBin string // the Bipsync provider, in a directory of its own
	providerCLI string // CLI configuration with dev_overrides pointing at it
	floorBin    string
	floorCLI    string
}

func setup(ctx context.Context, o options, log io.Writer) (*bench, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return nil, err
	}
	eng, err := findEngine(ctx, o.engine, log)
	if err != nil {
		return nil, err
	}
	if o.verbose {
		eng.verbose = log
	}
	tmp, err := os.MkdirTemp("", "bipsync-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{opts: o, log: log, eng: eng, root: root, tmp: tmp, load: loadAverage()}
	fmt.Fprintf(log, "==> building the provider and the floor in %s\n", tmp)
	providerPkg := "."
	if o.profileDir != "" {
		b.opts.profileDir, err = filepath.Abs(o.profileDir)
		if err != nil {
			b.cleanup()
			return nil, err
		}
		providerPkg = "./internal/tools/bench/profiled"
	}
	if b.providerBin, b.providerCLI, err = b.build(ctx, "provider", providerPkg); err == nil {
		b.floorBin, b.floorCLI, err = b.build(ctx, "floor", "./internal/tools/bench/floor")
	}
	if err != nil {
		b.cleanup()
		return nil, err
	}
	return b, nil
}

// build compiles pkg as terraform-provider-bipsync in a directory of its own, and writes a CLI configuration whose
// dev_overrides point there.
func (b *bench) build(ctx context.Context, name, pkg string) (bin, cliConfig string, err error) {
	dir := filepath.Join(b.tmp, name)
	bin = filepath.Join(dir, tfcli.ProviderBinary())
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Dir = b.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	cliConfig = filepath.Join(b.tmp, name+".tfrc")
	if err := tfcli.WriteDevOverrides(cliConfig, dir, nil); err != nil {
		return "", "", err
	}
	return bin, cliConfig, nil
}

func (b *bench) cleanup() {
	if b.opts.keep {
		fmt.Fprintf(b.log, "    kept %s\n", b.tmp)
		return
	}
	_ = os.RemoveAll(b.tmp)
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the benchmark inside the provider's module")
	}
	return filepath.Dir(gomod), nil
}

// provider says which binary a workspace runs.
type provider int

const (
	engineOnly provider = iota // no provider: one terraform_data
	floorProvider
	bipsyncProvider
)

// workspace creates a fresh working directory for cfg. The client secret reaches the provider through the
// environment, so no file holds it.
func (b *bench) workspace(name string, p provider, cfg tfConfig, f *fake, seeds []string) (*workspace, error) {
	b.seq++
	dir := filepath.Join(b.tmp, "ws", fmt.Sprintf("%03d-%s", b.seq, name))
	cliConfig := b.providerCLI
	if p == floorProvider {
		cliConfig = b.floorCLI
	}
	var extra []string
	if p != engineOnly {
		cfg.StorePath = filepath.Join(dir, "store")
		cfg.BaseURL = "http://127.0.0.1:9" // the floor never connects
		if f != nil {
			cfg.BaseURL = f.url
			extra = append(extra, "BIPSYNC_CLIENT_SECRET="+f.secret)
		}
		if b.opts.profileDir != "" {
			// One directory per run, so that a glob can merge the runs of interest.
			prof := filepath.Join(b.opts.profileDir, providerName(p), filepath.Base(dir))
			if err := os.MkdirAll(prof, 0o700); err != nil {
				return nil, err
			}
			extra = append(extra, cpuprofile.DirEnv+"="+prof)
		}
		if n := cfg.seedCount(); len(seeds) < n {
			return nil, fmt.Errorf("%s needs %d seeds, got %d", name, n, len(seeds))
		}
	} else {
		cfg = tfConfig{}
		seeds = nil
	}
	extra = append(extra, b.opts.env...)
	return newWorkspace(dir, cfg.hcl(), seeds, tfcli.EngineEnv(os.Environ(), cliConfig, extra...))
}

// planApply runs `plan -out`, then applies that plan, as CI does: two engine commands, each starting provider
// processes of its own, so whatever one walk leaves for the next crosses a process boundary.
func (b *bench) planApply(ctx context.Context, w *workspace) (plan, apply timing, err error) {
	if plan, err = b.eng.run(ctx, w, "plan", "-out=tfplan"); err != nil {
		return plan, timing{}, err
	}
	apply, err = b.eng.run(ctx, w, "apply", "tfplan")
	return plan, apply, err
}

// writeHeader writes the title, the machine and the summary of targets.
func (b *bench) writeHeader(w io.Writer, took time.Duration) {
	fmt.Fprintln(w, "## Benchmark report")
	fmt.Fprintln(w)
	t := newTable("Machine", "")
	t.add("CPUs (nproc)", strconv.Itoa(runtime.NumCPU()))
	t.add("CPU model", cpuModel())
	t.add("Memory", memTotal())
	t.add("OS", runtime.GOOS+"/"+runtime.GOARCH+" "+kernelRelease())
	t.add("Go", goVersion())
	t.add("Engine", fmt.Sprintf("%s %s (`-engine %s`)", b.eng.name, b.eng.version, b.opts.engine))
	t.add("Run", fmt.Sprintf("%s, took %s", time.Now().UTC().Format("2006-01-02 15:04 MST"), took.Round(time.Second)))
	t.add("Load average at start (1, 5, 15 min)", b.load)
	if len(b.opts.env) > 0 {
		t.add("Extra environment (-env)", "`"+b.opts.env.String()+"`")
	}
	if b.opts.profileDir != "" {
		t.add("Provider build", "**profiled** (CPU profiles in "+b.opts.profileDir+"; timings include the profiler)")
	}
	t.write(w)
	if len(b.targets) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "### Targets")
	fmt.Fprintln(w)
	t = newTable("Target", "Goal", "Measured", "Met")
	for _, g := range b.targets {
		t.add(g.name, g.goal, g.measured, yesNo(g.met))
	}
	t.write(w)
}

func (b *bench) addTarget(name, goal, measured string, met bool) {
	b.targets = append(b.targets, target{name: name, goal: goal, measured: measured, met: met})
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		return v
	}
	return "unknown"
}

func memTotal() string {
	f := strings.Fields(procField("/proc/meminfo", "MemTotal"))
	if len(f) == 2 && f[1] == "kB" {
		if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "unknown"
}

// loadAverage tells the reader how busy the machine was: other work on it widens the spread of wall times.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], ", ")
	}
	return "unknown"
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// goVersion is the toolchain on PATH, which built the provider; `go run` built this program with it too.
func goVersion() string {
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if v := strings.TrimSpace(string(out)); err == nil && v != "" {
		return v
	}
	return runtime.Version()
}

// procField returns the value of the first "key : value" line of a /proc file.
func procField(path, key string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return fieldValue(b, key)
}

func fieldValue(b []byte, key string) string {
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
