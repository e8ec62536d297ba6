package chainsim_test

import (
	"testing"

	"github.com/bipsync/terraform-provider-bipsync/internal/chainsim"
)

// Seeds that found the defects testdata/holes.md describes. Each fails on a tree without the defect's fix; drop its
// t.Skip (and the defect's entry in knownDefects) once the fix is in.

func TestSeed_Default_1321(t *testing.T) {
	t.Skip("hole 1: fixed on another branch")
	chainsim.Check(t, 1321, chainsim.Default)
}

func TestSeed_Leases_31(t *testing.T) {
	t.Skip("hole 1: fixed on another branch")
	chainsim.Check(t, 31, chainsim.Leases)
}

func TestSeed_Default_911(t *testing.T) {
	t.Skip("hole 2: fixed on another branch")
	chainsim.Check(t, 911, chainsim.Default)
}

func TestSeed_Restores_63(t *testing.T) {
	t.Skip("hole 2: fixed on another branch")
	chainsim.Check(t, 63, chainsim.Restores)
}

func TestSeed_Default_587(t *testing.T) {
	t.Skip("hole 3: fixed on another branch")
	chainsim.Check(t, 587, chainsim.Default)
}

func TestSeed_Legacy_39(t *testing.T) {
	t.Skip("hole 3: fixed on another branch")
	chainsim.Check(t, 39, chainsim.Legacy)
}

func TestSeed_Default_39(t *testing.T) {
	t.Skip("hole 4: fixed on another branch")
	chainsim.Check(t, 39, chainsim.Default)
}

func TestSeed_Status_17(t *testing.T) {
	t.Skip("hole 4: fixed on another branch")
	chainsim.Check(t, 17, chainsim.Status)
}

func TestSeed_Default_22(t *testing.T) {
	t.Skip("hole 5: fixed on another branch")
	chainsim.Check(t, 22, chainsim.Default)
}

func TestSeed_Skewed_1(t *testing.T) {
	t.Skip("hole 5: fixed on another branch")
	chainsim.Check(t, 1, chainsim.Skewed)
}
