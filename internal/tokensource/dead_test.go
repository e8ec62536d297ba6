package tokensource

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// countingExchanger counts every refresh call, refused or not.
type countingExchanger struct {
	Exchanger
	calls atomic.Int64
}

func (c *countingExchanger) Refresh(ctx context.Context, rt string, scopes []string) (*bipsync.Token, error) {
	c.calls.Add(1)
	return c.Exchanger.Refresh(ctx, rt, scopes)
}

// process is another provider process on the fixture's server and store, counting its calls to Bipsync.
func process(t *testing.T, srv *chainServer, st tokenstore.Store, clk *clock) (*Source, *countingExchanger) {
	t.Helper()
	ex := &countingExchanger{Exchanger: srv}
	src, err := New(Options{Client: ex, Store: st, Now: clk.Now, Registry: NewRegistry(), RescueDir: t.TempDir(),
		Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	return src, ex
}

// revokeChain makes the fake refuse the chain's head, as when the user withdraws consent.
func revokeChain(srv *chainServer) {
	srv.mu.Lock()
	srv.head = "withdrawn"
	srv.mu.Unlock()
}

// A chain Bipsync refused is recorded dead; every later request, in any process, fails at once with the death, calls
// Bipsync no more, and hands out no token, even one whose expiry has not passed.
func TestSource_Token_deadChainKnownEverywhere(t *testing.T) {
	t.Parallel()
	src, srv, st, clk := fixture(t)
	ctx := context.Background()
	if _, err := src.Token(ctx, refreshReq(time.Minute)); err != nil {
		t.Fatal(err)
	}
	before := st.recs[src.Key("seed")].Clone()
	revokeChain(srv)

	first, firstCalls := process(t, srv, st, clk)
	req := refreshReq(time.Minute)
	req.Force = true
	_, err := first.Token(ctx, req)
	var spent *ChainSpentError
	if !errors.As(err, &spent) || spent.Known || !spent.Recorded || spent.Death == nil || spent.Death.Cause != "revoked" {
		t.Fatalf("first: got %v (%+v); want a ChainSpentError that recorded the death", err, spent)
	}
	if _, known := KnownDead(err); known {
		t.Fatal("first: KnownDead; want a death learned by this request, not an earlier one")
	}
	if !bipsync.NeedsReauthorization(err) || firstCalls.calls.Load() != 1 {
		t.Fatalf("first: reauthorization %t, calls %d; want true and 1", bipsync.NeedsReauthorization(err), firstCalls.calls.Load())
	}
	rec := st.recs[src.Key("seed")]
	if rec.Dead == nil || rec.RefreshToken != before.RefreshToken || rec.Generation != before.Generation || rec.ID == before.ID {
		t.Fatalf("record after the refusal: %v dead %+v; want the same head and generation, a new ID, marked dead", rec, rec.Dead)
	}
	if !strings.Contains(rec.Dead.Detail, "Token has been revoked") || !strings.Contains(rec.Dead.By, "pid") || !rec.Dead.At.Equal(clk.Now()) {
		t.Fatalf("death: got %+v; want Bipsync's hint, the runner and the time", rec.Dead)
	}

	// The stored access token has not reached its expiry, but it was revoked with the head: it must not be handed out.
	for i, src := range []*Source{first, src} {
		later, calls := process(t, srv, st, clk)
		for _, s := range []*Source{later, src} {
			_, err := s.Token(ctx, refreshReq(time.Minute))
			if !errors.As(err, &spent) || !spent.Known || spent.Death == nil || spent.Death.Cause != "revoked" {
				t.Fatalf("later request %d: got %v; want the recorded death", i, err)
			}
		}
		if calls.calls.Load() != 0 {
			t.Fatalf("later request %d: %d calls to Bipsync; want 0", i, calls.calls.Load())
		}
		if d, ok := KnownDead(spent); !ok || d.Cause != "revoked" {
			t.Fatalf("KnownDead: got (%+v, %t); want the recorded death", d, ok)
		}
	}
	if firstCalls.calls.Load() != 1 {
		t.Fatalf("calls of the first process: got %d; want 1 (the refused one)", firstCalls.calls.Load())
	}
	if !strings.Contains(spent.Error(), "revoked") || !strings.Contains(spent.Error(), "pid") {
		t.Fatalf("error text: got %q; want the cause and the runner", spent.Error())
	}
	// A new seed is a new chain, alive.
	srv.mu.Lock()
	srv.head = "seed2"
	srv.mu.Unlock()
	fresh, _ := process(t, srv, st, clk)
	r2 := refreshReq(time.Minute)
	r2.RefreshToken = "seed2"
	if r, err := fresh.Token(ctx, r2); err != nil || !r.Exchanged {
		t.Fatalf("new seed: got (%v, %v); want an exchange", r, err)
	}
}

// raceStore saves another runner's rotation just before the first save that marks a chain dead, so that save meets a
// conflict.
type raceStore struct {
	*memStore
	newer *tokenstore.Record
	done  bool
}

func (r *raceStore) Save(ctx context.Context, key tokenstore.Key, seed string, rec *tokenstore.Record, replaces *tokenstore.Revision) error {
	if rec.Dead != nil && !r.done {
		r.done = true
		r.mu.Lock()
		r.recs[key] = r.newer.Clone()
		r.mu.Unlock()
	}
	return r.memStore.Save(ctx, key, seed, rec, replaces)
}

// A death that meets another runner's newer record is not recorded: the newer record is the chain, and it is used.
func TestSource_Token_deathMeetsNewerRecordAdopts(t *testing.T) {
	t.Parallel()
	src, srv, st, clk := fixture(t)
	ctx := context.Background()
	if _, err := src.Token(ctx, refreshReq(time.Minute)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour) // the stored token has expired: the next request exchanges
	cur := st.recs[src.Key("seed")]
	newer := cur.Clone()
	newer.RefreshToken, newer.AccessToken, newer.Generation, newer.ID = "rt-other", "at-other", cur.Generation+1, tokenstore.NewRecordID()
	newer.AccessTokenExpiresAt, newer.RotatedAt = clk.Now().Add(time.Hour), clk.Now().Add(time.Second) // rotated after the request began
	revokeChain(srv)
	rs := &raceStore{memStore: st, newer: newer}
	other, calls := process(t, srv, rs, clk)
	r, err := other.Token(ctx, refreshReq(time.Minute))
	if err != nil || r.AccessToken != "at-other" || !r.Adopted {
		t.Fatalf("got (%v, %v); want the other runner's record adopted", r, err)
	}
	if rec := st.recs[src.Key("seed")]; rec.Dead != nil || rec.RefreshToken != "rt-other" {
		t.Fatalf("record: %v dead %+v; want the other runner's, not dead", rec, rec.Dead)
	}
	if calls.calls.Load() != 1 {
		t.Fatalf("calls: got %d; want 1", calls.calls.Load())
	}
}

// A refused seed that a bipsync_refresh_grant's seed journal shows it exchanged says so, and when.
func TestSource_Token_seedConsumedByGrantNamed(t *testing.T) {
	t.Parallel()
	src, srv, st, clk := fixture(t)
	ctx := context.Background()
	grantAt := clk.Now().Add(-48 * time.Hour)
	journal := &tokenstore.Record{RefreshToken: "rt-grant", RotatedAt: grantAt, Generation: 1, ID: tokenstore.NewRecordID()}
	if err := st.Save(ctx, tokenstore.SeedJournalKey(srv.TokenURL(), srv.ClientID(), "seed"), "seed", journal, nil); err != nil {
		t.Fatal(err)
	}
	revokeChain(srv) // the grant's exchange revoked the seed
	_, err := src.Token(ctx, refreshReq(time.Minute))
	var spent *ChainSpentError
	if !errors.As(err, &spent) || !spent.ConsumedByGrantAt.Equal(grantAt) {
		t.Fatalf("got %v (%+v); want a ChainSpentError naming the grant's exchange at %s", err, spent, grantAt)
	}
	// The next run knows the death, and still names the grant.
	again, _ := process(t, srv, st, clk)
	_, err = again.Token(ctx, refreshReq(time.Minute))
	if !errors.As(err, &spent) || !spent.Known || !spent.ConsumedByGrantAt.Equal(grantAt) {
		t.Fatalf("again: got %v (%+v); want the recorded death naming the grant", err, spent)
	}
}
