//go:build !unix

package tfcli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// staleLock is how old a lock file must be before it is taken to belong to
// a build that died without cleaning up. It is well above the longest build.
const staleLock = 2 * time.Hour

// lockFile takes an exclusive lock by creating path exclusively and returns
// the function that releases it. There is no portable advisory lock in the
// standard library outside unix, so a lock left by a killed process expires
// after staleLock. waiting is called once if another holder makes us wait.
func lockFile(ctx context.Context, path string, waiting func()) (func(), error) {
	told := false
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if fi, err := os.Stat(path); err == nil && time.Since(fi.ModTime()) > staleLock {
			os.Remove(path)
			continue
		}
		if !told {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
