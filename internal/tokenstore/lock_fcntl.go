//go:build aix

package tokenstore

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// AIX has no flock. fcntl locks are per process, which is why procLocks serialises holders in the process
// and why exactly one descriptor of a lock file is open at a time.
func tryLock(f *os.File) error {
	return fdControl(f, func(fd uintptr) error {
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
		for {
			err := unix.FcntlFlock(fd, unix.F_SETLK, &lk)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, unix.EINTR):
				continue
			case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EACCES):
				return errWouldBlock
			default:
				return err
			}
		}
	})
}

func unlockFile(f *os.File) error {
	return fdControl(f, func(fd uintptr) error {
		lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0}
		return unix.FcntlFlock(fd, unix.F_SETLK, &lk)
	})
}
