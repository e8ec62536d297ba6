package chainsim_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/bipsync/terraform-provider-bipsync/internal/chainsim"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// unconditional is a store whose Save ignores the revision it replaces, and that takes no claims: a store that goes
// back, as a get/put helper shared by machines does.
type unconditional struct{ tokenstore.Store }

// Traits hide the store's claims: with them, runners never race for a head, and the save's condition is never tested.
func (u unconditional) Traits() tokenstore.Traits {
	t := u.Store.Traits()
	t.Claims = false
	return t
}

func (u unconditional) Save(ctx context.Context, key tokenstore.Key, seed string, rec *tokenstore.Record, _ *tokenstore.Revision) error {
	cur, err := u.Load(ctx, key, seed)
	if err != nil {
		return err
	}
	var replaces *tokenstore.Revision
	if cur != nil {
		replaces = cur.Revision().Ptr()
	}
	return u.Store.Save(ctx, key, seed, rec, replaces)
}

// claimless is a store that writes conditionally but takes no claims: runners race for a due head again.
type claimless struct{ tokenstore.Store }

func (c claimless) Traits() tokenstore.Traits {
	t := c.Store.Traits()
	t.Claims = false
	return t
}

// leaky is a store that cannot take a rotated record, and says so quoting its refresh token.
type leaky struct{ tokenstore.Store }

func (l leaky) Save(ctx context.Context, key tokenstore.Key, seed string, rec *tokenstore.Record, replaces *tokenstore.Revision) error {
	if rec.Generation > 0 {
		return fmt.Errorf("disk full writing the record of %s", rec.RefreshToken)
	}
	return l.Store.Save(ctx, key, seed, rec, replaces)
}

// TestInvariantsSeeBrokenStores breaks the store on purpose and expects the simulation to say so within a few hundred
// seeds: invariants that never fire prove nothing.
func TestInvariantsSeeBrokenStores(t *testing.T) {
	for _, c := range []struct {
		name  string
		wrap  func(tokenstore.Store) tokenstore.Store
		kinds []string // any of these
	}{
		{"saves that are not conditional", func(s tokenstore.Store) tokenstore.Store { return unconditional{s} },
			[]string{"store went back", "lost chain", "refused attempt", "false reauthorization", "revoked hand-out"}},
		{"no claims", func(s tokenstore.Store) tokenstore.Store { return claimless{s} }, []string{"refused attempt"}},
		{"errors that quote a token", func(s tokenstore.Store) tokenstore.Store { return leaky{s} }, []string{"secret"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := chainsim.Default
			cfg.Stores = []chainsim.StoreKind{chainsim.StoreS3, chainsim.StoreCommandConditional}
			cfg.WrapStore = c.wrap
			for seed := uint64(1); seed <= 2000; seed++ {
				_, f := chainsim.Run(seed, cfg)
				if f == nil {
					continue
				}
				for _, k := range c.kinds {
					if f.Kind == k {
						t.Logf("seed %d: %s: %s", seed, f.Invariant, f.Detail)
						return
					}
				}
			}
			t.Fatalf("2000 seeds over a store with %s broke none of the checks %v", c.name, c.kinds)
		})
	}
}
