package tokenstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// pgPoolPoll is the first wait for a pooled connection while this process holds chain locks; it doubles up to
	// pgPoolPollMax. A connection being opened meanwhile is not lost: the pool finishes it and keeps it for the next try.
	pgPoolPoll    = 20 * time.Millisecond
	pgPoolPollMax = 500 * time.Millisecond
)

// pooledConn returns a connection for an operation on a key whose lock this store does not hold (another chain's
// record: a legacy key, a journal entry), and done to hand it back.
//
// Each held chain lock keeps a pooled connection until its unlock. A plain wait for the pool could therefore wait for
// the unlock of the very chain its caller holds: with pool_max_conns=1, or with as many chains in flight as the pool
// has connections, it would never end, and the engine's context has no deadline. So while this process holds locks,
// the wait for the pool is short and repeated, and in between the operation borrows the session of a held lock that is
// idle (its holder is between statements, typically because it is the caller, waiting for this one). A session runs
// one statement at a time, and the advisory lock it holds is unaffected by other statements. Should the borrowed
// session break (the server went away, or the caller's context ended mid-statement), its lock ends with it: its holder
// sees the lock as lost, as after a server restart, and its saves stay conditional.
func (s *postgresStore) pooledConn(ctx context.Context) (*pgx.Conn, func(), error) {
	wait := pgPoolPoll
	for {
		if !s.holdsLocks() {
			c, err := s.acquire(ctx)
			if err != nil {
				return nil, nil, err
			}
			return c.Conn(), c.Release, nil
		}
		if conn, done := s.borrowIdleSession(); conn != nil {
			return conn, done, nil
		}
		actx, cancel := context.WithTimeout(ctx, wait)
		c, err := s.acquire(actx)
		cancel()
		switch {
		case err == nil:
			return c.Conn(), c.Release, nil
		case ctx.Err() != nil:
			return nil, nil, err
		case !errors.Is(err, context.DeadlineExceeded):
			return nil, nil, err
		}
		wait = min(2*wait, pgPoolPollMax)
	}
}

// holdsLocks tells whether this store holds any chain lock.
func (s *postgresStore) holdsLocks() bool {
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	return len(s.held) > 0
}

// borrowIdleSession returns the session of a held chain lock that no statement is using, locked for the caller until
// done, or nil when there is none.
func (s *postgresStore) borrowIdleSession() (*pgx.Conn, func()) {
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	for _, l := range s.held {
		if !l.mu.TryLock() {
			continue
		}
		if l.dead || l.gone || l.conn.Conn().IsClosed() {
			l.mu.Unlock()
			continue
		}
		return l.conn.Conn(), func() {
			if l.conn.Conn().IsClosed() {
				l.dead = true
			}
			l.mu.Unlock()
		}
	}
	return nil, nil
}
