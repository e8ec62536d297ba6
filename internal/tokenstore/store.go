package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Store keeps chain records between processes. Callers take Lock, then Load, exchange, Save, unlock: the
// record must be read under the lock because another process may have rotated the chain meanwhile.
type Store interface {
	// Lock takes the exclusive lock for one chain, waiting (context-aware) while another holder has it. Independent
	// chains never wait for each other. The returned unlock is idempotent. How far the lock reaches (this machine, or
	// every process that uses the store) is in Traits.
	Lock(ctx context.Context, key Key) (unlock func() error, err error)
	// Load returns the record, or (nil, nil) when there is none. A record that cannot be decrypted with seed or
	// is malformed gives an error satisfying errors.Is(err, ErrCorrupt) that says where it is and what to do,
	// never its content.
	Load(ctx context.Context, key Key, seed string) (*Record, error)
	// Save durably stores rec in place of the record whose revision is replaces (nil: in place of no record), so
	// that a store never goes back and a fork of a chain ends with one head. It fails with an error satisfying
	// errors.Is(err, ErrConflict) when the store holds another record, unless it holds rec itself: repeating a save
	// that landed although it reported a failure succeeds. rec.ID must be set (NewRecordID); the caller holds Lock.
	Save(ctx context.Context, key Key, seed string, rec *Record, replaces *Revision) error
	// Traits says what the store guarantees.
	Traits() Traits
	// Describe says in human words where records live, for diagnostics. It holds no secrets.
	Describe() string
}

// Traits say what a store guarantees, so callers decide by property rather than by backend name.
type Traits struct {
	// Persistent stores keep records between processes (false only for the none store).
	Persistent bool
	// SharedLock stores have a Lock that excludes every process using the store, wherever it runs (a database lock),
	// or whose records are only ever used on this machine (the file store). Without it (a command helper), runners on
	// other machines may exchange the same chain at the same moment, and only conditional saves keep them apart.
	SharedLock bool
	// AtomicSave stores check the record they replace and write in one step no other writer can split (the file
	// store under its lock, a database, a command helper of protocol 2). Without it the check is a read before the
	// write, and a writer on another machine may slip between the two.
	AtomicSave bool
	// Local stores keep records on this machine's disk: a runner that is thrown away loses them.
	Local bool
	// Claims stores implement Claimer: without a shared lock, runners claim a head before exchanging it (see Claimer).
	Claims bool
}

// ErrCorrupt marks a record that exists but cannot be read with the seed given.
var ErrCorrupt = errors.New("token store record cannot be read")

// ErrNoStore is returned by the none store's Save: there is nowhere to keep a rotated chain.
var ErrNoStore = errors.New("no token store configured")

// ErrConflict marks a save refused because the store no longer holds the record it was to replace.
var ErrConflict = errors.New("the token store holds another record than the one this save replaces")

// ConflictError is the error of a refused save. Current is the revision the store holds (nil: none, or not known to
// a command helper). errors.Is(err, ErrConflict) holds.
type ConflictError struct {
	Replaces *Revision
	Current  *Revision
}

func (e *ConflictError) Error() string {
	cur := "another record"
	if e.Current != nil {
		cur = "revision " + e.Current.String()
	}
	return fmt.Sprintf("%v: it holds %s, and this save replaces %s", ErrConflict, cur, e.Replaces.String())
}

// Is makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// checkReplace decides a conditional save: nil when the store holds the record the save replaces (current equals
// replaces) or the record being saved (next: a save that landed before, and landed is true: nothing is left to write),
// else a *ConflictError.
func checkReplace(current *Revision, replaces *Revision, next Revision) (landed bool, err error) {
	switch {
	case current == nil && replaces == nil:
		return false, nil
	case current != nil && current.Matches(next):
		return true, nil
	case current != nil && replaces != nil && current.Matches(*replaces):
		return false, nil
	}
	return false, &ConflictError{Replaces: replaces, Current: current}
}

// currentRevision returns the revision of the envelope a store holds (nil data: no record, nil revision), read from
// its clear header without the seed. An envelope that does not parse is an ErrCorrupt: it is never replaced.
func currentRevision(data []byte) (*Revision, error) {
	if data == nil {
		return nil, nil
	}
	rev, err := EnvelopeRevision(data)
	if err != nil {
		return nil, err
	}
	return &rev, nil
}

// envelopePutter is implemented by every store that keeps records: a conditional save of an envelope that is already
// sealed. Restore uses it to put a rescued record back without the seed.
type envelopePutter interface {
	putEnvelope(ctx context.Context, key Key, data []byte, next Revision, replaces *Revision) error
}

// sealAndPut is Save for a store that keeps records: it seals rec and hands the envelope to the store's conditional
// put, which is all that differs between backends.
func sealAndPut(ctx context.Context, p envelopePutter, key Key, seed string, rec *Record, replaces *Revision) error {
	if err := checkSave(ctx, key, rec); err != nil {
		return err
	}
	data, err := Seal(key, seed, rec)
	if err != nil {
		return err
	}
	return p.putEnvelope(ctx, key, data, rec.Revision(), replaces)
}

// appDir is the directory name under the user cache dir; the provider owns everything beneath it.
const appDir = "terraform-provider-bipsync"

// DefaultDir returns the default file store directory, os.UserCacheDir()/terraform-provider-bipsync/chains.
// A cache dir is the right home: losing it costs a reauthorization, not data, and it is per user.
func DefaultDir() (string, error) {
	return cacheSubdir("chains")
}

func cacheSubdir(name string) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("user cache directory: %w", err)
	}
	return filepath.Join(base, appDir, name), nil
}

// checkKeyCtx is the common prologue of every Store method.
func checkKeyCtx(ctx context.Context, key Key) error {
	if err := key.validate(); err != nil {
		return err
	}
	return context.Cause(ctx)
}

// checkSave is the common prologue of Save.
func checkSave(ctx context.Context, key Key, rec *Record) error {
	if err := checkKeyCtx(ctx, key); err != nil {
		return err
	}
	if rec == nil || rec.ID == "" {
		return errors.New("save token store record: the record has no revision ID (a bug in the provider)")
	}
	return nil
}
