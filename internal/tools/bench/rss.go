package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssWatcher records the peak resident set (VmHWM) of every process that runs one of the watched executables. The
// engine starts the provider several times per command (schema, validation, plan walk, apply walk); the watcher
// polls /proc, and since the kernel keeps each process's high-water mark, a poll that comes late still reads the
// true peak as long as it comes before the process exits.
type rssWatcher struct {
	procDir string
	exes    map[string]string // executable path → role ("engine", "provider", ...)
	every   time.Duration

	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	peaks map[string]map[int]int64 // role → pid → VmHWM in KiB
	skip  map[int]bool             // pids known to run something else
}

// peakRSS is what the watcher saw of one role.
type peakRSS struct {
	KiB       int64 // highest VmHWM of any one process
	Processes int
}

// watchRSS starts polling /proc for processes of exes (path → role).
func watchRSS(exes map[string]string, every time.Duration) *rssWatcher {
	resolved := map[string]string{}
	for p, role := range exes {
		// /proc/<pid>/exe names the file itself, not a link to it.
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		resolved[p] = role
	}
	w := newRSSWatcher("/proc", resolved, every)
	go w.loop()
	return w
}

func newRSSWatcher(procDir string, exes map[string]string, every time.Duration) *rssWatcher {
	return &rssWatcher{
		procDir: procDir,
		exes:    exes,
		every:   every,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		peaks:   map[string]map[int]int64{},
		skip:    map[int]bool{},
	}
}

func (w *rssWatcher) loop() {
	defer close(w.done)
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		w.scan()
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
	}
}

// scan reads the high-water mark of every watched process once. A process that runs a watched executable is read
// again at every scan, under the role of whatever it runs then: a fork of the engine becomes a provider when it
// execs, and exec resets the mark.
func (w *rssWatcher) scan() {
	entries, err := os.ReadDir(w.procDir)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || w.skip[pid] {
			continue
		}
		dir := filepath.Join(w.procDir, e.Name())
		exe, err := os.Readlink(filepath.Join(dir, "exe"))
		role, watched := w.exes[exe]
		if err != nil || !watched {
			if err == nil || !w.seenLocked(pid) {
				w.skip[pid] = true // another program, a kernel thread, or gone before it was seen
			}
			continue
		}
		status, err := os.ReadFile(filepath.Join(dir, "status"))
		if err != nil {
			continue // exited between the two reads; the last value read stands
		}
		kb, ok := statusKiB(status, "VmHWM")
		if !ok {
			continue
		}
		if w.peaks[role] == nil {
			w.peaks[role] = map[int]int64{}
		}
		if kb > w.peaks[role][pid] {
			w.peaks[role][pid] = kb
		}
	}
}

func (w *rssWatcher) seenLocked(pid int) bool {
	for _, pids := range w.peaks {
		if _, ok := pids[pid]; ok {
			return true
		}
	}
	return false
}

// Stop ends the watch after one last scan and returns what it saw, by role.
func (w *rssWatcher) Stop() map[string]peakRSS {
	close(w.stop)
	<-w.done
	w.scan()
	return w.result()
}

func (w *rssWatcher) result() map[string]peakRSS {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]peakRSS{}
	for role, pids := range w.peaks {
		var p peakRSS
		for _, kb := range pids {
			p.KiB = max(p.KiB, kb)
		}
		p.Processes = len(pids)
		out[role] = p
	}
	return out
}

// statusKiB reads a "Name:   1234 kB" line of /proc/<pid>/status.
func statusKiB(status []byte, name string) (int64, bool) {
	f := strings.Fields(fieldValue(status, name))
	if len(f) != 2 || f[1] != "kB" {
		return 0, false
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	return n, err == nil
}
