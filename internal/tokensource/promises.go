package tokensource

import (
	"context"
	"errors"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// handOut hands out rec's token and records this Source's lease in the store when it grows. It returns errMovedOn
// when the store moved on meanwhile: the token may be revoked already.
func (s *Source) handOut(ctx context.Context, r *run, rec *tokenstore.Record) (*tokenstore.Record, error) {
	s.rememberScopes(r.key, r.req.Scopes)
	until := s.now().Add(r.req.MinValidity)
	own := findLease(rec.Leases, s.leaseID)
	needLease := own == nil || until.After(own.Until.Add(leaseGranularity))
	if !needLease || !s.store.Traits().AtomicSave {
		// A store whose save is a read then a write must not be written on a mere hand-out: a runner elsewhere that
		// rotated between the two would see its head replaced by this older one. The promise stays in this process.
		return rec, nil
	}
	next := rec.Clone()
	next.ID = tokenstore.NewRecordID()
	next.Leases = s.otherLeases(rec.Leases)
	lease := s.lease(r.req.MinValidity)
	if own != nil && own.Until.After(lease.Until) {
		lease = *own
	}
	next.Leases = append(next.Leases, lease)
	err := s.saveRecord(ctx, r.key, r.seed, next, rec.Revision().Ptr())
	switch {
	case err == nil:
		return next, nil
	case errors.Is(err, tokenstore.ErrConflict):
		return nil, errMovedOn
	default:
		// The token is still good; only the promise is not recorded for other processes. Not worth failing a run.
		return rec, nil
	}
}

// lease is this Source's promise for a hand-out now with minValidity.
func (s *Source) lease(minValidity time.Duration) tokenstore.Lease {
	now := s.now()
	return tokenstore.Lease{ID: s.leaseID, Until: now.Add(minValidity), MinValidity: minValidity, At: now}
}

// otherLeases returns the leases of other processes that still run.
func (s *Source) otherLeases(leases []tokenstore.Lease) []tokenstore.Lease {
	var out []tokenstore.Lease
	for _, l := range leases {
		if l.ID != s.leaseID && s.now().Before(l.Until) {
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
	if until.After(oc.until) {
		oc.until, oc.minValidity, oc.at = until, r.req.MinValidity, now
	}
	s.mu.Unlock()
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
// resource's Close). When the last one is done, the Source's lease is removed from the record, so that a later exchange
// breaks no promise. A lease that cannot be removed expires by itself; the error says why, for a log.
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
	if !s.store.Traits().AtomicSave {
		return nil
	}
	unlock, err := s.lockChain(ctx, s.reg.chain(key), key)
	if err != nil {
		return err
	}
	defer unlock()
	for range releaseAttempts {
		rec, err := s.store.Load(ctx, key, oc.seed)
		if err != nil || rec == nil || findLease(rec.Leases, s.leaseID) == nil {
			return err
		}
		next := rec.Clone()
		next.ID = tokenstore.NewRecordID()
		next.Leases = s.otherLeases(rec.Leases)
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
		MinValidity: r.req.MinValidity, Forced: r.req.Force && !rec.RotatedAt.After(r.started)}, true
}
