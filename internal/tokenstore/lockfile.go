package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// errWouldBlock is what tryLock returns when another holder has the lock.
var errWouldBlock = errors.New("lock held elsewhere")

// Polling bounds. The OS calls that block until the lock is free cannot be interrupted by a context, so the
// lock is polled instead: fast at first, because the holder usually needs only one exchange, then capped so a
// long wait costs little.
const (
	pollFirst = 5 * time.Millisecond
	pollMax   = 50 * time.Millisecond
)

// lockFile takes the exclusive lock on path (creating the file 0600), waiting until ctx is done. The lock
// file is never removed: removing it would let a waiter lock a file that no longer has a name while a
// newcomer locks a fresh one. A lock file another user owns is refused (its owner could swap it and break the
// exclusion), and after locking, the locked file must still be the one at path: if it was replaced meanwhile, the
// lock is taken again on the file that is there now.
func lockFile(ctx context.Context, path string) (unlock func() error, err error) {
	release, err := acquireProc(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("waiting for token store lock %s: %w", path, err)
	}
	for {
		f, err := lockOpenFile(ctx, path)
		if err != nil {
			release()
			return nil, err
		}
		same, err := stillAtPath(f, path)
		if err != nil {
			_ = unlockFile(f)
			f.Close()
			release()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !same {
			_ = unlockFile(f)
			f.Close()
			continue
		}
		var once sync.Once
		var uerr error
		return func() error {
			once.Do(func() {
				uerr = unlockFile(f)
				if cerr := f.Close(); uerr == nil && cerr != nil {
					uerr = cerr
				}
				release()
				if uerr != nil {
					uerr = fmt.Errorf("unlock token store lock %s: %w", path, uerr)
				}
			})
			return uerr
		}, nil
	}
}

// lockOpenFile opens path and takes its OS lock, polling until ctx is done.
func lockOpenFile(ctx context.Context, path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open token store lock: %w", err)
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkOwner(fi)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("token store lock %s: %w", path, err)
	}
	delay := pollFirst
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		err := tryLock(f)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, errWouldBlock) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if timer == nil {
			timer = time.NewTimer(delay)
		} else {
			timer.Reset(delay)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for token store lock %s: another process holds it: %w", path, context.Cause(ctx))
		}
		delay = min(2*delay, pollMax)
	}
}

// stillAtPath tells whether the open file f is still the file at path. A lock on a file that was renamed away or
// replaced excludes nobody who opens path now.
func stillAtPath(f *os.File, path string) (bool, error) {
	held, err := f.Stat()
	if err != nil {
		return false, err
	}
	now, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(held, now), nil
}

// fdControl runs fn with the descriptor of f without switching f to blocking mode, as f.Fd would.
func fdControl(f *os.File, fn func(fd uintptr) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(fd) }); err != nil {
		return err
	}
	return ferr
}
