package chainsim

import (
	"fmt"
	"strings"
)

// Shrink looks for a smaller world that breaks the same check as f, the failure of seed under cfg: fewer processes,
// machines and operations, and a lower step budget, over budget seeds from f's own onwards. A world is the seed's
// choices, so a smaller configuration makes another world, not a cut of f's trace; what it keeps is the check that
// broke (Failure.Kind) and what triggers it, in fewer steps to read. It returns f itself when nothing smaller breaks.
func Shrink(f *Failure, cfg Config, budget int) (uint64, Config, *Failure) {
	bestSeed, bestCfg, best := f.Seed, cfg, f
	for procs := 2; procs <= cfg.MaxProcs; procs++ {
		for ops := 3; ops <= cfg.OpsPerProc; ops += 3 {
			for machines := 1; machines <= cfg.MaxMachines; machines++ {
				c := Shrunk(cfg, procs, ops, machines, best.Step)
				for seed := f.Seed; seed < f.Seed+uint64(budget); seed++ {
					_, g := Run(seed, c)
					if g != nil && g.Kind == f.Kind && g.Step < best.Step {
						bestSeed, bestCfg, best = seed, c, g
					}
				}
			}
			if best.Step <= 12 {
				return bestSeed, bestCfg, best
			}
		}
	}
	return bestSeed, bestCfg, best
}

// Shrunk is cfg with at most procs processes of at most ops operations each, at most machines machines, and at most
// steps steps: what Shrink found, as a failure's replay line names it.
func Shrunk(cfg Config, procs, ops, machines, steps int) Config {
	c := cfg
	c.MaxProcs, c.OpsPerProc, c.MaxMachines, c.MaxSteps = procs, ops, machines, steps
	base := cfg.Name
	if i := strings.Index(base, "Shrunk("); i == 0 {
		base = strings.TrimPrefix(strings.SplitN(base, ",", 2)[0], "Shrunk(chainsim.")
	}
	c.Name = fmt.Sprintf("Shrunk(chainsim.%s, %d, %d, %d, %d)", base, procs, ops, machines, steps)
	return c
}
