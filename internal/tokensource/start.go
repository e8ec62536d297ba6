package tokensource

import (
	"context"
	"errors"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// ErrChainExists is returned by Start when the store already holds a record for the seed.
var ErrChainExists = errors.New("the token store already holds a chain for this refresh token")

// Start saves a new chain whose head is seed, a refresh token an authorization (the device or the authorization code
// grant) has just issued, together with the access token issued with it (tok), so that the chain's first use needs
// no exchange. It is the chain's generation 0, as the record a first use saves before exchanging, with the access
// token added. scopes are the scopes the authorization asked for. Start takes the chain's locks as Token does and
// refuses with ErrChainExists when the store holds a record for seed already: one seed starts one chain, once.
func (s *Source) Start(ctx context.Context, seed string, tok *bipsync.Token, scopes []string) (*Result, error) {
	switch {
	case seed == "":
		return nil, errors.New("no refresh token given")
	case tok == nil || tok.AccessToken == "":
		return nil, errors.New("no access token given")
	case !s.store.Traits().Persistent:
		return nil, ErrStoreRequired
	}
	key := s.Key(seed)
	c := s.reg.chain(key)
	unlock, err := s.lockChain(ctx, c, key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	prev, err := s.load(ctx, key, seed)
	if err != nil {
		return nil, err
	}
	if prev != nil || c.pending != nil {
		return nil, ErrChainExists
	}
	known := normalizeScopes(scopes)
	if known == nil {
		known = []string{} // the authorization asked for no scope: the consent is known to be empty
	}
	rec := &tokenstore.Record{
		RefreshToken:         seed,
		RefreshTokenIssuedAt: tok.ReceivedAt,
		AccessToken:          tok.AccessToken,
		TokenType:            tok.TokenType,
		AccessTokenExpiresAt: tok.Expiry,
		Scopes:               known,
		ID:                   tokenstore.NewRecordID(),
	}
	err = s.saveRecord(ctx, key, seed, rec, nil)
	switch {
	case errors.Is(err, tokenstore.ErrConflict):
		return nil, ErrChainExists
	case err != nil:
		return nil, &StoreError{Store: s.store.Describe(), Op: "write a new chain into", Err: err, BeforeFirstExchange: true}
	}
	return s.result(rec, false, false, nil), nil
}
