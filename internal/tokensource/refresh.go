package tokensource

import (
	"context"
	"errors"
	"fmt"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// run is one request's view of a chain: what it holds and what it has seen.
type run struct {
	key       tokenstore.Key
	seed      string
	c         *chainState
	req       Request
	adoptions int // moves to another runner's rotation of the chain
	// seen are the revisions the store held during this request, and the ones this request wrote.
	seen []tokenstore.Revision
	// othersSeen tells that a revision this request did not write appeared while it worked: another runner uses the
	// chain.
	othersSeen bool
}

func (r *run) knows(rev tokenstore.Revision) bool {
	for _, v := range r.seen {
		if v == rev {
			return true
		}
	}
	return false
}

// observe notes a record the store holds; one that appears after the first, and that this request did not write, is
// another runner's.
func (r *run) observe(rec *tokenstore.Record) {
	if rec == nil || r.knows(rec.Revision()) {
		return
	}
	if len(r.seen) > 0 {
		r.othersSeen = true
	}
	r.seen = append(r.seen, rec.Revision())
}

// wrote notes a record this request saved, so that reading it back is not taken for another runner's.
func (r *run) wrote(rec *tokenstore.Record) {
	if !r.knows(rec.Revision()) {
		r.seen = append(r.seen, rec.Revision())
	}
}

// forced tells whether the request still has to rotate the chain. A forced request (the rotate command, after a
// suspected leak) makes an exchange of its own, once it holds the chain, whatever other runs did meanwhile: an
// exchange another run saved while this one waited may have been answered before this request began, and its tokens
// may be the very ones suspected. Neither a rotation's time (another machine's clock) nor a generation read before the
// wait can tell that apart, so nothing but its own exchange counts. serve returns once that exchange is saved.
func (r *run) forced(*tokenstore.Record) bool {
	return r.req.Force
}

func (s *Source) refreshToken(ctx context.Context, req Request) (*Result, error) {
	if req.RefreshToken == "" {
		return nil, errors.New("no refresh token given")
	}
	if !s.store.Traits().Persistent {
		return nil, ErrStoreRequired
	}
	r := &run{key: s.Key(req.RefreshToken), seed: req.RefreshToken, req: req}
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
	if err != nil {
		// The record under the old key may hold the chain, its seed spent: starting a new chain from the seed under the
		// canonical key would be refused, a false reauthorization. Nothing is decided until it can be read.
		return nil, &StoreError{Store: s.store.Describe(), Op: "load", Err: fmt.Errorf("the record under the key of an earlier provider version: %w", err)}
	}
	if old == nil {
		return nil, nil
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
		if !r.forced(rec) && s.reusable(rec, r.req) {
			// Reusing the stored token writes nothing: the promise made to this consumer stays in this process.
			s.rememberScopes(r.key, r.req.Scopes)
			return s.handedOut(r, rec, false, nil), nil
		}
		if err := s.checkMinValidity(rec, r.req.MinValidity); err != nil {
			return nil, err
		}
		var took *takeOver
		var mine *tokenstore.Claim
		if s.claims() {
			cl, err := s.claimHead(ctx, r, rec)
			if err != nil {
				return nil, err
			}
			rec = cl.rec
			if !cl.claimed {
				continue // another runner's newer record: its token may serve
			}
			took, mine = cl.took, cl.mine
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
				// An outcome-unknown exchange keeps its claim: other runners wait its TTL rather than send the head again.
				s.giveUpClaim(ctx, r, mine, xerr)
				return nil, xerr
			}
			newer, err := s.afterRefusal(ctx, r, rec, took)
			if err != nil {
				return nil, err
			}
			if newer == nil {
				if newer, err = s.recordDeath(ctx, r, rec, s.spent(r, rec, xerr, took)); err != nil {
					return nil, err
				}
			}
			rec = newer
			continue
		}
		// The exchange revoked the token every other lease was about: they are broken (and named above) and gone. The
		// exchanging process's own lease goes with the exchange's save, so it costs no write of its own, and only where
		// Release can remove it again (a conditional save): a lease nobody removes would name a consumer long gone.
		if s.store.Traits().AtomicSave && next.AccessToken != "" {
			next.Leases = []tokenstore.Lease{s.lease(r.req.MinValidity)}
		}
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

// afterRefusal looks for the record that makes a refused head spent rather than dead. After taking over a claim the
// claimer's TTL has passed already, so one read says whether it saved; otherwise the store is watched (awaitNewer).
func (s *Source) afterRefusal(ctx context.Context, r *run, rec *tokenstore.Record, took *takeOver) (*tokenstore.Record, error) {
	if took == nil {
		return s.awaitNewer(ctx, r, rec)
	}
	cur, err := s.load(ctx, r.key, r.seed)
	if err != nil || cur == nil || !rotatedPast(cur, rec) {
		return nil, err
	}
	r.observe(cur)
	if err := s.moved(r, rec, cur); err != nil {
		return nil, err
	}
	return cur, nil
}

// spent is the error of a head Bipsync refused for good, with what the request saw.
func (s *Source) spent(r *run, rec *tokenstore.Record, xerr error, took *takeOver) *ChainSpentError {
	e := &ChainSpentError{Err: xerr, OtherRunnerSeen: r.othersSeen, Waited: s.waitFor(), LastRotation: rec.RotatedAt,
		Generation: rec.Generation}
	if took != nil {
		e.Waited = 0
		e.ClaimHolderDied, e.ClaimHolder, e.ClaimSeenAt, e.ClaimTTL = true, took.claim.Holder, took.seenAt, took.claim.TTL
	}
	return e
}
