package tokensource

import (
	"context"
	"errors"
	"strings"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

func (s *Source) clientCredentials(ctx context.Context, req Request) (*Result, error) {
	if s.clientSecret == "" {
		return nil, errors.New("the client_credentials grant needs a client secret (public clients cannot use it)")
	}
	// The client secret is the only secret of a client-credentials record, so it keys and encrypts it; the scopes
	// are part of the key because a client-credentials token does not revoke another one.
	seed := "client_credentials\x00" + s.clientSecret + "\x00" + strings.Join(normalizeScopes(req.Scopes), " ")
	key := tokenstore.KeyFor(s.client.TokenURL(), s.client.ClientID(), seed)
	c := s.reg.chain(key)
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	defer c.release()

	persistent := s.store.Traits().Persistent
	var rec *tokenstore.Record
	if persistent {
		unlock, err := s.store.Lock(ctx, key)
		if err != nil {
			return nil, &StoreError{Store: s.store.Describe(), Op: "lock", Err: err}
		}
		defer func() { _ = unlock() }()
		rec, err = s.store.Load(ctx, key, seed)
		if err != nil {
			return nil, &StoreError{Store: s.store.Describe(), Op: "load", Err: err}
		}
	} else {
		rec = c.cached
	}
	if rec != nil && !req.Force && s.reusable(rec, req) {
		return s.result(rec, false, false, nil), nil
	}
	tok, err := s.client.ClientCredentials(ctx, req.Scopes)
	if err != nil {
		return nil, err
	}
	var gen int64
	var replaces *tokenstore.Revision
	if rec != nil {
		gen, replaces = rec.Generation, rec.Revision().Ptr()
	}
	next := &tokenstore.Record{
		ID:                   tokenstore.NewRecordID(),
		AccessToken:          tok.AccessToken,
		TokenType:            tok.TokenType,
		AccessTokenExpiresAt: tok.Expiry,
		Scopes:               normalizeScopes(req.Scopes),
		RotatedAt:            s.now(),
		Generation:           gen + 1,
	}
	c.cached = next
	var warnings []Warning
	if persistent {
		// A client-credentials token revokes nothing, so a failed save loses nothing: say so and hand it out. A
		// conflict means another process saved its own token, which is as good.
		if err := s.saveRecord(ctx, key, seed, next, replaces); err != nil && !errors.Is(err, tokenstore.ErrConflict) {
			warnings = append(warnings, Warning{Kind: WarnNotCached, Store: s.store.Describe(), Err: err})
		}
	}
	if w, ok := s.shortLifetimeWarning(next, req.MinValidity); ok {
		warnings = append(warnings, w)
	}
	return s.result(next, true, false, warnings), nil
}
