package multimachine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ClockFileEnv names the clock file in the environment of every process of a fleet: the provider reads its clock
// from it, and so does a consumer.
const ClockFileEnv = "MULTIMACHINE_CLOCK_FILE"

// Clock is a fake clock that separate processes agree on without talking to each other: it reads BaseFake at the real
// instant BaseReal and runs Rate times as fast as real time from there. Every process on one machine reads the same
// real clock, so each computes the same fake time.
type Clock struct {
	BaseReal time.Time `json:"base_real"`
	BaseFake time.Time `json:"base_fake"`
	Rate     float64   `json:"rate"`
}

// Now returns the clock's current time.
func (c Clock) Now() time.Time {
	return c.BaseFake.Add(time.Duration(float64(time.Since(c.BaseReal)) * c.Rate))
}

// Real returns how long fake time d takes in real time.
func (c Clock) Real(d time.Duration) time.Duration {
	return time.Duration(float64(d) / c.Rate)
}

func (c Clock) validate() error {
	switch {
	case c.BaseReal.IsZero(), c.BaseFake.IsZero():
		return errors.New("the clock has no base time")
	case c.Rate <= 0:
		return fmt.Errorf("the clock's rate %v is not positive", c.Rate)
	}
	return nil
}

// ReadClockFile reads a clock written by a SharedClock.
func ReadClockFile(path string) (Clock, error) {
	if path == "" {
		return Clock{}, fmt.Errorf("no clock file: set %s", ClockFileEnv)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Clock{}, fmt.Errorf("read the clock file: %w", err)
	}
	var c Clock
	if err := json.Unmarshal(b, &c); err != nil {
		return Clock{}, fmt.Errorf("clock file %s: %w", path, err)
	}
	if err := c.validate(); err != nil {
		return Clock{}, fmt.Errorf("clock file %s: %w", path, err)
	}
	return c, nil
}

// SharedClock is the harness's side of a fake clock: it keeps the clock in a file that the fleet's processes read
// when they start. The harness moves it only while no process of the fleet runs (between rounds), so every process
// of a round sees one clock.
type SharedClock struct {
	path string
	mu   sync.Mutex
	c    Clock
}

// NewSharedClock starts a clock at start running rate times as fast as real time, and writes it to path.
func NewSharedClock(path string, start time.Time, rate float64) (*SharedClock, error) {
	// Wall-clock readings only (Round(0) drops the monotonic one): the other processes read the file, which has no
	// monotonic reading, and must compute the same time as this one.
	s := &SharedClock{path: path, c: Clock{BaseReal: time.Now().Round(0), BaseFake: start, Rate: rate}}
	if err := s.c.validate(); err != nil {
		return nil, err
	}
	return s, s.write()
}

// Path is the clock file, for ClockFileEnv.
func (s *SharedClock) Path() string { return s.path }

// Now returns the clock's current time.
func (s *SharedClock) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.Now()
}

// Real returns how long fake time d takes in real time.
func (s *SharedClock) Real(d time.Duration) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.Real(d)
}

// Advance moves the clock forward by d at once.
func (s *SharedClock) Advance(d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().Round(0)
	s.c.BaseFake = s.c.BaseFake.Add(time.Duration(float64(now.Sub(s.c.BaseReal))*s.c.Rate) + d)
	s.c.BaseReal = now
	return s.write()
}

// write replaces the file in one rename, so a process never reads half a clock.
func (s *SharedClock) write() error {
	b, err := json.Marshal(s.c)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".clock-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.path)
}
