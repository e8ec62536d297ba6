package storetest_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/storetest"
)

// memStore is a store double in memory. With ignoreConditions it writes whatever a save or claim replaces, as a
// careless backend (or a get/put helper that claims protocol 2) would; without, it checks like a real store.
type memStore struct {
	ignoreConditions bool

	mu      sync.Mutex
	entries map[tokenstore.Key][]byte
	locks   map[tokenstore.Key]*sync.Mutex
}

func newMemStore(ignoreConditions bool) *memStore {
	return &memStore{ignoreConditions: ignoreConditions, entries: map[tokenstore.Key][]byte{}, locks: map[tokenstore.Key]*sync.Mutex{}}
}

func (m *memStore) Lock(_ context.Context, key tokenstore.Key) (func() error, error) {
	m.mu.Lock()
	l := m.locks[key]
	if l == nil {
		l = &sync.Mutex{}
		m.locks[key] = l
	}
	m.mu.Unlock()
	l.Lock()
	var once sync.Once
	return func() error { once.Do(l.Unlock); return nil }, nil
}

func (m *memStore) Load(_ context.Context, key tokenstore.Key, seed string) (*tokenstore.Record, error) {
	m.mu.Lock()
	data := m.entries[key]
	m.mu.Unlock()
	if data == nil {
		return nil, nil
	}
	return tokenstore.Open(key, seed, data)
}

func (m *memStore) Save(_ context.Context, key tokenstore.Key, seed string, rec *tokenstore.Record, replaces *tokenstore.Revision) error {
	data, err := tokenstore.Seal(key, seed, rec)
	if err != nil {
		return err
	}
	return m.put(key, data, rec.Revision(), replaces)
}

// put is the conditional write: the one place the two doubles differ.
func (m *memStore) put(key tokenstore.Key, data []byte, next tokenstore.Revision, replaces *tokenstore.Revision) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.ignoreConditions {
		var current *tokenstore.Revision
		if cur := m.entries[key]; cur != nil {
			rev, err := tokenstore.EnvelopeRevision(cur)
			if err != nil {
				return err
			}
			current = &rev
		}
		switch {
		case current != nil && current.Matches(next):
			return nil
		case current == nil && replaces == nil, current != nil && replaces != nil && current.Matches(*replaces):
		default:
			return &tokenstore.ConflictError{Replaces: replaces, Current: current}
		}
	}
	m.entries[key] = data
	return nil
}

func (m *memStore) LoadClaim(_ context.Context, key tokenstore.Key, seed string) (*tokenstore.Claim, error) {
	m.mu.Lock()
	data := m.entries[tokenstore.ClaimKey(key)]
	m.mu.Unlock()
	if data == nil {
		return nil, nil
	}
	return tokenstore.OpenClaim(key, seed, data)
}

func (m *memStore) PutClaim(_ context.Context, key tokenstore.Key, seed string, c, replaces *tokenstore.Claim) error {
	data, err := tokenstore.SealClaim(key, seed, c)
	if err != nil {
		return err
	}
	var rep *tokenstore.Revision
	if replaces != nil {
		rep = replaces.Revision().Ptr()
	}
	return m.put(tokenstore.ClaimKey(key), data, c.Revision(), rep)
}

func (m *memStore) Traits() tokenstore.Traits {
	return tokenstore.Traits{Persistent: true, AtomicSave: true, Claims: true}
}

func (m *memStore) Describe() string { return "store double in memory" }

func memBackend(ignoreConditions bool) storetest.Backend {
	return storetest.Backend{
		New: func(testing.TB) (tokenstore.Store, func(testing.TB) tokenstore.Store) {
			st := newMemStore(ignoreConditions)
			return st, func(testing.TB) tokenstore.Store { return st }
		},
		WriteRaw: func(_ testing.TB, st tokenstore.Store, key tokenstore.Key, data []byte) {
			m := st.(*memStore) //nolint:forcetypeassert // only ever given the store New made
			m.mu.Lock()
			m.entries[key] = data
			m.mu.Unlock()
		},
	}
}

// recordingTB is a testing.TB that records failures and skips instead of reporting them, so that a test can check
// that the suite fails a store. Fatal and Skip end the case's goroutine, as they do a test's.
type recordingTB struct {
	testing.TB
	mu       sync.Mutex
	failures []string
	skipped  bool
}

func (r *recordingTB) record(s string) {
	r.mu.Lock()
	r.failures = append(r.failures, s)
	r.mu.Unlock()
}
func (r *recordingTB) Helper()                           {}
func (r *recordingTB) Error(args ...any)                 { r.record(fmt.Sprint(args...)) }
func (r *recordingTB) Errorf(format string, args ...any) { r.record(fmt.Sprintf(format, args...)) }
func (r *recordingTB) Fail()                             { r.record("Fail") }
func (r *recordingTB) FailNow()                          { r.record("FailNow"); runtime.Goexit() }
func (r *recordingTB) Fatal(args ...any)                 { r.Error(args...); runtime.Goexit() }
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}
func (r *recordingTB) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.failures) > 0
}
func (r *recordingTB) Skip(...any)          { r.skipped = true; runtime.Goexit() }
func (r *recordingTB) Skipf(string, ...any) { r.skipped = true; runtime.Goexit() }
func (r *recordingTB) SkipNow()             { r.skipped = true; runtime.Goexit() }
func (r *recordingTB) Skipped() bool        { return r.skipped }

// runCase runs one case against b with a recording TB, and returns what it recorded.
func runCase(t *testing.T, c storetest.Case, b storetest.Backend) *recordingTB {
	r := &recordingTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(r, b)
	}()
	<-done
	return r
}

// The suite must fail a store that ignores what a save or claim replaces: every case about conditions reports a
// failure against such a double, and none against the same double when it checks.
func TestSuiteFailsStoreIgnoringConditions(t *testing.T) {
	t.Parallel()
	conditional := map[string]bool{"ConditionalSave": true, "SaveThatLandedThenFailed": true,
		"UnreadableRecordLeftAlone": true, "ClaimOfDeadRunner": true, "ConcurrentSavesOneWinner": true}
	seen := 0
	for _, c := range storetest.Cases() {
		careless := runCase(t, c, memBackend(true))
		careful := runCase(t, c, memBackend(false))
		if careful.Failed() || careful.skipped {
			t.Errorf("%s: the double that checks conditions got failures %q (skipped %v); want it to pass", c.Name, careful.failures, careful.skipped)
		}
		if !conditional[c.Name] {
			continue
		}
		seen++
		if !careless.Failed() {
			t.Errorf("%s: the double that ignores conditions passed; want the case to fail it", c.Name)
		} else {
			t.Logf("%s fails the careless double: %s", c.Name, careless.failures[0])
		}
	}
	if seen != len(conditional) {
		t.Errorf("ran %d of the %d cases about conditions; want all (was one renamed?)", seen, len(conditional))
	}
}
