package chainsim_test

import (
	"testing"

	"github.com/bipsync/terraform-provider-bipsync/internal/chainsim"
)

// Seeds that found the defects testdata/holes.md describes, before their fixes. Each fails on a tree without the
// defect's fix.

func TestSeed_Default_29693(t *testing.T) {
	chainsim.Check(t, 29693, chainsim.Default)
}

func TestSeed_Leases_560(t *testing.T) {
	chainsim.Check(t, 560, chainsim.Leases)
}

func TestSeed_Default_1723(t *testing.T) {
	chainsim.Check(t, 1723, chainsim.Default)
}

func TestSeed_Restores_124(t *testing.T) {
	chainsim.Check(t, 124, chainsim.Restores)
}

func TestSeed_Default_1076(t *testing.T) {
	chainsim.Check(t, 1076, chainsim.Default)
}

func TestSeed_Legacy_5(t *testing.T) {
	chainsim.Check(t, 5, chainsim.Legacy)
}

func TestSeed_Default_31(t *testing.T) {
	chainsim.Check(t, 31, chainsim.Default)
}

func TestSeed_Status_22(t *testing.T) {
	chainsim.Check(t, 22, chainsim.Status)
}

func TestSeed_Default_22(t *testing.T) {
	chainsim.Check(t, 22, chainsim.Default)
}

func TestSeed_Skewed_1(t *testing.T) {
	chainsim.Check(t, 1, chainsim.Skewed)
}

// TestGetPutHelperLosesChainAcrossMachines shows what a get/put helper shared by several machines cannot prevent: the
// simulation must find it, or its invariants have gone blind. It returns the first seed of the Commands configuration
// that shows it.
func TestGetPutHelperLosesChainAcrossMachines(t *testing.T) {
	if seed := getPutLoss(t); seed == 0 {
		t.Fatal("3000 seeds of the Commands configuration: no get/put helper shared by machines lost a chain")
	}
}

func getPutLoss(t *testing.T) uint64 {
	t.Helper()
	for seed := uint64(1); seed <= 3000; seed++ {
		if _, f := chainsim.Run(seed, chainsim.Commands); f != nil && f.Kind == "lost chain" && limitations[0].match(f) {
			t.Logf("seed %d (Commands): %s", seed, f.Detail)
			return seed
		}
	}
	return 0
}

// TestShrinkKeepsTheCheck shrinks a failure the simulation always finds (the limitation above) and replays what it
// returns.
func TestShrinkKeepsTheCheck(t *testing.T) {
	found := getPutLoss(t)
	if found == 0 {
		t.Fatal("no seed of the Commands configuration fails")
	}
	_, f := chainsim.Run(found, chainsim.Commands)
	seed, cfg, g := chainsim.Shrink(f, chainsim.Commands, 10)
	if g.Kind != f.Kind || g.Step > f.Step {
		t.Fatalf("shrunk to %q at step %d; want %q at step %d or earlier", g.Kind, g.Step, f.Kind, f.Step)
	}
	_, again := chainsim.Run(seed, cfg)
	if again == nil || again.Kind != g.Kind || again.Step != g.Step {
		t.Fatalf("the shrunk world (seed %d, %s) replays as %v; want %q at step %d", seed, cfg.Name, again, g.Kind, g.Step)
	}
	t.Logf("%s: seed %d at step %d -> seed %d (%s) at step %d", f.Kind, f.Seed, f.Step, seed, cfg.Name, g.Step)
}

// TestLyingHelperIsRefused: a get/put helper configured as protocol 2 took any put, a stale restore's too, and lost
// the chain even on one machine (seed 3210, before the provider checked such helpers). The check at the first use
// refuses the helper before anything is exchanged: the same world breaks no invariant.
func TestLyingHelperIsRefused(t *testing.T) {
	chainsim.Check(t, 3210, chainsim.Default)
}

// What a fix must also survive (testdata/holes.md, "What a fix must also survive").

// A fix of hole 1 that re-reads the store after the conflict must keep the waiting head when that read fails.
func TestSeed_Status_2249(t *testing.T) {
	chainsim.Check(t, 2249, chainsim.Status)
}

// A forced rotation that adopts another runner's exchange, made before the rotation began, must still exchange.
func TestSeed_Skewed_67(t *testing.T) { chainsim.Check(t, 67, chainsim.Skewed) }

func TestSeed_Default_2598(t *testing.T) {
	chainsim.Check(t, 2598, chainsim.Default)
}
