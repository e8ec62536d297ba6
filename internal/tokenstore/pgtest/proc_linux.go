//go:build linux

package pgtest

import (
	"errors"
	"syscall"
)

// sysProcAttr runs a server process as u (nil: as this process's user). A server (not initdb) also gets SIGINT, a
// fast shutdown, when the thread that started it ends, so that a test binary that dies leaves no server behind.
func sysProcAttr(u *runAs, server bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	if u != nil {
		a.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: []uint32{u.gid}}
	}
	if server {
		a.Pdeathsig = syscall.SIGINT
	}
	return a
}

// processAlive tells whether a process exists (EPERM: it does, and belongs to another user).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
