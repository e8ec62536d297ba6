package chainsim_test

import (
	"flag"
	"testing"

	"github.com/bipsync/terraform-provider-bipsync/internal/chainsim"
)

var (
	oneSeed = flag.Uint64("seed", 0, "replay this seed (TestOne)")
	shrink  = flag.Int("shrink", 0, "TestOne: look for a smaller world that breaks the same check, over this many seeds per size")
)

// TestOne replays one seed and prints its report: go test ./internal/chainsim -run TestOne -seed=N.
func TestOne(t *testing.T) {
	if *oneSeed == 0 {
		t.Skip("run with -seed=N")
	}
	cfg := classifyConfig()
	_, f := chainsim.Run(*oneSeed, cfg)
	if f == nil {
		return
	}
	if *shrink > 0 {
		seed, c, g := chainsim.Shrink(f, cfg, *shrink)
		t.Logf("smaller: seed %d with MaxProcs=%d OpsPerProc=%d MaxMachines=%d MaxSteps=%d (%d steps instead of %d)",
			seed, c.MaxProcs, c.OpsPerProc, c.MaxMachines, c.MaxSteps, g.Step, f.Step)
		f = g
	}
	t.Fatal(f.Error())
}
