// Package cpuprofile lets the benchmark's provider builds profile themselves: the engine starts each provider
// process, so the process itself must write its profile.
package cpuprofile

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// DirEnv names the directory for the profiles. It has no BIPSYNC_ prefix because the benchmark clears those from
// the engine's environment.
const DirEnv = "BENCH_PROVIDER_PROFILE_DIR"

// Start starts a CPU profile into $BENCH_PROVIDER_PROFILE_DIR/cpu-<pid>.pprof when the variable is set, and
// returns what stops it. Failures are logged, never fatal: a provider must serve even when it cannot profile.
func Start() (stop func()) {
	return StartIn(os.Getenv(DirEnv))
}

// StartIn is Start with the directory given; empty means no profile.
func StartIn(dir string) (stop func()) {
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("cpu-%d.pprof", os.Getpid())))
	if err != nil {
		log.Printf("cpuprofile: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Printf("cpuprofile: %v", err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Printf("cpuprofile: %v", err)
		}
	}
}
