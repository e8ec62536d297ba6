package chainsim_test

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/chainsim"
)

var (
	soak      = flag.Duration("soak", 0, "run fresh seeds for this long (TestSoak)")
	seedsFlag = flag.Int("seeds", 0, "how many seeds TestSeeds runs (0: the default budget)")
	firstSeed = flag.Uint64("first-seed", 1, "the first seed TestSeeds runs")
)

// defaultSeeds is the budget of the regular test run: as many seeds of Default, and a third as many of each focused
// configuration, which reach what Default reaches rarely (a save that fails for good among hand-outs, restores,
// legacy records).
const defaultSeeds = 2000

// TestSeeds runs a fixed budget of seeds and fails with the first broken invariants' replayable reports.
func TestSeeds(t *testing.T) {
	n := defaultSeeds
	if *seedsFlag > 0 {
		n = *seedsFlag
	}
	if testing.Short() {
		n /= 10
	}
	if raceEnabled && *seedsFlag == 0 {
		n /= 8
	}
	start := time.Now()
	var seeds, steps, exchanges, deaths int
	failures := 0
	knownSeen := map[string][]string{}
	for _, c := range []struct {
		cfg chainsim.Config
		n   int
	}{
		{chainsim.Default, n}, {chainsim.Leases, n / 3}, {chainsim.Restores, n / 3}, {chainsim.Status, n / 3},
		{chainsim.Skewed, n / 3}, {chainsim.Legacy, n / 3}, {chainsim.Commands, n / 3},
	} {
		for seed := *firstSeed; seed < *firstSeed+uint64(c.n); seed++ {
			st, f := chainsim.Run(seed, c.cfg)
			seeds++
			if st != nil {
				steps += st.Steps
				exchanges += st.Exchanges
				deaths += st.Deaths
			}
			if f == nil {
				continue
			}
			if k := known(f); k != "" {
				knownSeen[k] = append(knownSeen[k], fmt.Sprintf("%s %d", c.cfg.Name, seed))
				continue
			}
			failures++
			if failures <= 3 {
				t.Error(f.Error())
			}
		}
	}
	el := time.Since(start)
	t.Logf("%d seeds in %s: %.0f seeds/s, %.0f steps/s (%d steps, %d exchanges, %d process deaths); %d failing",
		seeds, el.Round(time.Millisecond), float64(seeds)/el.Seconds(), float64(steps)/el.Seconds(), steps, exchanges, deaths, failures)
	logKnown(t, knownSeen)
}

// TestReplayIsExact runs seeds twice and compares their whole traces.
func TestReplayIsExact(t *testing.T) {
	n := uint64(200)
	if raceEnabled {
		n = 40
	}
	for seed := uint64(1); seed <= n; seed++ {
		a, fa := chainsim.Run(seed, chainsim.Default)
		b, fb := chainsim.Run(seed, chainsim.Default)
		if (fa == nil) != (fb == nil) || a.Digest != b.Digest {
			t.Fatalf("seed %d replayed differently: digests %s and %s, failures %v and %v", seed, a.Digest, b.Digest, fa, fb)
		}
	}
}

// TestSoak runs fresh seeds until -soak is over and reports every failing seed (make soak DURATION=1h).
func TestSoak(t *testing.T) {
	if *soak <= 0 {
		t.Skip("run with -soak=DURATION")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CHAINSIM_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CHAINSIM_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("first seed %d", seed)
	deadline := time.Now().Add(*soak)
	n, steps, failing := 0, 0, 0
	knownSeen := map[string][]string{}
	for ; time.Now().Before(deadline); seed++ {
		st, f := chainsim.Run(seed, chainsim.Default)
		n++
		if f != nil {
			if k := known(f); k != "" {
				knownSeen[k] = append(knownSeen[k], fmt.Sprint(seed))
				continue
			}
			failing++
			t.Errorf("failing seed %d (%s)\n%s", seed, f.Invariant, f.Error())
			continue
		}
		steps += st.Steps
	}
	t.Logf("%d seeds, %d steps, %d failing", n, steps, failing)
	logKnown(t, knownSeen)
}

// logKnown logs how many seeds showed each known defect or limitation, and the first of them.
func logKnown(t *testing.T, seen map[string][]string) {
	names := make([]string, 0, len(knownDefects)+len(limitations))
	for _, d := range knownDefects {
		names = append(names, d.name)
	}
	for _, l := range limitations {
		names = append(names, l.name)
	}
	for _, n := range names {
		if s := seen[n]; len(s) > 0 {
			t.Logf("%d seeds (first: %s): %s", len(s), s[0], n)
		}
	}
}
