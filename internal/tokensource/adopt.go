package tokensource

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// errMovedOn says that the store holds another record than the one a request was working from.
var errMovedOn = errors.New("the token store moved on")

// adopt reloads the record another runner saved in place of prev and makes it the request's record.
func (s *Source) adopt(ctx context.Context, r *run, prev *tokenstore.Record) (*tokenstore.Record, error) {
	rec, err := s.load(ctx, r.key, r.seed)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, &StoreError{Store: s.store.Describe(), Op: "load", Err: errors.New("the chain's record disappeared from the store")}
	}
	if err := s.moved(r, prev, rec); err != nil {
		return nil, err
	}
	r.observe(rec)
	return rec, nil
}

// moved counts a move from prev to rec, another runner's record, against maxAdoptions when rec is a rotation past
// prev. A record of prev's head and generation that differs only in its leases is no rotation and costs nothing.
func (s *Source) moved(r *run, prev, rec *tokenstore.Record) error {
	if !rotatedPast(rec, prev) {
		return nil
	}
	if r.adoptions++; r.adoptions > maxAdoptions {
		return &StoreError{Store: s.store.Describe(), Op: "keep up with", Err: fmt.Errorf(
			"other runners rotated this chain %d times while this request waited; nothing more was exchanged: run again", maxAdoptions)}
	}
	return nil
}

// rotatedPast tells whether cur is a later state of the chain than rec: a higher generation, or (a fork that a store
// without conditional writes let through) another head of the same generation. Records are ordered by generation,
// never by the times in them, which come from different machines' clocks.
func rotatedPast(cur, rec *tokenstore.Record) bool {
	return cur.Generation > rec.Generation || (cur.Generation == rec.Generation && cur.RefreshToken != rec.RefreshToken)
}

// refusedAsSpent tells whether Bipsync refused the head as revoked or expired. A refused exchange consumed nothing; if
// another runner rotated the chain meanwhile, the head this request read is spent and the store may hold the newer
// one. An expired answer counts too: Bipsync checks expiry before revocation, so a head that another runner rotated
// and that has since passed its month is reported as expired.
func refusedAsSpent(err error) bool {
	switch bipsync.ReauthorizationCause(err) {
	case bipsync.CauseRevoked, bipsync.CauseExpired:
		return true
	}
	return false
}

// waitFor is how long a refused request waits for another runner's record: only stores whose lock does not reach
// every runner can have a winner that is still between its exchange and its save.
func (s *Source) waitFor() time.Duration {
	if s.store.Traits().SharedLock {
		return 0
	}
	return s.adoptWait
}

// awaitNewer re-reads the store until it holds a record rotated past rec, whose head Bipsync refused as spent, or the
// wait is over (nil, nil). A record of the same head (rec with other leases) holds nothing to adopt: its access token
// was revoked with the head.
func (s *Source) awaitNewer(ctx context.Context, r *run, rec *tokenstore.Record) (*tokenstore.Record, error) {
	deadline := s.now().Add(s.waitFor())
	delay := adoptPollFirst
	for {
		cur, err := s.load(ctx, r.key, r.seed)
		if err != nil {
			return nil, err
		}
		if cur != nil {
			r.observe(cur)
		}
		if cur != nil && rotatedPast(cur, rec) {
			if err := s.moved(r, rec, cur); err != nil {
				return nil, err
			}
			return cur, nil
		}
		if !s.now().Before(deadline) {
			return nil, nil
		}
		if err := s.sleep(ctx, min(delay, deadline.Sub(s.now()))); err != nil {
			return nil, &StoreError{Store: s.store.Describe(), Op: "wait for another runner's record in", Err: err}
		}
		delay = min(2*delay, adoptPollMax)
	}
}
