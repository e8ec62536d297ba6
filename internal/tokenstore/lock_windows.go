//go:build windows

package tokenstore

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// One byte at offset 0 is locked; the file is never read or written, so the lock being mandatory on Windows
// does not matter. The system drops it when the handle closes or the process dies.
func tryLock(f *os.File) error {
	return fdControl(f, func(fd uintptr) error {
		var ol windows.Overlapped
		err := windows.LockFileEx(windows.Handle(fd), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
		if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
			return errWouldBlock
		}
		return err
	})
}

func unlockFile(f *os.File) error {
	return fdControl(f, func(fd uintptr) error {
		var ol windows.Overlapped
		return windows.UnlockFileEx(windows.Handle(fd), 0, 1, 0, &ol)
	})
}
