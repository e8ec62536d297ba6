//go:build race

package tokensource

// raceEnabled tells tests that the race detector slows every process down.
const raceEnabled = true
