package tokensource

import (
	"errors"
	"fmt"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// ErrStoreRequired is returned for a refresh-token grant when the store cannot keep a rotated chain: the exchange
// would revoke the only refresh token the user has and keep its successor nowhere.
var ErrStoreRequired = errors.New("a refresh-token grant needs a token store to keep the rotated refresh token")

// ScopeConflictError says that one chain was asked for two different scope sets within one process (one provider
// configuration in one run). Each exchange revokes the access token handed out before it, so the two consumers would
// revoke each other's token on every open. Nothing was exchanged.
type ScopeConflictError struct {
	First, Second []string
}

func (e *ScopeConflictError) Error() string {
	return fmt.Sprintf("one refresh chain was asked for scopes %s and then for scopes %s in the same run",
		DescribeScopes(e.First), DescribeScopes(e.Second))
}

// SaveError says that an exchange succeeded but its result could not be saved. The new pair is kept in memory and
// saved before the next use in this process, and in a rescue file when one could be written.
type SaveError struct {
	Store string
	Err   error
	// Rescue is the path of the rescue file holding the sealed record ("" when none could be written: RescueErr).
	Rescue    string
	RescueErr error
}

func (e *SaveError) Error() string {
	return fmt.Sprintf("the token exchange succeeded but the new refresh token could not be saved in the %s: %v", e.Store, e.Err)
}

func (e *SaveError) Unwrap() error { return e.Err }

// IncompleteAnswerError says that Bipsync rotated the chain but its answer had no usable access token. The new
// refresh token was kept (in Kept), so the next use exchanges it; nothing was handed out.
type IncompleteAnswerError struct {
	Kept string
	Err  error
}

func (e *IncompleteAnswerError) Error() string {
	return fmt.Sprintf("Bipsync rotated the chain but its answer had no usable access token; the new refresh token was kept in the %s: %v", e.Kept, e.Err)
}

func (e *IncompleteAnswerError) Unwrap() error { return e.Err }

// StoreError wraps a failure of the store that came before any exchange of this request: nothing was consumed.
type StoreError struct {
	Store string
	Op    string
	Err   error
	// BeforeFirstExchange tells that the store would not take the chain's first record: the seed is unspent.
	BeforeFirstExchange bool
}

func (e *StoreError) Error() string {
	return fmt.Sprintf("could not %s the %s: %v", e.Op, e.Store, e.Err)
}

func (e *StoreError) Unwrap() error { return e.Err }

// ChainSpentError says that Bipsync refused the chain's head as revoked or expired and that the store showed no newer
// record, even after waiting Waited for another runner's. Err is Bipsync's refusal (errors.As finds the
// *bipsync.Error, so the reauthorization predicates hold). When Known, an earlier run learned it and recorded it in
// the store: this request asked nothing of Bipsync, and Err is nil.
type ChainSpentError struct {
	Err error
	// Death is the chain's death as recorded in the store (Known), or as this request learned it.
	Death *tokenstore.Death
	// Known tells that the store's record was marked dead by an earlier run: nothing was sent to Bipsync.
	Known bool
	// Recorded tells that this request recorded the death in the store, so later runs fail at once; RecordErr says
	// why it could not when it tried and failed.
	Recorded  bool
	RecordErr error
	// ConsumedByGrantAt is when a bipsync_refresh_grant exchanged this chain's seed (its seed journal says so): the
	// refused head is the seed, given to a grant and to this consumer. Zero when not known.
	ConsumedByGrantAt time.Time
	// OtherRunnerSeen tells that the store's record changed while this request worked: another runner used the chain.
	OtherRunnerSeen bool
	Waited          time.Duration
	// LastRotation and Generation describe the record whose head was refused.
	LastRotation time.Time
	Generation   int64
	// ClaimHolderDied tells that this request took over the claim of another runner (ClaimHolder, a process ID, not
	// secret) that this process first saw at ClaimSeenAt and saw unchanged for its TTL (ClaimTTL), and that Bipsync then
	// refused the head as spent: the holder exchanged it and stopped before saving, and its new head is lost with it.
	ClaimHolderDied bool
	ClaimHolder     string
	ClaimSeenAt     time.Time
	ClaimTTL        time.Duration
}

func (e *ChainSpentError) Error() string {
	if e.ClaimHolderDied {
		return fmt.Sprintf("another runner (process %s) claimed this chain's head and did not save a record within its "+
			"claim's %s (first seen %s); this runner took the claim over, and Bipsync refused the head as spent: the other "+
			"runner exchanged it and stopped before saving the new refresh token, which is lost with it: %v",
			e.ClaimHolder, e.ClaimTTL, e.ClaimSeenAt.UTC().Format(time.RFC3339), e.Err)
	}
	if e.Err != nil {
		return e.Err.Error()
	}
	if e.Death == nil {
		return "the refresh chain is dead"
	}
	return fmt.Sprintf("Bipsync refused this refresh chain (%s) at %s, as recorded in the token store by %s: %s",
		e.Death.Cause, e.Death.At.UTC().Format(time.RFC3339), e.Death.By, e.Death.Detail)
}

func (e *ChainSpentError) Unwrap() error { return e.Err }

// MinValidityError says that min_validity is at least the lifetime of the access tokens the chain gets, so no token
// could ever meet it: every use would exchange the chain and revoke the token handed out before. Nothing was exchanged.
type MinValidityError struct {
	MinValidity, Lifetime time.Duration
}

func (e *MinValidityError) Error() string {
	return fmt.Sprintf("min_validity %s is not shorter than the access token lifetime %s", e.MinValidity, e.Lifetime)
}

// WarningKind says what a Warning is about; the provider words each kind.
type WarningKind int

// Warning kinds.
const (
	// WarnNarrowed: the exchange narrowed the chain from Scopes to Requested, for good.
	WarnNarrowed WarningKind = iota + 1
	// WarnShortLifetime: Bipsync issued a token valid until ExpiresAt, less than MinValidity from now.
	WarnShortLifetime
	// WarnNotCached: a client-credentials token could not be saved in Store (Err); nothing is lost.
	WarnNotCached
	// WarnPromiseBroken: this exchange revoked an access token handed out at PromisedAt with PromisedMinValidity,
	// promised until PromisedUntil, because this request needed MinValidity (or Forced a rotation).
	WarnPromiseBroken
	// WarnNoClaims: another runner wrote this chain's record while this request worked, through a store without
	// conditional writes (so without claims): two runners can exchange one head, and a server with replay detection
	// would then revoke the whole chain. Said once per process.
	WarnNoClaims
)

// Warning is something the caller should tell the user: a kind and its facts, which the provider words.
type Warning struct {
	Kind WarningKind

	Scopes, Requested []string // WarnNarrowed

	ExpiresAt   time.Time     // WarnShortLifetime
	MinValidity time.Duration // WarnShortLifetime, WarnPromiseBroken

	Store string // WarnNotCached, WarnNoClaims
	Err   error  // WarnNotCached

	PromisedAt          time.Time     // WarnPromiseBroken
	PromisedUntil       time.Time     // WarnPromiseBroken
	PromisedMinValidity time.Duration // WarnPromiseBroken
	Forced              bool          // WarnPromiseBroken
}
