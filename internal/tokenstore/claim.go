package tokenstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Claimer is implemented by stores that runners on several machines share without a lock that reaches them all, but
// that write conditionally (Traits.Claims): a runner claims a chain's head in the store before it exchanges it, and
// the others wait for the claimer's record instead of sending the same refresh token to Bipsync. A head is then sent
// once: no refused attempt, nothing a server with replay detection would punish by revoking the whole family.
//
// A claim is an entry of its own (under ClaimKey), so it never changes the chain's record and never conflicts with a
// save. It names the record revision whose head it claims; once the record has moved past that revision the claim is
// spent, and the next claim replaces it. A claim carries no expiry time, because runners' clocks disagree: each waiter
// measures a claim's TTL with its own clock from the moment it first saw that claim, so a runner that died holding a
// claim delays the others by at most its TTL, and never stops them.
type Claimer interface {
	// LoadClaim returns the claim the store holds for the chain key (nil, nil when there is none). An entry that does
	// not open with seed is an error satisfying errors.Is(err, ErrCorrupt).
	LoadClaim(ctx context.Context, key Key, seed string) (*Claim, error)
	// PutClaim writes c in place of the claim whose ID is replaces ("": in place of no claim), in one conditional
	// write. It fails with an error satisfying errors.Is(err, ErrConflict) when the store holds another claim, and
	// succeeds when it holds c itself (a put that landed although it reported a failure).
	PutClaim(ctx context.Context, key Key, seed string, c *Claim, replaces string) error
}

// Claim says that one runner is about to exchange the head of one record revision of a chain.
type Claim struct {
	// ID is fresh for every claim (NewRecordID); a take-over of an expired claim is a new claim with a new ID.
	ID string
	// Head is the revision of the record whose refresh token the holder exchanges.
	Head Revision
	// Holder names the claiming process (a random ID, not secret).
	Holder string
	// At is when the holder claimed, by its own clock: for people, never compared with another machine's clock.
	At time.Time
	// TTL is how long the holder may take to exchange and save (its exchange and save budgets).
	TTL time.Duration
}

// ClaimKey is the key under which a store keeps the claim of the chain key: a 64-hex fingerprint like every key, so
// that a command helper or a bucket needs no other naming rule.
func ClaimKey(key Key) Key {
	sum := sha256.Sum256([]byte("terraform-provider-bipsync claim v1\x00" + string(key)))
	return Key(hex.EncodeToString(sum[:]))
}
