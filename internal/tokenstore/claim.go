package tokenstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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
	// PutClaim writes c in place of the claim replaces (nil: in place of no claim), in one conditional write. It fails
	// with an error satisfying errors.Is(err, ErrConflict) when the store holds another claim, and succeeds when it
	// holds c itself (a put that landed although it reported a failure).
	PutClaim(ctx context.Context, key Key, seed string, c *Claim, replaces *Claim) error
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

// Revision is the claim's revision as a store compares it: the claimed head's generation and the claim's ID. A
// command helper sees it in BIPSYNC_STORE_REPLACES and BIPSYNC_STORE_REVISION exactly as it sees a record's.
func (c *Claim) Revision() Revision { return Revision{Generation: c.Head.Generation, ID: c.ID} }

// SealClaim seals c for the chain key under seed, as the envelope a store keeps under ClaimKey(key). It holds no
// token, but is sealed like a record so that a store or helper handles both alike and nobody can forge one.
func SealClaim(key Key, seed string, c *Claim) ([]byte, error) {
	switch {
	case c == nil:
		return nil, errors.New("seal claim: nil claim")
	case !validID(c.ID) || !validID(c.Head.ID) || c.Head.Generation < 0:
		return nil, errors.New("seal claim: the claim has no valid ID or head (a bug in the provider)")
	case seed == "":
		return nil, errors.New("seal claim: empty seed")
	}
	ck := ClaimKey(key)
	w := &wireRecord{Version: wireVersion, Generation: c.Head.Generation,
		Claim: &wireClaim{HeadID: c.Head.ID, Holder: c.Holder, At: c.At.UTC(), TTL: int64(c.TTL)}}
	return sealWire(ck, seed, c.Revision(), w)
}

// OpenClaim opens an envelope made by SealClaim for the chain key and seed.
func OpenClaim(key Key, seed string, data []byte) (*Claim, error) {
	w, e, err := openWire(ClaimKey(key), seed, data)
	if err != nil {
		return nil, err
	}
	if w.Claim == nil || e.hdr == "" {
		return nil, corrupt("a chain record, not a claim")
	}
	return &Claim{
		ID:     e.rev.ID,
		Head:   Revision{Generation: w.Generation, ID: w.Claim.HeadID},
		Holder: w.Claim.Holder,
		At:     w.Claim.At,
		TTL:    time.Duration(w.Claim.TTL),
	}, nil
}

// envelopeGetter is implemented by stores that keep sealed envelopes: it returns the one under key (nil, nil: none).
type envelopeGetter interface {
	getEnvelope(ctx context.Context, key Key) ([]byte, error)
}

// loadClaim is LoadClaim for a store of envelopes.
func loadClaim(ctx context.Context, g envelopeGetter, key Key, seed string) (*Claim, error) {
	if err := checkKeyCtx(ctx, key); err != nil {
		return nil, err
	}
	data, err := g.getEnvelope(ctx, ClaimKey(key))
	if data == nil || err != nil {
		return nil, err
	}
	return OpenClaim(key, seed, data)
}

// putClaim is PutClaim for a store of envelopes with a conditional put: the claim's revision replaces the revision of
// the claim it takes over, exactly as a record's save replaces a record's.
func putClaim(ctx context.Context, p envelopePutter, key Key, seed string, c, replaces *Claim) error {
	if err := checkKeyCtx(ctx, key); err != nil {
		return err
	}
	data, err := SealClaim(key, seed, c)
	if err != nil {
		return err
	}
	var rep *Revision
	if replaces != nil {
		rep = replaces.Revision().Ptr()
	}
	return p.putEnvelope(ctx, ClaimKey(key), data, c.Revision(), rep)
}
