package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// posixPerms says whether mode bits mean anything here. Windows reports synthetic modes (0666/0777) and keeps
// access in ACLs, where the user profile's defaults already confine the cache dir to its owner.
const posixPerms = runtime.GOOS != "windows"

type fileStore struct {
	dir string // absolute
}

// NewFile returns a store keeping one encrypted record per chain in dir, as <key>.rec (0600), with an OS
// advisory lock on <key>.lock per chain. It creates dir 0700 if missing and refuses a dir that is not a
// directory or that others may write to, since they could swap or roll back records.
func NewFile(dir string) (Store, error) {
	if dir == "" {
		return nil, errors.New("token store directory is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("token store directory: %w", err)
	}
	if err := ensurePrivateDir(abs); err != nil {
		return nil, err
	}
	return &fileStore{dir: abs}, nil
}

// ensurePrivateDir creates dir 0700 if missing and checks that it is a directory no one else may write to.
func ensurePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create token store directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("token store directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("token store directory %s is not a directory", dir)
	}
	if posixPerms && fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("token store directory %s has mode %04o, so other users may replace its records; run chmod 700 %s", dir, fi.Mode().Perm(), dir)
	}
	// A directory someone else owns is theirs to rename, swap or fill, whatever its mode says today.
	if err := checkOwner(fi); err != nil {
		return fmt.Errorf("token store directory %s: %w", dir, err)
	}
	return nil
}

func (s *fileStore) Traits() Traits {
	// Every process that uses these records runs on this machine and takes the OS lock, so the lock excludes them all
	// and a check under it is atomic with the write.
	return Traits{Persistent: true, SharedLock: true, AtomicSave: true, Local: true}
}

func (s *fileStore) Describe() string { return "file store in " + s.dir }

func (s *fileStore) recPath(key Key) string  { return filepath.Join(s.dir, string(key)+".rec") }
func (s *fileStore) lockPath(key Key) string { return filepath.Join(s.dir, string(key)+".lock") }

// tmpPath is where Save writes before renaming over the record. One fixed name per chain is enough, because only the
// holder of the chain's lock saves it; it also lets the next lock holder clear what a crashed Save left with one
// remove instead of listing the directory, which cost more as the store grew.
func (s *fileStore) tmpPath(key Key) string { return filepath.Join(s.dir, string(key)+".rec.tmp") }

func (s *fileStore) Lock(ctx context.Context, key Key) (func() error, error) {
	if err := checkKeyCtx(ctx, key); err != nil {
		return nil, err
	}
	unlock, err := lockFile(ctx, s.lockPath(key))
	if err != nil {
		return nil, err
	}
	// Holding the lock, no cooperating Save for this chain is in flight, so any temporary file is debris of a
	// process that died mid-save. Failing to remove one is harmless: it is sealed and never read.
	os.Remove(s.tmpPath(key))
	return unlock, nil
}

func (s *fileStore) Load(ctx context.Context, key Key, seed string) (*Record, error) {
	if err := checkKeyCtx(ctx, key); err != nil {
		return nil, err
	}
	data, err := s.read(key)
	if data == nil || err != nil {
		return nil, err
	}
	rec, err := Open(key, seed, data)
	if err != nil {
		return nil, fmt.Errorf("token store record %s: %w; it was not written for this seed or is damaged: move it aside (rename it), then seed the chain again", s.recPath(key), err)
	}
	return rec, nil
}

// read returns the record file's bytes, or nil when there is none.
func (s *fileStore) read(key Key) ([]byte, error) {
	path := s.recPath(key)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read token store record: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read token store record: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file; move it aside", ErrCorrupt, path)
	}
	// Loose modes are reported, not repaired: whoever loosened them may have copied the file, and the user
	// should know. The content is not read until the file is private again.
	if posixPerms && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("token store record %s has mode %04o, readable or writable by other users; run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxEnvelope+1))
	if err != nil {
		return nil, fmt.Errorf("read token store record: %w", err)
	}
	if data == nil {
		data = []byte{} // an empty file is a record that cannot be read, not a missing one
	}
	return data, nil
}

// Save checks, under the chain's lock the caller holds, that the file holds the record rec replaces, then replaces
// it. Every process that writes these records takes that lock first, so nothing can slip between check and write.
func (s *fileStore) Save(ctx context.Context, key Key, seed string, rec *Record, replaces *Revision) error {
	return sealAndPut(ctx, s, key, seed, rec, replaces)
}

func (s *fileStore) putEnvelope(_ context.Context, key Key, data []byte, next Revision, replaces *Revision) error {
	cur, err := s.read(key)
	if err != nil {
		return err
	}
	current, err := currentRevision(cur)
	if err != nil {
		return fmt.Errorf("token store record %s: %w; it is left alone: move it aside if you are sure it is dead", s.recPath(key), err)
	}
	if landed, err := checkReplace(current, replaces, next); landed || err != nil {
		return err // landed: an earlier save of this very record did
	}
	return writeFileAtomic(s.dir, s.recPath(key), s.tmpPath(key), data)
}

// writeFileAtomic replaces path with data so that a crash at any point leaves either the old file or the new
// one: write a private temporary file in the same directory, fsync it, rename it over path, fsync the directory
// so the rename itself is on disk.
func writeFileAtomic(dir, path, tmp string, data []byte) (err error) {
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("save token store record: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("save token store record: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("save token store record: sync: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("save token store record: %w", err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save token store record: %w", err)
	}
	if err = syncDir(dir); err != nil {
		// The record is in place and readable; only its survival of a power cut is in doubt.
		return fmt.Errorf("save token store record: sync directory %s: %w", dir, err)
	}
	return nil
}

// syncDir makes a rename in dir durable. On Windows a directory cannot be opened for syncing; there the
// rename's durability rests on the file system's metadata journal.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// getEnvelope returns the record file's bytes as they are (nil: no record), for Restore.
func (s *fileStore) getEnvelope(ctx context.Context, key Key) ([]byte, error) {
	if err := checkKeyCtx(ctx, key); err != nil {
		return nil, err
	}
	return s.read(key)
}
