package multimachine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/multimachine"
	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
)

const (
	// machines share each chain; rounds are run on each.
	machines = 8
	rounds   = 5
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
	code := m.Run()
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
	f, err := multimachine.NewFleet(multimachine.FleetConfig{Engine: engine, Runner: runnerBin, Dir: t.TempDir(), Start: start, Rate: rate})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("engine %s; %d machines per chain, %d rounds, %s latency", engine, machines, rounds, latency)
	return f
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// chains sets up one chain per store, each with its own fake server, on the fleet's clock.
func chains(t *testing.T, f *multimachine.Fleet, pause time.Duration) []*multimachine.Chain {
	t.Helper()
	dir := t.TempDir()
	for _, sub := range []string{"getput", "conditional"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	stores := []multimachine.Store{
		multimachine.DirStore("get/put helper", multimachine.HelperGetPut, filepath.Join(dir, "getput")),
		multimachine.DirStore("conditional helper", multimachine.HelperConditional, filepath.Join(dir, "conditional")),
	}
	var out []*multimachine.Chain
	for _, st := range stores {
		c, err := f.NewChain(multimachine.ChainConfig{Name: st.Name, Store: st, Machines: machines, Latency: latency,
			RevokePause: pause, AdoptWait: 90 * time.Second * rate})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		out = append(out, c)
	}
	return out
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

// run runs the rounds on the chains, advancing the clock between them, and checks what must hold in every round.
func run(t *testing.T, f *multimachine.Fleet, cs []*multimachine.Chain, o multimachine.RoundOptions, oneExchange bool) *table {
	t.Helper()
	tb := &table{}
	ctx := context.Background()
	for round := range rounds {
		if round > 0 {
			if err := f.Clock().Advance(dueJump); err != nil {
				t.Fatal(err)
			}
		}
		results, err := f.Round(ctx, cs, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			tb.add(r)
			for _, fail := range r.Failed {
				t.Errorf("%s, round %d: %s", r.Chain, r.Round, fail)
			}
			if len(r.Uses) != r.Machines {
				t.Errorf("%s, round %d: %d consumers used a token; want %d", r.Chain, r.Round, len(r.Uses), r.Machines)
			}
			for _, u := range r.Uses {
				if u.Status != 200 {
					t.Errorf("%s, round %d: a consumer's token was refused at use: status %d %s", r.Chain, r.Round, u.Status, u.Error)
				}
				if waited := u.Used.Sub(u.Started); waited < o.UseAfter {
					t.Errorf("%s, round %d: a consumer used its token %s after the hand-out; want %s", r.Chain, r.Round, waited, o.UseAfter)
				}
			}
			switch {
			case oneExchange && r.Exchanges != 1:
				t.Errorf("%s, round %d: %d successful exchanges; want exactly 1", r.Chain, r.Round, r.Exchanges)
			case r.Exchanges < 1:
				t.Errorf("%s, round %d: no exchange; want the due chain rotated", r.Chain, r.Round)
			}
		}
	}
	return tb
}

// alive checks that each chain's store holds one live head and a live access token, and when generation is not zero,
// that the record counts that many exchanges.
func alive(t *testing.T, cs []*multimachine.Chain, generation int64) {
	t.Helper()
	for _, c := range cs {
		h, err := c.Head(context.Background(), t.TempDir())
		if err != nil {
			t.Errorf("%s: %v", c.Name(), err)
			continue
		}
		if !h.RefreshLive || !h.AccessLive {
			t.Errorf("%s: the stored head (generation %d) is live %t, its access token live %t; want both live", c.Name(), h.Generation, h.RefreshLive, h.AccessLive)
		}
		if generation != 0 && h.Generation != generation {
			t.Errorf("%s: the stored record is generation %d; want %d, one exchange per round", c.Name(), h.Generation, generation)
		}
	}
}

// TestAccMultiMachine_simultaneous: 8 machines that share only a token store run plan + apply of one ephemeral token
// at the same moment, in 5 rounds each due for rotation. Every apply succeeds, every consumer's token is live when it
// is used, each round costs exactly 1 successful exchange, and the chain is alive at the end.
func TestAccMultiMachine_simultaneous(t *testing.T) {
	f := fleet(t)
	cs := chains(t, f, 0)
	tb := run(t, f, cs, multimachine.RoundOptions{}, true)
	tb.log(t, "8 machines at once, each round due:")
	alive(t, cs, rounds)
}

// TestAccMultiMachine_forkingServer: the same with the fake in fork mode, as league/oauth2-server behaves when
// exchanges of one head overlap: several of them succeed and the chain forks. The store still ends with one live head,
// and every consumer's token is live at use.
func TestAccMultiMachine_forkingServer(t *testing.T) {
	f := fleet(t)
	cs := chains(t, f, revokePause)
	tb := run(t, f, cs, multimachine.RoundOptions{}, false)
	tb.log(t, fmt.Sprintf("8 machines at once, each round due, the server forking exchanges that overlap (%s pause):", revokePause))
	alive(t, cs, 0)
	forks := 0
	for _, c := range cs {
		forks += c.Server().Stats().RefreshForked
	}
	if forks == 0 {
		t.Error("no exchange forked a chain in any round: the variant proved nothing; lengthen the revoke pause")
	}
}

// TestAccMultiMachine_staggered: machines start 2 s apart and each consumer uses its token 20 s after it was handed
// out (fake time): no token is revoked before its use.
func TestAccMultiMachine_staggered(t *testing.T) {
	f := fleet(t)
	cs := chains(t, f, 0)
	tb := run(t, f, cs, multimachine.RoundOptions{Stagger: 2 * time.Second, UseAfter: 20 * time.Second}, true)
	tb.log(t, "8 machines 2 s apart, each consumer using its token 20 s after the hand-out:")
	alive(t, cs, rounds)
}
