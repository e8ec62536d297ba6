package tokensource

import (
	"context"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// seedConsumedByGrant notes in spent when the refused head is the seed itself (generation 0) and a
// bipsync_refresh_grant's seed journal shows that the grant exchanged it: the seed was given to two consumers, and the
// grant's chain lives on in its state. A journal that cannot be read tells nothing, so it is passed over.
func (s *Source) seedConsumedByGrant(ctx context.Context, r *run, rec *tokenstore.Record, spent *ChainSpentError) {
	if rec.Generation != 0 || rec.RefreshToken != r.seed {
		return
	}
	key := tokenstore.SeedJournalKey(s.client.TokenURL(), s.client.ClientID(), r.seed)
	j, err := s.store.Load(ctx, key, r.seed)
	if err != nil || j == nil {
		return
	}
	spent.ConsumedByGrantAt = j.RotatedAt
}
