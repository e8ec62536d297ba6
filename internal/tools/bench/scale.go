package main

import (
	"context"
	"fmt"
	"io"
	"slices"
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

// scaleRun is one `apply -auto-approve` of the scale section.
type scaleRun struct {
	p         provider
	latency   time.Duration
	t         timing
	provider  peakRSS // the provider or the floor
	engine    peakRSS
	exchanges int
}

// scale runs many independent chains through `apply -auto-approve` (the plan walk and the apply walk in one
// command): with the Bipsync provider at 0 latency and at the configured latency, and with the floor, interleaved.
// It reports the time the latency adds next to the ideal of chains/parallelism round trips, and the peak resident
// set of the provider next to the floor's and the engine's.
func (b *bench) scale(ctx context.Context, w io.Writer) error {
	n := b.opts.chains
	ideal := time.Duration(float64(b.opts.latency) * float64(n) / defaultParallelism)
	added := newTable("Chains", "wall at 0 ms", fmt.Sprintf("wall at %s", b.opts.latency), "added: medians", "added: minimums",
		"ideal", "minimums ÷ ideal", "exchanges per run")
	floor := newTable("Chains", "Provider", "wall at 0 ms", "CPU at 0 ms", "peak RSS: provider process", "peak RSS: engine process",
		"provider processes per run")
	for _, kind := range []struct {
		name string
		cfg  tfConfig
	}{
		{fmt.Sprintf("%d grants", n), tfConfig{Grants: n}},
		{fmt.Sprintf("%d ephemeral tokens", n), tfConfig{Tokens: n}},
	} {
		plan := []struct {
			p       provider
			latency time.Duration
		}{{bipsyncProvider, 0}, {bipsyncProvider, b.opts.latency}, {floorProvider, 0}}
		var runs []scaleRun
		for round := range b.opts.scaleRounds {
			for i := range plan {
				step := plan[(i+round)%len(plan)] // rotate the order every round
				r, err := b.scaleRun(ctx, kind.cfg, step.p, step.latency)
				if err != nil {
					return err
				}
				fmt.Fprintf(b.log, "    %s, %s at %s: %s (CPU %s), %d exchanges, peak RSS %s\n", kind.name, providerName(step.p),
					step.latency, seconds(r.t.wall), seconds(r.t.cpu), r.exchanges, mib(r.provider.KiB))
				runs = append(runs, r)
			}
		}
		pick := func(p provider, latency time.Duration) (wall, cpu []time.Duration, prov, eng peakRSS, exchanges []int) {
			for _, r := range runs {
				if r.p != p || r.latency != latency {
					continue
				}
				wall, cpu = append(wall, r.t.wall), append(cpu, r.t.cpu)
				prov.KiB, prov.Processes = max(prov.KiB, r.provider.KiB), max(prov.Processes, r.provider.Processes)
				eng.KiB = max(eng.KiB, r.engine.KiB)
				exchanges = append(exchanges, r.exchanges)
			}
			return
		}
		wall0, cpu0, rss0, eng0, ex0 := pick(bipsyncProvider, 0)
		wallL, _, rssL, engL, exL := pick(bipsyncProvider, b.opts.latency)
		floorWall, floorCPU, floorRSS, floorEng, _ := pick(floorProvider, 0)

		// Noise only ever adds time, and on a shared machine a stall can hit most of a few runs: the difference of the
		// fastest runs is the added time least disturbed by anything but the latency.
		extra := slices.Min(wallL) - slices.Min(wall0)
		r := ratio(extra, ideal)
		added.add(kind.name, spread(wall0), spread(wallL), seconds(median(wallL)-median(wall0)), seconds(extra), seconds(ideal), times(r),
			summarizeInts(append(ex0, exL...)))
		peak := peakRSS{KiB: max(rss0.KiB, rssL.KiB), Processes: max(rss0.Processes, rssL.Processes)}
		floor.add(kind.name, "floor", spread(floorWall), spread(floorCPU), mib(floorRSS.KiB), mib(floorEng.KiB), fmt.Sprint(floorRSS.Processes))
		floor.add(kind.name, "bipsync", fmt.Sprintf("%s, %s the floor", spread(wall0), times(ratio(median(wall0), median(floorWall)))),
			fmt.Sprintf("%s, %s the floor", spread(cpu0), times(ratio(median(cpu0), median(floorCPU)))),
			mib(peak.KiB), mib(max(eng0.KiB, engL.KiB)), fmt.Sprint(peak.Processes))

		b.addTarget(fmt.Sprintf("Scale: %s at %s, added time (fastest runs)", kind.name, b.opts.latency),
			fmt.Sprintf("≤ %.1f× ideal (%s)", scaleTarget, seconds(ideal)), fmt.Sprintf("%s (%s)", times(r), seconds(extra)),
			r <= scaleTarget)
		b.addTarget(fmt.Sprintf("Scale: %s, provider peak RSS", kind.name), fmt.Sprintf("≤ %s", mib(rssTargetKiB)),
			fmt.Sprintf("%s (floor %s)", mib(peak.KiB), mib(floorRSS.KiB)), peak.KiB > 0 && peak.KiB <= rssTargetKiB)
	}

	fmt.Fprintln(w)
	fmt.Fprintf(w, "### Scale: %d independent chains\n\n", n)
	fmt.Fprintf(w, "`apply -auto-approve` (plan walk and apply walk in one command) from an empty directory, at the engine's "+
		"default parallelism (%d); median (min–max) of %d interleaved round(s). First with the fake server adding 0 and "+
		"%s to every request. Ideal added time: %d / %d × %s, the waits alone with %d requests in flight; added time below "+
		"it means the waits overlapped with CPU work of the engine. The target is judged on the fastest run of each kind, "+
		"since other load only ever adds time; the medians are shown too.\n\n", defaultParallelism, b.opts.scaleRounds,
		b.opts.latency, n, defaultParallelism, b.opts.latency, defaultParallelism)
	added.write(w)
	fmt.Fprintf(w, "\nThen at 0 ms next to the floor. CPU is user + system time of the engine and its provider processes. "+
		"Peak RSS is the largest VmHWM of any one process, polled from /proc every %s.\n\n", rssPoll)
	floor.write(w)
	return nil
}

func providerName(p provider) string {
	switch p {
	case floorProvider:
		return "floor"
	case bipsyncProvider:
		return "bipsync"
	}
	return "engine alone"
}

// scaleRun applies cfg from an empty directory with provider p (against a fresh fake with the given latency) and
// watches the resident set of the provider and engine processes.
func (b *bench) scaleRun(ctx context.Context, cfg tfConfig, p provider, latency time.Duration) (scaleRun, error) {
	f, err := startFake(0, latency)
	if err != nil {
		return scaleRun{}, err
	}
	defer f.close()
	name := fmt.Sprintf("scale-%s-%dg-%dt-%s", providerName(p), cfg.Grants, cfg.Tokens, latency)
	ws, err := b.workspace(name, p, cfg, f, f.seeds(cfg.seedCount()))
	if err != nil {
		return scaleRun{}, err
	}
	providerBin := b.providerBin
	if p == floorProvider {
		providerBin = b.floorBin
	}
	watch := watchRSS(map[string]string{providerBin: "provider", b.eng.bin: "engine"}, rssPoll)
	t, err := b.eng.run(ctx, ws, "apply", "-auto-approve")
	seen := watch.Stop()
	if err != nil {
		return scaleRun{}, err
	}
	return scaleRun{p: p, latency: latency, t: t, provider: seen["provider"], engine: seen["engine"], exchanges: f.exchanges()}, nil
}
