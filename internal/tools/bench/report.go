package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// table is a markdown table whose columns are padded to line up in a terminal too.
type table struct {
	header []string
	rows   [][]string
}

func newTable(header ...string) *table { return &table{header: header} }

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) {
	widths := make([]int, len(t.header))
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], utf8.RuneCountInString(c))
			}
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i := range widths {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			fmt.Fprintf(&b, " %s%s |", c, strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)))
		}
		fmt.Fprintln(w, b.String())
	}
	line(t.header)
	sep := make([]string, len(widths))
	for i, n := range widths {
		sep[i] = strings.Repeat("-", max(n, 3))
	}
	fmt.Fprintln(w, "|-"+strings.Join(sep, "-|-")+"-|")
	for _, r := range t.rows {
		line(r)
	}
}

// median of ds; zero for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// seconds formats d as seconds with two decimals.
func seconds(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// spread formats the median and range of ds.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%s (%.2f–%.2f)", seconds(median(ds)), slices.Min(ds).Seconds(), slices.Max(ds).Seconds())
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

func times(r float64) string {
	if math.IsNaN(r) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", r)
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// target is one goal of the benchmark and whether the run met it.
type target struct {
	name     string
	measured string
	goal     string
	met      bool
}

// benchNumber formats a per-op figure of a Go benchmark.
func benchNumber(v float64) string {
	switch {
	case v < 0:
		return "n/a"
	case v >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// summarizeInts gives the one value when all are equal ("200 in every run"), else them all.
func summarizeInts(ns []int) string {
	if len(ns) > 0 && slices.Min(ns) == slices.Max(ns) {
		return fmt.Sprintf("%d in every run", ns[0])
	}
	return joinInts(ns)
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
