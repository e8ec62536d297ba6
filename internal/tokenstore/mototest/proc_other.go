//go:build !linux

package mototest

import "syscall"

// sysProcAttr: only Linux has a parent-death signal; elsewhere a test binary that dies may leave its server running.
func sysProcAttr() *syscall.SysProcAttr { return nil }
