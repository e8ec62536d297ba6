// Package tokenstore keeps the state of a rotating OAuth refresh chain between processes.
//
// Every refresh exchange at Bipsync revokes the refresh token it consumed, so the new chain head must be
// written down before anything uses it, and two processes must not exchange the same chain at once.
// A Store gives the operations a caller needs for that, always used in this order:
//
//	unlock, err := store.Lock(ctx, key)               // exclusive on this machine, or everywhere (Traits.SharedLock)
//	rec, err := store.Load(ctx, key, seed)            // re-read under the lock: another process may have rotated
//	... exchange ...
//	err = store.Save(ctx, key, seed, next, rec.Revision().Ptr()) // durable before the new tokens are handed out
//	unlock()
//
// A save names the revision it replaces (generation and record ID) and is refused with ErrConflict when the store
// holds anything else: a store never goes back to an older head, and when two runners on different machines
// exchanged one head at once (the server may let both succeed: the chain forks), exactly one head ends in the store.
// Repeating a save that landed although it reported a failure succeeds, so a failed save may be retried blindly.
//
// A chain is named by a Key, a fingerprint of (token endpoint, client_id, seed refresh token): one seed is
// one chain, so a user who supplies a new seed starts a new chain instead of inheriting a stale record. The
// endpoint is made canonical first, so every spelling of one endpoint names one chain.
//
// Records are sealed with AES-256-GCM under a key derived from the seed (see Seal), so a record file, a
// secret-manager entry or a database row is worthless without the seed, and a record cannot be moved to another
// chain. The generation and record ID travel in clear in the envelope's header (authenticated), so that a store can
// compare revisions without ever decrypting a record.
//
// Backends: NewFile (the default: a directory under the user cache dir with an OS file lock per chain),
// NewCommand (an external helper for CI secret managers, protocol 1 get/put or protocol 2 conditional put),
// NewPostgres (a table in a PostgreSQL database that runners on several machines share, with an advisory lock per chain
// in the database), NewS3 (an object per chain in an S3 bucket, written with S3's conditional writes, with claims and a
// local lock) and NewNone (nothing is kept). A record a store would not take can be kept in a rescue file (WriteRescue) and put back later
// (Restore).
package tokenstore
