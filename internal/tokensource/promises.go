package tokensource

import (
	"context"
	"errors"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// lease is this Source's promise for a hand-out now with minValidity.
func (s *Source) lease(minValidity time.Duration) tokenstore.Lease {
	now := s.now()
	return tokenstore.Lease{ID: s.leaseID, Until: now.Add(minValidity), MinValidity: minValidity, At: now}
}

// withoutLease returns leases without the one of id.
func withoutLease(leases []tokenstore.Lease, id string) []tokenstore.Lease {
	var out []tokenstore.Lease
	for _, l := range leases {
		if l.ID != id {
			out = append(out, l)
		}
	}
	return out
}

func findLease(leases []tokenstore.Lease, id string) *tokenstore.Lease {
	for i := range leases {
		if leases[i].ID == id {
			return &leases[i]
		}
	}
	return nil
}

// handedOut counts the consumer as open and returns its result.
func (s *Source) handedOut(r *run, rec *tokenstore.Record, exchanged bool, warnings []Warning) *Result {
	now := s.now()
	until := now.Add(r.req.MinValidity)
	s.mu.Lock()
	oc := s.open[r.key]
	if oc == nil || oc.token != rec.AccessToken {
		oc = &openChain{seed: r.seed, n: oc.count(), token: rec.AccessToken, at: now}
		s.open[r.key] = oc
	}
	oc.n++
	if exchanged {
		oc.leased = findLease(rec.Leases, s.leaseID) != nil
	}
	if until.After(oc.until) {
		oc.until, oc.minValidity, oc.at = until, r.req.MinValidity, now
	}
	s.mu.Unlock()
	if w, ok := s.sharedWithoutClaims(r); ok {
		warnings = append(warnings, w)
	}
	res := s.result(rec, exchanged, r.adoptions > 0, warnings)
	res.Key = r.key
	return res
}

func (oc *openChain) count() int {
	if oc == nil {
		return 0
	}
	return oc.n
}

// Release tells the source that a consumer it handed a token of the chain key to is done with it (an ephemeral
// resource's Close). When the last one is done, a record this process exchanged but could not save is saved (the
// process may do nothing else with the chain before it exits), and the lease this process's exchange recorded, if the
// record still carries it, is removed with one conditional write, so that a later exchange breaks no promise. A lease
// that cannot be removed expires by itself; the error says why, for a log.
func (s *Source) Release(ctx context.Context, key tokenstore.Key) error {
	s.mu.Lock()
	oc := s.open[key]
	if oc == nil {
		s.mu.Unlock()
		return nil
	}
	oc.n--
	if oc.n > 0 {
		s.mu.Unlock()
		return nil
	}
	delete(s.open, key)
	s.mu.Unlock()
	c := s.reg.chain(key)
	if err := c.acquire(ctx); err != nil {
		return err
	}
	if c.pending == nil && !oc.leased {
		// Nothing of this process to save or remove: a process that only reused the stored token touches no store.
		c.release()
		return nil
	}
	c.release()
	unlock, err := s.lockChain(ctx, c, key)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.savePending(ctx, &run{key: key, seed: oc.seed, c: c}); err != nil {
		return err
	}
	if !oc.leased {
		return nil
	}
	for range releaseAttempts {
		rec, err := s.store.Load(ctx, key, oc.seed)
		if err != nil || rec == nil || findLease(rec.Leases, s.leaseID) == nil {
			// Nothing to remove: another exchange replaced the record, and the lease with it.
			return err
		}
		next := rec.Clone()
		next.ID = tokenstore.NewRecordID()
		next.Leases = withoutLease(rec.Leases, s.leaseID)
		err = s.saveRecord(ctx, key, oc.seed, next, rec.Revision().Ptr())
		if !errors.Is(err, tokenstore.ErrConflict) {
			return err
		}
	}
	return errors.New("the record kept changing; the lease expires by itself")
}

// promiseBroken tells whether exchanging rec now revokes an access token that a consumer still open was promised
// for longer, and describes the promise that runs longest: a lease of another process in the record, or a consumer of
// this Source's own.
func (s *Source) promiseBroken(r *run, rec *tokenstore.Record) (Warning, bool) {
	now := s.now()
	if rec.AccessToken == "" || !now.Before(rec.AccessTokenExpiresAt) {
		return Warning{}, false // nothing valid to revoke
	}
	var broken *tokenstore.Lease
	for i, l := range rec.Leases {
		if l.ID != s.leaseID && now.Before(l.Until) && (broken == nil || l.Until.After(broken.Until)) {
			broken = &rec.Leases[i]
		}
	}
	s.mu.Lock()
	if oc := s.open[r.key]; oc != nil && oc.n > 0 && oc.token == rec.AccessToken && now.Before(oc.until) &&
		(broken == nil || oc.until.After(broken.Until)) {
		broken = &tokenstore.Lease{Until: oc.until, MinValidity: oc.minValidity, At: oc.at}
	}
	s.mu.Unlock()
	if broken == nil {
		return Warning{}, false
	}
	return Warning{Kind: WarnPromiseBroken, PromisedAt: broken.At, PromisedUntil: broken.Until, PromisedMinValidity: broken.MinValidity,
		MinValidity: r.req.MinValidity, Forced: r.forced(rec)}, true
}
