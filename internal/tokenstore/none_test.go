package tokenstore

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestNoneStore(t *testing.T) {
	t.Parallel()
	st := NewNone()
	ctx := t.Context()
	key := testKey(t.Name()) // a key of its own: none locks are process-wide
	if st.Traits() != (Traits{}) || st.Describe() == "" {
		t.Fatalf("got traits %+v, describe %q; want no traits and a description", st.Traits(), st.Describe())
	}
	if rec, err := st.Load(ctx, key, testSeed); rec != nil || err != nil {
		t.Fatalf("Load: got (%v, %v); want (nil, nil)", rec, err)
	}
	if err := st.Save(ctx, key, testSeed, sampleRecord(), nil); !errors.Is(err, ErrNoStore) {
		t.Fatalf("Save: got %v; want ErrNoStore", err)
	}

	unlock, err := st.Lock(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := NewNone().Lock(withTimeout(t, 20*time.Millisecond), key); !errors.Is(err, context.DeadlineExceeded) {
		if u != nil {
			mustUnlock(t, u)
		}
		t.Fatalf("second Lock: got %v; want a wait ending in context.DeadlineExceeded", err)
	}
	other, err := st.Lock(withTimeout(t, 2*time.Second), testKey(t.Name()+" other"))
	if err != nil {
		t.Fatalf("another chain: got %v; want its lock at once", err)
	}
	mustUnlock(t, other)
	mustUnlock(t, unlock)
	u2, err := st.Lock(withTimeout(t, 2*time.Second), key)
	if err != nil {
		t.Fatalf("after unlock: got %v; want the lock", err)
	}
	defer mustUnlock(t, u2)
	if err := unlock(); err != nil {
		t.Fatalf("repeated unlock: got %v; want nil", err)
	}
	if u, err := st.Lock(withTimeout(t, 20*time.Millisecond), key); err == nil {
		mustUnlock(t, u)
		t.Fatal("got the lock after a stale unlock; want it still held")
	}
}
