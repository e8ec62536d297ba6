package multimachine_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/multimachine"
	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
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
	// claims stores write conditionally without such a lock: runners claim a head before exchanging it, so no two
	// send it to Bipsync.
	claims bool
}

var storeCases = []storeCase{
	{name: "get/put helper", make: func(t *testing.T) multimachine.Store {
		return multimachine.DirStore("get/put helper", multimachine.HelperGetPut, t.TempDir())
	}},
	{name: "conditional helper", claims: true, make: func(t *testing.T) multimachine.Store {
		return multimachine.DirStore("conditional helper", multimachine.HelperConditional, t.TempDir())
	}},
	{name: "postgres", lockShared: true, make: func(t *testing.T) multimachine.Store {
		// A database of the test's own on the package's shared server; the subtest skips (loudly, and fails under CI)
		// when there is no PostgreSQL to start.
		db := pgtest.DatabaseName(pgtest.Start(t))
		srv := pgtest.Shared(t)
		return multimachine.PostgresStore("postgres", fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable",
			srv.Port(), pgtest.Superuser, db), srv.Password())
	}},
}

// variant runs n rounds on a chain of each store, in parallel subtests, each with a fleet and a clock of its own,
// and checks what must hold in every round and at the end. oneExchange asks for exactly one successful exchange per
// round (a server that does not fork); check, when set, checks more of the chain at the end.
func variant(t *testing.T, title string, n int, pause time.Duration, o multimachine.RoundOptions, oneExchange bool,
	check func(t *testing.T, sc storeCase, c *multimachine.Chain)) {
	for _, sc := range storeCases {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			f := fleet(t)
			st := sc.make(t)
			c, err := f.NewChain(multimachine.ChainConfig{Name: st.Name, Store: st, Machines: machines, Latency: latency,
				// The provider's default adopt_wait (90s) in real time: the fleet's clock runs rate times as fast.
				RevokePause: pause, AdoptWait: 90 * time.Second * rate})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			tb := run(t, f, c, n, o, oneExchange)
			tb.log(t, title)
			want := int64(0)
			if oneExchange {
				want = int64(n)
			}
			alive(t, c, want)
			switch s := c.Server().Stats(); {
			case sc.lockShared && (s.RefreshRevoked != 0 || s.RefreshForked != 0):
				t.Errorf("%d exchanges refused and %d forked; want none: runners queue on the store's lock", s.RefreshRevoked, s.RefreshForked)
			case sc.claims && (s.RefreshRevoked != 0 || s.RefreshForked != 0):
				t.Errorf("%d exchanges refused and %d forked; want none: runners claim a head before exchanging it", s.RefreshRevoked, s.RefreshForked)
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
	tb.rows = append(tb.rows, fmt.Sprintf("| %-18s | %5d | %6.1fs | %5d/%d | %9d | %7d | %6d | %8d/%d |",
		r.Chain, r.Round, r.Wall.Seconds(), r.Machines-len(r.Failed), r.Machines, r.Exchanges, r.Refused, r.Forked, r.Live(), len(r.Uses)))
}

func (tb *table) log(t *testing.T, title string) {
	t.Helper()
	t.Logf("%s\n| store              | round |   wall  | applies | exchanges | refused | forked | live at use |\n"+
		"|--------------------|-------|---------|---------|-----------|---------|--------|-------------|\n%s",
		title, strings.Join(tb.rows, "\n"))
}

// run runs n rounds on the chain, advancing the clock between them, and checks what must hold in every round.
func run(t *testing.T, f *multimachine.Fleet, c *multimachine.Chain, n int, o multimachine.RoundOptions, oneExchange bool) *table {
	t.Helper()
	tb := &table{}
	ctx := context.Background()
	for round := range n {
		if round > 0 {
			if err := f.Clock().Advance(dueJump); err != nil {
				t.Fatal(err)
			}
		}
		results, err := f.Round(ctx, []*multimachine.Chain{c}, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			tb.add(r)
			for _, fail := range r.Failed {
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
			case oneExchange && r.Exchanges != 1:
				t.Errorf("round %d: %d successful exchanges; want exactly 1", r.Round, r.Exchanges)
			case r.Exchanges < 1:
				t.Errorf("round %d: no exchange; want the due chain rotated", r.Round)
			}
		}
	}
	return tb
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
// is used, each round costs exactly 1 successful exchange, and the chain is alive at the end.
func TestAccMultiMachine_simultaneous(t *testing.T) {
	variant(t, "8 machines at once, each round due:", rounds, 0, multimachine.RoundOptions{}, true, nil)
}

// TestAccMultiMachine_forkingServer: the same with the fake in fork mode, as league/oauth2-server behaves when
// exchanges of one head overlap: several of them succeed and the chain forks. The store still ends with one live head,
// and every consumer's token is live at use.
func TestAccMultiMachine_forkingServer(t *testing.T) {
	title := fmt.Sprintf("8 machines at once, each round due, the server forking exchanges that overlap (%s pause):", revokePause)
	variant(t, title, rounds, revokePause, multimachine.RoundOptions{}, false, func(t *testing.T, sc storeCase, c *multimachine.Chain) {
		if forks := c.Server().Stats().RefreshForked; forks == 0 && !sc.lockShared && !sc.claims {
			t.Error("no exchange forked the chain in any round: the variant proved nothing; lengthen the revoke pause")
		}
	})
}

// TestAccMultiMachine_staggered: machines start 2 s apart and each consumer uses its token 20 s after it was handed
// out (fake time), in 3 rounds each due: no token is revoked before its use.
func TestAccMultiMachine_staggered(t *testing.T) {
	o := multimachine.RoundOptions{Stagger: 2 * time.Second, UseAfter: 20 * time.Second}
	variant(t, "8 machines 2 s apart, each consumer using its token 20 s after the hand-out:", staggeredRounds, 0, o, true, nil)
}
