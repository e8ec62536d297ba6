//go:build race

package chainsim_test

// raceEnabled: the race detector slows the scheduler's hand-offs about fivefold, so TestSeeds runs fewer seeds.
const raceEnabled = true
