package tokenstore

import (
	"context"
	"fmt"
	"sync"
)

type noneStore struct{}

// NewNone returns a store that keeps nothing. Lock still serialises callers in this process, so one
// process never exchanges a chain twice at once; Load finds nothing; Save returns ErrNoStore, because a
// rotated refresh token with nowhere to go is a dead chain and the caller must know before it exchanges.
func NewNone() Store { return noneStore{} }

func (noneStore) Traits() Traits   { return Traits{} }
func (noneStore) Describe() string { return "no token store (nothing is kept between processes)" }

func (noneStore) Lock(ctx context.Context, key Key) (func() error, error) {
	if err := checkKeyCtx(ctx, key); err != nil {
		return nil, err
	}
	release, err := acquireProc(ctx, "none:"+string(key))
	if err != nil {
		return nil, fmt.Errorf("waiting for token store lock of chain %s: %w", key, err)
	}
	return sync.OnceValue(func() error { release(); return nil }), nil
}

func (noneStore) Load(ctx context.Context, key Key, _ string) (*Record, error) {
	return nil, checkKeyCtx(ctx, key)
}

func (noneStore) Save(ctx context.Context, key Key, _ string, _ *Record, _ *Revision) error {
	if err := checkKeyCtx(ctx, key); err != nil {
		return err
	}
	return ErrNoStore
}
