// Command bench measures what the Bipsync provider costs a Terraform or OpenTofu run: refresh exchanges (each one
// revokes the previous tokens, so fewer is safer as well as faster), wall time next to the engine alone and to a
// do-nothing provider of the same shape (the floor), the added time of many chains behind a slow server, the
// provider's peak memory, and 1 to 8 runners on separate (simulated) machines sharing one chain through a token store.
// It builds the provider and the floor, serves the fake Bipsync server in process, drives a
// real engine through a dev_overrides CLI configuration, runs the Go benchmarks of the token store and the token
// client, and prints one markdown report:
//
//	go run ./internal/tools/bench                     # or: make bench
//	go run ./internal/tools/bench -engine terraform -rounds 9
//	go run ./internal/tools/bench -only scale -profile /tmp/prof   # then: go tool pprof -top /tmp/prof/bipsync/*/*.pprof
//
// Progress goes to stderr, the report to stdout. Nothing leaves the machine: the fake listens on 127.0.0.1 and
// the engine needs no init (the provider comes from dev_overrides, terraform_data is built in).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
)

// options are the command-line flags.
type options struct {
	engine       string
	rounds       int
	scaleRounds  int
	runnerRounds int
	// runnerCounts are the numbers of runners sharing one chain in the runners section.
	runnerCounts []int
	chains       int
	latency      time.Duration
	dueSlack     time.Duration
	only         map[string]bool
	keep         bool
	verbose      bool
	profileDir   string
	env          envList
}

// envList collects repeated -env flags.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }

func (e *envList) Set(kv string) error {
	if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
		return fmt.Errorf("%q: want KEY=VALUE", kv)
	}
	*e = append(*e, kv)
	return nil
}

// sections are the parts of the report, in order.
var sections = []string{"exchanges", "overhead", "scale", "runners", "go"}

func main() {
	var (
		o    options
		only string
	)
	flag.StringVar(&o.engine, "engine", "tofu", "engine to drive: tofu (OpenTofu "+"built and cached by ./internal/tools/engine) or terraform (>= 1.11 on PATH)")
	flag.IntVar(&o.rounds, "rounds", 20, "interleaved rounds of the overhead comparison (plus one warm-up round)")
	flag.IntVar(&o.scaleRounds, "scale-rounds", 5, "rounds of the scale runs, each at 0 latency and at -latency")
	flag.IntVar(&o.runnerRounds, "runner-rounds", 3, "due rounds of each runners configuration (after the round that starts the chain)")
	runners := flag.String("runners", "1,2,4,8", "comma-separated numbers of runners on one chain in the runners section (the first is the baseline)")
	flag.IntVar(&o.chains, "chains", 200, "independent chains in the scale runs")
	flag.DurationVar(&o.latency, "latency", 50*time.Millisecond, "latency the fake server adds to every request in the scale runs")
	flag.DurationVar(&o.dueSlack, "due-slack", 20*time.Second, "how long a token stays reusable in the due-token run; the run waits this long for it to fall due")
	flag.StringVar(&only, "only", strings.Join(sections, ","), "comma-separated sections to run: "+strings.Join(sections, ", "))
	flag.BoolVar(&o.keep, "keep", false, "keep the working directories (their path is printed)")
	flag.BoolVar(&o.verbose, "v", false, "copy the engine's output to stderr")
	flag.Var(&o.env, "env", "extra `KEY=VALUE` for every engine command and so every provider, floor included (repeatable), e.g. TF_LOG_SDK_FRAMEWORK=off")
	flag.StringVar(&o.profileDir, "profile", "", "write a CPU profile of every provider process into `DIR`/{bipsync,floor}/<run>/ (the provider is built from ./internal/tools/bench/profiled); merge runs with go tool pprof -top DIR/bipsync/*/*.pprof")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./internal/tools/bench [flags]\n\n"+
			"Builds the provider and a do-nothing floor provider, drives a real engine against an in-process fake\n"+
			"Bipsync server, and prints a markdown report on stdout.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	var err error
	if o.only, err = parseOnly(only); err == nil {
		if o.runnerCounts, err = parseCounts(*runners); err == nil {
			err = o.validate()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// parseCounts reads -runners: positive numbers, comma-separated.
func parseCounts(s string) ([]int, error) {
	var ns []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-runners %q: want numbers of runners such as 1,2,4,8", s)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

func parseOnly(s string) (map[string]bool, error) {
	m := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		known := false
		for _, k := range sections {
			known = known || k == name
		}
		if !known {
			return nil, fmt.Errorf("unknown section %q in -only: want some of %s", name, strings.Join(sections, ", "))
		}
		m[name] = true
	}
	if len(m) == 0 {
		return nil, errors.New("-only names no section")
	}
	return m, nil
}

func (o options) validate() error {
	switch {
	case o.engine != "tofu" && o.engine != "terraform":
		return fmt.Errorf("-engine %q: want tofu or terraform", o.engine)
	case o.rounds < 1, o.scaleRounds < 1, o.runnerRounds < 1:
		return errors.New("-rounds, -scale-rounds and -runner-rounds must be at least 1")
	case o.chains < 1:
		return errors.New("-chains must be at least 1")
	case o.latency < 0:
		return errors.New("-latency must not be negative")
	case o.dueSlack < 5*time.Second:
		return errors.New("-due-slack must be at least 5s: the second run must finish within it")
	}
	return nil
}

// run runs the selected sections and writes the report to out. A failed section is reported in place and makes
// run fail at the end, after the other sections have run.
func run(ctx context.Context, o options, out, log io.Writer) error {
	b, err := setup(ctx, o, log)
	if err != nil {
		return err
	}
	defer b.cleanup()

	var (
		report strings.Builder
		failed []string
	)
	steps := []struct {
		name string
		fn   func(context.Context, io.Writer) error
	}{
		{"exchanges", b.exchanges},
		{"overhead", b.overhead},
		{"scale", b.scale},
		{"runners", b.runners},
		{"go", b.goBenchmarks},
	}
	start := time.Now()
	for _, s := range steps {
		if !o.only[s.name] {
			continue
		}
		t := time.Now()
		fmt.Fprintf(log, "==> %s\n", s.name)
		if err := s.fn(ctx, &report); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed = append(failed, s.name)
			fmt.Fprintf(&report, "\n**The %s section failed:**\n\n```\n%v\n```\n", s.name, err)
		}
		fmt.Fprintf(log, "    %s: %s\n", s.name, time.Since(t).Round(time.Second))
	}
	b.writeHeader(out, time.Since(start))
	if _, err := io.WriteString(out, report.String()); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed sections: %s", strings.Join(failed, ", "))
	}
	return nil
}
