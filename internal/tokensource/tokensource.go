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
	"strings"
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
	// maxChurn bounds how many times one request re-reads a record that other runners changed without rotating the
	// chain (leases recorded and released by their hand-outs: two writes per provider process of a store with a
	// conditional save). Far more than a run of many runners causes; only a store that keeps changing reaches it.
	maxChurn = 64
	// maxHeadSaves bounds how many times the save of an exchanged head is repeated over records of the head it
	// consumed (or older ones) that other runners keep writing.
	maxHeadSaves = 8
	// leaseGranularity is how much a hand-out's promise may outgrow the process's recorded lease before the record is
	// written again: one write a minute at most per chain and process, not one per open.
	leaseGranularity = time.Minute
	// releaseAttempts bounds the tries to remove a lease when its consumers are done; a lease left behind only
	// expires by itself.
	releaseAttempts = 3
	// askRefresh is how old the record's entry for a scope set may get before a hand-out renews it.
	askRefresh = time.Minute
	// ScopeConflictWindow is how long a scope set asked of a chain counts against a different one asked by another
	// process: two provider aliases (or configurations) in one run ask within it.
	ScopeConflictWindow = 10 * time.Minute
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
	// within one walk are two consumers fighting over one chain. Provider aliases run as separate processes, so they
	// are caught through the record's Asks instead (see crossProcessScopeConflict).
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
	// MinValidity is how long a handed-out token must stay valid at least.
	MinValidity time.Duration
	// Force exchanges the chain even when its access token could be reused (a rotation on request). An exchange
	// another process made after the request started counts: the chain was rotated, once, as asked.
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

// Registry is a process's state per chain: the single flight that keeps two requests of one process from exchanging
// one chain at once, and what the process holds that the store does not (a record whose save failed, a client-
// credentials token when nothing is stored).
//
// The token store has a lock of its own inside the process too (tokenstore's proclock): the OS locks it rests on do
// not all exclude within one process, and other users of a store (the provider binary's subcommands) do not go through
// a Source. Both are needed; this one is taken first, so the store's is never contended within a process that uses a
// Source.
type Registry struct {
	mu     sync.Mutex
	chains map[tokenstore.Key]*chainState
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{chains: map[tokenstore.Key]*chainState{}} }

// processRegistry is shared by every Source of the process: every provider instance the engine configures in one
// plugin process (one per provider configuration and walk) serves its chains through one single flight.
var processRegistry = NewRegistry()

type chainState struct {
	sem             chan struct{}        // single-flight: one holder at a time, waits honour the context
	pending         *tokenstore.Record   // exchanged but not yet saved
	pendingReplaces *tokenstore.Revision // what pending's save replaces
	rescued         string               // the rescue file holding pending, if one was written
	cached          *tokenstore.Record   // last record, for stores that keep nothing (client credentials with store none)
}

func (r *Registry) chain(key tokenstore.Key) *chainState {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.chains[key]
	if !ok {
		c = &chainState{sem: make(chan struct{}, 1)}
		r.chains[key] = c
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

// lockChain takes the chain's single flight in this process, then the store's lock, and returns what releases both.
func (s *Source) lockChain(ctx context.Context, c *chainState, key tokenstore.Key) (unlock func(), err error) {
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	unlockStore, err := s.store.Lock(ctx, key)
	if err != nil {
		c.release()
		return nil, &StoreError{Store: s.store.Describe(), Op: "lock", Err: err}
	}
	return func() {
		_ = unlockStore()
		c.release()
	}, nil
}

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

// run is one request's view of a chain: what it holds and what it has seen.
type run struct {
	key       tokenstore.Key
	seed      string
	c         *chainState
	req       Request
	started   time.Time
	adoptions int // moves to another runner's rotation of the chain
	churn     int // re-reads of a record that others changed without rotating it
	// revisions the store held during this request, for telling whether another runner used the chain.
	seen []tokenstore.Revision
}

func (r *run) observe(rec *tokenstore.Record) {
	if rec == nil {
		return
	}
	rev := rec.Revision()
	for _, v := range r.seen {
		if v == rev {
			return
		}
	}
	r.seen = append(r.seen, rev)
}

func (s *Source) refreshToken(ctx context.Context, req Request) (*Result, error) {
	if req.RefreshToken == "" {
		return nil, errors.New("no refresh token given")
	}
	if !s.store.Traits().Persistent {
		return nil, ErrStoreRequired
	}
	r := &run{key: s.Key(req.RefreshToken), seed: req.RefreshToken, req: req, started: s.now()}
	r.c = s.reg.chain(r.key)
	if err := r.c.acquire(ctx); err != nil {
		return nil, err
	}
	defer r.c.release()

	if err := s.checkScopes(r.key, req.Scopes); err != nil {
		return nil, err
	}
	unlock, err := s.store.Lock(ctx, r.key)
	if err != nil {
		return nil, &StoreError{Store: s.store.Describe(), Op: "lock", Err: err}
	}
	defer func() { _ = unlock() }()

	if err := s.savePending(ctx, r); err != nil {
		return nil, err
	}
	rec, err := s.load(ctx, r.key, r.seed)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		if rec, err = s.startChain(ctx, r); err != nil {
			return nil, err
		}
	}
	r.observe(rec)
	return s.serve(ctx, r, rec)
}

// load reads the chain's record. A chain saved by a version that keyed endpoints as spelt is found under that key too.
func (s *Source) load(ctx context.Context, key tokenstore.Key, seed string) (*tokenstore.Record, error) {
	rec, err := s.store.Load(ctx, key, seed)
	if err != nil {
		return nil, &StoreError{Store: s.store.Describe(), Op: "load", Err: err}
	}
	if rec != nil {
		return rec, nil
	}
	legacy, differs := tokenstore.LegacyKey(s.client.TokenURL(), s.client.ClientID(), seed)
	if !differs {
		return nil, nil
	}
	old, err := s.store.Load(ctx, legacy, seed)
	if err != nil || old == nil {
		// An unreadable record under the old key is not this chain's business any more than a missing one: the
		// canonical key is where the chain lives from now on.
		return nil, nil //nolint:nilerr // see above
	}
	// Move the chain to its canonical key. Nothing is exchanged here, so a failed copy costs nothing: the next run
	// finds the old key again.
	moved := old.Clone()
	moved.ID = tokenstore.NewRecordID()
	if err := s.store.Save(ctx, key, seed, moved, nil); err != nil {
		return nil, &StoreError{Store: s.store.Describe(), Op: "save", Err: err}
	}
	return moved, nil
}

// startChain saves the chain's generation 0 (its head is the seed) before anything is exchanged: a store that cannot
// take a record fails here, with the seed unspent. Another process that got there first wins; its record is used.
func (s *Source) startChain(ctx context.Context, r *run) (*tokenstore.Record, error) {
	first := &tokenstore.Record{RefreshToken: r.seed, ID: tokenstore.NewRecordID()}
	err := s.store.Save(ctx, r.key, r.seed, first, nil)
	switch {
	case err == nil:
		return first, nil
	case errors.Is(err, tokenstore.ErrConflict):
		rec, lerr := s.load(ctx, r.key, r.seed)
		if lerr != nil {
			return nil, lerr
		}
		if rec != nil {
			return rec, nil
		}
	}
	return nil, &StoreError{Store: s.store.Describe(), Op: "save", Err: err, BeforeFirstExchange: true}
}

// savePending saves what an earlier request of this process exchanged but could not save, before anything else
// happens to the chain. The save names the record it replaces, so a record that landed after all, and was rotated
// since by another process, is never put back.
func (s *Source) savePending(ctx context.Context, r *run) error {
	if r.c.pending == nil {
		return nil
	}
	err := s.saveRecord(ctx, r.key, r.seed, r.c.pending, r.c.pendingReplaces)
	switch {
	case err == nil, errors.Is(err, tokenstore.ErrConflict):
		// Saved, or the store moved on (the pending record landed and was rotated since, or another runner's record
		// won): either way the store holds the chain now.
		r.c.pending, r.c.pendingReplaces, r.c.rescued = nil, nil, ""
		return nil
	default:
		return &SaveError{Store: s.store.Describe(), Err: err, Rescue: r.c.rescued}
	}
}

// serve hands out rec's access token when it can, and otherwise exchanges the chain, adopting another runner's record
// whenever the store shows one.
func (s *Source) serve(ctx context.Context, r *run, rec *tokenstore.Record) (*Result, error) {
	for {
		forced := r.req.Force && !rec.RotatedAt.After(r.started)
		if !forced && s.reusable(rec, r.req) {
			next, err := s.handOut(ctx, r, rec)
			if errors.Is(err, errMovedOn) {
				if rec, err = s.adopt(ctx, r, rec); err != nil {
					return nil, err
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			return s.handedOut(r, next, false, nil), nil
		}
		if err := s.checkMinValidity(rec, r.req.MinValidity); err != nil {
			return nil, err
		}
		if err := s.crossProcessScopeConflict(rec, r.req.Scopes); err != nil {
			return nil, err
		}
		var warnings []Warning
		if w, ok := s.promiseBroken(r, rec); ok {
			warnings = append(warnings, w)
		}

		// From here on the exchange revokes the chain head: it finishes within its budget even if the caller gives up.
		xctx, cancel := s.DetachExchange(ctx)
		next, xerr := s.Exchange(xctx, rec, r.req.Scopes)
		cancel()
		if next == nil {
			if !refusedAsSpent(xerr) {
				return nil, xerr
			}
			newer, err := s.awaitNewer(ctx, r, rec)
			if err != nil {
				return nil, err
			}
			if newer == nil {
				return nil, &ChainSpentError{Err: xerr, OtherRunnerSeen: len(r.seen) > 1, Waited: s.waitFor(),
					LastRotation: rec.RotatedAt, Generation: rec.Generation}
			}
			rec = newer
			continue
		}
		s.recordAsk(next, r.req.Scopes)
		// The exchange revoked the token every other lease was about: they are broken (and named above) and gone.
		next.Leases = []tokenstore.Lease{s.lease(r.req.MinValidity)}
		replaced, serr := s.saveExchanged(ctx, r, rec, next)
		if errors.Is(serr, errMovedOn) {
			// Another runner saved first; this exchange forked the chain, and its head is abandoned (it stays valid
			// at Bipsync until it expires, and nothing will use it). The winner's record is the chain.
			if rec, serr = s.adopt(ctx, r, rec); serr != nil {
				return nil, serr
			}
			continue
		}
		if serr != nil {
			return nil, serr
		}
		if replaced != nil && len(warnings) == 0 {
			// The record replaced carried promises that the one this exchange started from did not.
			if w, ok := s.promiseBroken(r, replaced); ok {
				warnings = append(warnings, w)
			}
		}
		if xerr != nil {
			// Rotated, but no usable access token came with the new head: the head is kept, nothing is handed out.
			return nil, &IncompleteAnswerError{Kept: s.store.Describe(), Err: xerr}
		}
		s.rememberScopes(r.key, r.req.Scopes)
		if narrowed(rec.Scopes, r.req.Scopes) {
			warnings = append(warnings, Warning{Kind: WarnNarrowed, Scopes: rec.Scopes, Requested: normalizeScopes(r.req.Scopes)})
		}
		if w, ok := s.shortLifetimeWarning(next, r.req.MinValidity); ok {
			warnings = append(warnings, w)
		}
		return s.handedOut(r, next, true, warnings), nil
	}
}

// ErrChainExists is returned by Start when the store already holds a record for the seed.
var ErrChainExists = errors.New("the token store already holds a chain for this refresh token")

// Start saves a new chain whose head is seed, a refresh token an authorization (the device or the authorization code
// grant) has just issued, together with the access token issued with it (tok), so that the chain's first use needs
// no exchange. It is the chain's generation 0, as the record a first use saves before exchanging, with the access
// token added. scopes are the scopes the authorization asked for. Start takes the chain's locks as Token does and
// refuses with ErrChainExists when the store holds a record for seed already: one seed starts one chain, once.
func (s *Source) Start(ctx context.Context, seed string, tok *bipsync.Token, scopes []string) (*Result, error) {
	switch {
	case seed == "":
		return nil, errors.New("no refresh token given")
	case tok == nil || tok.AccessToken == "":
		return nil, errors.New("no access token given")
	case !s.store.Traits().Persistent:
		return nil, ErrStoreRequired
	}
	key := s.Key(seed)
	c := s.reg.chain(key)
	unlock, err := s.lockChain(ctx, c, key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	prev, err := s.load(ctx, key, seed)
	if err != nil {
		return nil, err
	}
	if prev != nil || c.pending != nil {
		return nil, ErrChainExists
	}
	known := normalizeScopes(scopes)
	if known == nil {
		known = []string{} // the authorization asked for no scope: the consent is known to be empty
	}
	rec := &tokenstore.Record{
		RefreshToken:         seed,
		RefreshTokenIssuedAt: tok.ReceivedAt,
		AccessToken:          tok.AccessToken,
		TokenType:            tok.TokenType,
		AccessTokenExpiresAt: tok.Expiry,
		Scopes:               known,
		ID:                   tokenstore.NewRecordID(),
	}
	err = s.saveRecord(ctx, key, seed, rec, nil)
	switch {
	case errors.Is(err, tokenstore.ErrConflict):
		return nil, ErrChainExists
	case err != nil:
		return nil, &StoreError{Store: s.store.Describe(), Op: "write a new chain into", Err: err, BeforeFirstExchange: true}
	}
	return s.result(rec, false, false, nil), nil
}

// errMovedOn says that the store holds another record than the one a request was working from.
var errMovedOn = errors.New("the token store moved on")

// adopt reloads the record another runner saved in place of prev and makes it the request's record.
func (s *Source) adopt(ctx context.Context, r *run, prev *tokenstore.Record) (*tokenstore.Record, error) {
	rec, err := s.load(ctx, r.key, r.seed)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, &StoreError{Store: s.store.Describe(), Op: "load", Err: errors.New("the chain's record disappeared from the store")}
	}
	if err := s.moved(r, prev, rec); err != nil {
		return nil, err
	}
	r.observe(rec)
	return rec, nil
}

// moved counts a move from prev to rec, another runner's record, against its bound: a rotation (another head) against
// maxAdoptions, another change of the record (a lease recorded or released) against maxChurn.
func (s *Source) moved(r *run, prev, rec *tokenstore.Record) error {
	if rec.RefreshToken == prev.RefreshToken {
		if r.churn++; r.churn > maxChurn {
			return &StoreError{Store: s.store.Describe(), Op: "keep up with", Err: fmt.Errorf(
				"other runners changed this chain's record %d times while this request waited; nothing was exchanged: run again", maxChurn)}
		}
		return nil
	}
	if r.adoptions++; r.adoptions > maxAdoptions {
		return &StoreError{Store: s.store.Describe(), Op: "keep up with", Err: fmt.Errorf(
			"other runners rotated this chain %d times while this request waited; nothing more was exchanged: run again", maxAdoptions)}
	}
	return nil
}

// refusedAsSpent tells whether Bipsync refused the head as revoked or expired. A refused exchange consumed nothing; if
// another runner rotated the chain meanwhile, the head this request read is spent and the store may hold the newer
// one. An expired answer counts too: Bipsync checks expiry before revocation, so a head that another runner rotated
// and that has since passed its month is reported as expired.
func refusedAsSpent(err error) bool {
	switch bipsync.ReauthorizationCause(err) {
	case bipsync.CauseRevoked, bipsync.CauseExpired:
		return true
	}
	return false
}

// waitFor is how long a refused request waits for another runner's record: only stores whose lock does not reach
// every runner can have a winner that is still between its exchange and its save.
func (s *Source) waitFor() time.Duration {
	if s.store.Traits().SharedLock {
		return 0
	}
	return s.adoptWait
}

// awaitNewer re-reads the store until it holds a record with another head than rec's, which Bipsync refused as spent,
// or the wait is over (nil, nil). A record of the same head (another runner's lease on it) holds nothing to adopt: its
// access token was revoked with the head.
func (s *Source) awaitNewer(ctx context.Context, r *run, rec *tokenstore.Record) (*tokenstore.Record, error) {
	deadline := s.now().Add(s.waitFor())
	delay := adoptPollFirst
	for {
		cur, err := s.load(ctx, r.key, r.seed)
		if err != nil {
			return nil, err
		}
		if cur != nil {
			r.observe(cur)
		}
		if cur != nil && cur.RefreshToken != rec.RefreshToken {
			if err := s.moved(r, rec, cur); err != nil {
				return nil, err
			}
			return cur, nil
		}
		if !s.now().Before(deadline) {
			return nil, nil
		}
		if err := s.sleep(ctx, min(delay, deadline.Sub(s.now()))); err != nil {
			return nil, &StoreError{Store: s.store.Describe(), Op: "wait for another runner's record in", Err: err}
		}
		delay = min(2*delay, adoptPollMax)
	}
}

// saveExchanged saves next, the record of prev's exchange, with the save's own budget. It returns errMovedOn when the
// store holds another exchange's result (another runner rotated prev's head, or a later one, and saved first).
//
// A store that holds a record of the head this exchange consumed, written by another runner meanwhile (a lease of a
// hand-out, a first record of the chain that raced this one's), or an older record (a get/put helper elsewhere put a
// stale one), holds a spent head: next is the chain's only live head, and replaces that record. It returns the record
// replaced so, if any, for the promises it carried.
//
// A failure keeps the record in memory and in a rescue file, to be saved before the next use.
func (s *Source) saveExchanged(ctx context.Context, r *run, prev, next *tokenstore.Record) (*tokenstore.Record, error) {
	replaces := prev.Revision().Ptr()
	var replaced *tokenstore.Record
	for attempt := 1; ; attempt++ {
		err := s.saveRecord(ctx, r.key, r.seed, next, replaces)
		if err == nil {
			return replaced, nil
		}
		if errors.Is(err, tokenstore.ErrConflict) {
			cur, lerr := s.load(ctx, r.key, r.seed)
			switch {
			case lerr != nil:
				err = fmt.Errorf("%w; reading the record it holds failed too: %w", err, lerr)
			case cur != nil && replaces != nil && cur.Revision().Matches(*replaces):
				// A helper that reports a conflict wrongly must not make this process drop the only live head.
				err = fmt.Errorf("%w, but it still holds the record this save replaces: the store reports conflicts wrongly", err)
			case cur != nil && cur.Generation > prev.Generation:
				r.observe(cur)
				return nil, errMovedOn
			case attempt < maxHeadSaves:
				if cur != nil {
					r.observe(cur)
					replaced, replaces = cur, cur.Revision().Ptr()
				} else {
					replaced, replaces = nil, nil
				}
				continue
			default:
				err = fmt.Errorf("%w; other runners kept writing records of the head this exchange consumed", err)
			}
		}
		r.c.pending, r.c.pendingReplaces = next, replaces
		path, rerr := s.writeRescue(r.key, r.seed, next, replaces)
		r.c.rescued = path
		return nil, &SaveError{Store: s.store.Describe(), Err: err, Rescue: path, RescueErr: rerr}
	}
}

func (s *Source) writeRescue(key tokenstore.Key, seed string, rec *tokenstore.Record, replaces *tokenstore.Revision) (string, error) {
	dir := s.rescueDir
	if dir == "" {
		d, err := tokenstore.DefaultRescueDir()
		if err != nil {
			return "", err
		}
		dir = d
	}
	return tokenstore.WriteRescue(dir, s.store, key, seed, rec, replaces)
}

// saveRecord saves with the save's own budget, detached from the caller, retrying what may pass (a busy disk, a secret
// manager's hiccup) with backoff. A conflict or an unreadable record is final. The saves are conditional, so a retry
// after a save that landed succeeds and one after another writer fails: retrying is always safe.
func (s *Source) saveRecord(ctx context.Context, key tokenstore.Key, seed string, rec *tokenstore.Record, replaces *tokenstore.Revision) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.saveBudget)
	defer cancel()
	delay := saveRetryFirst
	for attempt := 1; ; attempt++ {
		err := s.store.Save(sctx, key, seed, rec, replaces)
		if err == nil || errors.Is(err, tokenstore.ErrConflict) || errors.Is(err, tokenstore.ErrCorrupt) || errors.Is(err, tokenstore.ErrNoStore) {
			return err
		}
		if sctx.Err() != nil || attempt == saveAttempts {
			return err
		}
		if serr := s.sleep(sctx, delay); serr != nil {
			return err
		}
		delay *= 2
	}
}

// handOut hands out rec's token and records this Source's lease (and this request's scopes) in the store when they
// grow. It returns errMovedOn when the store moved on meanwhile: the token may be revoked already.
func (s *Source) handOut(ctx context.Context, r *run, rec *tokenstore.Record) (*tokenstore.Record, error) {
	s.rememberScopes(r.key, r.req.Scopes)
	until := s.now().Add(r.req.MinValidity)
	own := findLease(rec.Leases, s.leaseID)
	needLease := own == nil || until.After(own.Until.Add(leaseGranularity))
	needAsk := s.askStale(rec, r.req.Scopes)
	if (!needLease && !needAsk) || !s.store.Traits().AtomicSave {
		// A store whose save is a read then a write must not be written on a mere hand-out: a runner elsewhere that
		// rotated between the two would see its head replaced by this older one. The promise stays in this process.
		return rec, nil
	}
	next := rec.Clone()
	next.ID = tokenstore.NewRecordID()
	next.Leases = s.otherLeases(rec.Leases)
	lease := s.lease(r.req.MinValidity)
	if own != nil && own.Until.After(lease.Until) {
		lease = *own
	}
	next.Leases = append(next.Leases, lease)
	s.recordAsk(next, r.req.Scopes)
	err := s.saveRecord(ctx, r.key, r.seed, next, rec.Revision().Ptr())
	switch {
	case err == nil:
		return next, nil
	case errors.Is(err, tokenstore.ErrConflict):
		return nil, errMovedOn
	default:
		// The token is still good; only the promise is not recorded for other processes. Not worth failing a run.
		return rec, nil
	}
}

// lease is this Source's promise for a hand-out now with minValidity.
func (s *Source) lease(minValidity time.Duration) tokenstore.Lease {
	now := s.now()
	return tokenstore.Lease{ID: s.leaseID, Until: now.Add(minValidity), MinValidity: minValidity, At: now}
}

// otherLeases returns the leases of other processes that still run.
func (s *Source) otherLeases(leases []tokenstore.Lease) []tokenstore.Lease {
	var out []tokenstore.Lease
	for _, l := range leases {
		if l.ID != s.leaseID && s.now().Before(l.Until) {
			out = append(out, l)
		}
	}
	return out
}

func findLease(leases []tokenstore.Lease, id string) *tokenstore.Lease {
	for i := range leases {
		if leases[i].ID == id {
			return &leases[i]
		}
	}
	return nil
}

// handedOut counts the consumer as open and returns its result.
func (s *Source) handedOut(r *run, rec *tokenstore.Record, exchanged bool, warnings []Warning) *Result {
	now := s.now()
	until := now.Add(r.req.MinValidity)
	s.mu.Lock()
	oc := s.open[r.key]
	if oc == nil || oc.token != rec.AccessToken {
		oc = &openChain{seed: r.seed, n: oc.count(), token: rec.AccessToken, at: now}
		s.open[r.key] = oc
	}
	oc.n++
	if until.After(oc.until) {
		oc.until, oc.minValidity, oc.at = until, r.req.MinValidity, now
	}
	s.mu.Unlock()
	res := s.result(rec, exchanged, r.adoptions > 0, warnings)
	res.Key = r.key
	return res
}

func (oc *openChain) count() int {
	if oc == nil {
		return 0
	}
	return oc.n
}

// Release tells the source that a consumer it handed a token of the chain key to is done with it (an ephemeral
// resource's Close). When the last one is done, the Source's lease is removed from the record, so that a later exchange
// breaks no promise. A lease that cannot be removed expires by itself; the error says why, for a log.
func (s *Source) Release(ctx context.Context, key tokenstore.Key) error {
	s.mu.Lock()
	oc := s.open[key]
	if oc == nil {
		s.mu.Unlock()
		return nil
	}
	oc.n--
	if oc.n > 0 {
		s.mu.Unlock()
		return nil
	}
	delete(s.open, key)
	s.mu.Unlock()
	if !s.store.Traits().AtomicSave {
		return nil
	}
	unlock, err := s.lockChain(ctx, s.reg.chain(key), key)
	if err != nil {
		return err
	}
	defer unlock()
	for range releaseAttempts {
		rec, err := s.store.Load(ctx, key, oc.seed)
		if err != nil || rec == nil || findLease(rec.Leases, s.leaseID) == nil {
			return err
		}
		next := rec.Clone()
		next.ID = tokenstore.NewRecordID()
		next.Leases = s.otherLeases(rec.Leases)
		err = s.saveRecord(ctx, key, oc.seed, next, rec.Revision().Ptr())
		if !errors.Is(err, tokenstore.ErrConflict) {
			return err
		}
	}
	return errors.New("the record kept changing; the lease expires by itself")
}

// recordAsk notes in rec that this request's scope set was asked now, and forgets asks older than the conflict window.
func (s *Source) recordAsk(rec *tokenstore.Record, scopes []string) {
	now := s.now()
	want := normalizeScopes(scopes)
	kept := rec.Asks[:0:0]
	for _, a := range rec.Asks {
		if now.Sub(a.At) < ScopeConflictWindow && !slices.Equal(a.Scopes, want) {
			kept = append(kept, a)
		}
	}
	rec.Asks = append(kept, tokenstore.ScopeAsk{Scopes: want, At: now})
}

func (s *Source) askStale(rec *tokenstore.Record, scopes []string) bool {
	want := normalizeScopes(scopes)
	for _, a := range rec.Asks {
		if slices.Equal(a.Scopes, want) {
			return s.now().Sub(a.At) >= askRefresh
		}
	}
	return true
}

// crossProcessScopeConflict refuses an exchange that would narrow the chain below a scope set another process asked of
// it within ScopeConflictWindow: the chain keeps the narrower scopes for good, and the other consumer would need a
// new authorization. (Within this process the stricter checkScopes applies.)
func (s *Source) crossProcessScopeConflict(rec *tokenstore.Record, scopes []string) error {
	want := normalizeScopes(scopes)
	if want == nil {
		return nil // the chain's current scopes: narrows nothing
	}
	now := s.now()
	for _, a := range rec.Asks {
		if now.Sub(a.At) >= ScopeConflictWindow || slices.Equal(a.Scopes, want) {
			continue
		}
		other := a.Scopes
		if other == nil {
			other = rec.Scopes // the chain's current scopes when that ask was made, as far as the provider knows
		}
		if other == nil || !isSubset(other, want) {
			return &ScopeConflictError{First: a.Scopes, Second: want, FirstAt: a.At, CrossProcess: true,
				Clears: a.At.Add(ScopeConflictWindow)}
		}
	}
	return nil
}

func isSubset(sub, set []string) bool {
	for _, x := range sub {
		if !slices.Contains(set, x) {
			return false
		}
	}
	return true
}

// promiseBroken tells whether exchanging rec now revokes an access token that a consumer still open was promised
// for longer, and describes the promise that runs longest: a lease of another process in the record, or a consumer of
// this Source's own.
func (s *Source) promiseBroken(r *run, rec *tokenstore.Record) (Warning, bool) {
	now := s.now()
	if rec.AccessToken == "" || !now.Before(rec.AccessTokenExpiresAt) {
		return Warning{}, false // nothing valid to revoke
	}
	var broken *tokenstore.Lease
	for i, l := range rec.Leases {
		if l.ID != s.leaseID && now.Before(l.Until) && (broken == nil || l.Until.After(broken.Until)) {
			broken = &rec.Leases[i]
		}
	}
	s.mu.Lock()
	if oc := s.open[r.key]; oc != nil && oc.n > 0 && oc.token == rec.AccessToken && now.Before(oc.until) &&
		(broken == nil || oc.until.After(broken.Until)) {
		broken = &tokenstore.Lease{Until: oc.until, MinValidity: oc.minValidity, At: oc.at}
	}
	s.mu.Unlock()
	if broken == nil {
		return Warning{}, false
	}
	return Warning{Kind: WarnPromiseBroken, PromisedAt: broken.At, PromisedUntil: broken.Until, PromisedMinValidity: broken.MinValidity,
		MinValidity: r.req.MinValidity, Forced: r.req.Force && !rec.RotatedAt.After(r.started)}, true
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

// DetachExchange returns a context for an exchange that outlives the caller's cancellation, bounded by the exchange
// budget. Once Bipsync has answered an exchange, the old pair is revoked and the answer is the chain: the exchange
// must run to its answer even when Terraform cancels the request.
func (s *Source) DetachExchange(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.exchangeBudget)
}

// Exchange runs one refresh exchange of prev's head and returns the chain's next record. It is the one exchange path
// of the provider: the token store's chains and bipsync_refresh_grant's chain (kept in state) both use it. Callers
// run it under DetachExchange and save the result before anything uses it.
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
		Asks:       prev.Clone().Asks,
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
	c := s.reg.chain(key)
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
	if rec != nil && !req.Force && s.reusable(rec, req) {
		return s.result(rec, false, false, nil), nil
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
		// A client-credentials token revokes nothing, so a failed save loses nothing: say so and hand it out. A
		// conflict means another process saved its own token, which is as good.
		if err := s.saveRecord(ctx, key, seed, next, replaces); err != nil && !errors.Is(err, tokenstore.ErrConflict) {
			warnings = append(warnings, Warning{Kind: WarnNotCached, Store: s.store.Describe(), Err: err})
		}
	}
	if w, ok := s.shortLifetimeWarning(next, req.MinValidity); ok {
		warnings = append(warnings, w)
	}
	return s.result(next, true, false, warnings), nil
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

func normalizeScopes(scopes []string) []string {
	if len(scopes) == 0 {
		return nil
	}
	out := slices.Clone(scopes)
	slices.Sort(out)
	return slices.Compact(out)
}

// DescribeScopes writes a scope set for people: "[a b]", or "(the original consent)" for none.
func DescribeScopes(scopes []string) string {
	if len(scopes) == 0 {
		return "(the original consent)"
	}
	return "[" + strings.Join(scopes, " ") + "]"
}
