//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package tokenstore

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// flock locks belong to the open file description, so they also exclude a second open in the same process,
// and the kernel drops them when the holder dies, however it dies.
func tryLock(f *os.File) error {
	return fdControl(f, func(fd uintptr) error {
		for {
			err := unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, unix.EINTR):
				continue
			case errors.Is(err, unix.EWOULDBLOCK), errors.Is(err, unix.EAGAIN):
				return errWouldBlock
			default:
				return err
			}
		}
	})
}

func unlockFile(f *os.File) error {
	return fdControl(f, func(fd uintptr) error {
		return unix.Flock(int(fd), unix.LOCK_UN)
	})
}
