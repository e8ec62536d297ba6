// Package tokenstore keeps the state of a rotating OAuth refresh chain between processes.
//
// Every refresh exchange at Bipsync revokes the refresh token it consumed, so the new chain head must be
// written down before anything uses it, and two processes must never exchange the same chain at once.
// A Store gives the three operations a caller needs for that, always used in this order:
//
//	unlock, err := store.Lock(ctx, key) // exclusive across processes that share the store
//	rec, err := store.Load(ctx, key, seed) // re-read under the lock: another process may have rotated
//	... exchange ...
//	err = store.Save(ctx, key, seed, next) // durable before the new tokens are handed out
//	unlock()
//
// A chain is named by a Key, a fingerprint of (token endpoint, client_id, seed refresh token): one seed is
// one chain, so a user who supplies a new seed starts a new chain instead of inheriting a stale record.
//
// Records are sealed with AES-256-GCM under a key derived from the seed (see Seal), so a record file or a
// secret-manager entry is worthless without the seed, and a record cannot be moved to another chain.
//
// Backends: NewFile (the default: a directory under the user cache dir with an OS file lock per chain),
// NewCommand (an external helper for CI secret managers) and NewNone (nothing is kept).
package tokenstore
