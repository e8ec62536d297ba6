//go:build race

package chainsim_test

// raceEnabled: the race detector slows the scheduler's hand-offs about fivefold, so TestSeeds and TestReplayIsExact
// run fewer seeds.
const raceEnabled = true
