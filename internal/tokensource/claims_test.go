package tokensource

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// claimStore is a memStore shared by runners on several machines (no shared lock) that writes conditionally and
// keeps claims, as the command store at protocol 2 or a bucket does. It counts the claim writes.
type claimStore struct {
	*memStore
	claims      map[tokenstore.Key]*tokenstore.Claim
	claimPuts   int // claims written
	claimTries  int // conditional claim writes attempted, refused ones included
	claimLoads  int
	claimsMutex sync.Mutex
}

func newClaimStore() *claimStore {
	st := newMemStore()
	st.localLock = true
	return &claimStore{memStore: st, claims: map[tokenstore.Key]*tokenstore.Claim{}}
}

func (c *claimStore) Traits() tokenstore.Traits {
	t := c.memStore.Traits()
	t.Claims = true
	return t
}

func (c *claimStore) LoadClaim(_ context.Context, key tokenstore.Key, _ string) (*tokenstore.Claim, error) {
	c.claimsMutex.Lock()
	defer c.claimsMutex.Unlock()
	c.claimLoads++
	if cl := c.claims[key]; cl != nil {
		cp := *cl
		return &cp, nil
	}
	return nil, nil
}

func (c *claimStore) PutClaim(_ context.Context, key tokenstore.Key, _ string, cl, replaces *tokenstore.Claim) error {
	c.claimsMutex.Lock()
	defer c.claimsMutex.Unlock()
	c.claimTries++
	cur := c.claims[key]
	switch {
	case cur != nil && cur.ID == cl.ID:
		return nil
	case cur == nil && replaces == nil:
	case cur != nil && replaces != nil && cur.ID == replaces.ID:
	default:
		return &tokenstore.ConflictError{}
	}
	cp := *cl
	c.claims[key] = &cp
	c.claimPuts++
	return nil
}

func (c *claimStore) loadsOfClaims() int {
	c.claimsMutex.Lock()
	defer c.claimsMutex.Unlock()
	return c.claimLoads
}

func (c *claimStore) counts() (puts, tries, saves int) {
	c.claimsMutex.Lock()
	defer c.claimsMutex.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.claimPuts, c.claimTries, c.saves
}

// K runners (separate processes on separate machines) that share a store with claims and find the same head due send
// it to Bipsync once: one exchange attempt, none refused, one claim written and one record saved per due head; the
// others only read until the claimer's record is there, and hand out its token.
func TestSource_Token_claimsSendEachDueHeadOnce(t *testing.T) {
	t.Parallel()
	const k = 5
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := newRaceServer(clk.Now)
	st := newClaimStore()
	var runners []*Source
	for range k {
		runners = append(runners, machine(t, srv, st, clk.Now, 10*time.Second))
	}
	seedChain(t, st.memStore, runners[0])
	for round := 1; round <= 3; round++ {
		_, _, saves0 := st.counts()
		loads0 := st.loadsOfClaims()
		// The claimer's exchange is held until every other runner has found its head due and read the claim.
		hold := make(chan struct{})
		srv.mu.Lock()
		srv.hold, srv.arrived = hold, make(chan string, 1)
		srv.mu.Unlock()
		results := make(chan tokenResult, k)
		for _, src := range runners {
			go func() {
				r, err := src.Token(context.Background(), refreshReq(15*time.Minute))
				results <- tokenResult{r, err}
			}()
		}
		<-srv.arrived
		for deadline := time.Now().Add(2 * time.Second); st.loadsOfClaims() < loads0+k && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		close(hold)
		tokens := map[string]int{}
		for range k {
			got := <-results
			if got.err != nil {
				t.Fatalf("round %d: %v", round, got.err)
			}
			tokens[got.r.AccessToken]++
		}
		puts, tries, saves := st.counts()
		t.Logf("round %d: claim puts %d (attempts %d) in all, record saves %d this round, claim loads %d in all", round, puts,
			tries, saves-saves0, st.loadsOfClaims())
		if got := srv.exchanges.Load() + srv.refused.Load(); got != int64(round) || srv.refused.Load() != 0 {
			t.Fatalf("round %d: exchange attempts %d, refused %d; want %d attempts in all, none refused", round, got,
				srv.refused.Load(), round)
		}
		if len(tokens) != 1 {
			t.Fatalf("round %d: tokens handed out %v; want every runner on the one new token", round, tokens)
		}
		if puts != round || saves-saves0 != 1 {
			t.Fatalf("round %d: claim puts %d in all, record saves %d this round; want %d and 1", round, puts, saves-saves0, round)
		}
		clk.Advance(61 * time.Minute) // the token is past its life: the head is due again
	}
}

// deadClaim leaves the claim of a runner that stopped (its process died) on the chain's current record, claimed at a
// time its own clock put a day back: only the waiting runner's clock counts.
func deadClaim(t *testing.T, st *claimStore, key tokenstore.Key, now time.Time) {
	t.Helper()
	rec := st.recs[key]
	c := &tokenstore.Claim{ID: tokenstore.NewRecordID(), Head: rec.Revision(), Holder: "dead-runner", At: now.Add(-24 * time.Hour),
		TTL: 4 * time.Minute}
	if err := st.PutClaim(context.Background(), key, "seed", c, nil); err != nil {
		t.Fatal(err)
	}
}

// A claimer that died after Bipsync answered its exchange took the new head with it: the runner that waited out the
// claim's TTL takes it over, its exchange is refused, and the error says that a claim holder died (not that the chain
// was simply revoked), with who and since when.
func TestSource_Token_claimHolderDiedAfterExchanging(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := newRaceServer(clk.Now)
	st := newClaimStore()
	src := runner(t, srv, st, clk)
	seedChain(t, st.memStore, src)
	key := src.Key("seed")
	deadClaim(t, st, key, clk.Now())
	if _, err := srv.Refresh(context.Background(), "seed", nil); err != nil { // the dead claimer's exchange
		t.Fatal(err)
	}
	start := clk.Now()
	_, err := src.Token(context.Background(), refreshReq(15*time.Minute))
	var spent *ChainSpentError
	if !errors.As(err, &spent) || !spent.ClaimHolderDied || spent.ClaimHolder != "dead-runner" || !spent.ClaimSeenAt.Equal(start) {
		t.Fatalf("got %v; want a ChainSpentError naming the dead claim holder, first seen at %s", err, start)
	}
	if !bipsync.NeedsReauthorization(err) {
		t.Fatalf("got %v; want Bipsync's refusal to stay visible", err)
	}
	if waited := clk.Now().Sub(start); waited < 4*time.Minute {
		t.Fatalf("waited %s; want at least the claim's TTL of 4m", waited)
	}
	if srv.refused.Load() != 1 {
		t.Fatalf("refused attempts: got %d; want 1", srv.refused.Load())
	}
	if c := st.claims[key]; c.Holder != src.leaseID {
		t.Fatalf("claim holder: got %s; want the runner that took it over", c.Holder)
	}
}

// A claimer that died before exchanging left the head live: the runner that waited out the claim's TTL takes it over
// and exchanges it, and the chain goes on.
func TestSource_Token_claimHolderDiedBeforeExchanging(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := newRaceServer(clk.Now)
	st := newClaimStore()
	src := runner(t, srv, st, clk)
	seedChain(t, st.memStore, src)
	key := src.Key("seed")
	deadClaim(t, st, key, clk.Now())
	start := clk.Now()
	r, err := src.Token(context.Background(), refreshReq(15*time.Minute))
	if err != nil || !r.Exchanged || r.Generation != 1 {
		t.Fatalf("got (%v, %v); want the head exchanged after the take-over", r, err)
	}
	if waited := clk.Now().Sub(start); waited < 4*time.Minute {
		t.Fatalf("waited %s; want at least the claim's TTL of 4m", waited)
	}
	if rec := st.recs[key]; rec.RefreshToken != "rt-1" || !srv.isLive("rt-1") {
		t.Fatalf("stored head %s; want the live rt-1", rec.RefreshToken)
	}
	if srv.refused.Load() != 0 || srv.exchanges.Load() != 1 {
		t.Fatalf("exchanges %d, refused %d; want 1 and 0", srv.exchanges.Load(), srv.refused.Load())
	}
}

// A runner that read the record before another runner's exchange was saved, and finds that runner's claim spent by
// the time it claims, reads the record once more after its own claim and adopts instead of exchanging.
func TestSource_Token_claimThenRecordMovedOnAdopts(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := newRaceServer(clk.Now)
	st := newClaimStore()
	a, b := machine(t, srv, st, clk.Now, time.Second), machine(t, srv, st, clk.Now, time.Second)
	seedChain(t, st.memStore, a)
	stale := st.recs[a.Key("seed")].Clone()
	if _, err := a.Token(context.Background(), refreshReq(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// B works from the record it read before A saved.
	r := &run{key: b.Key("seed"), seed: "seed", c: b.reg.chain(b.Key("seed")), req: refreshReq(15 * time.Minute)}
	r.observe(stale)
	got, err := b.serve(context.Background(), r, stale)
	if err != nil || got.Exchanged || !got.Adopted || got.Generation != 1 {
		t.Fatalf("got (%v, %v); want A's generation 1 adopted", got, err)
	}
	if srv.exchanges.Load()+srv.refused.Load() != 1 {
		t.Fatalf("exchange attempts: got %d; want 1", srv.exchanges.Load()+srv.refused.Load())
	}
}

// failingOnce refuses the first exchange with an error that surely consumed nothing (the request was never sent).
type failingOnce struct {
	*raceServer
	failed bool
	sent   bool // the request was sent and no answer came: outcome unknown
}

func (f *failingOnce) Refresh(ctx context.Context, rt string, scopes []string) (*bipsync.Token, error) {
	f.mu.Lock()
	first := !f.failed
	f.failed = true
	f.mu.Unlock()
	if first {
		return nil, &bipsync.Error{Op: "refresh", Err: errors.New("dial tcp: connection refused"), Sent: f.sent}
	}
	return f.raceServer.Refresh(ctx, rt, scopes)
}

// A claimer whose exchange failed without consuming the head (nothing was sent, or Bipsync refused it for a reason that
// consumed nothing) gives its claim up, so that other runners need not wait out its TTL.
func TestSource_Token_claimGivenUpWhenNothingWasConsumed(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := newRaceServer(clk.Now)
	st := newClaimStore()
	a, b := runner(t, &failingOnce{raceServer: srv}, st, clk), runner(t, srv, st, clk)
	seedChain(t, st.memStore, a)
	if _, err := a.Token(context.Background(), refreshReq(15*time.Minute)); err == nil {
		t.Fatal("A: got no error; want the failed exchange reported")
	}
	start := clk.Now()
	r, err := b.Token(context.Background(), refreshReq(15*time.Minute))
	if err != nil || !r.Exchanged {
		t.Fatalf("B: got (%v, %v); want the head exchanged", r, err)
	}
	if waited := clk.Now().Sub(start); waited >= time.Minute {
		t.Fatalf("B waited %s; want no wait for a claim given up", waited)
	}
	if srv.refused.Load() != 0 {
		t.Fatalf("refused: got %d; want 0", srv.refused.Load())
	}
}

// A claimer whose exchange's outcome is unknown keeps its claim: the head may be consumed, so other runners wait out
// its TTL rather than send it again at once.
func TestSource_Token_claimKeptWhenTheOutcomeIsUnknown(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := newRaceServer(clk.Now)
	st := newClaimStore()
	a, b := runner(t, &failingOnce{raceServer: srv, sent: true}, st, clk), runner(t, srv, st, clk)
	seedChain(t, st.memStore, a)
	if _, err := a.Token(context.Background(), refreshReq(15*time.Minute)); !bipsync.IsOutcomeUnknown(err) {
		t.Fatalf("A: got %v; want an outcome-unknown failure", err)
	}
	start := clk.Now()
	if _, err := b.Token(context.Background(), refreshReq(15*time.Minute)); err != nil {
		t.Fatalf("B: got %v; want the head exchanged after the claim's TTL", err)
	}
	if waited := clk.Now().Sub(start); waited < 4*time.Minute {
		t.Fatalf("B waited %s; want at least the claim's TTL", waited)
	}
}
