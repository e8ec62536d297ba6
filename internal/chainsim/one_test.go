package chainsim_test

import (
	"flag"
	"testing"

	"github.com/bipsync/terraform-provider-bipsync/internal/chainsim"
)

var oneSeed = flag.Uint64("seed", 0, "replay this seed (TestOne)")

// TestOne replays one seed and prints its report: go test ./internal/chainsim -run TestOne -seed=N.
func TestOne(t *testing.T) {
	if *oneSeed == 0 {
		t.Skip("run with -seed=N")
	}
	chainsim.Check(t, *oneSeed, classifyConfig())
}
