package tokensource

import (
	"context"
	"errors"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// claims tells whether runners claim a head before exchanging it: stores that write conditionally (Traits.Claims) but
// whose lock does not reach every runner. Under a shared lock nobody else can exchange meanwhile; a claim would be a
// write for nothing.
func (s *Source) claims() bool {
	t := s.store.Traits()
	return t.Claims && !t.SharedLock
}

// claimOutcome is what claimHead found.
type claimOutcome struct {
	// rec is the record to work from: the one claimed (reloaded after the claim), or another runner's newer record.
	rec *tokenstore.Record
	// claimed tells that this runner holds the claim on rec's head and exchanges it; false: rec is newer, adopt it.
	claimed bool
	// took is the claim this one replaced after it outlived its TTL, if it did.
	took *takeOver
	// mine is this runner's claim (claimed only).
	mine *tokenstore.Claim
}

// takeOver describes a claim another holder left, which this runner took over once it had seen it unchanged for its TTL.
type takeOver struct {
	claim  tokenstore.Claim
	seenAt time.Time
}

// claimTTL is how long this runner may take from its claim to its record: the exchange and its save, each at its
// budget.
func (s *Source) claimTTL() time.Duration { return s.exchangeBudget + s.saveBudget }

// claimHead claims rec's head before this runner exchanges it, so that runners that share the store without a lock
// that reaches them all send a due head to Bipsync once. A claim that is missing, names an older revision than rec
// (spent), is this Source's own, or was seen unchanged for longer than its TTL by this runner's clock (its holder
// died) is replaced by this runner's, in one conditional write. Otherwise another runner holds the head: this runner
// waits, reading only, until the record moves past rec (returned, to adopt) or the claim outlives its TTL. After a
// claim the record is read once more: a runner that saved between this runner's read and its claim has rotated it.
func (s *Source) claimHead(ctx context.Context, r *run, rec *tokenstore.Record) (claimOutcome, error) {
	cl, ok := s.store.(tokenstore.Claimer)
	if !ok {
		return claimOutcome{}, &StoreError{Store: s.store.Describe(), Op: "claim the chain's head in",
			Err: errors.New("the store says it takes claims but has no claim operations (a bug in the provider)")}
	}
	delay := adoptPollFirst
	for {
		c, err := cl.LoadClaim(ctx, r.key, r.seed)
		if err != nil {
			return claimOutcome{}, &StoreError{Store: s.store.Describe(), Op: "read the chain's claim in", Err: err}
		}
		if c != nil && c.Head.Generation > rec.Generation {
			// Another runner claimed a later head than this request read: the record read is stale.
			if cur, err := s.newerRecord(ctx, r, rec); err != nil || cur != nil {
				return claimOutcome{rec: cur}, err
			}
		}
		// A claim with no TTL was given up by its holder without consuming the head (see giveUpClaim).
		free := c == nil || c.Head.Generation < rec.Generation || c.Holder == s.leaseID || c.TTL == 0
		var took *takeOver
		if !free {
			took = s.claimExpired(r.c, c)
			free = took != nil
		}
		if free {
			out, err := s.putClaim(ctx, r, cl, rec, c, took)
			if err != nil || out.rec != nil {
				return out, err
			}
			// Another runner claimed first: wait for its record.
		}
		cur, err := s.newerRecord(ctx, r, rec)
		if err != nil || cur != nil {
			return claimOutcome{rec: cur}, err
		}
		if err := s.sleep(ctx, delay); err != nil {
			return claimOutcome{}, &StoreError{Store: s.store.Describe(), Op: "wait for another runner's record in", Err: err}
		}
		delay = min(2*delay, adoptPollMax)
	}
}

// claimExpired tells whether c, another holder's claim, has been seen unchanged for its TTL by this runner's clock,
// from when this process first saw it: claims carry no expiry, because runners' clocks disagree.
func (s *Source) claimExpired(cs *chainState, c *tokenstore.Claim) *takeOver {
	now := s.now()
	if cs.claimSeen != c.ID {
		cs.claimSeen, cs.claimSeenAt = c.ID, now
	}
	ttl := c.TTL
	if ttl <= 0 {
		ttl = s.claimTTL()
	}
	if now.Sub(cs.claimSeenAt) < ttl {
		return nil
	}
	return &takeOver{claim: *c, seenAt: cs.claimSeenAt}
}

// putClaim writes this runner's claim on rec's head in place of prev. It returns an outcome with no record when
// another runner's claim came first.
func (s *Source) putClaim(ctx context.Context, r *run, cl tokenstore.Claimer, rec *tokenstore.Record, prev *tokenstore.Claim, took *takeOver) (claimOutcome, error) {
	mine := &tokenstore.Claim{ID: tokenstore.NewRecordID(), Head: rec.Revision(), Holder: s.leaseID, At: s.now(), TTL: s.claimTTL()}
	err := cl.PutClaim(ctx, r.key, r.seed, mine, prev)
	switch {
	case errors.Is(err, tokenstore.ErrConflict):
		return claimOutcome{}, nil
	case err != nil:
		return claimOutcome{}, &StoreError{Store: s.store.Describe(), Op: "claim the chain's head in", Err: err}
	}
	cur, err := s.load(ctx, r.key, r.seed)
	if err != nil {
		return claimOutcome{}, err
	}
	if cur == nil {
		return claimOutcome{}, &StoreError{Store: s.store.Describe(), Op: "load", Err: errors.New("the chain's record disappeared from the store")}
	}
	r.observe(cur)
	if rotatedPast(cur, rec) {
		// Another runner saved between this runner's read and its claim: the claim names a spent revision, and the
		// record is adopted instead of exchanged.
		if err := s.moved(r, rec, cur); err != nil {
			return claimOutcome{}, err
		}
		return claimOutcome{rec: cur}, nil
	}
	if cur.Generation == rec.Generation {
		rec = cur // the same head, perhaps without a lease now: the save replaces what the store holds
	}
	return claimOutcome{rec: rec, claimed: true, took: took, mine: mine}, nil
}

// giveUpClaim replaces this runner's claim, after an exchange that surely consumed nothing (Bipsync answered with an
// error that revokes nothing, or the request was never sent), by one with no TTL, which the next runner takes at once
// instead of waiting out the TTL. It is one more write, only on such a failure; if it fails, others wait the TTL.
func (s *Source) giveUpClaim(ctx context.Context, r *run, mine *tokenstore.Claim, xerr error) {
	var be *bipsync.Error
	if mine == nil || !errors.As(xerr, &be) || bipsync.IsOutcomeUnknown(xerr) || refusedAsSpent(xerr) {
		return // the head may be consumed: others wait the TTL rather than send it again
	}
	cl, ok := s.store.(tokenstore.Claimer)
	if !ok {
		return
	}
	given := &tokenstore.Claim{ID: tokenstore.NewRecordID(), Head: mine.Head, Holder: s.leaseID, At: s.now()}
	_ = cl.PutClaim(context.WithoutCancel(ctx), r.key, r.seed, given, mine)
}

// newerRecord reads the record and returns it when it moved past rec (nil when it has not).
func (s *Source) newerRecord(ctx context.Context, r *run, rec *tokenstore.Record) (*tokenstore.Record, error) {
	cur, err := s.load(ctx, r.key, r.seed)
	if err != nil || cur == nil {
		return nil, err
	}
	r.observe(cur)
	if !rotatedPast(cur, rec) {
		return nil, nil
	}
	if err := s.moved(r, rec, cur); err != nil {
		return nil, err
	}
	return cur, nil
}

// sharedWithoutClaims returns the warning that the chain is shared through a store without conditional writes, once
// per process, when r saw another runner's record appear: two runners can exchange one head there, which strict
// Bipsync answers with a refusal that the loser recovers from, but a server with replay detection (RFC 9700 section
// 4.14.2) with the revocation of the whole chain.
func (s *Source) sharedWithoutClaims(r *run) (Warning, bool) {
	t := s.store.Traits()
	if !r.othersSeen || t.SharedLock || t.AtomicSave || t.Claims {
		return Warning{}, false
	}
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	if s.reg.noClaimsWarned {
		return Warning{}, false
	}
	s.reg.noClaimsWarned = true
	return Warning{Kind: WarnNoClaims, Store: s.store.Describe()}, true
}
