package tokensource

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// keyFailStore fails every load of one key, as a store whose entry under that key cannot be read (a denied secret, a
// helper that fails for it).
type keyFailStore struct {
	*memStore
	fail tokenstore.Key
	err  error
}

func (k *keyFailStore) Load(ctx context.Context, key tokenstore.Key, seed string) (*tokenstore.Record, error) {
	if key == k.fail {
		return nil, k.err
	}
	return k.memStore.Load(ctx, key, seed)
}

// A record under the legacy key that cannot be read is not "no record": the seed may be spent there, and starting a
// new chain from it under the canonical key would end in a false reauthorization. The failure is a store error, and
// nothing is exchanged or written.
func TestSource_Token_unreadableLegacyRecordIsAStoreError(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := newRaceServer(clk.Now)
	srv.url = "https://ACME-api.bipsync.com:443/v1/oauth/token"
	legacy, differs := tokenstore.LegacyKey(srv.url, "cli", "seed")
	if !differs {
		t.Fatal("LegacyKey: want a key other than the canonical one")
	}
	st := &keyFailStore{memStore: newMemStore(), fail: legacy, err: errors.New("AccessDeniedException: secretsmanager:GetSecretValue")}
	src := machine(t, srv, st, clk.Now, time.Second)
	_, err := src.Token(context.Background(), refreshReq(15*time.Minute))
	var se *StoreError
	if !errors.As(err, &se) || se.Op != "load" {
		t.Fatalf("got %v; want a StoreError of the load", err)
	}
	if n := srv.exchanges.Load() + srv.refused.Load(); n != 0 {
		t.Fatalf("exchange attempts: got %d; want 0", n)
	}
	if rec := st.recs[src.Key("seed")]; rec != nil {
		t.Fatalf("canonical key: got %v; want nothing written", rec)
	}
}

// A forced rotation decides by revision whether another run did it: a machine whose clock is ahead stamps its rotation
// later than this request started, but a record of the generation this request first saw is not rotated yet.
func TestSource_Token_forcedRotationIgnoresAnotherMachinesClock(t *testing.T) {
	t.Parallel()
	src, srv, st, clk := fixture(t)
	ctx := context.Background()
	if _, err := src.Token(ctx, refreshReq(time.Minute)); err != nil {
		t.Fatal(err)
	}
	ahead := &clock{t: clk.Now().Add(time.Hour)}
	other, err := New(Options{Client: srv, Store: st, Now: ahead.Now, Registry: NewRegistry(), RescueDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Token(ctx, Request{RefreshToken: "seed", MinValidity: time.Minute, Force: true}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	r, err := src.Token(ctx, Request{RefreshToken: "seed", MinValidity: time.Minute, Force: true})
	if err != nil || !r.Exchanged || r.Generation != 3 {
		t.Fatalf("got (%v, %v); want the forced rotation made (generation 3)", r, err)
	}
}

// failSaves makes the store's next saves fail without landing, until healed.
func failSaves(st *memStore) (heal func()) {
	st.mu.Lock()
	st.saveErr, st.failAfter = errors.New("connection reset"), st.saves
	st.mu.Unlock()
	return func() {
		st.mu.Lock()
		st.saveErr = nil
		st.mu.Unlock()
	}
}

// rewriteForLease replaces the stored record with a copy of itself that only differs in a lease, as another process of
// an earlier version wrote on a hand-out.
func rewriteForLease(st *memStore, key tokenstore.Key, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	cur := st.recs[key].Clone()
	cur.ID = tokenstore.NewRecordID()
	cur.Leases = append(cur.Leases, tokenstore.Lease{ID: tokenstore.NewRecordID(), Until: now.Add(5 * time.Minute), At: now,
		MinValidity: 5 * time.Minute})
	st.recs[key] = cur
}

// A pending record (exchanged, its save failed) meets a store whose record was rewritten meanwhile only for a lease:
// the stored head is the one the pending exchange consumed. The pending record replaces it; the revoked access token
// is never handed out.
func TestSource_Token_pendingReplacesLeaseRewriteOfConsumedHead(t *testing.T) {
	t.Parallel()
	src, srv, st, clk := fixture(t)
	ctx := context.Background()
	if _, err := src.Token(ctx, refreshReq(time.Minute)); err != nil {
		t.Fatal(err)
	}
	heal := failSaves(st)
	if _, err := src.Token(ctx, Request{RefreshToken: "seed", MinValidity: time.Minute, Force: true}); err == nil {
		t.Fatal("got no error; want the failed save reported")
	}
	heal()
	key := src.Key("seed")
	rewriteForLease(st, key, clk.Now())
	r, err := src.Token(ctx, refreshReq(time.Minute))
	if err != nil || r.AccessToken != "at-2" || r.Exchanged {
		t.Fatalf("got (%v, %v); want the pending at-2, no exchange", r, err)
	}
	if rec := st.recs[key]; rec.Generation != 2 || rec.RefreshToken != "rt-2" {
		t.Fatalf("stored: generation %d head %s; want generation 2, rt-2", rec.Generation, rec.RefreshToken)
	}
	if srv.exchanges.Load() != 2 {
		t.Fatalf("exchanges: got %d; want 2", srv.exchanges.Load())
	}
}

// Release saves a pending record first: the consumer's process may do nothing else with the chain before it exits.
func TestSource_Release_savesPendingHeadFirst(t *testing.T) {
	t.Parallel()
	src, _, st, _ := fixture(t)
	ctx := context.Background()
	first, err := src.Token(ctx, refreshReq(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	heal := failSaves(st)
	if _, err := src.Token(ctx, Request{RefreshToken: "seed", MinValidity: time.Minute, Force: true}); err == nil {
		t.Fatal("got no error; want the failed save reported")
	}
	heal()
	if err := src.Release(ctx, first.Key); err != nil {
		t.Fatal(err)
	}
	if rec := st.recs[first.Key]; rec.Generation != 2 || rec.RefreshToken != "rt-2" {
		t.Fatalf("stored: generation %d head %s; want the pending generation 2, rt-2", rec.Generation, rec.RefreshToken)
	}
}

// At protocol 1 (a save that is a read then a write) no lease is recorded, because Release cannot remove one: a lease
// left behind would name a consumer long gone in a later exchange's warning.
func TestSource_Token_protocol1RecordsNoLease(t *testing.T) {
	t.Parallel()
	src, srv, st, clk := fixture(t)
	st.protocol1 = true
	ctx := context.Background()
	r, err := src.Token(ctx, refreshReq(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if leases := st.recs[r.Key].Leases; len(leases) != 0 {
		t.Fatalf("leases: got %+v; want none at protocol 1", leases)
	}
	if err := src.Release(ctx, r.Key); err != nil {
		t.Fatal(err)
	}
	clk.Advance(20 * time.Minute)
	other, err := New(Options{Client: srv, Store: st, Now: clk.Now, Registry: NewRegistry(), RescueDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	long, err := other.Token(ctx, refreshReq(50*time.Minute))
	if err != nil || !long.Exchanged || len(long.Warnings) != 0 {
		t.Fatalf("got (%v, %v) warnings %+v; want a quiet exchange: the consumer before is done", long, err, long.Warnings)
	}
}

// A hand-out that reuses the stored token writes nothing, whichever process it is in; the exchanging process's lease,
// written with the exchange's save, is removed by one write at its last Release.
func TestSource_Token_handOutWritesNothing(t *testing.T) {
	t.Parallel()
	src, srv, st, _ := fixture(t)
	ctx := context.Background()
	first, err := src.Token(ctx, refreshReq(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if leases := st.recs[first.Key].Leases; len(leases) != 1 || leases[0].ID != src.leaseID {
		t.Fatalf("leases after the exchange: got %+v; want the exchanger's own", leases)
	}
	saves := st.saves
	other, err := New(Options{Client: srv, Store: st, Now: src.now, Registry: NewRegistry(), RescueDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Source{src, other, src, other} {
		r, err := s.Token(ctx, refreshReq(10*time.Minute))
		if err != nil || r.Exchanged {
			t.Fatalf("got (%v, %v); want the stored token reused", r, err)
		}
	}
	if st.saves != saves {
		t.Fatalf("saves by hand-outs: got %d; want 0", st.saves-saves)
	}
	loads := st.loads.Load()
	for _, s := range []*Source{other, other} {
		if err := s.Release(ctx, first.Key); err != nil {
			t.Fatal(err)
		}
	}
	if st.saves != saves || st.loads.Load() != loads {
		t.Fatalf("store calls by releases of a process that holds no lease: got %d saves and %d loads; want none",
			st.saves-saves, st.loads.Load()-loads)
	}
	for range 3 {
		if err := src.Release(ctx, first.Key); err != nil {
			t.Fatal(err)
		}
	}
	if st.saves != saves+1 {
		t.Fatalf("saves by the exchanger's releases: got %d; want 1", st.saves-saves)
	}
	if leases := st.recs[first.Key].Leases; len(leases) != 0 {
		t.Fatalf("leases after the exchanger's last release: got %+v; want none", leases)
	}
}

// A Release whose record was rotated since by another process has nothing to remove: the lease went with the old
// record.
func TestSource_Release_afterAnotherRotationWritesNothing(t *testing.T) {
	t.Parallel()
	src, srv, st, _ := fixture(t)
	ctx := context.Background()
	first, err := src.Token(ctx, refreshReq(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	other, err := New(Options{Client: srv, Store: st, Now: src.now, Registry: NewRegistry(), RescueDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Token(ctx, Request{RefreshToken: "seed", MinValidity: time.Minute, Force: true}); err != nil {
		t.Fatal(err)
	}
	saves := st.saves
	if err := src.Release(ctx, first.Key); err != nil {
		t.Fatal(err)
	}
	if st.saves != saves {
		t.Fatalf("saves: got %d; want 0", st.saves-saves)
	}
}

// At protocol 1 (no shared lock, no conditional write, no claims) a runner that sees another runner's record appear
// while it works is told once per process that the chain is shared without claims; the runner that saw only its own
// records is not.
func TestSource_Token_sharedWithoutClaimsWarnsOnce(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	srv := newRaceServer(clk.Now)
	st := newMemStore()
	st.protocol1, st.localLock = true, true
	a, b := machine(t, srv, st, clk.Now, 10*time.Second), machine(t, srv, st, clk.Now, 10*time.Second)
	seedChain(t, st, a)
	noClaims := func(r *Result) int {
		n := 0
		for _, w := range r.Warnings {
			if w.Kind == WarnNoClaims {
				n++
			}
		}
		return n
	}
	for round := 1; round <= 2; round++ {
		// A exchanges and is held before it saves; B's exchange of the same head is refused, and B adopts A's record.
		release, done := exchangeHeld(t, srv, a, Request{RefreshToken: "seed", MinValidity: 15 * time.Minute, Force: true})
		bDone := make(chan tokenResult, 1)
		go func() {
			r, err := b.Token(context.Background(), Request{RefreshToken: "seed", MinValidity: 15 * time.Minute, Force: true})
			bDone <- tokenResult{r, err}
		}()
		for srv.refused.Load() < int64(round) {
			time.Sleep(time.Millisecond)
		}
		close(release)
		gotA, gotB := <-done, <-bDone
		if gotA.err != nil || gotB.err != nil {
			t.Fatalf("round %d: got %v and %v; want both served", round, gotA.err, gotB.err)
		}
		if !gotB.r.Adopted {
			t.Fatalf("round %d: B got %v; want A's record adopted", round, gotB.r)
		}
		want := 0
		if round == 1 {
			want = 1
		}
		if noClaims(gotA.r) != 0 || noClaims(gotB.r) != want {
			t.Fatalf("round %d: WarnNoClaims: A %d, B %d; want 0 and %d", round, noClaims(gotA.r), noClaims(gotB.r), want)
		}
		clk.Advance(time.Minute)
	}
}

// A forced rotation (the rotate command) that waits for the chain's lock while another run exchanges the chain makes an
// exchange of its own afterwards: the other run's exchange may have been answered before the rotation began, and its
// tokens may be the ones suspected.
func TestSource_Token_forcedRotationExchangesAfterAnExchangeMadeWhileItWaited(t *testing.T) {
	t.Parallel()
	src, srv, st, clk := fixture(t)
	ctx := context.Background()
	seedChain(t, st, src)
	delay := make(chan struct{})
	srv.mu.Lock()
	srv.delay = delay
	srv.mu.Unlock()
	done := make(chan tokenResult, 1)
	go func() {
		r, err := src.Token(ctx, refreshReq(time.Minute))
		done <- tokenResult{r, err}
	}()
	for srv.exchanges.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	rotate, err := New(Options{Client: srv, Store: st, Now: clk.Now, Registry: NewRegistry(), RescueDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	loads := st.loads.Load()
	forced := make(chan tokenResult, 1)
	go func() {
		r, err := rotate.Token(ctx, Request{RefreshToken: "seed", MinValidity: time.Minute, Force: true})
		forced <- tokenResult{r, err}
	}()
	_ = loads
	time.Sleep(20 * time.Millisecond)
	close(delay)
	if got := <-done; got.err != nil {
		t.Fatal(got.err)
	}
	got := <-forced
	if got.err != nil || !got.r.Exchanged || got.r.Generation != 2 {
		t.Fatalf("got (%v, %v); want an exchange of its own after the one made while it waited (generation 2)", got.r, got.err)
	}
	if srv.exchanges.Load() != 2 {
		t.Fatalf("exchanges: got %d; want 2", srv.exchanges.Load())
	}
}
