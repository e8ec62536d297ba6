package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssWatcher records the peak resident set (VmHWM) of every process running a given executable. The engine starts
// the provider several times per command (schema, plan walk, apply walk); the watcher polls /proc, and since the
// kernel keeps each process's high-water mark, a poll that comes late still reads the true peak as long as it
// comes before the process exits.
type rssWatcher struct {
	procDir string
	exe     string
	// launcher is the engine binary: a process that still runs it may be a fork about to exec the provider.
	launcher string
	every    time.Duration

	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	peaks map[int]int64 // pid → VmHWM in KiB
	skip  map[int]bool  // pids known to run something else
}

func watchRSS(exe, launcher string, every time.Duration) *rssWatcher {
	w := newRSSWatcher("/proc", exe, launcher, every)
	go w.loop()
	return w
}

func newRSSWatcher(procDir, exe, launcher string, every time.Duration) *rssWatcher {
	return &rssWatcher{
		procDir:  procDir,
		exe:      exe,
		launcher: launcher,
		every:    every,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		peaks:    map[int]int64{},
		skip:     map[int]bool{},
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

// scan reads the high-water mark of every matching process once.
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
		if err != nil {
			if _, seen := w.peaks[pid]; !seen {
				w.skip[pid] = true // kernel thread, or gone: nothing to read
			}
			continue
		}
		if exe != w.exe {
			if exe != w.launcher {
				w.skip[pid] = true
			}
			continue
		}
		status, err := os.ReadFile(filepath.Join(dir, "status"))
		if err != nil {
			continue // exited between the two reads; the last value read stands
		}
		if kb, ok := statusKiB(status, "VmHWM"); ok && kb > w.peaks[pid] {
			w.peaks[pid] = kb
		}
	}
}

// Stop ends the watch after one last scan and returns the highest peak of any one process (KiB) and how many
// processes ran the executable.
func (w *rssWatcher) Stop() (peakKiB int64, processes int) {
	close(w.stop)
	<-w.done
	w.scan()
	return w.result()
}

func (w *rssWatcher) result() (peakKiB int64, processes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, kb := range w.peaks {
		peakKiB = max(peakKiB, kb)
	}
	return peakKiB, len(w.peaks)
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
