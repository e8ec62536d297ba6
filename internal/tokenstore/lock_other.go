//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris || aix || windows)

package tokenstore

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// Without a file lock two processes could exchange one chain at once and kill it, so the file and command
// stores refuse to lock rather than pretend.
func tryLock(*os.File) error {
	return fmt.Errorf("file locks are not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

func unlockFile(*os.File) error { return nil }
