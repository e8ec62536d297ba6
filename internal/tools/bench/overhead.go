package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// floorTarget is how much slower than the floor the provider may make a plan or an apply.
const floorTarget = 1.2

// overhead times `plan -out` and `apply` of one grant and one ephemeral token with the Bipsync provider, next to
// the same configuration with the floor provider and to the engine alone, in interleaved rounds after one
// warm-up round. Each run starts from an empty directory, so the plan opens the token (one exchange) and the apply
// creates the grant (one exchange) and opens the token again (reused from the store).
func (b *bench) overhead(ctx context.Context, w io.Writer) error {
	f, err := startFake(0, 0)
	if err != nil {
		return err
	}
	defer f.close()

	variants := []struct {
		name string
		p    provider
	}{
		{"engine alone (1 terraform_data)", engineOnly},
		{"floor provider", floorProvider},
		{"bipsync provider", bipsyncProvider},
	}
	cfg := tfConfig{Grants: 1, Tokens: 1}
	// samples[variant][step] holds the timings of "plan" (0) and "apply" (1).
	samples := make([][2][]timing, len(variants))
	exchanges := 0
	for round := 0; round <= b.opts.rounds; round++ {
		for i := range variants {
			// Rotate the order every round, so no variant always runs first (ABC, BCA, CAB, ...).
			v := (i + round) % len(variants)
			ws, err := b.workspace(fmt.Sprintf("overhead-%d", v), variants[v].p, cfg, f, f.seeds(cfg.seedCount()))
			if err != nil {
				return err
			}
			before := f.exchanges()
			plan, apply, err := b.planApply(ctx, ws)
			if err != nil {
				return err
			}
			if round == 0 {
				continue // warm-up: page cache, first start of each binary
			}
			if variants[v].p == bipsyncProvider {
				exchanges += f.exchanges() - before
			}
			samples[v][0] = append(samples[v][0], plan)
			samples[v][1] = append(samples[v][1], apply)
		}
		fmt.Fprintf(b.log, "    round %d/%d\n", round, b.opts.rounds)
	}

	const floorIdx, bipsyncIdx = 1, 2
	t := newTable("Configuration", "Step", "wall: median (min–max)", "wall ÷ floor", "CPU: median (min–max)", "CPU ÷ floor")
	for i, v := range variants {
		name := v.name
		if v.p != engineOnly {
			name += ": 1 grant + 1 ephemeral token"
		}
		for step, stepName := range []string{"plan", "apply"} {
			wall, cpu := split(samples[i][step])
			floorWall, floorCPU := split(samples[floorIdx][step])
			t.add(name, stepName, spread(wall), times(ratio(median(wall), median(floorWall))),
				spread(cpu), times(ratio(median(cpu), median(floorCPU))))
			if i == bipsyncIdx {
				r := ratio(median(wall), median(floorWall))
				b.addTarget("Overhead: "+stepName+" of 1 grant + 1 ephemeral token, wall time", fmt.Sprintf("≤ %.1f× the floor", floorTarget),
					fmt.Sprintf("%s (%s vs %s; CPU %s)", times(r), seconds(median(wall)), seconds(median(floorWall)),
						times(ratio(median(cpu), median(floorCPU)))), r <= floorTarget)
			}
		}
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "### Overhead next to the floor")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "`plan -out` and `apply` of that plan from an empty directory, fake server at 0 ms latency; %d interleaved "+
		"rounds after one warm-up round. Wall time is what the user waits; CPU is user + system time of the engine and the "+
		"provider processes it started, which other load on the machine disturbs less. The floor is a "+
		"terraform-plugin-framework provider with the same schemas that answers with canned values "+
		"(`internal/tools/bench/floor`). The Bipsync runs made %.1f exchanges per round (want 2: the token in the plan, the "+
		"grant in the apply).\n\n", b.opts.rounds, float64(exchanges)/float64(b.opts.rounds))
	t.write(w)
	return nil
}

// split separates wall and CPU times.
func split(ts []timing) (wall, cpu []time.Duration) {
	for _, t := range ts {
		wall = append(wall, t.wall)
		cpu = append(cpu, t.cpu)
	}
	return wall, cpu
}
