package tokensource

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// maxDeathSaves bounds the tries to record a death over records of the same refused head that other runners keep
// writing (their leases).
const maxDeathSaves = 3

// RunnerName names this process for a Death's By: host name and process ID, which tell people which run learned it.
func RunnerName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown host"
	}
	return fmt.Sprintf("%s, pid %d", host, os.Getpid())
}

// recordDeath is called when Bipsync refused rec's head as spent and the store showed no newer record: the chain is
// dead. It records that in the store (rec with Dead set, same head and generation, a new ID), conditional on rec, so
// that every later run fails at once instead of asking Bipsync again or handing out rec's token. It returns spent,
// carrying the Death, or, when the store holds another head meanwhile (another runner saved a rotation after all), that
// record, for the caller to adopt.
//
// A store whose save is a read then a write is not written: a runner elsewhere that saved a rotation between the two
// would see its live head replaced by this dead one, and a chain lost is worse than a death not shared.
func (s *Source) recordDeath(ctx context.Context, r *run, rec *tokenstore.Record, spent *ChainSpentError) (*tokenstore.Record, error) {
	death := &tokenstore.Death{At: s.now(), Cause: string(bipsync.ReauthorizationCause(spent.Err)), By: RunnerName()}
	if spent.Err != nil {
		death.Detail = spent.Err.Error() // bipsync.Error never holds a token
	}
	spent.Death = death
	s.seedConsumedByGrant(ctx, r, rec, spent)
	if !s.store.Traits().AtomicSave {
		return nil, spent
	}
	cur := rec
	for range maxDeathSaves {
		next := cur.Clone()
		next.ID = tokenstore.NewRecordID()
		next.Dead = death
		next.Leases = nil // the access token they were about was revoked with the head
		err := s.saveRecord(ctx, r.key, r.seed, next, cur.Revision().Ptr())
		if err == nil {
			spent.Recorded = true
			return nil, spent
		}
		if !errors.Is(err, tokenstore.ErrConflict) {
			spent.RecordErr = err
			return nil, spent
		}
		latest, lerr := s.load(ctx, r.key, r.seed)
		switch {
		case lerr != nil:
			spent.RecordErr = lerr
			return nil, spent
		case latest == nil:
			spent.RecordErr = errors.New("the chain's record disappeared from the store")
			return nil, spent
		case latest.RefreshToken != rec.RefreshToken:
			// Another runner saved a rotation after all: its record is the chain.
			if err := s.moved(r, rec, latest); err != nil {
				return nil, err
			}
			r.observe(latest)
			return latest, nil
		case latest.Dead != nil:
			// Another runner recorded the same death first.
			spent.Death, spent.Recorded = latest.Dead, true
			return nil, spent
		}
		r.observe(latest)
		cur = latest // another runner's write of the same head (a lease): record the death over it
	}
	spent.RecordErr = errors.New("other runners kept writing the chain's record")
	return nil, spent
}

// knownDead is the error for a record that an earlier run recorded dead: nothing is asked of Bipsync and nothing is
// handed out, because the head was refused for good and its access token was revoked with it.
func (s *Source) knownDead(ctx context.Context, r *run, rec *tokenstore.Record) error {
	spent := &ChainSpentError{Death: rec.Dead, Known: true, LastRotation: rec.RotatedAt, Generation: rec.Generation}
	s.seedConsumedByGrant(ctx, r, rec, spent)
	return spent
}

// KnownDead returns the chain's recorded death when err says that an earlier run recorded the chain dead, so this
// request asked nothing of Bipsync. Callers that branch on bipsync.NeedsReauthorization check it too: no Bipsync error
// comes with such a failure.
func KnownDead(err error) (*tokenstore.Death, bool) {
	var spent *ChainSpentError
	if errors.As(err, &spent) && spent.Known && spent.Death != nil {
		return spent.Death, true
	}
	return nil, false
}
