package tokenstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Rescue is a sealed record that its store would not take, kept in a local file so that it can be put back once the
// store works again. It holds nothing in clear but the chain key and revisions: the envelope is sealed as in any store.
type Rescue struct {
	Key Key `json:"key"`
	// Replaces is the revision the failed save replaced, "none" for none: Restore puts the record back only over it.
	Replaces string `json:"replaces"`
	// Store describes the store the record belongs in.
	Store    string `json:"store"`
	Envelope string `json:"envelope"`
}

// DefaultRescueDir is where rescue files go: terraform-provider-bipsync/rescue under the user cache directory.
func DefaultRescueDir() (string, error) { return cacheSubdir("rescue") }

// WriteRescue seals rec and writes it with what Restore needs into a new file in dir (created 0700; the file is
// 0600), and returns the file's path. The name holds the chain key and revision, so rescues never overwrite each other.
func WriteRescue(dir string, st Store, key Key, seed string, rec *Record, replaces *Revision) (string, error) {
	if err := key.validate(); err != nil {
		return "", err
	}
	env, err := Seal(key, seed, rec)
	if err != nil {
		return "", err
	}
	if err := ensurePrivateDir(dir); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(Rescue{Key: key, Replaces: replaces.String(), Store: st.Describe(), Envelope: string(env)}, "", "  ")
	if err != nil {
		return "", err
	}
	name := string(key) + "." + strconv.FormatInt(rec.Generation, 10) + "." + rec.ID + ".rescue"
	path := filepath.Join(dir, name)
	if err := writeFileAtomic(dir, path, path+".tmp", append(data, '\n')); err != nil {
		return "", fmt.Errorf("write rescue file: %w", err)
	}
	return path, nil
}

// ReadRescue reads a file WriteRescue wrote.
func ReadRescue(path string) (*Rescue, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 2*maxEnvelope))
	if err != nil {
		return nil, err
	}
	var r Rescue
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s is not a rescue file: %w", path, errors.Unwrap(err))
	}
	if err := r.Key.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := EnvelopeRevision([]byte(r.Envelope)); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := parseRevision(r.Replaces); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// parseRevision reads what Revision.String wrote. A legacy revision parses as {ID: ""}.
func parseRevision(s string) (*Revision, error) {
	switch s {
	case "none":
		return nil, nil
	case "legacy":
		return &Revision{}, nil
	}
	g, id, ok := strings.Cut(s, ".")
	gen, err := strconv.ParseInt(g, 10, 64)
	if !ok || err != nil || gen < 0 || !validID(id) {
		return nil, fmt.Errorf("%q is not a revision", s)
	}
	return &Revision{Generation: gen, ID: id}, nil
}

// RestoreResult says what Restore did.
type RestoreResult int

const (
	// RestoreFailed: the store could not be read or written (the error says why); nothing is known to have changed.
	RestoreFailed RestoreResult = iota
	// Restored: the record is back, in place of the revision the failed save replaced.
	Restored
	// RestoredOverOlder: the record is back, in place of a record of a lower generation than the rescued one that the
	// store held instead of the replaced revision: the replaced head rewritten (a hand-out's lease, with a new ID), or an
	// older record put back by hand. Its refresh token is the one the rescued exchange consumed, or an older one.
	RestoredOverOlder
	// RestoreAlreadyHeld: the store already held the rescued record (an earlier restore, or the failed save landed after
	// all). Nothing was written.
	RestoreAlreadyHeld
	// RestoreRefused: the store holds a record of the rescued one's generation or a higher one, which is the chain now:
	// the rescue is stale. Nothing was written; the error satisfies errors.Is(err, ErrConflict).
	RestoreRefused
)

// String names the result, for logs and tests.
func (r RestoreResult) String() string {
	switch r {
	case Restored:
		return "restored"
	case RestoredOverOlder:
		return "restored over an older record"
	case RestoreAlreadyHeld:
		return "already held"
	case RestoreRefused:
		return "refused: the store holds a newer record"
	}
	return "failed"
}

// restoreAttempts bounds how often Restore replaces an older record that another writer keeps changing (only a store
// whose lock does not reach every writer lets that happen).
const restoreAttempts = 3

// Restore puts a rescued record into st, under the chain's lock, in place of the revision the failed save replaced.
//
// When the store holds another record, its generation decides. One of the rescued record's generation or a higher one
// is newer: another process saved the chain meanwhile, that record is the chain, and the rescue is stale (RestoreRefused
// with an ErrConflict). One of a lower generation holds a head that the rescued exchange consumed (the replaced record
// rewritten with a lease, which changes its ID but not its generation) or an older one: it is replaced, with a save
// conditional on it (RestoredOverOlder). A store that already holds the rescued record is left as it is.
func Restore(ctx context.Context, st Store, r *Rescue) (RestoreResult, error) {
	p, ok := st.(envelopePutter)
	g, gok := st.(envelopeGetter)
	if !ok || !gok {
		return RestoreFailed, fmt.Errorf("the %s keeps nothing to restore into", st.Describe())
	}
	replaces, err := parseRevision(r.Replaces)
	if err != nil {
		return RestoreFailed, err
	}
	next, err := EnvelopeRevision([]byte(r.Envelope))
	if err != nil {
		return RestoreFailed, err
	}
	unlock, err := st.Lock(ctx, r.Key)
	if err != nil {
		return RestoreFailed, err
	}
	defer func() { _ = unlock() }()
	result := Restored
	for attempt := 1; attempt <= restoreAttempts; attempt++ {
		data, err := g.getEnvelope(ctx, r.Key)
		if err != nil {
			return RestoreFailed, err
		}
		current, err := currentRevision(data)
		if err != nil {
			return RestoreFailed, fmt.Errorf("the %s holds a record of chain %s that cannot be read: %w; it is left alone", st.Describe(), r.Key, err)
		}
		switch {
		case current != nil && current.Matches(next):
			if attempt == 1 {
				return RestoreAlreadyHeld, nil
			}
			return result, nil // the put below landed although it reported a failure
		case current == nil && replaces == nil, current != nil && replaces != nil && current.Matches(*replaces):
			result = Restored
		case current != nil && current.Generation >= next.Generation:
			return RestoreRefused, &ConflictError{Replaces: replaces, Current: current}
		default:
			result = RestoredOverOlder
		}
		err = p.putEnvelope(ctx, r.Key, []byte(r.Envelope), next, current)
		if !errors.Is(err, ErrConflict) {
			if err != nil {
				return RestoreFailed, err
			}
			return result, nil
		}
		// Another writer changed the record between the read and the put: decide again by what it holds now.
	}
	return RestoreFailed, fmt.Errorf("the record of chain %s in the %s changed %d times while it was being restored: "+
		"another writer is using the chain; run the restore again once it is done", r.Key, st.Describe(), restoreAttempts)
}
