package chainsim_test

import (
	"flag"
	"sort"
	"strings"
	"testing"

	"github.com/bipsync/terraform-provider-bipsync/internal/chainsim"
)

var classify = flag.Int("classify", 0, "run this many seeds and count failures by invariant (TestClassify)")

// TestClassify counts failing seeds by invariant and world, and names the first seed of each: a map of what breaks.
func TestClassify(t *testing.T) {
	if *classify <= 0 {
		t.Skip("run with -classify=N")
	}
	type bucket struct {
		n     int
		first uint64
	}
	got := map[string]*bucket{}
	cfg := classifyConfig()
	for seed := uint64(1); seed <= uint64(*classify); seed++ {
		_, f := chainsim.Run(seed, cfg)
		if f == nil {
			continue
		}
		k := known(f)
		if k == "" {
			k = f.Invariant + " | " + f.Kind + " | " + strings.Fields(f.World)[0] + " " + strings.Fields(f.World)[1]
		}
		if got[k] == nil {
			got[k] = &bucket{first: seed}
		}
		got[k].n++
	}
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%5d  first seed %6d  %s", got[k].n, got[k].first, k)
	}
}

var hunt = flag.String("config", "default", "TestClassify and TestOne: the configuration (default, leases, restores, status, skewed, legacy)")

func classifyConfig() chainsim.Config {
	return map[string]chainsim.Config{
		"default": chainsim.Default, "leases": chainsim.Leases, "restores": chainsim.Restores,
		"status": chainsim.Status, "skewed": chainsim.Skewed, "legacy": chainsim.Legacy, "commands": chainsim.Commands,
	}[*hunt]
}
