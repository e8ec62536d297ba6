package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

const (
	// defaultParallelism is the engine's default -parallelism (both Terraform and OpenTofu).
	defaultParallelism = 10
	// scaleTarget bounds the added time as a multiple of the ideal.
	scaleTarget = 1.5
	// rssTargetKiB is the provider's peak resident set budget.
	rssTargetKiB = 64 << 10
	// rssPoll is how often the /proc watcher looks for provider processes.
	rssPoll = 20 * time.Millisecond
)

// scale runs many independent chains through `apply -auto-approve` (the plan walk and the apply walk in one
// command) at 0 latency and at the configured latency, interleaved, and reports the added time next to the ideal
// of chains/parallelism round trips, and the provider's peak resident set.
func (b *bench) scale(ctx context.Context, w io.Writer) error {
	n := b.opts.chains
	ideal := time.Duration(float64(b.opts.latency) * float64(n) / defaultParallelism)
	latencies := []time.Duration{0, b.opts.latency}
	t := newTable("Chains", "apply at 0 ms", fmt.Sprintf("apply at %s", b.opts.latency), "added", "ideal", "added ÷ ideal",
		"exchanges per run", "provider processes", "peak RSS of one provider process")
	for _, kind := range []struct {
		name string
		cfg  tfConfig
	}{
		{fmt.Sprintf("%d grants", n), tfConfig{Grants: n}},
		{fmt.Sprintf("%d ephemeral tokens", n), tfConfig{Tokens: n}},
	} {
		runs := map[time.Duration][]time.Duration{}
		var (
			peak      int64
			procs     int
			exchanges []int
		)
		for round := range b.opts.scaleRounds {
			for i := range latencies {
				lat := latencies[(i+round)%len(latencies)]
				d, p, np, ex, err := b.scaleRun(ctx, kind.cfg, lat)
				if err != nil {
					return err
				}
				fmt.Fprintf(b.log, "    %s at %s: %s, %d exchanges, peak RSS %s\n", kind.name, lat, seconds(d), ex, mib(p))
				runs[lat] = append(runs[lat], d)
				peak, procs = max(peak, p), max(procs, np)
				exchanges = append(exchanges, ex)
			}
		}
		added := median(runs[b.opts.latency]) - median(runs[0])
		r := ratio(added, ideal)
		t.add(kind.name, spread(runs[0]), spread(runs[b.opts.latency]), seconds(added), seconds(ideal), times(r),
			joinInts(exchanges), fmt.Sprint(procs), mib(peak))
		b.addTarget(fmt.Sprintf("Scale: %s at %s, added time", kind.name, b.opts.latency),
			fmt.Sprintf("≤ %.1f× ideal (%s)", scaleTarget, seconds(ideal)), fmt.Sprintf("%s (%s)", times(r), seconds(added)),
			r <= scaleTarget)
		b.addTarget(fmt.Sprintf("Scale: %s, provider peak RSS", kind.name), fmt.Sprintf("≤ %s", mib(rssTargetKiB)), mib(peak),
			peak > 0 && peak <= rssTargetKiB)
	}

	fmt.Fprintln(w)
	fmt.Fprintf(w, "### Scale: %d independent chains\n\n", n)
	fmt.Fprintf(w, "Wall time of `apply -auto-approve` (plan walk and apply walk) from an empty directory, at the engine's "+
		"default parallelism (%d), with the fake server adding 0 and %s to every request; median (min–max) of %d "+
		"interleaved round(s). Ideal added time: %d / %d × %s. Peak RSS is the largest VmHWM of any one provider "+
		"process, polled from /proc every %s.\n\n", defaultParallelism, b.opts.latency, b.opts.scaleRounds, n,
		defaultParallelism, b.opts.latency, rssPoll)
	t.write(w)
	return nil
}

// scaleRun applies cfg from an empty directory against a fresh fake with the given latency, and returns the wall
// time, the peak RSS of any one provider process (KiB), how many provider processes ran, and the exchanges made.
func (b *bench) scaleRun(ctx context.Context, cfg tfConfig, latency time.Duration) (time.Duration, int64, int, int, error) {
	f, err := startFake(0, latency)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer f.close()
	ws, err := b.workspace(fmt.Sprintf("scale-%d-%d-%s", cfg.Grants, cfg.Tokens, latency), bipsyncProvider, cfg, f, f.seeds(cfg.seedCount()))
	if err != nil {
		return 0, 0, 0, 0, err
	}
	watch := watchRSS(b.providerBin, b.eng.bin, rssPoll)
	d, err := b.eng.run(ctx, ws, "apply", "-auto-approve")
	peak, procs := watch.Stop()
	if err != nil {
		return 0, 0, 0, 0, err
	}
	return d.wall, peak, procs, f.exchanges(), nil
}
