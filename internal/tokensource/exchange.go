package tokensource

import (
	"context"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// DetachExchange returns a context for an exchange that outlives the caller's cancellation, bounded by the exchange
// budget. Once Bipsync has answered an exchange, the old pair is revoked and the answer is the chain: the exchange
// must run to its answer even when Terraform cancels the request.
func (s *Source) DetachExchange(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.exchangeBudget)
}

// Exchange runs one refresh exchange of prev's head and returns the chain's next record. It is the one exchange path
// of the provider: the token store's chains and bipsync_refresh_grant's chain (kept in state) both use it. Callers
// run it under DetachExchange and save the result before anything uses it.
//
// When Bipsync rotated the chain but its answer had no usable access token, Exchange returns the next record (the
// new head, no access token) together with the error: the caller must save it, or the chain is lost.
func (s *Source) Exchange(ctx context.Context, prev *tokenstore.Record, scopes []string) (*tokenstore.Record, error) {
	tok, err := s.client.Refresh(ctx, prev.RefreshToken, scopes)
	next := &tokenstore.Record{
		Scopes:     effectiveScopes(prev.Scopes, scopes),
		RotatedAt:  s.now(),
		Generation: prev.Generation + 1,
		ID:         tokenstore.NewRecordID(),
	}
	if head, ok := bipsync.RescuedRefreshToken(err); ok {
		next.RefreshToken, next.RefreshTokenIssuedAt = head, next.RotatedAt
		return next, err
	}
	if err != nil {
		return nil, err
	}
	next.RefreshToken, next.RefreshTokenIssuedAt = tok.RefreshToken, tok.ReceivedAt
	next.AccessToken, next.TokenType, next.AccessTokenExpiresAt = tok.AccessToken, tok.TokenType, tok.Expiry
	return next, nil
}

// RefreshTokenExpiry returns when a refresh token issued at issuedAt dies.
func (s *Source) RefreshTokenExpiry(issuedAt time.Time) time.Time { return issuedAt.Add(s.lifetime) }
