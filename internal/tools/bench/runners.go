package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/multimachine"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/mototest"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
)

const (
	// runnersLatency is what the fake adds to every request in the runners section, as in the multi-machine test.
	runnersLatency = 400 * time.Millisecond
	// runnersRate is how much faster than real time the fleet's clock runs; runnersAdoptWait keeps the provider's
	// default adopt_wait (90 s) in real time at that rate.
	runnersRate      = 10
	runnersAdoptWait = 90 * time.Second * runnersRate
	// runnersDueJump moves the clock between rounds so that the token the round before handed out is under the
	// default min_validity: every measured round is due for rotation.
	runnersDueJump = 50 * time.Minute
	// runnersWallTarget bounds a due round of 8 runners on one chain of a store with a shared lock, as a multiple of
	// one runner's.
	runnersWallTarget = 1.5
)

// runnerStore is a store the runners section measures.
type runnerStore struct {
	name string
	// make returns the store for one chain; dir is a directory of the chain's own.
	make func(dir string) (multimachine.Store, error)
	// sharedLock stores queue runners on a lock in the store: the wall-time target applies to them.
	sharedLock bool
	// getPut stores have no conditional write: the refused-attempts target applies to them.
	getPut bool
	// replayFree stores send a due head to Bipsync once (their lock or claim reaches every runner): their rounds run
	// against a server with replay detection, held to exactly 1 attempt and 0 refused per round. The others run in
	// strict mode, and a second, shorter run under replay detection shows what it does to them.
	replayFree bool
}

// runners measures K runners (separate machines: each its own HOME, TMPDIR and cache, only the store shared) that run
// plan + apply of one ephemeral token on one chain at the same moment, in rounds that are each due for rotation,
// through the real engine. It reports the wall time of a due round next to one runner's and next to K runners on K
// separate chains (what the machine's CPUs cost K runners whatever they share), the exchange attempts the server
// refused (each one a runner that lost a race for the head and adopted the winner's record), and what the same runners
// do against a server with replay detection (RFC 9700 section 4.14.2): refused attempts, and the chain's live refresh
// tokens at the end.
func (b *bench) runners(ctx context.Context, w io.Writer) error {
	bin, err := multimachine.BuildRunner(ctx, filepath.Join(b.tmp, "runner"))
	if err != nil {
		return err
	}
	fleetDir := filepath.Join(b.tmp, "fleet")
	if err := os.MkdirAll(fleetDir, 0o700); err != nil {
		return err
	}
	fleet, err := multimachine.NewFleet(multimachine.FleetConfig{Engine: b.eng.bin, Runner: bin, Dir: fleetDir,
		Start: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), Rate: runnersRate})
	if err != nil {
		return err
	}
	stores := []runnerStore{
		{name: "command, get/put helper (protocol 1)", getPut: true, make: dirStore(multimachine.HelperGetPut)},
		{name: "command, conditional helper (protocol 2)", replayFree: multimachine.ClaimsInTokensource, make: dirStore(multimachine.HelperConditional)},
	}
	// A PostgreSQL server of the benchmark's own, as the postgres store's tests start one (make postgres installs it).
	pg, err := pgtest.Launch()
	pgNote := ""
	if err != nil {
		pgNote = "\nPostgreSQL was not measured: " + err.Error() + ".\n"
		fmt.Fprintf(b.log, "    postgres: not measured: %v\n", err)
		b.addTarget("Runners: postgres, 8 on one chain", fmt.Sprintf("0 refused attempts, ≤ %.1f× one runner's due round", runnersWallTarget),
			"not measured: "+err.Error(), false)
	} else {
		defer pg.Remove()
		// Every chain in the server's own database, each under its own key; the password reaches each machine in
		// PGPASSWORD.
		connStr := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=disable", pg.Port(), pgtest.Superuser)
		stores = append(stores, runnerStore{name: "postgres", sharedLock: true, replayFree: true, make: func(string) (multimachine.Store, error) {
			return multimachine.PostgresStore("postgres", connStr, pg.Password()), nil
		}})
	}

	// An S3 protocol server of the benchmark's own, as the s3 store's tests start one (make moto finds it).
	if moto, err := mototest.Launch(); err != nil {
		fmt.Fprintf(b.log, "    s3: not measured: %v\n", err)
	} else {
		defer moto.Stop()
		var buckets int
		stores = append(stores, runnerStore{name: "s3", replayFree: multimachine.ClaimsInTokensource, make: func(string) (multimachine.Store, error) {
			buckets++
			return multimachine.S3Store(ctx, "s3", moto.Endpoint(), fmt.Sprintf("bench-%d", buckets), "bench-access-key", "bench-secret-key")
		}})
	}

	t := newTable("Store", "Runners", "server", "due round: wall", "÷ 1 runner", "K separate chains: wall", "shared ÷ separate", "CPU",
		"attempts", "exchanges", "refused attempts", "store writes", "failed applies", "replay detection: refused attempts",
		"replay detection: live refresh tokens")
	for _, st := range stores {
		var base time.Duration
		for _, k := range b.opts.runnerCounts {
			shared, err := b.runnerRounds(ctx, fleet, st, k, true, st.replayFree)
			if err != nil {
				return err
			}
			mode, replayed := "strict", shared
			if st.replayFree {
				mode = "replay detection"
			} else if replayed, err = b.runnerRounds(ctx, fleet, st, k, true, true); err != nil {
				return err
			}
			if k == 1 {
				base = shared.wall
			}
			sep, vsSep, sepWall := "(the same)", "1.00×", shared.wall
			if k > 1 {
				separate, err := b.runnerRounds(ctx, fleet, st, k, false, st.replayFree)
				if err != nil {
					return err
				}
				sep, vsSep, sepWall = spread(separate.walls), times(ratio(shared.wall, separate.wall)), separate.wall
			}
			r := ratio(shared.wall, base)
			t.add(st.name, fmt.Sprint(k), mode, spread(shared.walls), times(r), sep, vsSep, seconds(shared.cpu), joinInts(shared.attempts),
				joinInts(shared.exchanges), joinInts(shared.refused), joinInts(shared.writes), fmt.Sprint(shared.failed),
				replayed.replayRefused(), replayed.liveAtEnd())
			fmt.Fprintf(b.log, "    %s, %d runners (%s): due round %s (%s), attempts %v, refused %v, writes %v, failed %d; "+
				"under replay detection refused %s, live refresh tokens %s\n", st.name, k, mode, seconds(shared.wall), times(r),
				shared.attempts, shared.refused, shared.writes, shared.failed, replayed.replayRefused(), replayed.liveAtEnd())
			if st.getPut {
				b.addTarget(fmt.Sprintf("Runners: %s, %d on one chain", st.name, k), fmt.Sprintf("≤ %d refused attempts per round, no failed apply", k-1),
					fmt.Sprintf("refused %s per round, %d failed", joinInts(shared.refused), shared.failed), slices.Max(shared.refused) <= k-1 && shared.failed == 0)
			}
			if st.replayFree {
				b.addTarget(fmt.Sprintf("Runners: %s, %d on one chain, replay detection", st.name, k),
					"1 attempt and 0 refused per round, 1 live refresh token at the end, no failed apply",
					fmt.Sprintf("attempts %s, refused %s per round, %s live, %d failed", joinInts(shared.attempts), joinInts(shared.refused),
						shared.liveAtEnd(), shared.failed),
					slices.Max(shared.attempts) == 1 && slices.Min(shared.attempts) == 1 && slices.Max(shared.refused) == 0 &&
						shared.live == 1 && shared.failed == 0)
			}
			if st.sharedLock && k == b.opts.runnerCounts[len(b.opts.runnerCounts)-1] {
				b.addTarget(fmt.Sprintf("Runners: %s, %d on one chain", st.name, k), fmt.Sprintf("0 refused attempts, ≤ %.1f× one runner's due round", runnersWallTarget),
					fmt.Sprintf("refused %s; %s", joinInts(shared.refused), times(r)), slices.Max(shared.refused) == 0 && r <= runnersWallTarget)
				// The same bound against K runners on K separate chains: what sharing the chain costs, without the
				// cost of K runners' CPU on this machine.
				b.addTarget(fmt.Sprintf("Runners: %s, %d on one chain, next to %d on separate chains", st.name, k, k),
					fmt.Sprintf("≤ %.1f× their due round", runnersWallTarget), fmt.Sprintf("%s (%s vs %s)", vsSep, seconds(shared.wall), seconds(sepWall)),
					ratio(shared.wall, sepWall) <= runnersWallTarget)
			}
		}
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "### Runners on one chain")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "K runners, each a machine of its own (its own HOME, TMPDIR and cache directory; only the token store is shared), "+
		"run `plan -out` + `apply` of one ephemeral token at the same moment; the fake server adds %s to every request. "+
		"A first round starts the chain; then %d rounds, each due for rotation (the clock moves past the token's min_validity "+
		"between rounds): median (min–max) of their wall times, first start to last end. *K separate chains* is the same number "+
		"of runners, each exchanging a chain of its own: what K runners cost this machine's %d CPUs without sharing anything; "+
		"*shared ÷ separate* is what sharing one chain adds to that. "+
		"CPU is user + "+
		"system time of every engine, provider, store helper and consumer process, per due round (median). Attempts (refresh "+
		"requests: each sent the head to the server), exchanges (successful ones) and refused attempts (exchanges the server "+
		"refused: in strict mode a runner that lost the race for the head, waited for the winner's record and adopted it) "+
		"are per due round, counted by the fake; store writes are the writes that landed in the store per due round (the "+
		"helper's puts, postgres's rows inserted or updated), the record's and its claim's. *Server* is the fake's mode for "+
		"those rounds: replay detection (a reuse of a rotated refresh token revokes the chain, as RFC 9700 section 4.14.2 "+
		"recommends) for a store whose lock or claim reaches every runner, strict (a reuse is refused, nothing else) for "+
		"the others. The last two columns are the same K runners against a server with replay detection: refused attempts "+
		"per due round, and the chain's live refresh tokens at the server at the end (1: alive; 0: revoked). A strict "+
		"store's chain is revoked the first time two runners send one head; its run then stops, as every later round only "+
		"fails (\"revoked in the start round\": the runners' first exchanges of the seed raced).\n\n",
		runnersLatency, b.opts.runnerRounds, runtime.NumCPU())
	t.write(w)
	fmt.Fprint(w, pgNote)
	return nil
}

// runnerResult is what the due rounds of one configuration did.
type runnerResult struct {
	walls     []time.Duration
	wall, cpu time.Duration // medians
	attempts  []int
	exchanges []int
	refused   []int
	writes    []int
	failed    int
	// live is the chain's live refresh tokens at the server at the end (summed over the chains), and revokedIn the round
	// after which a chain had none (-1: never; 0: the start round).
	live      int
	revokedIn int
}

// replayRefused is the refused attempts per due round of a run under replay detection, or the round that revoked the
// chain.
func (r runnerResult) replayRefused() string {
	switch r.revokedIn {
	case -1:
		return joinInts(r.refused)
	case 0:
		return "revoked in the start round"
	}
	return fmt.Sprintf("%s; revoked in round %d", joinInts(r.refused), r.revokedIn)
}

// liveAtEnd is the live refresh tokens at the end.
func (r runnerResult) liveAtEnd() string { return fmt.Sprint(r.live) }

// runnerRounds runs a start round and the due rounds of k runners: on one chain (shared), or each on a chain of its
// own; the server with replay detection or not. Under replay detection, the run stops after a round that leaves a chain
// with no live refresh token: every later round would only wait out adopt_wait and fail.
func (b *bench) runnerRounds(ctx context.Context, fleet *multimachine.Fleet, st runnerStore, k int, shared, replay bool) (runnerResult, error) {
	var chains []*multimachine.Chain
	defer func() {
		for _, c := range chains {
			c.Close()
		}
	}()
	perChain, nChains := k, 1
	if !shared {
		perChain, nChains = 1, k
	}
	for range nChains {
		b.seq++
		dir := filepath.Join(b.tmp, "stores", fmt.Sprintf("%03d", b.seq))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return runnerResult{}, err
		}
		store, err := st.make(dir)
		if err != nil {
			return runnerResult{}, err
		}
		c, err := fleet.NewChain(multimachine.ChainConfig{Name: st.name, Store: store, Machines: perChain, Latency: runnersLatency,
			AdoptWait: runnersAdoptWait, ReplayDetection: replay})
		if err != nil {
			return runnerResult{}, err
		}
		chains = append(chains, c)
	}
	res := runnerResult{revokedIn: -1}
	var cpus []time.Duration
	for round := 0; round <= b.opts.runnerRounds; round++ {
		if round > 0 {
			if err := fleet.Clock().Advance(runnersDueJump); err != nil {
				return res, err
			}
		}
		results, err := fleet.Round(ctx, chains, multimachine.RoundOptions{})
		if err != nil {
			return res, err
		}
		res.live = 0
		for _, r := range results {
			res.live += r.LiveRefreshTokens
			if r.LiveRefreshTokens == 0 && res.revokedIn < 0 {
				res.revokedIn = round
			}
		}
		if round > 0 { // round 0 is the chain's start: its first record and the seed's exchange
			var wall, cpu time.Duration
			attempts, exchanges, refused, writes := 0, 0, 0, 0
			for _, r := range results {
				wall, cpu = max(wall, r.Wall), cpu+r.CPU
				attempts += r.Attempts
				exchanges += r.Exchanges
				refused += r.Refused
				writes += r.StoreWrites
				// A secret in an engine's output or a consumer's lost result fails the round as a failed apply does.
				res.failed += r.FailedApplies() + len(r.Problems)
				for _, f := range append(r.Failed, r.Problems...) {
					fmt.Fprintf(b.log, "    %s, %d runners: %s\n", st.name, k, f)
				}
			}
			res.walls = append(res.walls, wall)
			cpus = append(cpus, cpu)
			res.attempts = append(res.attempts, attempts)
			res.exchanges = append(res.exchanges, exchanges)
			res.refused = append(res.refused, refused)
			res.writes = append(res.writes, writes)
		}
		if replay && res.revokedIn >= 0 {
			break
		}
	}
	if len(res.walls) > 0 {
		res.wall, res.cpu = median(res.walls), median(cpus)
	}
	return res, nil
}

// dirStore makes a command store whose helper (mode) keeps records in the chain's directory, the stand-in for a secret
// manager every runner reaches.
func dirStore(mode string) func(dir string) (multimachine.Store, error) {
	return func(dir string) (multimachine.Store, error) {
		return multimachine.DirStore(mode, mode, dir), nil
	}
}
