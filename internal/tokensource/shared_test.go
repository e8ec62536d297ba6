package tokensource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// raceServer is a token endpoint for races between runners: it keeps the set of live refresh tokens, and in fork
// mode lets a head be exchanged twice (league checks, then revokes, without a lock: two simultaneous exchanges of one
// head may both succeed). hold, when set, keeps each successful exchange from answering until the test releases it.
type raceServer struct {
	mu        sync.Mutex
	url       string
	now       func() time.Time
	live      map[string]int // refresh token → exchanges it still allows
	fork      bool
	n         int
	exchanges atomic.Int64
	refused   atomic.Int64
	hold      chan struct{}
	arrived   chan string
}

func newRaceServer(now func() time.Time) *raceServer {
	return &raceServer{url: "https://acme-api.bipsync.com/v1/oauth/token", now: now, live: map[string]int{"seed": 1}}
}

func (s *raceServer) TokenURL() string { return s.url }
func (s *raceServer) ClientID() string { return "cli" }

func (s *raceServer) Refresh(_ context.Context, rt string, _ []string) (*bipsync.Token, error) {
	s.mu.Lock()
	if s.live[rt] == 0 {
		s.mu.Unlock()
		s.refused.Add(1)
		return nil, &bipsync.Error{Op: "refresh", StatusCode: 400, Code: "invalid_grant",
			Description: "The refresh token is invalid.", Hint: "Token has been revoked", Sent: true}
	}
	s.live[rt]--
	s.n++
	head := fmt.Sprintf("rt-%d", s.n)
	s.live[head] = 1
	if s.fork {
		s.live[head] = 2
	}
	tok := &bipsync.Token{AccessToken: fmt.Sprintf("at-%d", s.n), TokenType: "Bearer", RefreshToken: head,
		ExpiresIn: 3600, ReceivedAt: s.now(), Expiry: s.now().Add(time.Hour)}
	hold, arrived := s.hold, s.arrived
	s.mu.Unlock()
	s.exchanges.Add(1)
	if arrived != nil {
		arrived <- head
	}
	if hold != nil {
		<-hold
	}
	return tok, nil
}

func (s *raceServer) ClientCredentials(context.Context, []string) (*bipsync.Token, error) {
	return nil, errors.New("not used")
}

func (s *raceServer) isLive(rt string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live[rt] > 0
}

// machine is a Source as one runner on its own machine has it: its own process registry, the shared store and server.
func machine(t *testing.T, srv Exchanger, st tokenstore.Store, now func() time.Time, adoptWait time.Duration) *Source {
	t.Helper()
	src, err := New(Options{Client: srv, Store: st, Now: now, Registry: NewRegistry(), AdoptWait: adoptWait,
		RescueDir: t.TempDir(), Sleep: func(ctx context.Context, d time.Duration) error {
			select {
			case <-time.After(d):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// seedChain saves generation 0 of the chain, as a first run would, so that runners start from a known record.
func seedChain(t *testing.T, st *memStore, src *Source) {
	t.Helper()
	rec := &tokenstore.Record{RefreshToken: "seed", ID: tokenstore.NewRecordID()}
	if err := st.Save(context.Background(), src.Key("seed"), "seed", rec, nil); err != nil {
		t.Fatal(err)
	}
}

// A runner whose exchange is refused because another runner (on another machine, sharing only the store) rotated the
// chain first waits for the winner's record and adopts it instead of reporting a dead chain.
func TestSource_Token_loserAdoptsWinnersRecord(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := newRaceServer(clk.Now)
	st := newMemStore()
	st.localLock = true
	a, b := machine(t, srv, st, clk.Now, 10*time.Second), machine(t, srv, st, clk.Now, 10*time.Second)
	seedChain(t, st, a)

	// A exchanges the seed and is held before it can save; B then finds the seed spent.
	hold := make(chan struct{})
	srv.hold, srv.arrived = hold, make(chan string, 1)
	resA := make(chan error, 1)
	var gotA *Result
	go func() {
		var err error
		gotA, err = a.Token(context.Background(), refreshReq(15*time.Minute))
		resA <- err
	}()
	<-srv.arrived
	srv.mu.Lock()
	srv.hold, srv.arrived = nil, nil // B's own exchanges are not held
	srv.mu.Unlock()
	resB := make(chan error, 1)
	var gotB *Result
	go func() {
		var err error
		gotB, err = b.Token(context.Background(), refreshReq(15*time.Minute))
		resB <- err
	}()
	// B's exchange of the seed is refused; B waits for a newer record. Let A save now.
	for srv.refused.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond) // B is polling the store
	close(hold)
	if err := <-resA; err != nil {
		t.Fatalf("winner: %v", err)
	}
	if err := <-resB; err != nil {
		t.Fatalf("loser: got %v; want it to adopt the winner's record", err)
	}
	if gotB.AccessToken != gotA.AccessToken || !gotB.Adopted || gotB.Exchanged {
		t.Fatalf("loser: got %v; want the winner's token %s, adopted, no exchange of its own", gotB, gotA.AccessToken)
	}
	if got := srv.exchanges.Load(); got != 1 {
		t.Fatalf("successful exchanges: got %d; want 1", got)
	}
	rec := st.recs[a.Key("seed")]
	if rec.RefreshToken != "rt-1" || !srv.isLive(rec.RefreshToken) {
		t.Fatalf("stored head: got %q; want the live rt-1", rec.RefreshToken)
	}
}

// When the server let both exchanges of one head succeed (a fork), the second save is refused, the second runner
// adopts the first one's record, and exactly one head ends in the store.
func TestSource_Token_forkEndsWithOneHead(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := newRaceServer(clk.Now)
	srv.fork = true
	srv.live["seed"] = 2
	st := newMemStore()
	st.localLock = true
	a, b := machine(t, srv, st, clk.Now, 10*time.Second), machine(t, srv, st, clk.Now, 10*time.Second)
	seedChain(t, st, a)

	// Both exchange the seed before either saves.
	srv.hold, srv.arrived = make(chan struct{}), make(chan string, 2)
	type out struct {
		r   *Result
		err error
	}
	results := make(chan out, 2)
	for _, src := range []*Source{a, b} {
		go func() {
			r, err := src.Token(context.Background(), refreshReq(15*time.Minute))
			results <- out{r, err}
		}()
	}
	<-srv.arrived
	<-srv.arrived
	close(srv.hold)
	r1, r2 := <-results, <-results
	if r1.err != nil || r2.err != nil {
		t.Fatalf("got errors %v and %v; want both runners served", r1.err, r2.err)
	}
	if r1.r.AccessToken != r2.r.AccessToken {
		t.Fatalf("got tokens %s and %s; want both runners on the one head the store kept", r1.r.AccessToken, r2.r.AccessToken)
	}
	if r1.r.Adopted == r2.r.Adopted {
		t.Fatalf("adopted: got %t and %t; want exactly one runner to adopt the other's record", r1.r.Adopted, r2.r.Adopted)
	}
	if st.conflicts == 0 {
		t.Fatal("conflicts: got none; want the second save refused")
	}
	rec := st.recs[a.Key("seed")]
	if rec.Generation != 1 || !srv.isLive(rec.RefreshToken) {
		t.Fatalf("stored record: got generation %d head %s (live %t); want generation 1 with a live head", rec.Generation, rec.RefreshToken, srv.isLive(rec.RefreshToken))
	}
}

// A store that reports a conflict while it still holds the record the save replaces (a helper that says "newer"
// wrongly) must not make the provider drop the live head: the failure is reported, the record kept in a rescue file.
func TestSource_Token_storeThatReportsConflictsWrongly(t *testing.T) {
	t.Parallel()
	src, srv, st, _ := fixture(t)
	seedChain(t, st, src)
	st.lie = true
	_, err := src.Token(context.Background(), refreshReq(time.Minute))
	var se *SaveError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "reports conflicts wrongly") {
		t.Fatalf("got %v; want a SaveError saying the store reports conflicts wrongly", err)
	}
	if se.Rescue == "" {
		t.Fatalf("got no rescue file (%v); want one", se.RescueErr)
	}
	r, err := tokenstore.ReadRescue(se.Rescue)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := tokenstore.Open(r.Key, "seed", []byte(r.Envelope))
	if err != nil || rec.RefreshToken != "rt-1" {
		t.Fatalf("rescue file: got (%v, %v); want the live head rt-1", rec, err)
	}
	if srv.exchanges.Load() != 1 {
		t.Fatalf("exchanges: got %d; want 1", srv.exchanges.Load())
	}
}

// A store that cannot take the chain's first record fails the request before anything is exchanged.
func TestSource_Token_storeThatCannotBeWrittenBurnsNothing(t *testing.T) {
	t.Parallel()
	src, srv, st, _ := fixture(t)
	st.saveErr = errors.New("AccessDeniedException: not authorized to perform secretsmanager:PutSecretValue")
	_, err := src.Token(context.Background(), refreshReq(time.Minute))
	var se *StoreError
	if !errors.As(err, &se) || !se.BeforeFirstExchange {
		t.Fatalf("got %v; want a StoreError before the first exchange", err)
	}
	if srv.exchanges.Load() != 0 {
		t.Fatalf("exchanges: got %d; want 0, the seed unspent", srv.exchanges.Load())
	}
}

// A save that reported a failure although it landed is repeated before the next use; when another runner rotated
// the landed record meanwhile, the repeat is refused and the newer head stays.
func TestSource_Token_failedSaveThatLandedNeverOverwritesNewer(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := newRaceServer(clk.Now)
	st := newMemStore()
	a, b := machine(t, srv, st, clk.Now, time.Second), machine(t, srv, st, clk.Now, time.Second)
	seedChain(t, st, a)
	st.saveErr, st.landThenFail, st.failAfter = errors.New("connection reset after the write"), true, 1
	if _, err := a.Token(context.Background(), refreshReq(15*time.Minute)); err == nil {
		t.Fatal("got no error; want the save failure reported")
	}
	st.mu.Lock()
	st.saveErr = nil
	st.mu.Unlock()
	// B loads the landed generation 1 and rotates it (a forced rotation) to generation 2.
	if _, err := b.Token(context.Background(), Request{RefreshToken: "seed", MinValidity: 15 * time.Minute, Force: true}); err != nil {
		t.Fatal(err)
	}
	// A's next use saves its pending generation 1 first: refused, and A serves generation 2.
	r, err := a.Token(context.Background(), refreshReq(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	rec := st.recs[a.Key("seed")]
	if rec.Generation != 2 || rec.RefreshToken != "rt-2" || r.AccessToken != "at-2" {
		t.Fatalf("got stored generation %d head %s, handed out %s; want generation 2, rt-2, at-2", rec.Generation, rec.RefreshToken, r.AccessToken)
	}
}

// A save fails twice and then works: the retries keep the chain without any human step.
func TestSource_Token_saveIsRetried(t *testing.T) {
	t.Parallel()
	src, _, st, _ := fixture(t)
	seedChain(t, st, src)
	flaky := &flakyStore{memStore: st, failures: 2}
	src.store = flaky
	if _, err := src.Token(context.Background(), refreshReq(time.Minute)); err != nil {
		t.Fatalf("got %v; want the save retried until it works", err)
	}
	if flaky.calls != 3 {
		t.Fatalf("save attempts: got %d; want 3", flaky.calls)
	}
}

type flakyStore struct {
	*memStore
	failures, calls int
}

func (f *flakyStore) Save(ctx context.Context, key tokenstore.Key, seed string, rec *tokenstore.Record, replaces *tokenstore.Revision) error {
	f.calls++
	if f.calls <= f.failures {
		return errors.New("ThrottlingException: rate exceeded")
	}
	return f.memStore.Save(ctx, key, seed, rec, replaces)
}

// The exchange and the save have budgets of their own: a slow exchange leaves the save all of its time.
func TestSource_Token_exchangeAndSaveHaveTheirOwnBudgets(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := newRaceServer(clk.Now)
	slow := &slowExchanger{raceServer: srv, delay: 250 * time.Millisecond}
	st := newMemStore()
	slowSave := &slowStore{memStore: st, delay: 250 * time.Millisecond}
	src, err := New(Options{Client: slow, Store: slowSave, Now: clk.Now, Registry: NewRegistry(),
		ExchangeBudget: 400 * time.Millisecond, SaveBudget: 400 * time.Millisecond, RescueDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	// Together they take 500 ms (plus generation 0's save), more than either budget: each fits its own.
	if _, err := src.Token(context.Background(), refreshReq(time.Minute)); err != nil {
		t.Fatalf("got %v; want the exchange and the save each within its own budget", err)
	}
}

type slowExchanger struct {
	*raceServer
	delay time.Duration
}

func (s *slowExchanger) Refresh(ctx context.Context, rt string, scopes []string) (*bipsync.Token, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.raceServer.Refresh(ctx, rt, scopes)
}

type slowStore struct {
	*memStore
	delay time.Duration
}

func (s *slowStore) Save(ctx context.Context, key tokenstore.Key, seed string, rec *tokenstore.Record, replaces *tokenstore.Revision) error {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.memStore.Save(ctx, key, seed, rec, replaces)
}

// A consumer that asks for a longer min_validity than the current token has left revokes the token another consumer
// was handed with a promise still running: that is never silent when the promise is known, as the lease the
// exchanging process recorded with its exchange. Once consumers are done (released), an exchange breaks nothing and
// says nothing.
func TestSource_Token_brokenPromiseIsNamed(t *testing.T) {
	t.Parallel()
	src, _, st, clk := fixture(t)
	first, err := src.Token(context.Background(), refreshReq(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	rec := st.recs[src.Key("seed")]
	if len(rec.Leases) != 1 || !rec.Leases[0].Until.Equal(clk.Now().Add(30*time.Minute)) {
		t.Fatalf("recorded leases: got %+v; want the exchanger's, until %s", rec.Leases, clk.Now().Add(30*time.Minute))
	}
	clk.Advance(20 * time.Minute) // 40 minutes left
	// Another process (a provider instance with another min_validity) needs 50 minutes.
	other, _ := New(Options{Client: src.client, Store: st, Now: clk.Now, Registry: NewRegistry(), RescueDir: t.TempDir()})
	long, err := other.Token(context.Background(), refreshReq(50*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !long.Exchanged || len(long.Warnings) != 1 || long.Warnings[0].Kind != WarnPromiseBroken {
		t.Fatalf("got %v warnings %+v; want an exchange with the broken promise named", long, long.Warnings)
	}
	w := long.Warnings[0]
	if !w.PromisedUntil.Equal(clk.Now().Add(10*time.Minute)) || w.PromisedMinValidity != 30*time.Minute || w.MinValidity != 50*time.Minute {
		t.Fatalf("got %+v; want the promise until +10m with min_validity 30m, and this request's 50m", w)
	}
	// The first consumer is done; so is the long one.
	if err := src.Release(context.Background(), first.Key); err != nil {
		t.Fatal(err)
	}
	if err := other.Release(context.Background(), long.Key); err != nil {
		t.Fatal(err)
	}
	if leases := st.recs[src.Key("seed")].Leases; len(leases) != 0 {
		t.Fatalf("leases after every consumer is done: got %+v; want none", leases)
	}
	clk.Advance(20 * time.Minute) // 40 minutes left: the 50-minute consumer needs an exchange
	again, err := other.Token(context.Background(), refreshReq(50*time.Minute))
	if err != nil || !again.Exchanged || len(again.Warnings) != 0 {
		t.Fatalf("got (%v, %v) warnings %+v; want a quiet exchange: the consumer before is done", again, err, again.Warnings)
	}
	// Within one provider instance, a consumer still open counts too.
	clk.Advance(20 * time.Minute)
	still, err := other.Token(context.Background(), refreshReq(50*time.Minute))
	if err != nil || !still.Exchanged || len(still.Warnings) != 1 || still.Warnings[0].Kind != WarnPromiseBroken {
		t.Fatalf("got (%v, %v) warnings %+v; want the open consumer's promise named", still, err, still.Warnings)
	}
}

// A min_validity the chain's tokens cannot meet warns on the exchange that shows it, and fails before exchanging
// after that: each exchange would revoke the token handed out by the one before.
func TestSource_Token_minValidityAtOrAboveLifetime(t *testing.T) {
	t.Parallel()
	src, srv, _, _ := fixture(t)
	r, err := src.Token(context.Background(), refreshReq(90*time.Minute))
	if err != nil || len(r.Warnings) != 1 || r.Warnings[0].Kind != WarnShortLifetime {
		t.Fatalf("first: got (%v, %v); want the token with the short-lifetime warning", r, err)
	}
	_, err = src.Token(context.Background(), refreshReq(90*time.Minute))
	var mv *MinValidityError
	if !errors.As(err, &mv) || mv.Lifetime != time.Hour {
		t.Fatalf("second: got %v; want MinValidityError naming the 1h lifetime", err)
	}
	if srv.exchanges.Load() != 1 {
		t.Fatalf("exchanges: got %d; want 1", srv.exchanges.Load())
	}
}

// Two provider aliases run as two processes. Neither may narrow a chain whose scopes are known without asking for it,
// however recently or long ago the other asked: the rule is the chain's scopes, not who asked when.
func TestSource_Token_narrowingAcrossProcessesNeedsOptIn(t *testing.T) {
	t.Parallel()
	src, srv, st, clk := fixture(t)
	if _, err := src.Token(context.Background(), refreshReq(time.Minute, "read", "write")); err != nil {
		t.Fatal(err)
	}
	alias, _ := New(Options{Client: srv, Store: st, Now: clk.Now, Registry: NewRegistry(), RescueDir: t.TempDir()})
	_, err := alias.Token(context.Background(), refreshReq(time.Minute, "read"))
	var ne *NarrowingError
	if !errors.As(err, &ne) {
		t.Fatalf("got %v; want a NarrowingError", err)
	}
	clk.Advance(24 * time.Hour) // long after: still refused
	if _, err = alias.Token(context.Background(), refreshReq(time.Minute, "read")); !errors.As(err, &ne) {
		t.Fatalf("a day later: got %v; want a NarrowingError", err)
	}
	if srv.exchanges.Load() != 1 {
		t.Fatalf("exchanges: got %d; want 1 (the narrowing alias exchanges nothing)", srv.exchanges.Load())
	}
	// Asking for the chain's current scopes (no scopes) narrows nothing.
	if _, err := alias.Token(context.Background(), refreshReq(time.Minute)); err != nil {
		t.Fatalf("no scopes: got %v; want the token", err)
	}
	// An old record may still carry asks written by an earlier version: they are ignored.
	rec := st.recs[src.Key("seed")]
	rec.Asks = []tokenstore.ScopeAsk{{Scopes: []string{"write"}, At: clk.Now()}}
	third, _ := New(Options{Client: srv, Store: st, Now: clk.Now, Registry: NewRegistry(), RescueDir: t.TempDir()})
	if _, err := third.Token(context.Background(), refreshReq(time.Minute, "read", "write")); err != nil {
		t.Fatalf("with old asks: got %v; want the token", err)
	}
}

// A chain saved under the key of an endpoint as it was spelt before endpoints were made canonical is found and moved
// to its canonical key, without an exchange.
func TestSource_Token_findsChainUnderLegacyKey(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := newRaceServer(clk.Now)
	srv.url = "https://ACME-api.bipsync.com:443/v1/oauth/token"
	st := newMemStore()
	src := machine(t, srv, st, clk.Now, time.Second)
	legacy, differs := tokenstore.LegacyKey(srv.url, "cli", "seed")
	if !differs {
		t.Fatal("LegacyKey: want a key other than the canonical one")
	}
	old := &tokenstore.Record{RefreshToken: "rt-9", AccessToken: "at-9", TokenType: "Bearer", ID: tokenstore.NewRecordID(),
		RefreshTokenIssuedAt: clk.Now(), AccessTokenExpiresAt: clk.Now().Add(time.Hour), RotatedAt: clk.Now(), Generation: 9}
	st.recs[legacy] = old
	r, err := src.Token(context.Background(), refreshReq(15*time.Minute))
	if err != nil || r.Exchanged || r.AccessToken != "at-9" {
		t.Fatalf("got (%v, %v); want the legacy record's token, no exchange", r, err)
	}
	if moved := st.recs[src.Key("seed")]; moved == nil || moved.RefreshToken != "rt-9" {
		t.Fatalf("canonical key: got %v; want the chain moved there", moved)
	}
}

// A forced rotation (the rotate command) that meets a chain another runner rotated while it was under way adopts that
// rotation and then makes an exchange of its own: the other runner's tokens existed before it was done.
func TestSource_Token_forcedRotationExchangesAfterAnotherRunnersExchange(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := newRaceServer(clk.Now)
	st := newMemStore()
	st.localLock = true
	a, b := machine(t, srv, st, clk.Now, 10*time.Second), machine(t, srv, st, clk.Now, 10*time.Second)
	if _, err := a.Token(context.Background(), refreshReq(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	// B's forced rotation starts, then A rotates (its own forced rotation) before B reads the store.
	hold := make(chan struct{})
	srv.mu.Lock()
	srv.hold, srv.arrived = hold, make(chan string, 1)
	srv.mu.Unlock()
	resA := make(chan error, 1)
	go func() {
		_, err := a.Token(context.Background(), Request{RefreshToken: "seed", MinValidity: 15 * time.Minute, Force: true})
		resA <- err
	}()
	<-srv.arrived
	srv.mu.Lock()
	srv.hold, srv.arrived = nil, nil
	srv.mu.Unlock()
	resB := make(chan *Result, 1)
	errB := make(chan error, 1)
	go func() {
		r, err := b.Token(context.Background(), Request{RefreshToken: "seed", MinValidity: 15 * time.Minute, Force: true})
		resB <- r
		errB <- err
	}()
	// B has started once its exchange of the head A is consuming is refused; A's answer comes a second later.
	for srv.refused.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	clk.Advance(time.Second)
	close(hold)
	if err := <-resA; err != nil {
		t.Fatal(err)
	}
	r, err := <-resB, <-errB
	if err != nil {
		t.Fatalf("second forced rotation: got %v; want it served", err)
	}
	if got := srv.exchanges.Load(); got != 3 {
		t.Fatalf("successful exchanges: got %d; want 3 (the first run, then each forced rotation's own)", got)
	}
	if !r.Exchanged || r.Generation != 3 {
		t.Fatalf("second forced rotation: got %v; want an exchange of its own after the other runner's (generation 3)", r)
	}
}
