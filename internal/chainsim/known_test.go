package chainsim_test

import (
	"flag"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/chainsim"
)

var findBudget = flag.Int("find", 0, "TestTimeToFind: how many seeds to search")

// knownDefects are defects of tokensource, tokenstore and cli that the simulation finds and whose fixes are not in
// this tree yet (testdata/holes.md describes each, with the seeds that find it). TestSeeds and TestSoak log a failure
// that matches one and go on; delete an entry once its fix is in, and its seeds in holes_test.go fail no more.
var knownDefects = []struct {
	name  string
	match func(f *chainsim.Failure) bool
}{}

// limitations are what a store cannot do by design, and its documentation says: failures that match one are counted
// and logged, never fixed.
var limitations = []struct {
	name  string
	match func(f *chainsim.Failure) bool
}{
	{"limitation: a get/put helper shared by several machines lets a put overwrite another machine's newer record",
		func(f *chainsim.Failure) bool {
			return f.Store == chainsim.StoreCommandGetPut && f.Machines > 1
		}},
}

// known returns the name of the known defect f shows, or "".
func known(f *chainsim.Failure) string {
	for _, d := range knownDefects {
		if d.match(f) {
			return d.name
		}
	}
	for _, l := range limitations {
		if l.match(f) {
			return l.name
		}
	}
	return ""
}

// TestTimeToFind measures, for each known defect, how many seeds of a configuration run before one shows it, and how
// long that takes: go test ./internal/chainsim -run TestTimeToFind -find=3000 -config=default -v.
func TestTimeToFind(t *testing.T) {
	if *findBudget <= 0 {
		t.Skip("run with -find=N")
	}
	cfg := classifyConfig()
	start := time.Now()
	found := map[string]bool{}
	for seed := uint64(1); seed <= uint64(*findBudget) && len(found) < len(knownDefects)+len(limitations); seed++ {
		st, f := chainsim.Run(seed, cfg)
		if f == nil {
			continue
		}
		k := known(f)
		if k == "" || found[k] {
			continue
		}
		found[k] = true
		t.Logf("%s: seed %d (%s), found after %d seeds in %s; %d steps; broke at step %d: %s",
			k, seed, cfg.Name, seed, time.Since(start).Round(time.Millisecond), st.Steps, f.Step, f.Detail)
	}
}
