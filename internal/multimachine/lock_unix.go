//go:build unix

package multimachine

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockPath takes an exclusive flock on path (created if missing), waiting while another process holds it. The kernel
// drops the lock when its holder dies, however it dies.
func lockPath(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
