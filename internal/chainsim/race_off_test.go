//go:build !race

package chainsim_test

const raceEnabled = false
