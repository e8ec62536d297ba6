// Package storetest is the conformance suite of token stores: the properties every backend and every store helper must
// have for the token source to keep a chain (conditional saves, a save that landed then failed, unreadable records left
// alone, claims, the largest record, one winner among concurrent saves, no secret in an error). Each backend's tests
// run it with Run; its own test shows that a store ignoring conditions fails it.
package storetest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// Backend is a store under test.
type Backend struct {
	// New returns a new, empty store, and another, which opens a further handle on the same records: another process
	// on this machine, or another machine, as the backend is used. Stores whose Traits have neither SharedLock nor
	// AtomicSave (a get/put helper) must return handles that share their lock, since only the lock keeps their saves
	// apart; the others should return handles that do not, so that the store's own conditional write is what is tested.
	New func(t testing.TB) (st tokenstore.Store, another func(t testing.TB) tokenstore.Store)
	// WriteRaw, when set, puts data in place of key's record, bypassing the store (a person editing it by hand).
	WriteRaw func(t testing.TB, st tokenstore.Store, key tokenstore.Key, data []byte)
	// Concurrency is how many handles save at once in the concurrent cases; 8 when zero.
	Concurrency int
}

// Case is one property of the suite.
type Case struct {
	Name string
	// Run checks the property against b, reporting to t: any testing.TB, so that the suite's own test can run it with
	// one that records failures instead of failing.
	Run func(t testing.TB, b Backend)
}

// Run runs every case against b, each as a subtest.
func Run(t *testing.T, b Backend) {
	t.Helper()
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) { c.Run(t, b) })
	}
}

// Cases returns the suite's cases.
func Cases() []Case {
	return []Case{
		{"ConditionalSave", conditionalSave},
		{"SaveThatLandedThenFailed", landedThenFailed},
		{"UnreadableRecordLeftAlone", unreadableLeftAlone},
		{"ClaimOfDeadRunner", claimOfDeadRunner},
		{"LargestRecord", largestRecord},
		{"ConcurrentSavesOneWinner", concurrentSaves},
	}
}

// Secrets of the suite's chains: errors must never show them, in any common encoding.
const (
	// Seed is the seed of the suite's chains.
	Seed         = "def50200storetest-seed-0123456789abcdef0123456789abcdef0123"
	refreshToken = "def50200storetest-refresh-fedcba9876543210fedcba9876543210"
	accessToken  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.storetest-access-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

// Key is the chain key of the suite's chain.
var Key = tokenstore.KeyFor("https://acme-api.bipsync.com/v1/oauth/token", "storetest-client", Seed)

// timeout bounds every store call of the suite.
const timeout = 2 * time.Minute

// record returns a record of generation gen of the suite's chain, with a fresh ID.
func record(gen int64) *tokenstore.Record {
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	return &tokenstore.Record{
		RefreshToken: fmt.Sprintf("%s-%d", refreshToken, gen), RefreshTokenIssuedAt: at,
		AccessToken: fmt.Sprintf("%s-%d", accessToken, gen), TokenType: "Bearer",
		AccessTokenExpiresAt: at.Add(time.Hour), Scopes: []string{"read"}, RotatedAt: at,
		Generation: gen, ID: tokenstore.NewRecordID(),
	}
}

// checker wraps the calls of one case: every error is checked for secrets.
type checker struct {
	t testing.TB
}

// err checks err for secrets and returns it.
func (c checker) err(what string, err error) error {
	c.t.Helper()
	if err != nil {
		NoSecret(c.t, what+" error", err.Error())
	}
	return err
}

// NoSecret reports a failure when text holds the suite's seed or a token of its chain, in clear or encoded.
func NoSecret(t testing.TB, what, text string) {
	t.Helper()
	for _, s := range []string{Seed, refreshToken, accessToken} {
		forms := []string{s, base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s)),
			fmt.Sprintf("%x", s), s[len(s)/2-8 : len(s)/2+8]}
		for _, f := range forms {
			if strings.Contains(text, f) {
				t.Errorf("%s holds a secret (%q): %s", what, f, text)
			}
		}
	}
}

func (c checker) lock(st tokenstore.Store) func() {
	c.t.Helper()
	ctx, cancel := contextFor(c.t)
	defer cancel()
	unlock, err := st.Lock(ctx, Key)
	if c.err("lock", err) != nil {
		c.t.Fatalf("lock: %v", err)
	}
	return func() {
		if err := unlock(); err != nil {
			c.t.Errorf("unlock: %v", c.err("unlock", err))
		}
	}
}

// save saves rec in place of replaces under the chain's lock.
func (c checker) save(st tokenstore.Store, rec *tokenstore.Record, replaces *tokenstore.Revision) error {
	c.t.Helper()
	defer c.lock(st)()
	ctx, cancel := contextFor(c.t)
	defer cancel()
	return c.err("save", st.Save(ctx, Key, Seed, rec, replaces))
}

// mustSave is save that fails the case on an error.
func (c checker) mustSave(st tokenstore.Store, rec *tokenstore.Record, replaces *tokenstore.Revision) {
	c.t.Helper()
	if err := c.save(st, rec, replaces); err != nil {
		c.t.Fatalf("save of generation %d over %s: got %v; want nil", rec.Generation, replaces.String(), err)
	}
}

// conflict fails the case unless err is an ErrConflict.
func (c checker) conflict(what string, err error) {
	c.t.Helper()
	if !errors.Is(err, tokenstore.ErrConflict) {
		c.t.Errorf("%s: got %v; want an ErrConflict", what, err)
	}
}

// load loads the chain's record with seed.
func (c checker) load(st tokenstore.Store, seed string) (*tokenstore.Record, error) {
	c.t.Helper()
	ctx, cancel := contextFor(c.t)
	defer cancel()
	rec, err := st.Load(ctx, Key, seed)
	return rec, c.err("load", err)
}

// holds fails the case unless the store holds want.
func (c checker) holds(st tokenstore.Store, want *tokenstore.Record) {
	c.t.Helper()
	got, err := c.load(st, Seed)
	switch {
	case err != nil:
		c.t.Fatalf("load: got %v; want generation %d", err, want.Generation)
	case got == nil:
		c.t.Fatalf("load: got no record; want generation %d", want.Generation)
	case got.Revision() != want.Revision() || got.RefreshToken != want.RefreshToken || got.AccessToken != want.AccessToken:
		c.t.Fatalf("load: got revision %s; want %s", got.Revision().Ptr().String(), want.Revision().Ptr().String())
	}
}

// A save names the record it replaces and is refused when the store holds another: a new chain when one exists, a
// stale writer, the other head of a fork.
func conditionalSave(t testing.TB, b Backend) {
	c := checker{t}
	st, _ := b.New(t)
	if rec, err := c.load(st, Seed); rec != nil || err != nil {
		t.Fatalf("a new store: got (%v, %v); want no record", rec, err)
	}
	g1 := record(1)
	c.mustSave(st, g1, nil)
	c.holds(st, g1)
	c.conflict("a new chain over an existing one", c.save(st, record(1), nil))
	c.holds(st, g1)
	g2 := record(2)
	c.mustSave(st, g2, g1.Revision().Ptr())
	c.conflict("a stale writer (generation 2 over generation 1, which the store no longer holds)", c.save(st, record(2), g1.Revision().Ptr()))
	c.conflict("a save over a revision the store never held", c.save(st, record(3), record(2).Revision().Ptr()))
	c.holds(st, g2)
}

// A save that landed although it reported a failure is repeated by the caller: the repeat succeeds, and a repeat after
// another runner saved a newer record is refused, never putting the store back.
func landedThenFailed(t testing.TB, b Backend) {
	c := checker{t}
	st, another := b.New(t)
	g1 := record(1)
	c.mustSave(st, g1, nil)
	g2 := record(2)
	c.mustSave(st, g2, g1.Revision().Ptr())
	if err := c.save(st, g2, g1.Revision().Ptr()); err != nil {
		t.Errorf("repeating a save that landed: got %v; want nil", err)
	}
	c.holds(st, g2)
	g3 := record(3)
	c.mustSave(another(t), g3, g2.Revision().Ptr())
	c.conflict("repeating a save that landed, after another runner saved a newer record", c.save(st, g2, g1.Revision().Ptr()))
	c.holds(st, g3)
	// A first record that landed, repeated.
	st2, _ := b.New(t)
	c.mustSave(st2, g1, nil)
	if err := c.save(st2, g1, nil); err != nil {
		t.Errorf("repeating a first save that landed: got %v; want nil", err)
	}
}

// A record the seed does not open is an ErrCorrupt that names no secret, and saves never replace it: only a person can
// decide it is dead.
func unreadableLeftAlone(t testing.TB, b Backend) {
	c := checker{t}
	st, _ := b.New(t)
	g1 := record(1)
	c.mustSave(st, g1, nil)
	if _, err := c.load(st, Seed+"-another"); !errors.Is(err, tokenstore.ErrCorrupt) {
		t.Errorf("load with another seed: got %v; want an ErrCorrupt", err)
	}
	c.holds(st, g1)
	if b.WriteRaw == nil {
		return
	}
	garbage := []byte("not a record " + strings.Repeat("x", 40) + "\n")
	b.WriteRaw(t, st, Key, garbage)
	if _, err := c.load(st, Seed); !errors.Is(err, tokenstore.ErrCorrupt) {
		t.Errorf("load of garbage: got %v; want an ErrCorrupt", err)
	}
	for _, replaces := range []*tokenstore.Revision{nil, g1.Revision().Ptr()} {
		err := c.save(st, record(2), replaces)
		if err == nil {
			t.Errorf("save over an unreadable record (replacing %s): got nil; want a refusal", replaces.String())
		}
	}
	if _, err := c.load(st, Seed); !errors.Is(err, tokenstore.ErrCorrupt) {
		t.Errorf("after the saves: got %v; want the unreadable record left alone (ErrCorrupt)", err)
	}
}

// claim returns a claim of head.
func claim(head tokenstore.Revision, holder string) *tokenstore.Claim {
	return &tokenstore.Claim{ID: tokenstore.NewRecordID(), Head: head, Holder: holder,
		At: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC), TTL: time.Minute}
}

// A claim is put conditionally; a claim whose holder died is replaced only by naming it, and of several runners taking
// it over at once exactly one wins.
func claimOfDeadRunner(t testing.TB, b Backend) {
	c := checker{t}
	st, another := b.New(t)
	if !st.Traits().Claims {
		t.Skip("the store does not claim (Traits.Claims is false)")
	}
	cl, ok := st.(tokenstore.Claimer)
	if !ok {
		t.Fatalf("Traits.Claims is true, but %T does not implement Claimer", st)
	}
	g1 := record(1)
	c.mustSave(st, g1, nil)
	ctx, cancel := contextFor(t)
	defer cancel()
	if got, err := cl.LoadClaim(ctx, Key, Seed); got != nil || c.err("load claim", err) != nil {
		t.Fatalf("no claim yet: got (%v, %v); want (nil, nil)", got, err)
	}
	dead := claim(g1.Revision(), "dead-runner")
	if err := c.err("put claim", cl.PutClaim(ctx, Key, Seed, dead, nil)); err != nil {
		t.Fatalf("first claim: got %v; want nil", err)
	}
	c.conflict("a second claim in place of none", c.err("put claim", cl.PutClaim(ctx, Key, Seed, claim(g1.Revision(), "late"), nil)))
	got, err := cl.LoadClaim(ctx, Key, Seed)
	if c.err("load claim", err) != nil || got == nil || got.ID != dead.ID || got.Head != dead.Head || got.Holder != dead.Holder {
		t.Fatalf("load claim: got (%+v, %v); want the dead runner's", got, err)
	}
	c.holds(st, g1) // a claim never touches the record
	c.conflict("a take-over naming another claim", c.err("put claim",
		cl.PutClaim(ctx, Key, Seed, claim(g1.Revision(), "wrong"), claim(g1.Revision(), "never"))))

	// Runners on other machines find the claim expired and take it over at once, each naming it: one wins.
	n := b.concurrency()
	winners := make([]*tokenstore.Claim, n)
	errs := make([]error, n)
	handles := make([]tokenstore.Claimer, n)
	for i := range handles {
		h, ok := another(t).(tokenstore.Claimer)
		if !ok {
			t.Fatal("another handle does not implement Claimer")
		}
		handles[i] = h
	}
	var wg sync.WaitGroup
	for i := range n {
		winners[i] = claim(g1.Revision(), fmt.Sprintf("runner-%d", i))
		wg.Go(func() { errs[i] = handles[i].PutClaim(ctx, Key, Seed, winners[i], dead) })
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case c.err("put claim", err) == nil && won >= 0:
			t.Errorf("take-overs: runners %d and %d both took the claim over; want exactly one", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, tokenstore.ErrConflict):
			t.Errorf("take-over by runner %d: got %v; want nil or an ErrConflict", i, err)
		}
	}
	if won < 0 {
		t.Fatal("take-overs: nobody took the claim over; want exactly one")
	}
	got, err = cl.LoadClaim(ctx, Key, Seed)
	if c.err("load claim", err) != nil || got == nil || got.ID != winners[won].ID {
		t.Errorf("after the take-overs: got (%+v, %v); want the winner's claim", got, err)
	}
	// The winner's put, repeated (it landed, then reported a failure), succeeds.
	if err := c.err("put claim", handles[won].PutClaim(ctx, Key, Seed, winners[won], dead)); err != nil {
		t.Errorf("repeating the winning take-over: got %v; want nil", err)
	}
}

// The largest record an accepted token answer can make (Bipsync's answer is read up to 1 MiB) is stored and read back
// whole.
func largestRecord(t testing.TB, b Backend) {
	c := checker{t}
	st, _ := b.New(t)
	big := record(1)
	// A 1 MiB answer is mostly its two tokens; each byte of a token that JSON escapes takes six in the record. Take
	// half the answer for each token, of characters JSON escapes.
	half := (1 << 20) / 2
	big.AccessToken = accessToken + strings.Repeat("<", half-len(accessToken))
	big.RefreshToken = refreshToken + strings.Repeat(">", half-len(refreshToken))
	c.mustSave(st, big, nil)
	got, err := c.load(st, Seed)
	if err != nil || got == nil || got.AccessToken != big.AccessToken || got.RefreshToken != big.RefreshToken {
		t.Fatalf("load of the largest record: got error %v; want it whole", err)
	}
	next := record(2)
	c.mustSave(st, next, big.Revision().Ptr())
	c.holds(st, next)
}

// Several runners save the successor of one record at once, each through its own handle: exactly one wins, the others
// are refused with ErrConflict, and the store holds the winner's record.
func concurrentSaves(t testing.TB, b Backend) {
	c := checker{t}
	st, another := b.New(t)
	g1 := record(1)
	c.mustSave(st, g1, nil)
	n := b.concurrency()
	handles := make([]tokenstore.Store, n)
	for i := range handles {
		handles[i] = another(t)
	}
	recs := make([]*tokenstore.Record, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		recs[i] = record(2)
		wg.Go(func() {
			<-start
			ctx, cancel := contextFor(t)
			defer cancel()
			unlock, err := handles[i].Lock(ctx, Key)
			if err != nil {
				errs[i] = err
				return
			}
			errs[i] = errors.Join(handles[i].Save(ctx, Key, Seed, recs[i], g1.Revision().Ptr()), unlock())
		})
	}
	close(start)
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case c.err("concurrent save", err) == nil && won >= 0:
			t.Errorf("runners %d and %d both saved in place of generation 1; want exactly one", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, tokenstore.ErrConflict):
			t.Errorf("runner %d: got %v; want nil or an ErrConflict", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no runner saved; want exactly one")
	}
	c.holds(st, recs[won])
}

func (b Backend) concurrency() int {
	if b.Concurrency > 0 {
		return b.Concurrency
	}
	return 8
}

// contextFor bounds a store call of the suite.
func contextFor(t testing.TB) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), timeout)
}
