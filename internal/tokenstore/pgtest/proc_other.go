//go:build !linux

package pgtest

import "syscall"

// sysProcAttr: only Linux runs the server as another user (newServer refuses root elsewhere), and only Linux has a
// parent-death signal; elsewhere a test binary that dies may leave its server running.
func sysProcAttr(_ *runAs, _ bool) *syscall.SysProcAttr { return nil }

// processAlive cannot tell here, so it says yes: sweep then removes nothing.
func processAlive(int) bool { return true }
