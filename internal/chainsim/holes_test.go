package chainsim_test

import (
	"testing"

	"github.com/bipsync/terraform-provider-bipsync/internal/chainsim"
)

// Seeds that found the defects testdata/holes.md describes. Each fails on a tree without the defect's fix; drop its
// t.Skip (and the defect's entry in knownDefects) once the fix is in.

func TestSeed_Default_29693(t *testing.T) {
	t.Skip("hole 1: fixed on another branch")
	chainsim.Check(t, 29693, chainsim.Default)
}

func TestSeed_Leases_560(t *testing.T) {
	t.Skip("hole 1: fixed on another branch")
	chainsim.Check(t, 560, chainsim.Leases)
}

func TestSeed_Default_1723(t *testing.T) {
	t.Skip("hole 2: fixed on another branch")
	chainsim.Check(t, 1723, chainsim.Default)
}

func TestSeed_Restores_124(t *testing.T) {
	t.Skip("hole 2: fixed on another branch")
	chainsim.Check(t, 124, chainsim.Restores)
}

func TestSeed_Default_1076(t *testing.T) {
	t.Skip("hole 3: fixed on another branch")
	chainsim.Check(t, 1076, chainsim.Default)
}

func TestSeed_Legacy_5(t *testing.T) {
	t.Skip("hole 3: fixed on another branch")
	chainsim.Check(t, 5, chainsim.Legacy)
}

func TestSeed_Default_31(t *testing.T) {
	t.Skip("hole 4: fixed on another branch")
	chainsim.Check(t, 31, chainsim.Default)
}

func TestSeed_Status_22(t *testing.T) {
	t.Skip("hole 4: fixed on another branch")
	chainsim.Check(t, 22, chainsim.Status)
}

func TestSeed_Default_22(t *testing.T) {
	t.Skip("hole 5: fixed on another branch")
	chainsim.Check(t, 22, chainsim.Default)
}

func TestSeed_Skewed_1(t *testing.T) {
	t.Skip("hole 5: fixed on another branch")
	chainsim.Check(t, 1, chainsim.Skewed)
}

// TestGetPutHelperLosesChainAcrossMachines shows what a get/put helper shared by several machines cannot prevent: the
// simulation must find it, or its invariants have gone blind.
func TestGetPutHelperLosesChainAcrossMachines(t *testing.T) {
	for _, c := range []struct {
		seed uint64
		cfg  chainsim.Config
	}{{284, chainsim.Commands}, {366, chainsim.Default}} {
		_, f := chainsim.Run(c.seed, c.cfg)
		if f == nil || f.Kind != "lost chain" || !limitations[0].match(f) {
			t.Errorf("seed %d (%s): got %v; want the lost chain of a get/put helper shared by machines", c.seed, c.cfg.Name, f)
		}
	}
}

// TestShrinkKeepsTheCheck shrinks a failure the simulation always finds (the limitation above) and replays what it
// returns.
func TestShrinkKeepsTheCheck(t *testing.T) {
	_, f := chainsim.Run(366, chainsim.Default)
	if f == nil {
		t.Fatal("seed 366 (Default) no longer fails")
	}
	seed, cfg, g := chainsim.Shrink(f, chainsim.Default, 10)
	if g.Kind != f.Kind || g.Step > f.Step {
		t.Fatalf("shrunk to %q at step %d; want %q at step %d or earlier", g.Kind, g.Step, f.Kind, f.Step)
	}
	_, again := chainsim.Run(seed, cfg)
	if again == nil || again.Kind != g.Kind || again.Step != g.Step {
		t.Fatalf("the shrunk world (seed %d, %s) replays as %v; want %q at step %d", seed, cfg.Name, again, g.Kind, g.Step)
	}
	t.Logf("%s: seed %d at step %d -> seed %d (%s) at step %d", f.Kind, f.Seed, f.Step, seed, cfg.Name, g.Step)
}

// TestLyingHelperTakesStaleRestore shows what a get/put helper configured as protocol 2 cannot prevent, even on one
// machine: restore puts an old rescue over the newer record, since the store trusts the helper to refuse it.
func TestLyingHelperTakesStaleRestore(t *testing.T) {
	_, f := chainsim.Run(3210, chainsim.Default)
	if f == nil || f.Kind != "lost chain" || f.Store != chainsim.StoreCommandLiar || f.Machines != 1 {
		t.Fatalf("seed 3210: got %v; want the lost chain of a lying helper on one machine", f)
	}
}

// What a fix must also survive (testdata/holes.md, "What a fix must also survive").

// A fix of hole 1 that re-reads the store after the conflict must keep the waiting head when that read fails.
func TestSeed_Status_2249(t *testing.T) {
	t.Skip("hole 1: fixed on another branch")
	chainsim.Check(t, 2249, chainsim.Status)
}

// A forced rotation that adopts another runner's exchange, made before the rotation began, must still exchange.
func TestSeed_Skewed_67(t *testing.T) { chainsim.Check(t, 67, chainsim.Skewed) }

func TestSeed_Default_2598(t *testing.T) {
	t.Skip("hole 5: fixed on another branch")
	chainsim.Check(t, 2598, chainsim.Default)
}
