package cpuprofile

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestStartIn runs both cases in one test: a process can hold only one CPU profile at a time.
func TestStartIn(t *testing.T) {
	dir := t.TempDir()
	StartIn("")() // no directory: nothing to write, nothing to fail

	stop := StartIn(dir)
	stop()
	name := filepath.Join(dir, fmt.Sprintf("cpu-%d.pprof", os.Getpid()))
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatalf("got %v; want a profile at %s", err, name)
	}
	if fi.Size() == 0 {
		t.Errorf("got an empty profile; want a written one")
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("got %d files (%v); want only the profile", len(entries), err)
	}

	StartIn(filepath.Join(dir, "missing"))() // cannot create: logged, and the caller carries on
}
