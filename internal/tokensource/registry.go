package tokensource

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// Registry is a process's state per chain: the single flight that keeps two requests of one process from exchanging
// one chain at once, and what the process holds that the store does not (a record whose save failed, a client-
// credentials token when nothing is stored).
//
// The token store has a lock of its own inside the process too (tokenstore's proclock): the OS locks it rests on do
// not all exclude within one process, and other users of a store (the provider binary's subcommands) do not go through
// a Source. Both are needed; this one is taken first, so the store's is never contended within a process that uses a
// Source.
type Registry struct {
	mu     sync.Mutex
	chains map[tokenstore.Key]*chainState
	// noClaimsWarned tells that the process has said once that a chain is shared through a store without claims.
	noClaimsWarned bool
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{chains: map[tokenstore.Key]*chainState{}} }

// processRegistry is shared by every Source of the process: every provider instance the engine configures in one
// plugin process (one per provider configuration and walk) serves its chains through one single flight.
var processRegistry = NewRegistry()

type chainState struct {
	sem             chan struct{}        // single-flight: one holder at a time, waits honour the context
	pending         *tokenstore.Record   // exchanged but not yet saved
	pendingReplaces *tokenstore.Revision // what pending's save replaces
	rescued         string               // the rescue file holding pending, if one was written
	cached          *tokenstore.Record   // last record, for stores that keep nothing (client credentials with store none)
	claimSeen       string               // the ID of the last claim of another holder this process saw (see claimHead)
	claimSeenAt     time.Time            // when this process first saw it, by its own clock
}

func (r *Registry) chain(key tokenstore.Key) *chainState {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.chains[key]
	if !ok {
		c = &chainState{sem: make(chan struct{}, 1)}
		r.chains[key] = c
	}
	return c
}

func (c *chainState) acquire(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for another request on the same chain: %w", context.Cause(ctx))
	}
}

func (c *chainState) release() { <-c.sem }

// lockChain takes the chain's single flight in this process, then the store's lock, and returns what releases both.
func (s *Source) lockChain(ctx context.Context, c *chainState, key tokenstore.Key) (unlock func(), err error) {
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	unlockStore, err := s.store.Lock(ctx, key)
	if err != nil {
		c.release()
		return nil, &StoreError{Store: s.store.Describe(), Op: "lock", Err: err}
	}
	return func() {
		_ = unlockStore()
		c.release()
	}, nil
}
