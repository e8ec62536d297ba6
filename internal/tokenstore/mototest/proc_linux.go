//go:build linux

package mototest

import "syscall"

// sysProcAttr gives the server SIGTERM when the thread that started it ends, so that a test binary that dies leaves
// no server behind, and a process group of its own, so that a terminal's ^C reaches the test binary first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
