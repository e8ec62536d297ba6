package tokensource

import (
	"context"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// exchangeHeld starts src.Token(req) with the server holding the exchange once it has rotated, and returns once the
// exchange has happened at the server; the result arrives on the channel after release is closed.
func exchangeHeld(t *testing.T, srv *raceServer, src *Source, req Request) (release chan struct{}, done <-chan tokenResult) {
	t.Helper()
	release = make(chan struct{})
	srv.mu.Lock()
	srv.hold, srv.arrived = release, make(chan string, 1)
	srv.mu.Unlock()
	out := make(chan tokenResult, 1)
	go func() {
		r, err := src.Token(context.Background(), req)
		out <- tokenResult{r, err}
	}()
	<-srv.arrived
	srv.mu.Lock()
	srv.hold, srv.arrived = nil, nil
	srv.mu.Unlock()
	return release, out
}

type tokenResult struct {
	r   *Result
	err error
}

// runner is a Source as one runner on its own machine has it, whose waits move the shared fake clock (and take a
// moment of real time, so that other runners get on): a runner that waits for a record that never comes gives up
// after its adopt wait in fake time, instead of polling forever.
func runner(t *testing.T, srv Exchanger, st tokenstore.Store, clk *clock) *Source {
	t.Helper()
	src, err := New(Options{Client: srv, Store: st, Now: clk.Now, Registry: NewRegistry(), AdoptWait: 10 * time.Minute,
		RescueDir: t.TempDir(), Sleep: func(ctx context.Context, d time.Duration) error {
			clk.Advance(d)
			select {
			case <-time.After(2 * time.Millisecond):
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

// While a runner exchanges the head it loaded, the process that exchanged that head rewrites its record (its last
// consumer is done, and it removes its lease). The exchange's save is refused, but the store's record holds the head
// this exchange just consumed: the new head is the chain's only live one, and must replace it, not be dropped.
func TestSource_Token_saveReplacesSiblingOfConsumedHead(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := newRaceServer(clk.Now)
	st := newMemStore()
	st.localLock = true // the runners are on different machines: only saves keep them apart
	a, b := runner(t, srv, st, clk), runner(t, srv, st, clk)
	seedChain(t, st, a)
	first, err := b.Token(context.Background(), refreshReq(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(20 * time.Minute) // at-1 has 40 minutes left

	// A needs 50 minutes: it exchanges rt-1. Meanwhile B's consumer is done, and B removes the lease its exchange wrote.
	release, done := exchangeHeld(t, srv, a, refreshReq(50*time.Minute))
	before := st.recs[a.Key("seed")].Revision()
	if err := b.Release(context.Background(), first.Key); err != nil {
		t.Fatal(err)
	}
	if after := st.recs[a.Key("seed")]; after.Revision() == before || after.RefreshToken != "rt-1" {
		t.Fatal("B did not rewrite the record of rt-1: the test does not reach the case it is about")
	}
	close(release)
	got := <-done
	if got.err != nil {
		t.Fatalf("A: got %v; want its exchange saved", got.err)
	}
	rec := st.recs[a.Key("seed")]
	if rec.RefreshToken != "rt-2" || !srv.isLive(rec.RefreshToken) || got.r.AccessToken != "at-2" || got.r.Adopted {
		t.Fatalf("stored head %s (live %t), A handed out %s (adopted %t); want the live rt-2 stored and at-2 handed out",
			rec.RefreshToken, srv.isLive(rec.RefreshToken), got.r.AccessToken, got.r.Adopted)
	}
	if st.conflicts == 0 {
		t.Fatal("conflicts: got none; want A's first save refused")
	}
}

// A store without a conditional write went back to an older record (a get/put helper on another machine put a stale
// record between its read and its write) while a runner exchanged: the older record's head is spent, so the
// exchange's new head must replace it.
func TestSource_Token_saveReplacesOlderRecord(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := newRaceServer(clk.Now)
	st := newMemStore()
	st.localLock = true
	a := runner(t, srv, st, clk)
	seedChain(t, st, a)
	key := a.Key("seed")
	for range 2 {
		if _, err := a.Token(context.Background(), Request{RefreshToken: "seed", MinValidity: time.Minute, Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	older := st.recs[key].Clone()
	older.Generation, older.ID, older.RefreshToken = 1, tokenstore.NewRecordID(), "rt-1"

	release, done := exchangeHeld(t, srv, a, Request{RefreshToken: "seed", MinValidity: time.Minute, Force: true})
	st.mu.Lock()
	st.recs[key] = older
	st.mu.Unlock()
	close(release)
	got := <-done
	if got.err != nil {
		t.Fatalf("got %v; want the exchange saved over the older record", got.err)
	}
	if rec := st.recs[key]; rec.Generation != 3 || rec.RefreshToken != "rt-3" || !srv.isLive("rt-3") {
		t.Fatalf("stored: generation %d head %s; want generation 3 with the live rt-3", rec.Generation, rec.RefreshToken)
	}
}

// A runner whose exchange was refused waits for a record with another head: a record with the head that was just
// refused (another runner's lease on it) holds nothing to adopt, and its access token is revoked.
func TestSource_Token_refusedRunnerWaitsForAnotherHead(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := newRaceServer(clk.Now)
	st := newMemStore()
	st.localLock = true
	a, b := runner(t, srv, st, clk), runner(t, srv, st, clk)
	seedChain(t, st, a)
	if _, err := a.Token(context.Background(), refreshReq(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	key := a.Key("seed")
	clk.Advance(20 * time.Minute)
	spent := st.recs[key].Clone() // rt-1, at-1: what B loads

	// A rotates rt-1 and is held before it saves; B, asking for 50 minutes too, finds rt-1 refused.
	release, done := exchangeHeld(t, srv, a, refreshReq(50*time.Minute))
	bDone := make(chan tokenResult, 1)
	go func() {
		r, err := b.Token(context.Background(), refreshReq(50*time.Minute))
		bDone <- tokenResult{r, err}
	}()
	for srv.refused.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// Another runner writes its lease on the spent record (it loaded it before the rotation).
	lease := spent.Clone()
	lease.ID = tokenstore.NewRecordID()
	lease.Leases = []tokenstore.Lease{{ID: "other", Until: clk.Now().Add(5 * time.Minute), MinValidity: 5 * time.Minute, At: clk.Now()}}
	st.mu.Lock()
	st.recs[key] = lease
	st.mu.Unlock()
	// B polls the store and sees the lease record.
	for polls := st.loads.Load(); st.loads.Load() < polls+5; {
		time.Sleep(time.Millisecond)
	}
	close(release)
	if got := <-done; got.err != nil {
		t.Fatalf("A: %v", got.err)
	}
	gotB := <-bDone
	if gotB.err != nil || gotB.r.AccessToken != "at-2" {
		t.Fatalf("B: got (%v, %v); want the winner's at-2", gotB.r, gotB.err)
	}
}

// A record rewritten only for leases (same head, same generation) is no rotation: however often it happens while a
// runner saves its exchange, the runner replaces it and neither adopts it nor ends in "other runners rotated this chain".
func TestSource_Token_leaseChurnIsNoRotation(t *testing.T) {
	t.Parallel()
	src, srv, st, _ := fixture(t)
	if _, err := src.Token(context.Background(), refreshReq(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	key := src.Key("seed")
	// Another provider process rotates the chain; before each of its saves the record of rt-1 is rewritten for a lease.
	churn := &churnStore{memStore: st, key: key, n: maxHeadSaves - 1}
	other, err := New(Options{Client: srv, Store: churn, Now: src.now, Registry: NewRegistry(), RescueDir: t.TempDir(),
		Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	r, err := other.Token(context.Background(), Request{RefreshToken: "seed", MinValidity: 15 * time.Minute, Force: true})
	if err != nil || r.AccessToken != "at-2" || !r.Exchanged || r.Adopted {
		t.Fatalf("got (%v, %v); want at-2 exchanged and saved, nothing adopted", r, err)
	}
	if churn.n != 0 {
		t.Fatalf("%d lease writes left; want every one to have been in the way", churn.n)
	}
	if rec := st.recs[key]; rec.Generation != 2 || rec.RefreshToken != "rt-2" {
		t.Fatalf("stored: generation %d head %s; want generation 2, rt-2", rec.Generation, rec.RefreshToken)
	}
}

// churnStore writes another process's lease into the record before each of the next n saves.
type churnStore struct {
	*memStore
	key tokenstore.Key
	n   int
}

func (c *churnStore) Save(ctx context.Context, key tokenstore.Key, seed string, rec *tokenstore.Record, replaces *tokenstore.Revision) error {
	if c.n > 0 && key == c.key {
		c.n--
		c.mu.Lock()
		cur := c.recs[key].Clone()
		cur.ID = tokenstore.NewRecordID()
		cur.Leases = append(cur.Leases, tokenstore.Lease{ID: tokenstore.NewRecordID(), Until: cur.RotatedAt.Add(time.Hour)})
		c.recs[key] = cur
		c.mu.Unlock()
	}
	return c.memStore.Save(ctx, key, seed, rec, replaces)
}
