// Package tokensource decides, in one place, whether a Bipsync access token can be reused or whether a chain
// must be exchanged, and makes sure an exchanged refresh token is saved before anything uses it.
//
// Every refresh exchange revokes the refresh token it consumed and the access token issued with it, so:
//   - requests for one chain are serialised inside the process (single-flight) and by the store's lock (on this
//     machine, or everywhere for a store with a shared lock), and the record is reloaded under the lock because
//     another process may have rotated the chain;
//   - an access token that still has the requested validity is reused, never exchanged again;
//   - the exchange runs to completion within its own budget even when the caller's context is cancelled, because the
//     server has already revoked the old pair once it has answered, and the save of its answer gets a budget of its
//     own, retries included;
//   - a save names the record it replaces, so a store never goes back; when runners on several machines race on one
//     head (the server refuses all but one, or lets two succeed and forks the chain), a loser re-reads the store and
//     adopts the winner's record instead of reporting a dead chain;
//   - records are ordered by generation, never by the times in them (they come from different machines' clocks): a
//     record of the head an exchange consumed (or an older one) is replaced by the exchange's save, and a record of the
//     same head and generation that differs only in its leases is no rotation; a forced rotation makes an exchange of
//     its own once it holds the chain, whatever other runs exchanged meanwhile;
//   - on a store whose lock does not reach every runner but that writes conditionally (tokenstore.Claimer), a runner
//     claims a head before exchanging it, and the others only read until the claimer's record is there, so a due head
//     is sent to Bipsync once: no refused attempt for a server with replay detection to punish. A claim carries no
//     expiry: each runner measures its TTL by its own clock from when it first saw it, and takes over a claim whose
//     holder died; a claimer whose exchange surely consumed nothing gives its claim up at once. Per due head that is
//     one claim write and one record save; the claim is not deleted, the next one replaces it. A store without
//     conditional writes cannot hold claims: a runner that sees another's record appear there says so, once per
//     process;
//   - a hand-out that reuses the stored token writes nothing to the store. Promises made to open consumers are kept in
//     memory (Release ends them); the one promise a record carries is the lease of the process that made its exchange,
//     written with the exchange's save on stores with conditional saves, and removed by that process's last Release.
//     A later exchange that revokes a promised token says so when the promise is known: made in the same process, or
//     recorded as that lease;
//   - a pair that could not be saved is kept in memory and in a local rescue file, and saved before the next use,
//     never handed out unsaved;
//   - before the first exchange of a new chain the store must take a record (the chain's generation 0), so a store
//     that cannot be written costs nothing.
package tokensource

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// DefaultRefreshTokenLifetime is how long Bipsync keeps a refresh token alive after it is issued (one month; league's P1M
// is 30 days in most months and never less than 28).
const DefaultRefreshTokenLifetime = 30 * 24 * time.Hour

// Budgets used when Options leave them zero.
const (
	// DefaultExchangeBudget bounds an exchange whose client cannot say how long it may take (see Options).
	DefaultExchangeBudget = 2 * time.Minute
	// DefaultSaveBudget bounds the save of an exchanged record, retries included: two runs of a command helper at its
	// 60 s limit.
	DefaultSaveBudget = 2 * time.Minute
	// DefaultAdoptWait is how long a runner whose exchange was refused waits for another runner's record when the store
	// has no lock shared by every runner, when neither Options.AdoptWait nor a client worst case says otherwise.
	DefaultAdoptWait = 90 * time.Second
)

const (
	// maxAdoptions bounds how many times one request moves on to a record another runner saved: each one means
	// another runner rotated the chain meanwhile, and a request that keeps losing should say so rather than spin.
	maxAdoptions = 4
	// maxHeadSaves bounds how many times the save of an exchanged head is repeated over records of the head it
	// consumed (or older ones) that other runners keep writing.
	maxHeadSaves = 8
	// releaseAttempts bounds the tries to remove a lease when its consumers are done; a lease left behind only
	// expires by itself.
	releaseAttempts = 3
	// adoptPollFirst and adoptPollMax pace the re-reads of a runner waiting for another runner's record.
	adoptPollFirst = 100 * time.Millisecond
	adoptPollMax   = 2 * time.Second
	// saveRetryFirst starts the backoff between save attempts, and saveAttempts bounds them (within the save budget).
	saveRetryFirst = 250 * time.Millisecond
	saveAttempts   = 6
)

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
	// ExchangeBudget bounds an exchange once it has started, whatever the caller does. Zero: the client's WorstCase
	// (every attempt at its timeout plus the retry waits) when it has one, else DefaultExchangeBudget.
	ExchangeBudget time.Duration
	// SaveBudget bounds the save of an exchanged record, retries included; zero: DefaultSaveBudget.
	SaveBudget time.Duration
	// AdoptWait bounds how long a request whose exchange was refused as spent waits for another runner's newer record,
	// for stores whose lock does not reach every runner. Zero: DefaultAdoptWait.
	AdoptWait time.Duration
	// RescueDir is where records the store would not take are kept; empty: tokenstore.DefaultRescueDir.
	RescueDir string
	// Sleep waits between re-reads and save attempts; it must return early with the context's error. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Registry holds this process's per-chain state; nil: the process-wide one. Tests pass their own.
	Registry *Registry
}

// Source hands out access tokens.
type Source struct {
	client         Exchanger
	store          tokenstore.Store
	clientSecret   string
	now            func() time.Time
	sleep          func(ctx context.Context, d time.Duration) error
	lifetime       time.Duration
	exchangeBudget time.Duration
	saveBudget     time.Duration
	adoptWait      time.Duration
	rescueDir      string
	reg            *Registry

	// leaseID names this Source's promises in the records (see Lease): a Source lives as long as one configured
	// provider instance, which is one engine walk of one provider configuration.
	leaseID string

	mu sync.Mutex
	// requested remembers, per chain, the scopes first asked of it through this Source: two different scope requests
	// within one walk are two consumers fighting over one chain. Across processes (provider aliases, runners), a
	// request may not narrow a chain whose scopes are known unless it allows narrowing (see checkNarrowing).
	requested map[tokenstore.Key][]string
	// open counts, per chain, the consumers this Source handed a token to that have not been released yet.
	open map[tokenstore.Key]*openChain
}

// openChain is what a Source handed out of one chain to consumers that are still open.
type openChain struct {
	seed        string
	n           int
	token       string // the access token handed out
	until       time.Time
	minValidity time.Duration
	at          time.Time
	// leased tells that this Source's exchange recorded its lease on token: the last Release has something to remove.
	leased bool
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
		client:         opts.Client,
		store:          opts.Store,
		clientSecret:   opts.ClientSecret,
		now:            opts.Now,
		sleep:          opts.Sleep,
		lifetime:       opts.RefreshTokenLifetime,
		exchangeBudget: opts.ExchangeBudget,
		saveBudget:     opts.SaveBudget,
		adoptWait:      opts.AdoptWait,
		rescueDir:      opts.RescueDir,
		reg:            opts.Registry,
		leaseID:        tokenstore.NewRecordID(),
		requested:      map[tokenstore.Key][]string{},
		open:           map[tokenstore.Key]*openChain{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.sleep == nil {
		s.sleep = sleepContext
	}
	if s.lifetime <= 0 {
		s.lifetime = DefaultRefreshTokenLifetime
	}
	if s.exchangeBudget <= 0 {
		s.exchangeBudget = DefaultExchangeBudget
		if wc, ok := opts.Client.(interface{ WorstCase() time.Duration }); ok && wc.WorstCase() > 0 {
			// A margin over the client's own bound, so that the client, not the budget, ends a slow exchange and
			// says why.
			s.exchangeBudget = wc.WorstCase() + 5*time.Second
		}
	}
	if s.saveBudget <= 0 {
		s.saveBudget = DefaultSaveBudget
	}
	if s.adoptWait <= 0 {
		s.adoptWait = DefaultAdoptWait
	}
	if s.reg == nil {
		s.reg = processRegistry
	}
	return s, nil
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Request asks for an access token.
type Request struct {
	Grant Grant
	// RefreshToken is the seed of the chain (grant refresh_token). The chain head in the store wins over it once the
	// chain has rotated; a different seed starts a different chain.
	RefreshToken string
	// Scopes to ask for; empty asks for the chain's current scopes (the original consent until narrowed).
	Scopes []string
	// AllowNarrowing lets Scopes be fewer than the chain's known scopes: the exchange narrows the chain for good.
	// Without it such a request fails before anything is exchanged (NarrowingError).
	AllowNarrowing bool
	// MinValidity is how long a handed-out token must stay valid at least.
	MinValidity time.Duration
	// Force exchanges the chain even when its access token could be reused (a rotation on request): the request makes
	// an exchange of its own once it holds the chain, whatever other runs exchanged meanwhile, so no token that existed
	// when it began survives it.
	Force bool
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
	// Adopted tells whether this call moved on to a record another runner saved while it was working.
	Adopted bool
	// Generation counts the exchanges recorded on the chain.
	Generation int64
	// Key names the chain. A consumer that is done with the token passes it to Release, so that the promise made to it
	// stops counting (zero for client credentials, which promise nothing: they revoke no other token).
	Key tokenstore.Key
	// Warnings are things the caller should tell the user.
	Warnings []Warning
}

// String redacts the access token.
func (r *Result) String() string {
	return fmt.Sprintf("tokensource.Result{type=%s expires=%s scopes=%v exchanged=%t adopted=%t generation=%d access=<redacted>}",
		r.TokenType, r.ExpiresAt.Format(time.RFC3339), r.Scopes, r.Exchanged, r.Adopted, r.Generation)
}

// GoString redacts the access token.
func (r *Result) GoString() string { return r.String() }

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

// Store returns the store the source keeps chains in.
func (s *Source) Store() tokenstore.Store { return s.store }

// Record returns the record the store holds for the chain seeded with seed (nil when there is none), read under the
// chain's locks, for display.
func (s *Source) Record(ctx context.Context, seed string) (*tokenstore.Record, error) {
	if seed == "" {
		return nil, errors.New("no refresh token given")
	}
	key := s.Key(seed)
	unlock, err := s.lockChain(ctx, s.reg.chain(key), key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.load(ctx, key, seed)
}

// checkMinValidity refuses, before exchanging, a min_validity that the chain's tokens cannot meet: every open would
// exchange the chain again, and each exchange revokes the token the previous open handed out.
func (s *Source) checkMinValidity(rec *tokenstore.Record, minValidity time.Duration) error {
	if rec.AccessToken == "" || rec.RefreshTokenIssuedAt.IsZero() || minValidity <= 0 {
		return nil
	}
	lifetime := rec.AccessTokenExpiresAt.Sub(rec.RefreshTokenIssuedAt)
	if lifetime <= 0 || minValidity < lifetime {
		return nil
	}
	return &MinValidityError{MinValidity: minValidity, Lifetime: lifetime}
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

func (s *Source) result(rec *tokenstore.Record, exchanged, adopted bool, warnings []Warning) *Result {
	r := &Result{
		AccessToken: rec.AccessToken,
		TokenType:   rec.TokenType,
		ExpiresAt:   rec.AccessTokenExpiresAt,
		Scopes:      rec.Scopes,
		Exchanged:   exchanged,
		Adopted:     adopted,
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
	return Warning{Kind: WarnShortLifetime, ExpiresAt: rec.AccessTokenExpiresAt, MinValidity: minValidity}, true
}
