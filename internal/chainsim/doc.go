// Package chainsim is a deterministic simulation of the refresh-chain protocol. It drives the real tokensource code
// (never a copy of its logic) in several simulated processes on several simulated machines, against a simulated
// Bipsync and the token stores, and checks the protocol's invariants after every step. One seed decides every
// scheduling choice, fault and clock, so a failing seed replays exactly and becomes a one-line regression test:
//
//	func TestSeed_Default_1234(t *testing.T) { chainsim.Check(t, 1234, chainsim.Default) }
//
// # The seam
//
// tokensource reaches the world only through what tokensource.Options gives it: the Exchanger (Bipsync), the
// tokenstore.Store, the clock (Now), Sleep, the Registry (one per simulated process) and the rescue directory. Every
// call out of tokensource through them is a yield point: the process goroutine hands control to the scheduler and
// waits. Only one goroutine runs at a time; the scheduler (math/rand/v2 PCG, seeded) picks which parked process goes on
// next, and whether its call fails, lands then fails (a save that happened, reported as an error), or the process dies
// there. Death is a panic with a sentinel at the yield point, recovered at the top of the goroutine; after it every call
// out of that process fails at once (so deferred unlocks touch nothing), its machine-local and database locks are free,
// its Registry is gone, and it restarts later as a new incarnation. Claims and rescue files stay.
//
// Time is virtual. A global clock advances a little with every step; a machine's clock is the global one plus a skew of
// up to 15 minutes chosen by the seed. Sleep parks a process until virtual time reaches its wake-up, and when nothing
// can run, time jumps to the next wake-up. Clock reads do not yield: nothing in tokensource waits on them. Thousands of
// seeds run in seconds: no real sleeps, no network.
//
// # The simulated Bipsync
//
// league/oauth2-server's rules as plain data: an exchange revokes the refresh token it consumed and the access token
// issued with it; a refresh token expires a month after issue, checked before revocation; scopes only narrow (asking
// beyond the token's scopes is invalid_scope, and consumes nothing). Errors are *bipsync.Error values with the fields
// Bipsync sends, so the predicates (NeedsReauthorization, ReauthorizationCause, IsOutcomeUnknown) answer as for the real
// client. Modes: Strict; Fork (an exchange is a check and a rotation with a yield point between them, so overlapping
// exchanges of one head both succeed); Replay (reusing a rotated refresh token revokes the whole family, RFC 9700
// section 4.14.2). Faults: 503 (nothing consumed), and an answer lost after Bipsync rotated (outcome unknown).
//
// # Stores
//
// StoreFile is the real file store (tokenstore.NewFile, on tmpfs when there is one) with its OS lock replaced by a
// simulated machine-local lock: an OS lock would block a goroutine the scheduler holds. StorePostgres models the
// postgres store: an advisory lock per chain that excludes every process on every machine and dies with its process,
// and a conditional save in one step. StoreS3 models an object store with conditional puts and claims
// (tokenstore.Claimer), whose lock reaches only its machine. The command kinds run the real command store through
// tokenstore.CommandConfig.Runner against simulated helpers sharing one secret manager: a get/put helper (protocol
// 1), a conditional one (protocol 2, exit 75 on conflict), and a get/put helper configured as protocol 2; each helper
// run is a yield point, where it may time out, fail before writing, or write and then fail. Store outages (every read
// and write from one machine fails for a while) make saves fail for all their retries.
//
// # Operations
//
// A process runs a sequence of: the ephemeral resource's Open (Source.Token with min_validity, kept open) and Close
// (Source.Release), the data source (Token), the rotate command (Token with Force), the status command (Source.Record,
// then cli.Verdict), the restore command (tokenstore.ReadRescue and tokenstore.Restore of a rescue file a
// SaveError named; real stores only, since Restore puts sealed envelopes), and client credentials. The subcommands
// (status, rotate, restore) run as processes of their own, with a fresh Registry, as the binary does. Some worlds give a
// process two Sources with different scopes (provider aliases), and some start from a chain an older version saved
// under tokenstore.LegacyKey. When a chain has ended (revoked, lost, expired), a new authorization seeds a new one.
//
// # Invariants
//
// Checked after every step, or when an operation returns; a failure names the seed, the world and the last steps:
//
//  1. No lost chain: while Bipsync has not revoked the family and no answer was lost after a rotation (or a process
//     killed between an exchange and its save, which nothing can save), a live head is in the configuration (the
//     seed), a store, a rescue file a SaveError named, or a live process between exchange and save. restore never
//     calls the only live head stale.
//  2. No access token handed out that Bipsync had revoked at the moment of hand-out. Excused: another process's save
//     failed, so the store is stale for a reason this process cannot see; on a store without a lock that reaches every
//     runner, another machine rotated the chain during the request or is between its exchange and its save.
//  3. Every reauthorization error (bipsync.NeedsReauthorization other than invalid_scope, or a ChainSpentError) and
//     every "expired" verdict of status is true: no live head is anywhere (as in 1). Excused as in 2 when another
//     process holds the head whose save failed.
//  4. A store never goes back to a lower generation.
//  5. In strict and replay modes, on the stores Config.OneAttempt lists, no head is sent to Bipsync after it was
//     rotated (what replay detection punishes), unless a save failed or the chain was lost.
//  6. No token or seed Bipsync issued, nor the client secret, in any error or warning (as %v, %+v and %#v).
//
// and: a forced rotation returns only after an exchange of the chain that began after the request did; no deadlock
// (every waiting process waits for a lock a live process holds, and nothing else can run); no panic.
//
// Shrink looks for a smaller world (fewer processes, operations, machines, steps) that breaks the same check.
// testdata/holes.md lists the defects the simulation found, with their seeds. Not simulated: the grant's journal
// (internal/provider), which is reachable only through the plugin framework.
package chainsim
