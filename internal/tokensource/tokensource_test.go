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

// chainServer is a scripted token endpoint: it rotates one chain, revokes consumed refresh tokens and counts
// exchanges. Its tokens are plain counters so tests can tell generations apart.
type chainServer struct {
	mu        sync.Mutex
	url       string
	now       func() time.Time
	head      string
	scopes    []string
	exchanges atomic.Int64
	cc        atomic.Int64
	delay     chan struct{} // when set, Refresh waits for it after rotating (to test cancellation)
	fail      error
}

func (c *chainServer) TokenURL() string { return c.url }
func (c *chainServer) ClientID() string { return "cli" }

func (c *chainServer) Refresh(ctx context.Context, rt string, scopes []string) (*bipsync.Token, error) {
	c.mu.Lock()
	if c.fail != nil {
		defer c.mu.Unlock()
		return nil, c.fail
	}
	if rt != c.head {
		c.mu.Unlock()
		return nil, &bipsync.Error{Op: "refresh", StatusCode: 400, Code: "invalid_grant",
			Description: "The refresh token is invalid.", Hint: "Token has been revoked", Sent: true}
	}
	n := c.exchanges.Add(1)
	c.head = fmt.Sprintf("rt-%d", n)
	if len(scopes) > 0 {
		c.scopes = scopes
	}
	tok := &bipsync.Token{AccessToken: fmt.Sprintf("at-%d", n), TokenType: "Bearer", RefreshToken: c.head,
		ExpiresIn: 3600, ReceivedAt: c.now(), Expiry: c.now().Add(time.Hour)}
	delay := c.delay
	c.mu.Unlock()
	if delay != nil {
		<-delay
	}
	return tok, nil
}

func (c *chainServer) ClientCredentials(_ context.Context, _ []string) (*bipsync.Token, error) {
	n := c.cc.Add(1)
	return &bipsync.Token{AccessToken: fmt.Sprintf("cc-%d", n), TokenType: "Bearer", ExpiresIn: 3600,
		ReceivedAt: c.now(), Expiry: c.now().Add(time.Hour)}, nil
}

// memStore is an in-memory Store whose operations can be made to fail.
type memStore struct {
	mu      sync.Mutex
	locks   map[tokenstore.Key]chan struct{} // one-slot channel per key; guarded by mu
	recs    map[tokenstore.Key]*tokenstore.Record
	saveErr error
	loadErr error
	saves   int
	kind    string
	// failAfter makes saveErr apply only once this many saves have succeeded.
	failAfter int
	// landThenFail makes the first failing save store the record before it fails, as a helper that wrote and then
	// failed; the saves after it fail without storing.
	landThenFail bool
	// lie makes every save report a conflict without storing anything, as a helper that says "newer" wrongly.
	lie bool
	// localLock makes Lock exclude nothing: the store's lock does not reach the other simulated machines.
	localLock bool
	// protocol1 makes the store's save a read then a write (a get/put command helper): no AtomicSave.
	protocol1 bool
	conflicts int
	loads     atomic.Int64
}

func newMemStore() *memStore {
	return &memStore{locks: map[tokenstore.Key]chan struct{}{}, recs: map[tokenstore.Key]*tokenstore.Record{}, kind: "file"}
}

func (m *memStore) Lock(ctx context.Context, key tokenstore.Key) (func() error, error) {
	if m.localLock {
		return func() error { return nil }, nil
	}
	m.mu.Lock()
	ch, ok := m.locks[key]
	if !ok {
		ch = make(chan struct{}, 1)
		m.locks[key] = ch
	}
	m.mu.Unlock()
	select {
	case ch <- struct{}{}:
		var once sync.Once
		return func() error { once.Do(func() { <-ch }); return nil }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (m *memStore) Load(_ context.Context, key tokenstore.Key, _ string) (*tokenstore.Record, error) {
	m.loads.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loadErr != nil {
		return nil, m.loadErr
	}
	r, ok := m.recs[key]
	if !ok {
		return nil, nil
	}
	return r.Clone(), nil
}

// Save is conditional, as every real store's is: it replaces only the revision named, or repeats a landed save.
func (m *memStore) Save(_ context.Context, key tokenstore.Key, _ string, rec *tokenstore.Record, replaces *tokenstore.Revision) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	failing := m.saveErr != nil && m.saves >= m.failAfter
	if failing && !m.landThenFail {
		return m.saveErr
	}
	if m.lie {
		m.conflicts++
		return &tokenstore.ConflictError{Replaces: replaces}
	}
	cur := m.recs[key]
	switch {
	case cur != nil && cur.Revision() == rec.Revision():
		return nil
	case cur == nil && replaces == nil:
	case cur != nil && replaces != nil && cur.Revision().Matches(*replaces):
	default:
		m.conflicts++
		var current *tokenstore.Revision
		if cur != nil {
			current = cur.Revision().Ptr()
		}
		return &tokenstore.ConflictError{Replaces: replaces, Current: current}
	}
	m.recs[key] = rec.Clone()
	m.saves++
	if failing {
		m.landThenFail = false // later attempts fail without landing
		return m.saveErr
	}
	return nil
}

func (m *memStore) Traits() tokenstore.Traits {
	return tokenstore.Traits{Persistent: m.kind != "none", SharedLock: !m.localLock && !m.protocol1, AtomicSave: !m.protocol1,
		Local: m.kind == "file"}
}
func (m *memStore) Describe() string { return "memory store" }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var testSeq atomic.Int64

// fixture returns a Source over a fresh chain (unique URL, so the process-wide registry never mixes tests).
func fixture(t *testing.T) (*Source, *chainServer, *memStore, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := &chainServer{url: fmt.Sprintf("http://test-%d/v1/oauth/token", testSeq.Add(1)), now: clk.Now, head: "seed"}
	st := newMemStore()
	src, err := New(Options{Client: srv, Store: st, Now: clk.Now, ClientSecret: "sec", Registry: NewRegistry(),
		Sleep: func(context.Context, time.Duration) error { return nil }, RescueDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return src, srv, st, clk
}

func refreshReq(minValidity time.Duration, scopes ...string) Request {
	return Request{Grant: GrantRefreshToken, RefreshToken: "seed", MinValidity: minValidity, Scopes: scopes}
}

func TestSource_Token_reusesUntilMinValidity(t *testing.T) {
	t.Parallel()
	src, srv, st, clk := fixture(t)
	ctx := context.Background()

	first, err := src.Token(ctx, refreshReq(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !first.Exchanged || first.AccessToken != "at-1" {
		t.Fatalf("first: got %v; want an exchange giving at-1", first)
	}
	for i := range 5 {
		r, err := src.Token(ctx, refreshReq(15*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if r.Exchanged || r.AccessToken != "at-1" {
			t.Fatalf("open %d: got %v; want at-1 reused", i, r)
		}
	}
	clk.Advance(44 * time.Minute) // 16 minutes left: still reusable
	if r, _ := src.Token(ctx, refreshReq(15*time.Minute)); r.Exchanged {
		t.Fatalf("with 16m left: got an exchange; want reuse")
	}
	clk.Advance(2 * time.Minute) // 14 minutes left
	r, err := src.Token(ctx, refreshReq(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Exchanged || r.AccessToken != "at-2" || r.Generation != 2 {
		t.Fatalf("with 14m left: got %v; want exchange to at-2, generation 2", r)
	}
	if got := srv.exchanges.Load(); got != 2 {
		t.Fatalf("exchanges: got %d; want 2", got)
	}
	if st.recs[src.Key("seed")].RefreshToken != "rt-2" {
		t.Fatalf("stored head: got %q; want rt-2", st.recs[src.Key("seed")].RefreshToken)
	}
	if want := clk.Now().Add(DefaultRefreshTokenLifetime); !r.RefreshTokenExpiresAt.Equal(want) {
		t.Fatalf("refresh expiry: got %s; want %s", r.RefreshTokenExpiresAt, want)
	}
}

func TestSource_Token_singleFlight(t *testing.T) {
	t.Parallel()
	src, srv, _, _ := fixture(t)
	var wg sync.WaitGroup
	var errs atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, err := src.Token(context.Background(), refreshReq(time.Minute)); err != nil {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := srv.exchanges.Load(); got != 1 {
		t.Fatalf("exchanges for 800 opens: got %d; want 1", got)
	}
	if errs.Load() != 0 {
		t.Fatalf("errors: got %d; want 0", errs.Load())
	}
}

func TestSource_Token_completesExchangeWhenCancelled(t *testing.T) {
	t.Parallel()
	src, srv, st, _ := fixture(t)
	release := make(chan struct{})
	srv.delay = release
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := src.Token(ctx, refreshReq(time.Minute)); done <- err }()
	for srv.exchanges.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel() // Terraform gives up while Bipsync has already rotated the chain
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("got %v; want the exchange to finish despite cancellation", err)
	}
	if rec := st.recs[src.Key("seed")]; rec == nil || rec.RefreshToken != "rt-1" {
		t.Fatalf("stored record: got %v; want head rt-1 saved", rec)
	}
}

func TestSource_Token_saveFailureKeepsPairAndNeverHandsItOut(t *testing.T) {
	t.Parallel()
	src, srv, st, _ := fixture(t)
	st.saveErr, st.failAfter = errors.New("disk full"), 1 // the chain's generation 0 is saved; the exchanged record is not
	_, err := src.Token(context.Background(), refreshReq(time.Minute))
	var se *SaveError
	if !errors.As(err, &se) {
		t.Fatalf("got %v; want SaveError", err)
	}
	if se.Rescue == "" {
		t.Fatalf("got no rescue file (%v); want the record kept in one", se.RescueErr)
	}
	if strings.Contains(err.Error(), "rt-1") || strings.Contains(err.Error(), "at-1") {
		t.Fatalf("error %q carries a token", err)
	}
	// Still failing: the pending pair is retried first, and no second exchange burns it.
	if _, err := src.Token(context.Background(), refreshReq(time.Minute)); !errors.As(err, &se) {
		t.Fatalf("second: got %v; want SaveError", err)
	}
	st.mu.Lock()
	st.saveErr = nil
	st.mu.Unlock()
	r, err := src.Token(context.Background(), refreshReq(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if r.AccessToken != "at-1" || r.Exchanged {
		t.Fatalf("after recovery: got %v; want the saved pending at-1, no exchange", r)
	}
	if got := srv.exchanges.Load(); got != 1 {
		t.Fatalf("exchanges: got %d; want 1", got)
	}
}

func TestSource_Token_noneStoreFailsClosed(t *testing.T) {
	t.Parallel()
	src, srv, st, _ := fixture(t)
	st.kind = "none"
	if _, err := src.Token(context.Background(), refreshReq(time.Minute)); !errors.Is(err, ErrStoreRequired) {
		t.Fatalf("got %v; want ErrStoreRequired", err)
	}
	if got := srv.exchanges.Load(); got != 0 {
		t.Fatalf("exchanges: got %d; want 0 (the seed must survive)", got)
	}
}

func TestSource_Token_corruptRecordExchangesNothing(t *testing.T) {
	t.Parallel()
	src, srv, st, _ := fixture(t)
	st.loadErr = fmt.Errorf("record x: %w", tokenstore.ErrCorrupt)
	_, err := src.Token(context.Background(), refreshReq(time.Minute))
	if !errors.Is(err, tokenstore.ErrCorrupt) {
		t.Fatalf("got %v; want ErrCorrupt", err)
	}
	if srv.exchanges.Load() != 0 || st.saves != 0 {
		t.Fatalf("exchanges %d, saves %d; want 0 and 0", srv.exchanges.Load(), st.saves)
	}
}

func TestSource_Token_scopes(t *testing.T) {
	t.Parallel()
	t.Run("conflict in one walk", func(t *testing.T) {
		t.Parallel()
		src, srv, _, _ := fixture(t)
		if _, err := src.Token(context.Background(), refreshReq(time.Minute, "read", "write")); err != nil {
			t.Fatal(err)
		}
		_, err := src.Token(context.Background(), refreshReq(time.Minute, "read"))
		var ce *ScopeConflictError
		if !errors.As(err, &ce) {
			t.Fatalf("got %v; want ScopeConflictError", err)
		}
		if srv.exchanges.Load() != 1 {
			t.Fatalf("exchanges: got %d; want 1 (the conflicting request must not exchange)", srv.exchanges.Load())
		}
	})
	t.Run("same set in another order reuses", func(t *testing.T) {
		t.Parallel()
		src, srv, _, _ := fixture(t)
		for _, sc := range [][]string{{"read", "write"}, {"write", "read"}} {
			if _, err := src.Token(context.Background(), refreshReq(time.Minute, sc...)); err != nil {
				t.Fatal(err)
			}
		}
		if srv.exchanges.Load() != 1 {
			t.Fatalf("exchanges: got %d; want 1", srv.exchanges.Load())
		}
	})
	t.Run("narrowing a chain of known scopes in a new walk fails before exchanging", func(t *testing.T) {
		t.Parallel()
		src, srv, st, clk := fixture(t)
		if _, err := src.Token(context.Background(), refreshReq(time.Minute, "read", "write")); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Hour)                                                       // a later run, and the stored token has expired
		next, _ := New(Options{Client: srv, Store: st, Now: clk.Now, Registry: src.reg}) // a new walk: a new provider instance
		_, err := next.Token(context.Background(), refreshReq(time.Minute, "read"))
		var ne *NarrowingError
		if !errors.As(err, &ne) || fmt.Sprint(ne.Held) != "[read write]" || fmt.Sprint(ne.Requested) != "[read]" {
			t.Fatalf("got %v; want a NarrowingError from [read write] to [read]", err)
		}
		if srv.exchanges.Load() != 1 {
			t.Fatalf("exchanges: got %d; want 1 (the narrowing request exchanges nothing)", srv.exchanges.Load())
		}
		if rec := st.recs[src.Key("seed")]; fmt.Sprint(rec.Scopes) != "[read write]" {
			t.Fatalf("chain scopes: got %v; want [read write] kept", rec.Scopes)
		}
	})
	t.Run("narrowing with AllowNarrowing exchanges and warns", func(t *testing.T) {
		t.Parallel()
		src, srv, st, clk := fixture(t)
		if _, err := src.Token(context.Background(), refreshReq(time.Minute, "read", "write")); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Minute) // the first consumer's promise (1m) is over: the warning below is the narrowing only
		next, _ := New(Options{Client: srv, Store: st, Now: clk.Now, Registry: src.reg})
		req := refreshReq(time.Minute, "read")
		req.AllowNarrowing = true
		r, err := next.Token(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Exchanged || len(r.Warnings) != 1 || r.Warnings[0].Kind != WarnNarrowed {
			t.Fatalf("got %v warnings %v; want an exchange with the narrowing warning", r, r.Warnings)
		}
		if fmt.Sprint(r.Scopes) != "[read]" {
			t.Fatalf("scopes: got %v; want [read]", r.Scopes)
		}
	})
	t.Run("scopes of a chain not known cannot be told narrowed", func(t *testing.T) {
		t.Parallel()
		src, srv, _, clk := fixture(t)
		if _, err := src.Token(context.Background(), refreshReq(time.Minute)); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Minute) // past the first consumer's promise
		next, _ := New(Options{Client: src.client, Store: src.store, Now: src.now, Registry: src.reg})
		r, err := next.Token(context.Background(), refreshReq(time.Minute, "read"))
		if err != nil || !r.Exchanged || len(r.Warnings) != 0 {
			t.Fatalf("got (%v, %v); want a quiet exchange: the original consent is not known", r, err)
		}
		if srv.exchanges.Load() != 2 {
			t.Fatalf("exchanges: got %d; want 2", srv.exchanges.Load())
		}
	})
	t.Run("first exchange with scopes does not claim to narrow", func(t *testing.T) {
		t.Parallel()
		src, _, _, _ := fixture(t)
		r, err := src.Token(context.Background(), refreshReq(time.Minute, "read", "write"))
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Warnings) != 0 {
			t.Fatalf("warnings: got %v; want none (the original consent is not known)", r.Warnings)
		}
	})
}

func TestSource_Token_reauthErrorPassesThrough(t *testing.T) {
	t.Parallel()
	src, srv, _, _ := fixture(t)
	srv.head = "someone-else-rotated-it"
	_, err := src.Token(context.Background(), refreshReq(time.Minute))
	if !bipsync.NeedsReauthorization(err) || bipsync.ReauthorizationCause(err) != bipsync.CauseRevoked {
		t.Fatalf("got %v; want a reauthorization error, cause revoked", err)
	}
}

func TestSource_Token_clientCredentials(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"file", "none"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			src, srv, st, clk := fixture(t)
			st.kind = kind
			req := Request{Grant: GrantClientCredentials, Scopes: []string{"team_abc"}, MinValidity: 15 * time.Minute}
			for range 3 {
				if _, err := src.Token(context.Background(), req); err != nil {
					t.Fatal(err)
				}
			}
			if got := srv.cc.Load(); got != 1 {
				t.Fatalf("grants: got %d; want 1", got)
			}
			clk.Advance(50 * time.Minute)
			r, err := src.Token(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Exchanged || srv.cc.Load() != 2 || !r.RefreshTokenExpiresAt.IsZero() {
				t.Fatalf("got %v (grants %d); want a new grant and no refresh expiry", r, srv.cc.Load())
			}
		})
	}
}

func TestSource_Token_shortTokenWarns(t *testing.T) {
	t.Parallel()
	src, _, _, _ := fixture(t)
	r, err := src.Token(context.Background(), refreshReq(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) != 1 || r.Warnings[0].Kind != WarnShortLifetime {
		t.Fatalf("warnings: got %v; want the min_validity warning", r.Warnings)
	}
}

func TestResult_String_redacts(t *testing.T) {
	t.Parallel()
	r := &Result{AccessToken: "at-secret", TokenType: "Bearer"}
	for _, s := range []string{r.String(), fmt.Sprintf("%v %+v %#v", r, r, r)} {
		if strings.Contains(s, "at-secret") {
			t.Fatalf("%q shows the access token", s)
		}
	}
}
