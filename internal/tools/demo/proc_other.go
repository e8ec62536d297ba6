//go:build !unix

package main

import "os/exec"

// detach leaves cmd as it is: without process groups and interrupts the
// engine shares the console's Ctrl-C, and cancellation kills it.
func detach(*exec.Cmd) {}
