package tokenstore

import (
	"context"
	"fmt"
	"sync"
)

// procLocks serialises lock holders inside one process before they reach the OS lock. The OS locks do not
// all exclude within a process (fcntl locks are per process, and closing any descriptor of the file drops
// them), and waiting on a channel is cheaper than polling. Entries are reference counted so the map only
// holds chains someone is using.
var procLocks = struct {
	sync.Mutex
	m map[string]*procLock
}{m: map[string]*procLock{}}

type procLock struct {
	sem  chan struct{} // holds one token while locked
	refs int
}

// acquireProc takes the in-process lock named name, or gives up when ctx is done.
func acquireProc(ctx context.Context, name string) (release func(), err error) {
	procLocks.Lock()
	l := procLocks.m[name]
	if l == nil {
		l = &procLock{sem: make(chan struct{}, 1)}
		procLocks.m[name] = l
	}
	l.refs++
	procLocks.Unlock()

	drop := func() {
		procLocks.Lock()
		l.refs--
		if l.refs == 0 {
			delete(procLocks.m, name)
		}
		procLocks.Unlock()
	}
	// Checked first so that a cancelled context fails even when the lock happens to be free.
	if err := context.Cause(ctx); err != nil {
		drop()
		return nil, err
	}
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		drop()
		return nil, fmt.Errorf("another caller in this process holds it: %w", context.Cause(ctx))
	}
	return func() {
		<-l.sem
		drop()
	}, nil
}
