package tokensource

import (
	"context"
	"errors"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// run is one request's view of a chain: what it holds and what it has seen.
type run struct {
	key       tokenstore.Key
	seed      string
	c         *chainState
	req       Request
	started   time.Time
	adoptions int // moves to another runner's rotation of the chain
	churn     int // re-reads of a record that others changed without rotating it
	// revisions the store held during this request, for telling whether another runner used the chain.
	seen []tokenstore.Revision
}

func (r *run) observe(rec *tokenstore.Record) {
	if rec == nil {
		return
	}
	rev := rec.Revision()
	for _, v := range r.seen {
		if v == rev {
			return
		}
	}
	r.seen = append(r.seen, rev)
}

func (s *Source) refreshToken(ctx context.Context, req Request) (*Result, error) {
	if req.RefreshToken == "" {
		return nil, errors.New("no refresh token given")
	}
	if !s.store.Traits().Persistent {
		return nil, ErrStoreRequired
	}
	r := &run{key: s.Key(req.RefreshToken), seed: req.RefreshToken, req: req, started: s.now()}
	r.c = s.reg.chain(r.key)
	if err := r.c.acquire(ctx); err != nil {
		return nil, err
	}
	defer r.c.release()

	if err := s.checkScopes(r.key, req.Scopes); err != nil {
		return nil, err
	}
	unlock, err := s.store.Lock(ctx, r.key)
	if err != nil {
		return nil, &StoreError{Store: s.store.Describe(), Op: "lock", Err: err}
	}
	defer func() { _ = unlock() }()

	if err := s.savePending(ctx, r); err != nil {
		return nil, err
	}
	rec, err := s.load(ctx, r.key, r.seed)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		if rec, err = s.startChain(ctx, r); err != nil {
			return nil, err
		}
	}
	r.observe(rec)
	return s.serve(ctx, r, rec)
}

// load reads the chain's record. A chain saved by a version that keyed endpoints as spelt is found under that key too.
func (s *Source) load(ctx context.Context, key tokenstore.Key, seed string) (*tokenstore.Record, error) {
	rec, err := s.store.Load(ctx, key, seed)
	if err != nil {
		return nil, &StoreError{Store: s.store.Describe(), Op: "load", Err: err}
	}
	if rec != nil {
		return rec, nil
	}
	legacy, differs := tokenstore.LegacyKey(s.client.TokenURL(), s.client.ClientID(), seed)
	if !differs {
		return nil, nil
	}
	old, err := s.store.Load(ctx, legacy, seed)
	if err != nil || old == nil {
		// An unreadable record under the old key is not this chain's business any more than a missing one: the
		// canonical key is where the chain lives from now on.
		return nil, nil //nolint:nilerr // see above
	}
	// Move the chain to its canonical key. Nothing is exchanged here, so a failed copy costs nothing: the next run
	// finds the old key again.
	moved := old.Clone()
	moved.ID = tokenstore.NewRecordID()
	if err := s.store.Save(ctx, key, seed, moved, nil); err != nil {
		return nil, &StoreError{Store: s.store.Describe(), Op: "save", Err: err}
	}
	return moved, nil
}

// startChain saves the chain's generation 0 (its head is the seed) before anything is exchanged: a store that cannot
// take a record fails here, with the seed unspent. Another process that got there first wins; its record is used.
func (s *Source) startChain(ctx context.Context, r *run) (*tokenstore.Record, error) {
	first := &tokenstore.Record{RefreshToken: r.seed, ID: tokenstore.NewRecordID()}
	err := s.store.Save(ctx, r.key, r.seed, first, nil)
	switch {
	case err == nil:
		return first, nil
	case errors.Is(err, tokenstore.ErrConflict):
		rec, lerr := s.load(ctx, r.key, r.seed)
		if lerr != nil {
			return nil, lerr
		}
		if rec != nil {
			return rec, nil
		}
	}
	return nil, &StoreError{Store: s.store.Describe(), Op: "save", Err: err, BeforeFirstExchange: true}
}

// serve hands out rec's access token when it can, and otherwise exchanges the chain, adopting another runner's record
// whenever the store shows one.
func (s *Source) serve(ctx context.Context, r *run, rec *tokenstore.Record) (*Result, error) {
	for {
		if rec.Dead != nil {
			return nil, s.knownDead(ctx, r, rec)
		}
		if err := checkNarrowing(rec, r.req); err != nil {
			return nil, err
		}
		forced := r.req.Force && !rec.RotatedAt.After(r.started)
		if !forced && s.reusable(rec, r.req) {
			next, err := s.handOut(ctx, r, rec)
			if errors.Is(err, errMovedOn) {
				if rec, err = s.adopt(ctx, r, rec); err != nil {
					return nil, err
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			return s.handedOut(r, next, false, nil), nil
		}
		if err := s.checkMinValidity(rec, r.req.MinValidity); err != nil {
			return nil, err
		}
		var warnings []Warning
		if w, ok := s.promiseBroken(r, rec); ok {
			warnings = append(warnings, w)
		}

		// From here on the exchange revokes the chain head: it finishes within its budget even if the caller gives up.
		xctx, cancel := s.DetachExchange(ctx)
		next, xerr := s.Exchange(xctx, rec, r.req.Scopes)
		cancel()
		if next == nil {
			if !refusedAsSpent(xerr) {
				return nil, xerr
			}
			newer, err := s.awaitNewer(ctx, r, rec)
			if err != nil {
				return nil, err
			}
			if newer == nil {
				spent := &ChainSpentError{Err: xerr, OtherRunnerSeen: len(r.seen) > 1, Waited: s.waitFor(),
					LastRotation: rec.RotatedAt, Generation: rec.Generation}
				if newer, err = s.recordDeath(ctx, r, rec, spent); err != nil {
					return nil, err
				}
			}
			rec = newer
			continue
		}
		// The exchange revoked the token every other lease was about: they are broken (and named above) and gone.
		next.Leases = []tokenstore.Lease{s.lease(r.req.MinValidity)}
		replaced, serr := s.saveExchanged(ctx, r, rec, next)
		if errors.Is(serr, errMovedOn) {
			// Another runner saved first; this exchange forked the chain, and its head is abandoned (it stays valid
			// at Bipsync until it expires, and nothing will use it). The winner's record is the chain.
			if rec, serr = s.adopt(ctx, r, rec); serr != nil {
				return nil, serr
			}
			continue
		}
		if serr != nil {
			return nil, serr
		}
		if replaced != nil && len(warnings) == 0 {
			// The record replaced carried promises that the one this exchange started from did not.
			if w, ok := s.promiseBroken(r, replaced); ok {
				warnings = append(warnings, w)
			}
		}
		if xerr != nil {
			// Rotated, but no usable access token came with the new head: the head is kept, nothing is handed out.
			return nil, &IncompleteAnswerError{Kept: s.store.Describe(), Err: xerr}
		}
		s.rememberScopes(r.key, r.req.Scopes)
		if narrowed(rec.Scopes, r.req.Scopes) {
			warnings = append(warnings, Warning{Kind: WarnNarrowed, Scopes: rec.Scopes, Requested: normalizeScopes(r.req.Scopes)})
		}
		if w, ok := s.shortLifetimeWarning(next, r.req.MinValidity); ok {
			warnings = append(warnings, w)
		}
		return s.handedOut(r, next, true, warnings), nil
	}
}
