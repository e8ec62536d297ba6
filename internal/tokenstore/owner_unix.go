//go:build unix

package tokenstore

import (
	"fmt"
	"os"
	"syscall"
)

// checkOwner refuses a file or directory that another user owns: its owner can replace it or what it holds.
func checkOwner(fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := os.Getuid(); int(st.Uid) != uid {
		return fmt.Errorf("it belongs to user ID %d, not to this user (%d), who could replace what it holds: use a directory of your own", st.Uid, uid)
	}
	return nil
}
