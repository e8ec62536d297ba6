package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
)

// A chain's lock holds a pooled connection (its session) until unlock. A load or save of another key while it is held
// (the chain's legacy key, a journal entry) must not wait for a pooled connection that only the unlock would free: with
// pool_max_conns=1, or as many chains in flight as the pool has connections, that wait never ends, and the engine's
// context has no deadline.
func TestPostgresStore_SecondKeyUnderLockWithFullPool(t *testing.T) {
	t.Parallel()
	connStr := pgtest.Start(t)
	st := newTestPostgresStore(t, connStr+" pool_max_conns=1")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	key, other := testKey(testSeed), testKey("another seed")
	unlock, err := st.Lock(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer mustUnlock(t, unlock)
	if _, err := st.Load(ctx, other, testSeed); err != nil {
		t.Fatalf("load of another key under the lock: got %v; want nil (no record)", err)
	}
	rec := sampleRecord()
	if err := st.Save(ctx, other, testSeed, rec, nil); err != nil {
		t.Fatalf("save of another key under the lock: got %v; want nil", err)
	}
	if got, err := st.Load(ctx, other, testSeed); err != nil || !recordsEqual(got, rec) {
		t.Fatalf("got (%v, %v); want the record saved", got, err)
	}
}

// As many chains in flight as the pool has connections, each loading a second key under its lock.
func TestPostgresStore_ChainsInFlightFillThePool(t *testing.T) {
	t.Parallel()
	connStr := pgtest.Start(t)
	const conns, chains = 2, 6
	st := newTestPostgresStore(t, fmt.Sprintf("%s pool_max_conns=%d", connStr, conns))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, chains)
	// The first chains to lock wait for one another, so that the pool is full of locks when they load their second key.
	var (
		lockedMu sync.Mutex
		locked   int
		full     = make(chan struct{})
	)
	for i := range chains {
		wg.Go(func() {
			seed := fmt.Sprintf("seed %d", i)
			key := testKey(seed)
			unlock, err := st.Lock(ctx, key)
			if err != nil {
				errs <- err
				return
			}
			defer func() { _ = unlock() }()
			rec := sampleRecord()
			if _, err := st.Load(ctx, key, seed); err != nil {
				errs <- err
				return
			}
			lockedMu.Lock()
			if locked++; locked == conns {
				close(full)
			}
			lockedMu.Unlock()
			select {
			case <-full:
			case <-ctx.Done():
				errs <- fmt.Errorf("chain %d: the pool never filled with locks: %w", i, ctx.Err())
				return
			}
			legacy := Key(fmt.Sprintf("%064x", i+1))
			if _, err := st.Load(ctx, legacy, seed); err != nil {
				errs <- fmt.Errorf("chain %d, load of a second key: %w", i, err)
				return
			}
			if err := st.Save(ctx, key, seed, rec, nil); err != nil {
				errs <- fmt.Errorf("chain %d, save: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
		if errors.Is(err, context.DeadlineExceeded) {
			t.Error("a load waited for a pooled connection held by a chain lock")
		}
	}
}
