package tokensource

import (
	"context"
	"errors"
	"fmt"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// savePending saves what an earlier request of this process exchanged but could not save, before anything else
// happens to the chain. The save names the record it replaces, so a record that landed after all, and was rotated
// since by another process, is never put back.
func (s *Source) savePending(ctx context.Context, r *run) error {
	if r.c.pending == nil {
		return nil
	}
	err := s.saveRecord(ctx, r.key, r.seed, r.c.pending, r.c.pendingReplaces)
	switch {
	case err == nil, errors.Is(err, tokenstore.ErrConflict):
		// Saved, or the store moved on (the pending record landed and was rotated since, or another runner's record
		// won): either way the store holds the chain now.
		r.c.pending, r.c.pendingReplaces, r.c.rescued = nil, nil, ""
		return nil
	default:
		return &SaveError{Store: s.store.Describe(), Err: err, Rescue: r.c.rescued}
	}
}

// saveExchanged saves next, the record of prev's exchange, with the save's own budget. It returns errMovedOn when the
// store holds another exchange's result (another runner rotated prev's head, or a later one, and saved first).
//
// A store that holds a record of the head this exchange consumed, written by another runner meanwhile (a lease of a
// hand-out, a first record of the chain that raced this one's), or an older record (a get/put helper elsewhere put a
// stale one), holds a spent head: next is the chain's only live head, and replaces that record. It returns the record
// replaced so, if any, for the promises it carried.
//
// A failure keeps the record in memory and in a rescue file, to be saved before the next use.
func (s *Source) saveExchanged(ctx context.Context, r *run, prev, next *tokenstore.Record) (*tokenstore.Record, error) {
	replaces := prev.Revision().Ptr()
	var replaced *tokenstore.Record
	for attempt := 1; ; attempt++ {
		err := s.saveRecord(ctx, r.key, r.seed, next, replaces)
		if err == nil {
			return replaced, nil
		}
		if errors.Is(err, tokenstore.ErrConflict) {
			cur, lerr := s.load(ctx, r.key, r.seed)
			switch {
			case lerr != nil:
				err = fmt.Errorf("%w; reading the record it holds failed too: %w", err, lerr)
			case cur != nil && replaces != nil && cur.Revision().Matches(*replaces):
				// A helper that reports a conflict wrongly must not make this process drop the only live head.
				err = fmt.Errorf("%w, but it still holds the record this save replaces: the store reports conflicts wrongly", err)
			case cur != nil && cur.Generation > prev.Generation:
				r.observe(cur)
				return nil, errMovedOn
			case attempt < maxHeadSaves:
				if cur != nil {
					r.observe(cur)
					replaced, replaces = cur, cur.Revision().Ptr()
				} else {
					replaced, replaces = nil, nil
				}
				continue
			default:
				err = fmt.Errorf("%w; other runners kept writing records of the head this exchange consumed", err)
			}
		}
		r.c.pending, r.c.pendingReplaces = next, replaces
		path, rerr := s.writeRescue(r.key, r.seed, next, replaces)
		r.c.rescued = path
		return nil, &SaveError{Store: s.store.Describe(), Err: err, Rescue: path, RescueErr: rerr}
	}
}

func (s *Source) writeRescue(key tokenstore.Key, seed string, rec *tokenstore.Record, replaces *tokenstore.Revision) (string, error) {
	dir := s.rescueDir
	if dir == "" {
		d, err := tokenstore.DefaultRescueDir()
		if err != nil {
			return "", err
		}
		dir = d
	}
	return tokenstore.WriteRescue(dir, s.store, key, seed, rec, replaces)
}

// saveRecord saves with the save's own budget, detached from the caller, retrying what may pass (a busy disk, a secret
// manager's hiccup) with backoff. A conflict or an unreadable record is final. The saves are conditional, so a retry
// after a save that landed succeeds and one after another writer fails: retrying is always safe.
func (s *Source) saveRecord(ctx context.Context, key tokenstore.Key, seed string, rec *tokenstore.Record, replaces *tokenstore.Revision) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.saveBudget)
	defer cancel()
	delay := saveRetryFirst
	for attempt := 1; ; attempt++ {
		err := s.store.Save(sctx, key, seed, rec, replaces)
		if err == nil || errors.Is(err, tokenstore.ErrConflict) || errors.Is(err, tokenstore.ErrCorrupt) || errors.Is(err, tokenstore.ErrNoStore) {
			return err
		}
		if sctx.Err() != nil || attempt == saveAttempts {
			return err
		}
		if serr := s.sleep(sctx, delay); serr != nil {
			return err
		}
		delay *= 2
	}
}
