//go:build unix

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// detach starts cmd in a process group of its own, so that a Ctrl-C in the
// terminal reaches only the demo, and makes cancellation an interrupt, which
// the engine answers by stopping cleanly.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
}
