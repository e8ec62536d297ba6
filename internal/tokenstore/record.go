package tokenstore

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Record is the state of one chain.
type Record struct {
	// RefreshToken is the current chain head (empty for client-credentials records).
	RefreshToken         string
	RefreshTokenIssuedAt time.Time
	AccessToken          string
	TokenType            string
	AccessTokenExpiresAt time.Time
	// Scopes are the scopes of the current access token and chain; nil means the original consent (not known).
	Scopes []string
	// RotatedAt is the time of the last exchange.
	RotatedAt time.Time
	// Generation counts the exchanges recorded on this chain. A record saved before the chain's first exchange
	// (its head is the seed) has generation 0.
	Generation int64
	// ID tells apart two records of one generation: the two heads of a forked chain, or a record and the same record
	// with a later promise. Every saved version gets a new one (NewRecordID); it is not secret.
	ID string

	// Leases are the promises made about the current access token: each process that handed it out to a consumer
	// still open holds one, saying until when it promised the token stays valid. An exchange before a lease's Until
	// revokes a token a consumer counts on; a process removes its lease when its consumers are done.
	Leases []Lease

	// Asks are the scope sets that earlier versions of the provider recorded as asked of this chain. They are read
	// and kept so that such records still open, but nothing decides by them any more: a request that would narrow a
	// chain of known Scopes needs to allow narrowing instead, however long ago anyone else asked.
	Asks []ScopeAsk

	// Dead is set when a run learned that Bipsync refused the chain's head for good (revoked or expired, after the
	// checks for another runner's newer record): every later use fails at once, and status says so, instead of handing
	// out its token or asking Bipsync again. A new seed starts a new chain, which clears it. nil: not known dead.
	Dead *Death
}

// Death is what a run learned when Bipsync refused a chain for good.
type Death struct {
	// At is when it was learned, by the clock of the runner that learned it.
	At time.Time
	// Cause is Bipsync's reason in a few words ("revoked", "expired", ...); never a token.
	Cause string
	// Detail is Bipsync's error and hint as text, for people; never a token.
	Detail string
	// By names the run that learned it, for people: host name and process ID ("ci-runner-7, pid 4242"). Not secret.
	By string
}

// ScopeAsk is one scope set asked of a chain, and when it was last asked.
type ScopeAsk struct {
	Scopes []string // normalized; nil asks for the chain's current scopes
	At     time.Time
}

// Lease is one process's promise about a chain's current access token.
type Lease struct {
	ID string // the process's lease ID: random, not secret
	// Until is the latest hand-out time plus its min_validity.
	Until time.Time
	// MinValidity and At describe the hand-out that set Until, for the warning that names a broken promise.
	MinValidity time.Duration
	At          time.Time
}

// Revision names one stored version of a chain's record.
type Revision struct {
	Generation int64
	// ID is the record's ID; "" for a record sealed before records had IDs (a legacy record).
	ID string
}

// Revision returns the record's revision.
func (r *Record) Revision() Revision { return Revision{Generation: r.Generation, ID: r.ID} }

// Matches tells whether two revisions name the same record. Legacy records have no ID and match each other: a store
// holds at most one record per chain, and the first save replaces it with one that has an ID.
func (v Revision) Matches(o Revision) bool {
	if v.ID == "" || o.ID == "" {
		return v.ID == o.ID
	}
	return v.Generation == o.Generation && v.ID == o.ID
}

// String is the revision as a command helper sees it: "<generation>.<id>", or "legacy" for a record without an ID.
// A nil revision (no record) is "none".
func (v *Revision) String() string {
	switch {
	case v == nil:
		return "none"
	case v.ID == "":
		return "legacy"
	default:
		return strconv.FormatInt(v.Generation, 10) + "." + v.ID
	}
}

// Ptr returns a pointer to a copy of v, for Save's replaces argument.
func (v Revision) Ptr() *Revision { return &v }

// idBytes is the size of a record ID before hex encoding.
const idBytes = 16

// NewRecordID returns a fresh random record ID: 32 lower-case hex characters.
func NewRecordID() string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

func validID(id string) bool {
	if len(id) != 2*idBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Clone returns a deep copy of r. A nil slice stays nil: nil and empty scopes mean different things.
func (r *Record) Clone() *Record {
	c := *r
	c.Scopes = slices.Clone(r.Scopes)
	c.Leases = slices.Clone(r.Leases)
	c.Asks = slices.Clone(r.Asks)
	if r.Dead != nil {
		d := *r.Dead
		c.Dead = &d
	}
	for i := range c.Asks {
		c.Asks[i].Scopes = slices.Clone(c.Asks[i].Scopes)
	}
	return &c
}

// redacted says whether a secret is present without showing any of it.
func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "[redacted]"
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return t.UTC().Format(time.RFC3339)
}

func scopesString(s []string) string {
	if s == nil {
		return "nil"
	}
	return "[" + strings.Join(s, " ") + "]"
}

// String describes the record with its tokens redacted, so a record that reaches a log or an error is harmless.
func (r Record) String() string {
	return fmt.Sprintf("{RefreshToken:%s RefreshTokenIssuedAt:%s AccessToken:%s TokenType:%s AccessTokenExpiresAt:%s Scopes:%s RotatedAt:%s Generation:%d ID:%s Leases:%d}",
		redacted(r.RefreshToken), timeString(r.RefreshTokenIssuedAt), redacted(r.AccessToken), r.TokenType,
		timeString(r.AccessTokenExpiresAt), scopesString(r.Scopes), timeString(r.RotatedAt), r.Generation, r.ID,
		len(r.Leases))
}

// GoString keeps %#v from printing the tokens, which it would do field by field otherwise.
func (r Record) GoString() string {
	return "tokenstore.Record" + r.String()
}

// LogValue keeps slog from printing the tokens field by field.
func (r Record) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("refresh_token", redacted(r.RefreshToken)),
		slog.Time("refresh_token_issued_at", r.RefreshTokenIssuedAt),
		slog.String("access_token", redacted(r.AccessToken)),
		slog.String("token_type", r.TokenType),
		slog.Time("access_token_expires_at", r.AccessTokenExpiresAt),
		slog.String("scopes", scopesString(r.Scopes)),
		slog.Time("rotated_at", r.RotatedAt),
		slog.Int64("generation", r.Generation),
		slog.String("id", r.ID),
		slog.Int("leases", len(r.Leases)),
	)
}
