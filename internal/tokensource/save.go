package tokensource

import (
	"context"
	"errors"
	"fmt"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// savePending saves what an earlier request of this process exchanged but could not save, before anything else
// happens to the chain. Like the exchange's own save it decides by generation (saveOver): a record older than the
// pending one holds a spent head and is replaced, even when another process rewrote it meanwhile; the pending record
// is dropped only when the store holds a generation at least as high (it landed and may have rotated since, or a
// fork's sibling won).
func (s *Source) savePending(ctx context.Context, r *run) error {
	if r.c.pending == nil {
		return nil
	}
	_, replaces, err := s.saveOver(ctx, r, r.c.pending, r.c.pendingReplaces)
	switch {
	case err == nil, errors.Is(err, errMovedOn):
		if err == nil {
			r.wrote(r.c.pending)
		}
		r.c.pending, r.c.pendingReplaces, r.c.rescued = nil, nil, ""
		return nil
	default:
		r.c.pendingReplaces = replaces
		return &SaveError{Store: s.store.Describe(), Err: err, Rescue: r.c.rescued}
	}
}

// saveExchanged saves next, the record of prev's exchange, with the save's own budget (see saveOver). It returns
// errMovedOn when the store holds another exchange's result (another runner rotated prev's head, or a later one, and
// saved first), and the record it replaced in place of prev, if any, for the promises that record carried.
//
// A failure keeps the record in memory and in a rescue file, to be saved before the next use.
func (s *Source) saveExchanged(ctx context.Context, r *run, prev, next *tokenstore.Record) (*tokenstore.Record, error) {
	replaced, replaces, err := s.saveOver(ctx, r, next, prev.Revision().Ptr())
	switch {
	case err == nil:
		r.wrote(next)
		return replaced, nil
	case errors.Is(err, errMovedOn):
		return nil, err
	}
	r.c.pending, r.c.pendingReplaces = next, replaces
	path, rerr := s.writeRescue(r.key, r.seed, next, replaces)
	r.c.rescued = path
	return nil, &SaveError{Store: s.store.Describe(), Err: err, Rescue: path, RescueErr: rerr}
}

// saveOver saves next, an exchange's record, in place of replaces. When the store holds another record it decides by
// generation, never by the times in records (they come from different machines' clocks):
//   - a generation lower than next's (the record of the head next's exchange consumed, perhaps rewritten by another
//     process for a lease, or an older one a get/put helper elsewhere put back) holds a spent head: next is the chain's
//     only live head and replaces it, up to maxHeadSaves times while others keep writing;
//   - a generation at least next's that is not next itself is another exchange's result: errMovedOn.
//
// It returns the record it replaced in place of replaces (nil: none) and the revision its last attempt replaced.
func (s *Source) saveOver(ctx context.Context, r *run, next *tokenstore.Record, replaces *tokenstore.Revision) (*tokenstore.Record, *tokenstore.Revision, error) {
	var replaced *tokenstore.Record
	for attempt := 1; ; attempt++ {
		err := s.saveRecord(ctx, r.key, r.seed, next, replaces)
		if err == nil || !errors.Is(err, tokenstore.ErrConflict) {
			return replaced, replaces, err
		}
		cur, lerr := s.load(ctx, r.key, r.seed)
		switch {
		case lerr != nil:
			return nil, replaces, fmt.Errorf("%w; reading the record it holds failed too: %w", err, lerr)
		case cur != nil && cur.Revision().Matches(next.Revision()):
			return replaced, replaces, nil // landed, although a save reported a failure
		case cur != nil && replaces != nil && cur.Revision().Matches(*replaces):
			// A helper that reports a conflict wrongly must not make this process drop the only live head.
			return nil, replaces, fmt.Errorf("%w, but it still holds the record this save replaces: the store reports conflicts wrongly", err)
		case cur != nil && cur.Generation >= next.Generation:
			r.observe(cur)
			return nil, replaces, errMovedOn
		case attempt >= maxHeadSaves:
			return nil, replaces, fmt.Errorf("%w; other runners kept writing records of the head this exchange consumed", err)
		}
		r.observe(cur)
		if cur != nil {
			replaced, replaces = cur, cur.Revision().Ptr()
		} else {
			replaced, replaces = nil, nil
		}
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
