package multimachine_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/multimachine"
	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/mototest"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
)

const (
	// machines share each chain; rounds are run on each, staggeredRounds in the staggered variant, whose rounds hold
	// the same checks as the others and seconds of waiting besides (the whole test is CPU-bound on two cores: each
	// machine's round costs about half a second of CPU).
	machines        = 8
	rounds          = 5
	staggeredRounds = 3
	// latency is what the fake server adds to every request.
	latency = 400 * time.Millisecond
	// rate is how much faster than real time the fleet's clock runs, so that the staggered variant's seconds pass
	// quickly. Between rounds the clock jumps dueJump, which leaves the access token handed out in the round before
	// under the default min_validity (15m) of its hour: every round is due for rotation.
	rate    = 10
	dueJump = 50 * time.Minute
	// revokePause is the fake's fork mode: every exchange pauses this long between its checks and its revocation.
	// Runners that start together arrive over a second or so: those within the pause of the first all succeed (the
	// chain forks), the later ones are refused, so the rounds take both ways.
	revokePause = 600 * time.Millisecond
)

// start is the fake time at which the fleet's clock starts.
var start = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

var (
	runnerOnce sync.Once
	runnerBin  string
	runnerErr  error
	runnerDir  string
)

func TestMain(m *testing.M) {
	helperMain()
	code := pgtest.Run(m)
	if runnerDir != "" {
		_ = os.RemoveAll(runnerDir)
	}
	os.Exit(code)
}

// fleet returns a fleet on the engine under test (TF_ACC_TERRAFORM_PATH, as for the provider's acceptance tests; else
// the cached OpenTofu build) with the runner built once per test binary.
func fleet(t *testing.T) *multimachine.Fleet {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fleet's store helper needs flock")
	}
	engine := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if engine == "" && os.Getenv("TF_ACC") == "" {
		t.Skip("runs with an engine: set TF_ACC_TERRAFORM_PATH (make testacc and make testacc-terraform do), or TF_ACC=1 for the cached OpenTofu")
	}
	if engine == "" {
		var err error
		if engine, err = tfcli.Tofu(context.Background(), tfcli.Config{Log: testWriter{t}}); err != nil {
			t.Fatalf("no engine: set TF_ACC_TERRAFORM_PATH, or let OpenTofu be built: %v", err)
		}
	}
	runnerOnce.Do(func() {
		// Shared by every test of the binary (t.TempDir would go with the first test); TestMain removes it.
		if runnerDir, runnerErr = os.MkdirTemp("", "multimachine-runner-"); runnerErr == nil { //nolint:usetesting // see above
			runnerBin, runnerErr = multimachine.BuildRunner(context.Background(), runnerDir)
		}
	})
	if runnerErr != nil {
		t.Fatal(runnerErr)
	}
	f, err := multimachine.NewFleet(multimachine.FleetConfig{Engine: engine, Runner: runnerBin, Dir: shortTempDir(t), Start: start, Rate: rate})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("engine %s; %d machines, %s latency", engine, machines, latency)
	return f
}

// shortTempDir is a temporary directory with a short path, removed when the test ends: t.TempDir's path, named after
// the test, is too long for the plugin sockets beneath a fleet's directory.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mm") //nolint:usetesting // see above
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// storeCase is a store the variants run on, made for one chain.
type storeCase struct {
	name string
	make func(t *testing.T) multimachine.Store
	// lockShared stores queue runners on a lock every runner reaches: no two exchange at once.
	lockShared bool
	// replayFree stores send a due head to Bipsync once, whichever runner gets there first: their lock or claim reaches
	// every runner. The simultaneous and staggered variants run them under replay detection, which punishes any second
	// attempt on a head by revoking the chain, and hold them to exactly 1 exchange attempt and 0 refused per round.
	// Other stores run those variants in strict mode, where a runner that loses a race is refused and adopts.
	replayFree bool
	// getPut stores have no conditional write (command_protocol 1): two runners can always send one head, so they
	// cannot be replay-free, and TestAccMultiMachine_replayDetectionGetPut checks what they report instead.
	getPut bool
}

// claimsLanded turns the claim-based stores on under replay detection: the conditional helper (command_protocol 2)
// here, and the s3 store once it is one of storeCases. Its value is multimachine.ClaimsInTokensource, the one switch
// for the tests and the benchmark: until tokensource claims a head before every exchange, the conditional helper's
// runners race for a head as get/put ones do, and under replay detection its subtests of
// TestAccMultiMachine_simultaneous and TestAccMultiMachine_staggered fail (refused attempts, dead tokens at use, a
// dead chain).
const claimsLanded = multimachine.ClaimsInTokensource

// storeCases are the stores of every variant. A store with claims is replayFree only with claimsLanded.
var storeCases = []storeCase{
	{name: "get/put helper", getPut: true, make: func(t *testing.T) multimachine.Store {
		return multimachine.DirStore("get/put helper", multimachine.HelperGetPut, t.TempDir())
	}},
	{name: "conditional helper", replayFree: claimsLanded, make: func(t *testing.T) multimachine.Store {
		return multimachine.DirStore("conditional helper", multimachine.HelperConditional, t.TempDir())
	}},
	{name: "postgres", lockShared: true, replayFree: true, make: func(t *testing.T) multimachine.Store {
		// A database of the test's own on the package's shared server; the subtest skips (loudly, and fails under CI)
		// when there is no PostgreSQL to start.
		db := pgtest.DatabaseName(pgtest.Start(t))
		srv := pgtest.Shared(t)
		return multimachine.PostgresStore("postgres", fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable",
			srv.Port(), pgtest.Superuser, db), srv.Password())
	}},
	{name: "s3", replayFree: claimsLanded, make: func(t *testing.T) multimachine.Store {
		// A moto server and a bucket of the subtest's own; the subtest skips (loudly, and fails under CI) when there is
		// no moto to start.
		endpoint := mototest.Start(t)
		st, err := multimachine.S3Store(t.Context(), "s3", endpoint, fmt.Sprintf("multimachine-%d", s3Buckets.Add(1)),
			"multimachine-access-key", "multimachine-secret-key")
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
}

// s3Buckets numbers the s3 store's buckets.
var s3Buckets atomic.Int64

// serverMode is how a chain's fake server treats exchanges of one head that overlap or repeat.
type serverMode int

const (
	// strict is league with its checks, revocation and issue in one step: of simultaneous exchanges of one head,
	// exactly one succeeds and the others are refused as revoked.
	strict serverMode = iota
	// fork is league without such a step (bipsynctest.Options.RevokePause): overlapping exchanges all succeed and
	// fork the chain.
	fork
	// replay is a server with replay detection (RFC 9700 section 4.14.2, bipsynctest.Options.ReplayDetection): a reuse
	// of a rotated head is refused and revokes the chain.
	replay
)

func (m serverMode) String() string {
	return [...]string{strict: "strict", fork: "fork", replay: "replay detection"}[m]
}

// hardest is the mode the simultaneous and staggered variants run a store in: replay detection for a replay-free
// store, strict mode for the others.
func hardest(sc storeCase) serverMode {
	if sc.replayFree {
		return replay
	}
	return strict
}

// newChain makes a chain of the store on a fleet of its own, its server in the mode.
func newChain(t *testing.T, sc storeCase, mode serverMode, adoptWait time.Duration) (*multimachine.Fleet, *multimachine.Chain) {
	t.Helper()
	f := fleet(t)
	st := sc.make(t)
	cfg := multimachine.ChainConfig{Name: st.Name, Store: st, Machines: machines, Latency: latency, AdoptWait: adoptWait,
		ReplayDetection: mode == replay}
	if mode == fork {
		cfg.RevokePause = revokePause
	}
	c, err := f.NewChain(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return f, c
}

// variant runs n rounds on a chain of each store, in parallel subtests, each with a fleet and a clock of its own,
// the server in the mode modeOf gives the store, and checks what must hold in every round and at the end. Unless the
// server forks, each round must cost exactly one successful exchange; check, when set, checks more of the chain at the
// end.
func variant(t *testing.T, title string, n int, modeOf func(storeCase) serverMode, o multimachine.RoundOptions,
	check func(t *testing.T, sc storeCase, c *multimachine.Chain)) {
	for _, sc := range storeCases {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			mode := modeOf(sc)
			// The provider's default adopt_wait (90s) in real time: the fleet's clock runs rate times as fast.
			f, c := newChain(t, sc, mode, 90*time.Second*rate)
			tb := &table{}
			// Logged when the subtest ends, however it ends: a round that stops it leaves its table.
			defer tb.log(t, fmt.Sprintf("%s (server: %s)", title, mode))
			run(t, f, c, tb, n, o, mode)
			want := int64(0)
			if mode != fork {
				want = int64(n)
			}
			alive(t, c, want)
			if sc.lockShared {
				if s := c.Server().Stats(); s.RefreshRefused != 0 || s.RefreshForked != 0 {
					t.Errorf("%d exchanges refused and %d forked; want none: runners queue on the store's lock", s.RefreshRefused, s.RefreshForked)
				}
			}
			if check != nil {
				check(t, sc, c)
			}
		})
	}
}

// table collects the per-round report.
type table struct {
	rows []string
}

func (tb *table) add(r multimachine.RoundResult) {
	tb.rows = append(tb.rows, fmt.Sprintf("| %-18s | %5d | %6.1fs | %5d/%d | %8d | %9d | %7d | %7d | %6d | %10d | %12d | %8d/%d |",
		r.Chain, r.Round, r.Wall.Seconds(), r.Machines-r.FailedApplies(), r.Machines, r.Attempts, r.Exchanges, r.Refused, r.Replays,
		r.Forked, r.LiveRefreshTokens, r.StoreWrites, r.Live(), len(r.Uses)))
}

func (tb *table) log(t *testing.T, title string) {
	t.Helper()
	t.Logf("%s\n| store              | round |   wall  | applies | attempts | exchanges | refused | replays | forked | live heads | store writes | live at use |\n"+
		"|--------------------|-------|---------|---------|----------|-----------|---------|---------|--------|------------|--------------|-------------|\n%s",
		title, strings.Join(tb.rows, "\n"))
}

// run runs n rounds on the chain, advancing the clock between them, adds them to tb, and checks what must hold in every
// round: every apply succeeds and every consumer's token is live at use; in strict and replay mode, exactly one
// successful exchange per round and, at its end, exactly one live refresh token at the server; under replay detection,
// exactly one exchange attempt and none refused. A round under replay detection that leaves the chain revoked ends the
// test.
func run(t *testing.T, f *multimachine.Fleet, c *multimachine.Chain, tb *table, n int, o multimachine.RoundOptions, mode serverMode) {
	t.Helper()
	for round := range n {
		if round > 0 {
			if err := f.Clock().Advance(dueJump); err != nil {
				t.Fatal(err)
			}
		}
		r := oneRound(t, f, c, o)
		tb.add(r)
		for _, fail := range append(r.Failed, r.Problems...) {
			t.Errorf("round %d: %s", r.Round, fail)
		}
		if len(r.Uses) != r.Machines {
			t.Errorf("round %d: %d consumers used a token; want %d", r.Round, len(r.Uses), r.Machines)
		}
		for _, u := range r.Uses {
			if u.Status != 200 {
				t.Errorf("round %d: a consumer's token was refused at use: status %d %s", r.Round, u.Status, u.Error)
			}
			if waited := u.Used.Sub(u.Started); waited < o.UseAfter {
				t.Errorf("round %d: a consumer used its token %s after the hand-out; want %s", r.Round, waited, o.UseAfter)
			}
		}
		switch {
		case mode != fork && r.Exchanges != 1:
			t.Errorf("round %d: %d successful exchanges; want exactly 1", r.Round, r.Exchanges)
		case r.Exchanges < 1:
			t.Errorf("round %d: no exchange; want the due chain rotated", r.Round)
		}
		if mode != fork && r.LiveRefreshTokens != 1 {
			t.Errorf("round %d: the server holds %d live refresh tokens of the chain at the end; want exactly 1", r.Round, r.LiveRefreshTokens)
		}
		if mode == replay && (r.Attempts != 1 || r.Refused != 0) {
			t.Errorf("round %d: %d exchange attempts, %d refused (%d replays that revoked the chain); want exactly 1 attempt and none refused",
				r.Round, r.Attempts, r.Refused, r.Replays)
		}
		if mode == replay && r.LiveRefreshTokens == 0 {
			// Every later round would only wait out adopt_wait on every machine and fail.
			t.Fatalf("round %d: the server revoked the chain; the rounds after it are not run", r.Round)
		}
	}
}

// oneRound runs one round of the chain.
func oneRound(t *testing.T, f *multimachine.Fleet, c *multimachine.Chain, o multimachine.RoundOptions) multimachine.RoundResult {
	t.Helper()
	results, err := f.Round(context.Background(), []*multimachine.Chain{c}, o)
	if err != nil {
		t.Fatal(err)
	}
	return results[0]
}

// alive checks that the chain's store holds a live head and a live access token, and when generation is not zero,
// that the record counts that many exchanges.
func alive(t *testing.T, c *multimachine.Chain, generation int64) {
	t.Helper()
	h, err := c.Head(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !h.RefreshLive || !h.AccessLive {
		t.Errorf("the stored head (generation %d) is live %t, its access token live %t; want both live", h.Generation, h.RefreshLive, h.AccessLive)
	}
	if generation != 0 && h.Generation != generation {
		t.Errorf("the stored record is generation %d; want %d, one exchange per round", h.Generation, generation)
	}
}

// TestAccMultiMachine_simultaneous: 8 machines that share only a token store run plan + apply of one ephemeral token
// at the same moment, in 5 rounds each due for rotation. Every apply succeeds, every consumer's token is live when it
// is used, each round costs exactly 1 successful exchange, and the chain is alive at the end with exactly 1 live
// refresh token at the server. Replay-free stores run against a server with replay detection and make exactly 1
// exchange attempt per round, none refused; the others run in strict mode.
func TestAccMultiMachine_simultaneous(t *testing.T) {
	variant(t, "8 machines at once, each round due", rounds, hardest, multimachine.RoundOptions{}, nil)
}

// TestAccMultiMachine_forkingServer: the same with the fake in fork mode, as league/oauth2-server behaves when
// exchanges of one head overlap: several of them succeed and the chain forks. The store still ends with one live head,
// and every consumer's token is live at use.
func TestAccMultiMachine_forkingServer(t *testing.T) {
	title := fmt.Sprintf("8 machines at once, each round due, the server forking exchanges that overlap (%s pause)", revokePause)
	variant(t, title, rounds, func(storeCase) serverMode { return fork }, multimachine.RoundOptions{}, func(t *testing.T, sc storeCase, c *multimachine.Chain) {
		if forks := c.Server().Stats().RefreshForked; forks == 0 && !sc.lockShared && !sc.replayFree {
			t.Error("no exchange forked the chain in any round: the variant proved nothing; lengthen the revoke pause")
		}
	})
}

// TestAccMultiMachine_staggered: machines start 2 s apart and each consumer uses its token 20 s after it was handed
// out (fake time), in 3 rounds each due: no token is revoked before its use. Replay-free stores run under replay
// detection, the others in strict mode.
func TestAccMultiMachine_staggered(t *testing.T) {
	o := multimachine.RoundOptions{Stagger: 2 * time.Second, UseAfter: 20 * time.Second}
	variant(t, "8 machines 2 s apart, each consumer using its token 20 s after the hand-out", staggeredRounds, hardest, o, nil)
}

// TestAccMultiMachine_replayDetectionGetPut: a store without a conditional write (command_protocol 1) cannot keep
// runners from sending one head twice, so against a server with replay detection the chain dies the first time runners
// race for it: what must hold is that the provider says so. The first round starts the chain with 8 machines at once:
// the server sees a reuse of the seed and revokes the chain, so that no refresh token of it is live at the end (a
// consumer's token may die between its hand-out and its use, and the round counts those). In the next round, due for
// rotation, every machine fails with the reauthorization diagnostic, nothing is exchanged and no token is handed out.
// A failure in either round names the reauthorization, never anything else.
func TestAccMultiMachine_replayDetectionGetPut(t *testing.T) {
	for _, sc := range storeCases {
		if !sc.getPut {
			continue
		}
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			// A short adopt_wait (10 s real): in the second round every runner waits it out for a record that never comes.
			f, c := newChain(t, sc, replay, 10*time.Second*rate)
			tb := &table{}
			defer func() {
				tb.log(t, "8 machines at once on a store without conditional writes (server: replay detection)")
			}()
			truthful := func(r multimachine.RoundResult) {
				t.Helper()
				for _, p := range r.Problems {
					t.Errorf("round %d: %s", r.Round, p)
				}
				for _, fail := range r.Failed {
					if !strings.Contains(fail, "Bipsync Reauthorization Required") {
						t.Errorf("round %d: a failure that does not name the reauthorization: %s", r.Round, fail)
					}
				}
				if r.LiveRefreshTokens != 0 {
					t.Errorf("round %d: the server holds %d live refresh tokens of the chain; want 0, the chain revoked", r.Round, r.LiveRefreshTokens)
				}
			}

			first := oneRound(t, f, c, multimachine.RoundOptions{})
			tb.add(first)
			if first.Replays == 0 {
				t.Fatalf("round 1: no runner reused the seed (%d attempts): the variant proved nothing", first.Attempts)
			}
			truthful(first)
			for _, u := range first.Uses {
				if u.Status != 200 && u.Status != 401 {
					t.Errorf("round 1: a consumer's use: status %d %s; want 200, or 401 for a token of the revoked chain", u.Status, u.Error)
				}
			}

			if err := f.Clock().Advance(dueJump); err != nil {
				t.Fatal(err)
			}
			second := oneRound(t, f, c, multimachine.RoundOptions{})
			tb.add(second)
			truthful(second)
			if second.FailedApplies() != machines || second.Exchanges != 0 || len(second.Uses) != 0 {
				t.Errorf("round 2: %d of %d machines failed, %d exchanges, %d tokens used; want every machine failed, nothing exchanged or used",
					second.FailedApplies(), machines, second.Exchanges, len(second.Uses))
			}
		})
	}
}
