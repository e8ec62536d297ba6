// Package tokensource decides, in one place, whether a Bipsync access token can be reused or whether a chain
// must be exchanged, and makes sure an exchanged refresh token is saved before anything uses it.
//
// Every refresh exchange revokes the refresh token it consumed and the access token issued with it, so:
//   - requests for one chain are serialised inside the process (single-flight) and across processes (the store's
//     lock), and the record is reloaded under the lock because another process may have rotated the chain;
//   - an access token that still has the requested validity is reused, never exchanged again;
//   - the exchange and the save run to completion even when the caller's context is cancelled (bounded),
//     because the server has already revoked the old pair once it has answered;
//   - a pair that could not be saved is kept in memory and saved before the next use, never handed out unsaved.
package tokensource

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// DefaultRefreshTokenLifetime is how long Bipsync keeps a refresh token alive after it is issued (one month; league's P1M
// is 30 days in most months and never less than 28).
const DefaultRefreshTokenLifetime = 30 * 24 * time.Hour

// DefaultCompletionBound bounds how long an exchange and its save may run after the caller's context is cancelled.
const DefaultCompletionBound = 2 * time.Minute

// Grant is the OAuth grant a request uses.
type Grant string

const (
	// GrantRefreshToken exchanges a refresh chain (the default).
	GrantRefreshToken Grant = "refresh_token"
	// GrantClientCredentials asks for a team token with the client's own credentials.
	GrantClientCredentials Grant = "client_credentials"
)

// Exchanger is the token client (implemented by *bipsync.Client).
type Exchanger interface {
	TokenURL() string
	ClientID() string
	Refresh(ctx context.Context, refreshToken string, scopes []string) (*bipsync.Token, error)
	ClientCredentials(ctx context.Context, scopes []string) (*bipsync.Token, error)
}

// Options configure a Source.
type Options struct {
	Client Exchanger
	Store  tokenstore.Store
	// ClientSecret keys client-credentials records (it is their only secret); empty for public clients.
	ClientSecret         string
	Now                  func() time.Time
	RefreshTokenLifetime time.Duration
	CompletionBound      time.Duration
}

// Source hands out access tokens.
type Source struct {
	client          Exchanger
	store           tokenstore.Store
	clientSecret    string
	now             func() time.Time
	lifetime        time.Duration
	completionBound time.Duration

	// requested remembers, per chain, the scopes first asked of it through this Source. A Source lives as long as
	// one configured provider instance, which is one engine walk: two different scope requests within it are two
	// consumers fighting over one chain.
	mu        sync.Mutex
	requested map[tokenstore.Key][]string
}

// New returns a Source.
func New(opts Options) (*Source, error) {
	if opts.Client == nil {
		return nil, errors.New("token source needs a client")
	}
	if opts.Store == nil {
		return nil, errors.New("token source needs a store")
	}
	s := &Source{
		client:          opts.Client,
		store:           opts.Store,
		clientSecret:    opts.ClientSecret,
		now:             opts.Now,
		lifetime:        opts.RefreshTokenLifetime,
		completionBound: opts.CompletionBound,
		requested:       map[tokenstore.Key][]string{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.lifetime <= 0 {
		s.lifetime = DefaultRefreshTokenLifetime
	}
	if s.completionBound <= 0 {
		s.completionBound = DefaultCompletionBound
	}
	return s, nil
}

// Request asks for an access token.
type Request struct {
	Grant Grant
	// RefreshToken is the seed of the chain (grant refresh_token). The chain head in the store wins over it once the
	// chain has rotated; a different seed starts a different chain.
	RefreshToken string
	// Scopes to ask for; empty asks for the chain's current scopes (the original consent until narrowed).
	Scopes []string
	// MinValidity is how long a handed-out token must stay valid at least.
	MinValidity time.Duration
}

// Result is a handed-out access token.
type Result struct {
	AccessToken string
	TokenType   string
	ExpiresAt   time.Time
	// Scopes of the token; nil when they are the original consent and so not known to the provider.
	Scopes []string
	// RefreshTokenExpiresAt is when the chain dies unless exchanged again; zero for client credentials.
	RefreshTokenExpiresAt time.Time
	// Exchanged tells whether this call caused a token exchange.
	Exchanged bool
	// Generation counts the exchanges recorded on the chain.
	Generation int64
	// Warnings are things the caller should tell the user.
	Warnings []Warning
}

// String redacts the access token.
func (r *Result) String() string {
	return fmt.Sprintf("tokensource.Result{type=%s expires=%s scopes=%v exchanged=%t generation=%d access=<redacted>}",
		r.TokenType, r.ExpiresAt.Format(time.RFC3339), r.Scopes, r.Exchanged, r.Generation)
}

// GoString redacts the access token.
func (r *Result) GoString() string { return r.String() }

// Warning is a user-facing warning with a stable summary.
type Warning struct {
	Summary string
	Detail  string
}

// ErrStoreRequired is returned for a refresh-token grant when the store cannot keep a rotated chain: the exchange
// would revoke the only refresh token the user has and keep its successor nowhere.
var ErrStoreRequired = errors.New("a refresh-token grant needs a token store to keep the rotated refresh token")

// ScopeConflictError says that one chain was asked for two different scope sets in one process. Each exchange revokes
// the access token handed out before it, so the two consumers would revoke each other's token on every open, and the
// narrower request would narrow the chain for good.
type ScopeConflictError struct {
	First, Second []string
}

func (e *ScopeConflictError) Error() string {
	return fmt.Sprintf("one refresh chain was asked for scopes %s and then for scopes %s in the same run",
		describeScopes(e.First), describeScopes(e.Second))
}

// SaveError says that an exchange succeeded but its result could not be saved. The new pair is kept in memory and
// saved before the next use in this process.
type SaveError struct {
	Store string
	Err   error
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

// StoreError wraps a failure to lock or load the store before any exchange (nothing was consumed).
type StoreError struct {
	Store string
	Op    string
	Err   error
}

func (e *StoreError) Error() string {
	return fmt.Sprintf("could not %s the %s: %v", e.Op, e.Store, e.Err)
}

func (e *StoreError) Unwrap() error { return e.Err }

// chainState is what this process knows of one chain. It is process-wide (see registry) so that every provider
// instance (aliases included) shares one single-flight per chain.
type chainState struct {
	sem             chan struct{}        // single-flight: one holder at a time, waits honour the context
	pending         *tokenstore.Record   // exchanged but not yet saved
	pendingReplaces *tokenstore.Revision // what pending's save replaces
	cached          *tokenstore.Record   // last record, for stores that keep nothing (client credentials with store none)
}

var registry = struct {
	sync.Mutex
	chains map[tokenstore.Key]*chainState
}{chains: map[tokenstore.Key]*chainState{}}

func chainFor(key tokenstore.Key) *chainState {
	registry.Lock()
	defer registry.Unlock()
	c, ok := registry.chains[key]
	if !ok {
		c = &chainState{sem: make(chan struct{}, 1)}
		registry.chains[key] = c
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

// Token returns an access token for req, reusing a stored one when it is valid long enough.
func (s *Source) Token(ctx context.Context, req Request) (*Result, error) {
	switch req.Grant {
	case GrantRefreshToken, "":
		return s.refreshToken(ctx, req)
	case GrantClientCredentials:
		return s.clientCredentials(ctx, req)
	default:
		return nil, fmt.Errorf("unsupported grant type %q", req.Grant)
	}
}

// Key returns the store key of the chain seeded with refreshToken (for diagnostics and tests).
func (s *Source) Key(refreshToken string) tokenstore.Key {
	return tokenstore.KeyFor(s.client.TokenURL(), s.client.ClientID(), refreshToken)
}

func (s *Source) refreshToken(ctx context.Context, req Request) (*Result, error) {
	if req.RefreshToken == "" {
		return nil, errors.New("no refresh token given")
	}
	if !s.store.Traits().Persistent {
		return nil, ErrStoreRequired
	}
	key := s.Key(req.RefreshToken)
	seed := req.RefreshToken
	c := chainFor(key)
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	defer c.release()

	if err := s.checkScopes(key, req.Scopes); err != nil {
		return nil, err
	}

	unlock, err := s.store.Lock(ctx, key)
	if err != nil {
		return nil, &StoreError{Store: s.store.Describe(), Op: "lock", Err: err}
	}
	defer func() { _ = unlock() }()

	if c.pending != nil {
		if err := s.store.Save(ctx, key, seed, c.pending, c.pendingReplaces); err != nil {
			return nil, &SaveError{Store: s.store.Describe(), Err: err}
		}
		c.pending = nil
	}

	rec, err := s.store.Load(ctx, key, seed)
	if err != nil {
		return nil, &StoreError{Store: s.store.Describe(), Op: "load", Err: err}
	}
	if rec == nil {
		rec = &tokenstore.Record{RefreshToken: seed}
	}
	if s.reusable(rec, req) {
		s.rememberScopes(key, req.Scopes)
		return s.result(rec, false, nil), nil
	}

	// From here on the exchange revokes the chain head: finish exchange and save even if the caller gives up.
	bctx, cancel := s.Detach(ctx)
	defer cancel()
	next, err := s.Exchange(bctx, rec, req.Scopes)
	if next == nil {
		return nil, err
	}
	var replaces *tokenstore.Revision
	if rec.ID != "" || rec.Generation > 0 {
		replaces = rec.Revision().Ptr()
	}
	if serr := s.store.Save(bctx, key, seed, next, replaces); serr != nil {
		c.pending, c.pendingReplaces = next, replaces
		return nil, &SaveError{Store: s.store.Describe(), Err: serr}
	}
	if err != nil {
		// Rotated, but no usable access token came with the new head: the head is kept, nothing is handed out.
		return nil, &IncompleteAnswerError{Kept: s.store.Describe(), Err: err}
	}
	s.rememberScopes(key, req.Scopes)
	var warnings []Warning
	if narrowed(rec.Scopes, req.Scopes) {
		warnings = append(warnings, narrowingWarning(rec.Scopes, req.Scopes))
	}
	if w, ok := s.shortLifetimeWarning(next, req.MinValidity); ok {
		warnings = append(warnings, w)
	}
	return s.result(next, true, warnings), nil
}

// Detach returns a context that outlives the caller's cancellation, bounded in time. Once Bipsync has answered an
// exchange, the old pair is revoked and the answer is the chain: the exchange and the save of its result must finish
// even when Terraform cancels the request.
func (s *Source) Detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.completionBound)
}

// Exchange runs one refresh exchange of prev's head and returns the chain's next record. It is the one exchange path
// of the provider: the token store's chains and bipsync_refresh_grant's chain (kept in state) both use it. Callers
// run it under Detach and save the result before anything uses it.
//
// When Bipsync rotated the chain but its answer had no usable access token, Exchange returns the next record (the
// new head, no access token) together with the error: the caller must save it, or the chain is lost.
func (s *Source) Exchange(ctx context.Context, prev *tokenstore.Record, scopes []string) (*tokenstore.Record, error) {
	tok, err := s.client.Refresh(ctx, prev.RefreshToken, scopes)
	next := &tokenstore.Record{
		Scopes:     effectiveScopes(prev.Scopes, scopes),
		RotatedAt:  s.now(),
		Generation: prev.Generation + 1,
		ID:         tokenstore.NewRecordID(),
	}
	if head, ok := bipsync.RescuedRefreshToken(err); ok {
		next.RefreshToken, next.RefreshTokenIssuedAt = head, next.RotatedAt
		return next, err
	}
	if err != nil {
		return nil, err
	}
	next.RefreshToken, next.RefreshTokenIssuedAt = tok.RefreshToken, tok.ReceivedAt
	next.AccessToken, next.TokenType, next.AccessTokenExpiresAt = tok.AccessToken, tok.TokenType, tok.Expiry
	return next, nil
}

// RefreshTokenExpiry returns when a refresh token issued at issuedAt dies.
func (s *Source) RefreshTokenExpiry(issuedAt time.Time) time.Time { return issuedAt.Add(s.lifetime) }

func (s *Source) clientCredentials(ctx context.Context, req Request) (*Result, error) {
	if s.clientSecret == "" {
		return nil, errors.New("the client_credentials grant needs a client secret (public clients cannot use it)")
	}
	// The client secret is the only secret of a client-credentials record, so it keys and encrypts it; the scopes
	// are part of the key because a client-credentials token does not revoke another one.
	seed := "client_credentials\x00" + s.clientSecret + "\x00" + strings.Join(normalizeScopes(req.Scopes), " ")
	key := tokenstore.KeyFor(s.client.TokenURL(), s.client.ClientID(), seed)
	c := chainFor(key)
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	defer c.release()

	persistent := s.store.Traits().Persistent
	var rec *tokenstore.Record
	if persistent {
		unlock, err := s.store.Lock(ctx, key)
		if err != nil {
			return nil, &StoreError{Store: s.store.Describe(), Op: "lock", Err: err}
		}
		defer func() { _ = unlock() }()
		rec, err = s.store.Load(ctx, key, seed)
		if err != nil {
			return nil, &StoreError{Store: s.store.Describe(), Op: "load", Err: err}
		}
	} else {
		rec = c.cached
	}
	if rec != nil && s.reusable(rec, req) {
		return s.result(rec, false, nil), nil
	}
	tok, err := s.client.ClientCredentials(ctx, req.Scopes)
	if err != nil {
		return nil, err
	}
	var gen int64
	var replaces *tokenstore.Revision
	if rec != nil {
		gen, replaces = rec.Generation, rec.Revision().Ptr()
	}
	next := &tokenstore.Record{
		ID:                   tokenstore.NewRecordID(),
		AccessToken:          tok.AccessToken,
		TokenType:            tok.TokenType,
		AccessTokenExpiresAt: tok.Expiry,
		Scopes:               normalizeScopes(req.Scopes),
		RotatedAt:            s.now(),
		Generation:           gen + 1,
	}
	c.cached = next
	var warnings []Warning
	if persistent {
		// A client-credentials token revokes nothing, so a failed save loses nothing: say so and hand it out.
		bctx, cancel := s.Detach(ctx)
		defer cancel()
		if err := s.store.Save(bctx, key, seed, next, replaces); err != nil {
			warnings = append(warnings, Warning{
				Summary: "Bipsync Token Not Cached",
				Detail: fmt.Sprintf("The client-credentials token could not be saved in the %s, so the next run asks for a new one. "+
					"Nothing is lost. Cause: %v", s.store.Describe(), err),
			})
		}
	}
	if w, ok := s.shortLifetimeWarning(next, req.MinValidity); ok {
		warnings = append(warnings, w)
	}
	return s.result(next, true, warnings), nil
}

// reusable tells whether rec's access token can be handed out for req.
func (s *Source) reusable(rec *tokenstore.Record, req Request) bool {
	if rec.AccessToken == "" {
		return false
	}
	if s.now().Add(req.MinValidity).After(rec.AccessTokenExpiresAt) {
		return false
	}
	if len(req.Scopes) == 0 {
		return true // "the chain's current scopes": whatever the chain holds now
	}
	return rec.Scopes != nil && slices.Equal(normalizeScopes(rec.Scopes), normalizeScopes(req.Scopes))
}

func (s *Source) result(rec *tokenstore.Record, exchanged bool, warnings []Warning) *Result {
	r := &Result{
		AccessToken: rec.AccessToken,
		TokenType:   rec.TokenType,
		ExpiresAt:   rec.AccessTokenExpiresAt,
		Scopes:      rec.Scopes,
		Exchanged:   exchanged,
		Generation:  rec.Generation,
		Warnings:    warnings,
	}
	if rec.RefreshToken != "" && !rec.RefreshTokenIssuedAt.IsZero() {
		r.RefreshTokenExpiresAt = s.RefreshTokenExpiry(rec.RefreshTokenIssuedAt)
	}
	return r
}

func (s *Source) shortLifetimeWarning(rec *tokenstore.Record, minValidity time.Duration) (Warning, bool) {
	if minValidity <= 0 || !s.now().Add(minValidity).After(rec.AccessTokenExpiresAt) {
		return Warning{}, false
	}
	return Warning{
		Summary: "Bipsync Token Shorter Than min_validity",
		Detail: fmt.Sprintf("Bipsync issued an access token valid until %s, which is less than min_validity (%s) from now. "+
			"Every open will exchange the chain again. Lower min_validity below the token lifetime (Bipsync issues 1-hour tokens).",
			rec.AccessTokenExpiresAt.UTC().Format(time.RFC3339), minValidity),
	}, true
}

func (s *Source) checkScopes(key tokenstore.Key, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	first, ok := s.requested[key]
	if !ok || slices.Equal(first, normalizeScopes(scopes)) {
		return nil
	}
	return &ScopeConflictError{First: first, Second: normalizeScopes(scopes)}
}

func (s *Source) rememberScopes(key tokenstore.Key, scopes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.requested[key]; !ok {
		s.requested[key] = normalizeScopes(scopes)
	}
}

// effectiveScopes returns the scopes of a token exchanged with requested from a chain holding current.
func effectiveScopes(current, requested []string) []string {
	if len(requested) == 0 {
		return current
	}
	return normalizeScopes(requested)
}

// narrowed tells whether requesting scopes narrows a chain known to hold current. A nil current is the original
// consent, which the provider cannot see, so it cannot tell and says nothing (the docs explain narrowing).
func narrowed(current, requested []string) bool {
	if len(requested) == 0 || current == nil {
		return false
	}
	for _, sc := range current {
		if !slices.Contains(requested, sc) {
			return true
		}
	}
	return false
}

func narrowingWarning(current, requested []string) Warning {
	return Warning{
		Summary: "Bipsync Refresh Chain Narrowed",
		Detail: fmt.Sprintf("The chain held scopes %s and was exchanged for %s. Bipsync narrows the new refresh token too: "+
			"asking this chain for a scope outside %s later fails, and only a new authorization (authorization code grant) "+
			"can widen it again.", describeScopes(current), describeScopes(requested), describeScopes(requested)),
	}
}

func normalizeScopes(scopes []string) []string {
	if len(scopes) == 0 {
		return nil
	}
	out := slices.Clone(scopes)
	slices.Sort(out)
	return slices.Compact(out)
}

func describeScopes(scopes []string) string {
	if len(scopes) == 0 {
		return "(the original consent)"
	}
	return "[" + strings.Join(scopes, " ") + "]"
}
