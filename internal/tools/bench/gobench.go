package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// goBenchPackages are the packages whose Go benchmarks `make bench` runs.
var goBenchPackages = []string{"./internal/tokenstore", "./internal/bipsync"}

// goBench is one line of `go test -bench` output.
type goBench struct {
	Pkg         string
	Name        string // without the "Benchmark" prefix and the GOMAXPROCS suffix
	N           int64
	NsPerOp     float64
	BytesPerOp  float64 // -1 when not reported
	AllocsPerOp float64 // -1 when not reported
}

// runGoBench runs the Go benchmarks of pkgs in the module at dir and returns the parsed results and the raw output.
func runGoBench(ctx context.Context, dir string, pkgs []string) ([]goBench, string, error) {
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "1"}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return parseGoBench(out.String()), out.String(), err
}

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+(\d+)\s+([\d.]+) ns/op(.*)$`)

// parseGoBench reads the result lines of `go test -bench -benchmem` output. A "pkg:" line names the package of the
// lines after it.
func parseGoBench(out string) []goBench {
	var (
		res []goBench
		pkg string
	)
	s := bufio.NewScanner(strings.NewReader(out))
	for s.Scan() {
		line := s.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		ns, _ := strconv.ParseFloat(m[3], 64)
		res = append(res, goBench{
			Pkg:         pkg,
			Name:        m[1],
			N:           n,
			NsPerOp:     ns,
			BytesPerOp:  metric(m[4], "B/op"),
			AllocsPerOp: metric(m[4], "allocs/op"),
		})
	}
	return res
}

// metric finds "<value> <unit>" in the rest of a benchmark line, or returns -1.
func metric(rest, unit string) float64 {
	f := strings.Fields(rest)
	for i := 1; i < len(f); i++ {
		if f[i] == unit {
			if v, err := strconv.ParseFloat(f[i-1], 64); err == nil {
				return v
			}
		}
	}
	return -1
}

// goBenchmarks runs the Go benchmarks of the token store and the token client.
func (b *bench) goBenchmarks(ctx context.Context, w io.Writer) error {
	res, out, err := runGoBench(ctx, b.root, goBenchPackages)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "### Go benchmarks")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "`go test -run '^$' -bench . -benchmem %s`\n\n", strings.Join(goBenchPackages, " "))
	if len(res) == 0 && err == nil {
		fmt.Fprintln(w, "No benchmarks found.")
		return nil
	}
	t := newTable("Package", "Benchmark", "ns/op", "B/op", "allocs/op")
	for _, r := range res {
		t.add(strings.TrimPrefix(r.Pkg, modulePath+"/"), r.Name, benchNumber(r.NsPerOp), benchNumber(r.BytesPerOp), benchNumber(r.AllocsPerOp))
	}
	if len(res) > 0 {
		t.write(w)
	}
	if err != nil {
		return fmt.Errorf("%w\n%s", err, tail(out, 30))
	}
	return nil
}

// modulePath is trimmed from package names in the report.
const modulePath = "github.com/bipsync/terraform-provider-bipsync"
