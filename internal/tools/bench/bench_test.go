package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
)

func TestParseGoBench(t *testing.T) {
	t.Parallel()
	out := `goos: linux
goarch: amd64
pkg: github.com/bipsync/terraform-provider-bipsync/internal/tokenstore
cpu: Intel(R) Xeon(R) Processor
BenchmarkFileStore_Save-2         	    1234	    812345 ns/op	    4096 B/op	      37 allocs/op
BenchmarkFileStore_Load/small-2   	  100000	     10.50 ns/op	       0 B/op	       0 allocs/op
BenchmarkLock-fcntl-2             	   50000	     23456 ns/op
PASS
ok  	github.com/bipsync/terraform-provider-bipsync/internal/tokenstore	3.2s
pkg: github.com/bipsync/terraform-provider-bipsync/internal/bipsync
BenchmarkDecode 	  200000	      5000 ns/op	     512 B/op	       9 allocs/op
ok  	github.com/bipsync/terraform-provider-bipsync/internal/bipsync	1.1s
`
	const store = "github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
	const client = "github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	want := []goBench{
		{Pkg: store, Name: "FileStore_Save", N: 1234, NsPerOp: 812345, BytesPerOp: 4096, AllocsPerOp: 37},
		{Pkg: store, Name: "FileStore_Load/small", N: 100000, NsPerOp: 10.5, BytesPerOp: 0, AllocsPerOp: 0},
		{Pkg: store, Name: "Lock-fcntl", N: 50000, NsPerOp: 23456, BytesPerOp: -1, AllocsPerOp: -1},
		{Pkg: client, Name: "Decode", N: 200000, NsPerOp: 5000, BytesPerOp: 512, AllocsPerOp: 9},
	}
	got := parseGoBench(out)
	if !slices.Equal(got, want) {
		t.Errorf("got %+v; want %+v", got, want)
	}
}

func TestStatusKiB(t *testing.T) {
	t.Parallel()
	status := []byte("Name:\tterraform-provi\nVmPeak:\t 1300000 kB\nVmHWM:\t   49152 kB\nVmRSS:\t   40000 kB\nThreads:\t9\n")
	tests := []struct {
		field  string
		want   int64
		wantOK bool
	}{
		{"VmHWM", 49152, true},
		{"VmRSS", 40000, true},
		{"Threads", 0, false}, // no unit
		{"VmSwap", 0, false},  // absent
	}
	for _, tt := range tests {
		got, ok := statusKiB(status, tt.field)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("statusKiB(%s): got %d, %t; want %d, %t", tt.field, got, ok, tt.want, tt.wantOK)
		}
	}
}

// TestRSSWatcher_Scan runs the watcher over a fake /proc: it must read only processes of the watched executables,
// keep each one's highest mark, and still notice a process that ran the engine at the first scan (a fork) and the
// provider at the next (after exec).
func TestRSSWatcher_Scan(t *testing.T) {
	t.Parallel()
	proc := t.TempDir()
	const provider, engine, other = "/bin/provider", "/bin/tofu", "/usr/bin/bash"
	process := func(pid, exe string, hwm int) {
		t.Helper()
		dir := filepath.Join(proc, pid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, "exe")
		_ = os.Remove(link)
		if err := os.Symlink(exe, link); err != nil {
			t.Fatal(err)
		}
		status := fmt.Sprintf("Name:\tx\nVmHWM:\t%8d kB\n", hwm)
		if err := os.WriteFile(filepath.Join(dir, "status"), []byte(status), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	process("100", provider, 30000)
	process("101", other, 900000)
	process("102", engine, 80000) // the engine
	process("103", engine, 70000) // a fork of the engine, before exec
	if err := os.MkdirAll(filepath.Join(proc, "self"), 0o755); err != nil {
		t.Fatal(err)
	}

	w := newRSSWatcher(proc, map[string]string{provider: "provider", engine: "engine"}, time.Hour)
	w.scan()
	process("100", provider, 20000)  // the mark never falls in a real /proc, but the watcher keeps the highest anyway
	process("103", provider, 50000)  // the fork has exec'd the provider
	process("101", provider, 999999) // a pid found running something else is skipped for the rest of the watch
	process("102", engine, 90000)
	w.scan()

	got := w.result()
	want := map[string]peakRSS{
		"provider": {KiB: 50000, Processes: 2},
		"engine":   {KiB: 90000, Processes: 2},
	}
	if !maps.Equal(got, want) {
		t.Errorf("got %+v; want %+v", got, want)
	}
}

func TestWithLatency(t *testing.T) {
	t.Parallel()
	calls := make(chan struct{}, 2)
	h := withLatency(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls <- struct{}{}
		w.WriteHeader(http.StatusNoContent)
	}), 30*time.Millisecond)

	start := time.Now()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/oauth/token", nil))
	if took := time.Since(start); took < 30*time.Millisecond {
		t.Errorf("request took %s; want at least 30ms", took)
	}
	if rec.Code != http.StatusNoContent || len(calls) != 1 {
		t.Errorf("got status %d after %d handler calls; want 204 after 1", rec.Code, len(calls))
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slow := withLatency(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls <- struct{}{} }), time.Hour)
	slow.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil).WithContext(ctx))
	if len(calls) != 1 {
		t.Errorf("a request whose client gave up reached the handler")
	}

	if got := withLatency(h, 0); fmt.Sprintf("%p", got) != fmt.Sprintf("%p", h) {
		t.Errorf("zero latency should return the handler itself")
	}
}

// TestTFConfig_HCL parses every configuration the benchmark writes and checks what each one asks the engine for.
func TestTFConfig_HCL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cfg      tfConfig
		seeds    int
		contains []string
		blocks   []string // "type label label" of the top-level blocks, in order
		notInHCL []string
	}{
		{
			name:   "engine alone",
			cfg:    tfConfig{},
			seeds:  0,
			blocks: []string{"resource terraform_data use"},
		},
		{
			name:     "tokens on one chain",
			cfg:      tfConfig{BaseURL: "http://127.0.0.1:1", StorePath: "/s", Tokens: 10, SharedChain: true},
			seeds:    1,
			contains: []string{"count         = 10", "refresh_token = var.seeds[0]\n", "ephemeral = true", `path = "/s"`},
			blocks: []string{"terraform", "provider bipsync", "variable seeds", "ephemeral bipsync_access_token t",
				"resource terraform_data use"},
			notInHCL: []string{"min_validity", "client_secret"},
		},
		{
			name:     "grants then independent tokens",
			cfg:      tfConfig{BaseURL: "http://127.0.0.1:1", StorePath: "/s", Grants: 2, RotateBefore: "2h", Tokens: 3, MinValidity: "30s"},
			seeds:    5,
			contains: []string{`rotate_before = "2h"`, "refresh_token = var.seeds[2 + count.index]", `min_validity = "30s"`},
			blocks: []string{"terraform", "provider bipsync", "variable seeds", "resource bipsync_refresh_grant g",
				"ephemeral bipsync_access_token t", "resource terraform_data use"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := tt.cfg.hcl()
			f, diags := hclsyntax.ParseConfig([]byte(src), "main.tf", hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatalf("invalid HCL: %v\n%s", diags, src)
			}
			body, ok := f.Body.(*hclsyntax.Body)
			if !ok {
				t.Fatalf("got body of type %T; want *hclsyntax.Body", f.Body)
			}
			var blocks []string
			for _, b := range body.Blocks {
				blocks = append(blocks, strings.Join(append([]string{b.Type}, b.Labels...), " "))
			}
			if !slices.Equal(blocks, tt.blocks) {
				t.Errorf("blocks: got %q; want %q", blocks, tt.blocks)
			}
			for _, s := range tt.contains {
				if !strings.Contains(src, s) {
					t.Errorf("configuration lacks %q:\n%s", s, src)
				}
			}
			for _, s := range tt.notInHCL {
				if strings.Contains(src, s) {
					t.Errorf("configuration has %q:\n%s", s, src)
				}
			}
			if got := tt.cfg.seedCount(); got != tt.seeds && tt.cfg.BaseURL != "" {
				t.Errorf("seedCount: got %d; want %d", got, tt.seeds)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{3}, 3},
		{[]time.Duration{5, 1, 3}, 3},
		{[]time.Duration{4, 1, 3, 2}, 2}, // (2+3)/2 in integer nanoseconds
		{[]time.Duration{10, 30, 20, 40}, 25},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.in)
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v): got %d; want %d", tt.in, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("median reordered its argument: got %v; want %v", tt.in, in)
		}
	}
}

func TestSummarizeInts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []int
		want string
	}{
		{[]int{200, 200, 200}, "200 in every run"},
		{[]int{200, 199, 200}, "200, 199, 200"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := summarizeInts(tt.in); got != tt.want {
			t.Errorf("summarizeInts(%v): got %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestBenchNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   float64
		want string
	}{
		{-1, "n/a"},
		{0, "0"},
		{10.5, "10.50"},
		{6558149, "6558149"},
		{123.456, "123"},
	}
	for _, tt := range tests {
		if got := benchNumber(tt.in); got != tt.want {
			t.Errorf("benchNumber(%v): got %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestTable_Write(t *testing.T) {
	t.Parallel()
	tb := newTable("Run", "÷ floor")
	tb.add("plan", "1.05×")
	tb.add("a longer name", "n/a")
	var b strings.Builder
	tb.write(&b)
	want := "| Run           | ÷ floor |\n" +
		"|---------------|---------|\n" +
		"| plan          | 1.05×   |\n" +
		"| a longer name | n/a     |\n"
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestParseOnly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"exchanges,overhead,scale,go", []string{"exchanges", "go", "overhead", "scale"}, false},
		{" scale , go ", []string{"go", "scale"}, false},
		{"scale,fast", nil, true},
		{",", nil, true},
	}
	for _, tt := range tests {
		m, err := parseOnly(tt.in)
		var got []string
		for k := range m {
			got = append(got, k)
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) || (err != nil) != tt.wantErr {
			t.Errorf("parseOnly(%q): got %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestRun_Smoke drives the cached engine through a small overhead and scale run: the provider and the floor build,
// the dev_overrides configuration works, the fake counts the exchanges and the watcher finds the provider
// processes. It skips when the engine is not cached (it is never built from a test) and with -short.
func TestRun_Smoke(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("drives a real engine")
	}
	cache, err := tfcli.DefaultCacheDir(os.Getenv)
	if err != nil {
		t.Skip(err)
	}
	if _, err := os.Stat(tfcli.TofuPath(cache)); err != nil && os.Getenv(tfcli.TofuEnv) == "" {
		t.Skipf("no cached OpenTofu (run go run ./internal/tools/engine): %v", err)
	}
	o := options{engine: "tofu", rounds: 1, scaleRounds: 1, chains: 5, latency: 10 * time.Millisecond,
		dueSlack: 20 * time.Second, only: map[string]bool{"overhead": true, "scale": true}}
	var out, log strings.Builder
	if err := run(context.Background(), o, &out, &log); err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	report := out.String()
	for _, want := range []string{
		"| OpenTofu 1.12.6",
		"The Bipsync runs made 2.0 exchanges per round",
		"| 5 grants ",
		"| 5 ephemeral tokens ",
		"| 5 in every run ",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "| 0.0 MiB") {
		t.Errorf("a peak RSS of 0: the watcher found no provider process:\n%s", report)
	}
}

func TestParseCounts(t *testing.T) {
	t.Parallel()
	got, err := parseCounts("1, 2,8")
	if err != nil || !slices.Equal(got, []int{1, 2, 8}) {
		t.Errorf("parseCounts(\"1, 2,8\"): got (%v, %v); want [1 2 8]", got, err)
	}
	for _, bad := range []string{"", "1,,2", "0", "two", "-1"} {
		if _, err := parseCounts(bad); err == nil {
			t.Errorf("parseCounts(%q): no error", bad)
		}
	}
}
