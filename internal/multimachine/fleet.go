// Package multimachine simulates CI runners on separate machines that share one Bipsync refresh chain through a
// token store, and drives each through plan and apply of a real Terraform or OpenTofu at the same moment.
//
// A machine is a working directory and an environment of its own: its own HOME, TMPDIR and XDG_CACHE_HOME, so that
// no local file or lock (the command store's lock files, rescue files, the engine's files) is shared with another
// machine; only the token store is shared, as it is between real runners. Every engine command is an OS process that
// starts the provider as a real plugin process, and the provider runs store helpers and consumers as processes of
// their own.
//
// All of them run one program, the runner (testdata/runner, built by BuildRunner and installed through a
// dev_overrides CLI configuration): the real provider with its clock read from a clock file that the harness
// controls (SharedClock), the store helper over a shared directory (RunStoreHelper), and the consumer that uses a
// handed-out token against the fake server (RunConsumer). Each chain has a fake Bipsync server of its own
// (bipsynctest) on the same clock, so its counters are that chain's alone, in the mode the chain asks for: strict
// (league's one-step check and revocation), fork (RevokePause) or replay detection (ReplayDetection). Between rounds
// the harness moves the clock so that the chain's access token is due for rotation: a round costs seconds, not an
// hour. A round reports what the server counted (exchange attempts, successes, refusals, replays, forks, the chain's
// live refresh tokens at the end), the writes that landed in the token store, and each consumer's use.
package multimachine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// ClientID is the OAuth client of every chain.
const ClientID = "fleet-client"

// BuildRunner compiles the runner into dir under the provider's binary name (tfcli.ProviderBinary, the name the engine
// looks for in a dev_overrides directory) and returns its path. It runs `go build` in the module
// that holds this package, which must be the working directory or one of its parents.
func BuildRunner(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("build the runner inside the provider's module")
	}
	bin := filepath.Join(dir, tfcli.ProviderBinary())
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./internal/multimachine/testdata/runner")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build the runner: %w\n%s", err, out)
	}
	return bin, nil
}

// Store is a token store that every machine of a chain shares.
type Store struct {
	// Name labels the store in results.
	Name string
	// attrs renders the token_store block's attributes for a runner at the given path.
	attrs func(runner string) string
	// open returns the store as the harness reads it, to check the chain at the end.
	open func(runner, lockDir string) (tokenstore.Store, error)
	// env is what every machine's environment carries for the store, NAME=VALUE; the values are secrets (a database
	// password), never to appear in an engine's output.
	env []string
	// writes counts the writes that have landed in the store for the chain key so far (its record and its claim); nil
	// for a store that cannot count them (RoundResult.StoreWrites is then -1).
	writes func(ctx context.Context, key tokenstore.Key) (int, error)
}

// ClaimsInTokensource says that the provider's tokensource claims a chain's head (tokenstore.Claimer) before it
// exchanges it, in every store that can claim: the conditional helper's command store (command_protocol 2), and the s3
// store. With it, those stores send a due head to Bipsync once, whichever runner gets there first, as postgres does with
// its lock: a server with replay detection has nothing to punish. The multi-machine tests and the benchmark's runners
// section read it to hold those stores to that (exactly 1 exchange attempt and none refused per round, under replay
// detection).
const ClaimsInTokensource = true

// DirStore is a command store whose helper (mode HelperGetPut or HelperConditional, command_protocol 1 or 2) keeps
// records in dir, a directory every machine shares: the stand-in for a secret manager.
func DirStore(name, mode, dir string) Store {
	protocol := tokenstore.ProtocolGetPut
	if mode == HelperConditional {
		protocol = tokenstore.ProtocolConditional
	}
	return Store{
		Name: name,
		attrs: func(runner string) string {
			return fmt.Sprintf("    backend          = \"command\"\n    command          = [%q, %q, %q]\n"+
				"    command_protocol = \"%d\"\n", runner, mode, dir, protocol)
		},
		open: func(runner, lockDir string) (tokenstore.Store, error) {
			return tokenstore.NewCommand(tokenstore.CommandConfig{Argv: []string{runner, mode, dir}, Protocol: protocol, LockDir: lockDir})
		},
		writes: func(_ context.Context, key tokenstore.Key) (int, error) { return dirWrites(dir, key) },
	}
}

// PostgresStore is the postgres backend on one database that every machine reaches. connStr leaves the password out:
// each machine has it in PGPASSWORD, as the provider's documentation advises.
func PostgresStore(name, connStr, password string) Store {
	return Store{
		Name: name,
		attrs: func(string) string {
			return fmt.Sprintf("    backend  = \"postgres\"\n    conn_str = %q\n", connStr)
		},
		open: func(string, string) (tokenstore.Store, error) {
			return tokenstore.NewPostgres(tokenstore.PostgresConfig{ConnStr: connStr + " password=" + password})
		},
		env: []string{"PGPASSWORD=" + password},
		writes: func(ctx context.Context, key tokenstore.Key) (int, error) {
			return postgresWrites(ctx, connStr+" password="+password, key)
		},
	}
}

// FleetConfig configures NewFleet.
type FleetConfig struct {
	// Engine is the Terraform or OpenTofu binary.
	Engine string
	// Runner is the runner binary (BuildRunner).
	Runner string
	// Dir holds everything of the fleet: the clock file and the machines. Keep its path short (see maxDirLen).
	Dir string
	// Start is the fake time at which the clock starts, and Rate how much faster than real time it runs.
	Start time.Time
	Rate  float64
}

// maxDirLen bounds the length of a fleet's directory. A machine's TMPDIR lies beneath it, and the provider's plugin
// server listens on a Unix socket there, whose path may not exceed 107 bytes on Linux: a plugin that cannot listen
// exits before its handshake, and the engine only says it read no line from it.
const maxDirLen = 60

// Fleet is a set of chains, each with its machines, on one fake clock.
type Fleet struct {
	cfg   FleetConfig
	clock *SharedClock
	n     int
}

// NewFleet starts the fleet's clock.
func NewFleet(cfg FleetConfig) (*Fleet, error) {
	if cfg.Engine == "" || cfg.Runner == "" || cfg.Dir == "" {
		return nil, errors.New("a fleet needs an engine, a runner and a directory")
	}
	if len(cfg.Dir) > maxDirLen {
		return nil, fmt.Errorf("the fleet's directory %s is longer than %d bytes: the plugin sockets beneath it would be too long; "+
			"use a shorter one (os.MkdirTemp(\"\", \"mm\"))", cfg.Dir, maxDirLen)
	}
	if cfg.Rate == 0 {
		cfg.Rate = 1
	}
	clock, err := NewSharedClock(filepath.Join(cfg.Dir, "clock.json"), cfg.Start, cfg.Rate)
	if err != nil {
		return nil, err
	}
	return &Fleet{cfg: cfg, clock: clock}, nil
}

// Clock is the fleet's clock.
func (f *Fleet) Clock() *SharedClock { return f.clock }

// ChainConfig configures a chain.
type ChainConfig struct {
	// Name labels the chain in results.
	Name  string
	Store Store
	// Machines is how many machines share the chain.
	Machines int
	// Latency is what the chain's fake server adds to every request; RevokePause its fork mode
	// (bipsynctest.Options.RevokePause), ReplayDetection its replay detection (bipsynctest.Options.ReplayDetection: a
	// reuse of a rotated refresh token revokes the chain).
	Latency         time.Duration
	RevokePause     time.Duration
	ReplayDetection bool
	// AdoptWait is the token store's adopt_wait, in fake time; zero leaves the provider's default.
	AdoptWait time.Duration
}

// Chain is one refresh chain, its fake server and the machines that share it.
type Chain struct {
	cfg      ChainConfig
	fleet    *Fleet
	srv      *bipsynctest.Server
	url      string
	secret   string
	seed     string
	key      tokenstore.Key
	machines []*machine
	round    int
}

// usesFile, in a machine's working directory, is where its consumers record their uses.
const usesFile = "uses.jsonl"

type machine struct {
	name string
	work string // the engine's working directory
	uses string // the consumers' results, one JSON line per use
	env  []string
}

// NewChain seeds a chain on a new fake server and sets up its machines.
func (f *Fleet) NewChain(cfg ChainConfig) (*Chain, error) {
	if cfg.Machines < 1 {
		return nil, errors.New("a chain needs at least one machine")
	}
	f.n++
	c := &Chain{cfg: cfg, fleet: f, secret: rand.Text()}
	c.srv = bipsynctest.NewServer(bipsynctest.Options{Now: f.clock.Now, Latency: cfg.Latency, RevokePause: cfg.RevokePause,
		ReplayDetection: cfg.ReplayDetection})
	c.srv.AddClient(ClientID, c.secret)
	c.seed = c.srv.IssueRefreshToken(ClientID, []string{"read", "write"})
	c.url = c.srv.Start()
	client, err := bipsync.New(bipsync.Config{BaseURL: c.url, ClientID: ClientID, ClientSecret: c.secret})
	if err != nil {
		c.Close()
		return nil, err
	}
	c.key = tokenstore.KeyFor(client.TokenURL(), ClientID, c.seed)
	base := filepath.Join(f.cfg.Dir, fmt.Sprintf("c%d", f.n))
	for i := range cfg.Machines {
		m, err := c.newMachine(filepath.Join(base, fmt.Sprintf("m%d", i+1)), fmt.Sprintf("machine %d", i+1))
		if err != nil {
			c.Close()
			return nil, err
		}
		c.machines = append(c.machines, m)
	}
	return c, nil
}

func (c *Chain) newMachine(dir, name string) (*machine, error) {
	m := &machine{name: name, work: filepath.Join(dir, "work"), uses: filepath.Join(dir, "work", usesFile)}
	for _, sub := range []string{"home", "tmp", "cache", "work"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	cli := filepath.Join(dir, "cli.tfrc")
	if err := tfcli.WriteDevOverrides(cli, filepath.Dir(c.fleet.cfg.Runner), nil); err != nil {
		return nil, err
	}
	// Nothing of this process's environment but PATH: a machine's files and settings are its own.
	base := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(dir, "home"),
		"TMPDIR=" + filepath.Join(dir, "tmp"),
		"XDG_CACHE_HOME=" + filepath.Join(dir, "cache"),
	}
	extra := append([]string{
		ClockFileEnv + "=" + c.fleet.clock.Path(),
		"TF_VAR_seed=" + c.seed,
		"BIPSYNC_CLIENT_SECRET=" + c.secret,
	}, c.cfg.Store.env...)
	m.env = tfcli.EngineEnv(base, cli, extra...)
	return m, nil
}

// Server is the chain's fake Bipsync server.
func (c *Chain) Server() *bipsynctest.Server { return c.srv }

// LiveRefreshTokens is how many refresh tokens of the chain its server would exchange now (see RoundResult).
func (c *Chain) LiveRefreshTokens() int { return c.srv.LiveRefreshTokens(c.seed) }

// Name is the chain's label.
func (c *Chain) Name() string { return c.cfg.Name }

// Close stops the chain's server.
func (c *Chain) Close() { c.srv.Close() }

// config is the machines' configuration: one ephemeral token, and a terraform_data (replaced in every run) whose
// provisioner hands the token to a consumer through its environment.
func (c *Chain) config(useAfter time.Duration) string {
	runner := c.fleet.cfg.Runner
	return fmt.Sprintf(`terraform {
  required_providers {
    bipsync = {
      source = "bipsync/bipsync"
    }
  }
}

variable "seed" {
  type      = string
  sensitive = true
  ephemeral = true
}

provider "bipsync" {
  base_url  = %q
  client_id = %q

  token_store {
%s  }
}

ephemeral "bipsync_access_token" "t" {
  refresh_token = var.seed
}

resource "terraform_data" "use" {
  triggers_replace = plantimestamp()

  provisioner "local-exec" {
    interpreter = [%q, %q, %q, %q]
    command     = %q
    environment = {
      %s = ephemeral.bipsync_access_token.t.access_token
    }
  }
}
`, c.url, ClientID, c.storeAttrs(), runner, ConsumeMode, usesFile, c.url, useAfter.String(), TokenEnv)
}

func (c *Chain) storeAttrs() string {
	attrs := c.cfg.Store.attrs(c.fleet.cfg.Runner)
	if c.cfg.AdoptWait > 0 {
		attrs += fmt.Sprintf("    adopt_wait       = %q\n", c.cfg.AdoptWait.String())
	}
	return attrs
}

// RoundOptions shape a round.
type RoundOptions struct {
	// Stagger is the fake time between the starts of successive machines of a chain; zero starts them all at once.
	Stagger time.Duration
	// UseAfter is the fake time a consumer waits between the hand-out and its use of the token.
	UseAfter time.Duration
}

// RoundResult is what one round of one chain did.
type RoundResult struct {
	Chain string
	Round int
	// Wall is the real time from the first machine's start to the last machine's end.
	Wall time.Duration
	// CPU is the user and system time of the engine commands and every process they started and waited for (the
	// provider, its store helpers, the consumers).
	CPU time.Duration
	// Machines ran plan + apply; Failed says which failed and how (the engine's output tail, secrets redacted).
	Machines int
	Failed   []string
	// Problems are what else went wrong: an engine output that held a secret (a token the server issued, the seed or
	// the client secret: never shown), a consumer whose use could not be read.
	Problems []string
	// Counted by the chain's fake server during the round: exchange attempts (every refresh request: each sent a head
	// to the server), successful exchanges, attempts refused (for any reason), reuses of a rotated head that revoked
	// the chain (replay detection), exchanges that forked the chain, and every token request.
	Attempts, Exchanges, Refused, Replays, Forked, TokenRequests int
	// LiveRefreshTokens is how many refresh tokens of the chain the server would exchange at the end of the round:
	// 1 for a healthy chain, more for a forked one, 0 for a dead one.
	LiveRefreshTokens int
	// StoreWrites counts the writes that landed in the token store for the chain during the round: its record's and
	// its claim's; -1 when the store cannot count them.
	StoreWrites int
	// Uses are the consumers' uses of their tokens.
	Uses []Use
}

// FailedApplies counts the machines whose plan or apply failed.
func (r RoundResult) FailedApplies() int { return len(r.Failed) }

// Live counts the uses whose token was live.
func (r RoundResult) Live() int {
	n := 0
	for _, u := range r.Uses {
		if u.Status == 200 {
			n++
		}
	}
	return n
}

// Round runs plan, then apply of that plan, on every machine of the chains at once (or staggered), and reports per
// chain. Nothing else may run on the chains meanwhile.
func (f *Fleet) Round(ctx context.Context, chains []*Chain, o RoundOptions) ([]RoundResult, error) {
	type run struct {
		start, end time.Time
		cpu        time.Duration
		out        string
		err        error
	}
	results := make([]RoundResult, len(chains))
	runs := make([][]run, len(chains))
	before := make([]bipsynctest.Stats, len(chains))
	writesBefore := make([]int, len(chains))
	for i, c := range chains {
		c.round++
		results[i] = RoundResult{Chain: c.cfg.Name, Round: c.round, Machines: len(c.machines)}
		runs[i] = make([]run, len(c.machines))
		before[i] = c.srv.Stats()
		n, err := c.storeWrites(ctx)
		if err != nil {
			return nil, err
		}
		writesBefore[i] = n
		for _, m := range c.machines {
			if err := os.WriteFile(filepath.Join(m.work, "main.tf"), []byte(c.config(o.UseAfter)), 0o600); err != nil {
				return nil, err
			}
			if err := os.Remove(m.uses); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
		}
	}
	stagger := f.clock.Real(o.Stagger)
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range chains {
		for j, m := range c.machines {
			wg.Go(func() {
				at := start.Add(time.Duration(j) * stagger)
				select {
				case <-time.After(time.Until(at)):
				case <-ctx.Done():
					runs[i][j].err = ctx.Err()
					return
				}
				r := run{start: time.Now()}
				r.cpu, r.out, r.err = f.planApply(ctx, m)
				r.end = time.Now()
				runs[i][j] = r
			})
		}
	}
	wg.Wait()
	for i, c := range chains {
		res := &results[i]
		secrets := append(c.srv.SeenSecrets(), c.secret, c.seed)
		for _, kv := range c.cfg.Store.env {
			_, v, _ := strings.Cut(kv, "=")
			secrets = append(secrets, v)
		}
		var first, last time.Time
		for j, r := range runs[i] {
			if r.err != nil {
				res.Failed = append(res.Failed, redact(fmt.Sprintf("%s: %v", c.machines[j].name, r.err), secrets))
			}
			if first.IsZero() || r.start.Before(first) {
				first = r.start
			}
			last = maxTime(last, r.end)
			res.CPU += r.cpu
		}
		res.Wall = last.Sub(first)
		for j, r := range runs[i] {
			if slices.ContainsFunc(secrets, func(s string) bool { return strings.Contains(r.out, s) }) {
				res.Problems = append(res.Problems, fmt.Sprintf("%s: the engine's output holds a token or the client secret", c.machines[j].name))
			}
		}
		after := c.srv.Stats()
		res.Attempts = after.RefreshAttempts - before[i].RefreshAttempts
		res.Exchanges = after.RefreshExchanges - before[i].RefreshExchanges
		res.Refused = after.RefreshRefused - before[i].RefreshRefused
		res.Replays = after.RefreshReplays - before[i].RefreshReplays
		res.Forked = after.RefreshForked - before[i].RefreshForked
		res.TokenRequests = after.TokenRequests - before[i].TokenRequests
		res.LiveRefreshTokens = c.srv.LiveRefreshTokens(c.seed)
		n, err := c.storeWrites(ctx)
		if err != nil {
			return nil, err
		}
		res.StoreWrites = -1
		if n >= 0 {
			res.StoreWrites = n - writesBefore[i]
		}
		for j, m := range c.machines {
			uses, err := readUses(m.uses)
			// A machine whose plan or apply failed may have stopped before its consumer ran: that is its failure.
			if err != nil && runs[i][j].err == nil {
				res.Problems = append(res.Problems, fmt.Sprintf("%s: consumer: %v", m.name, err))
			}
			res.Uses = append(res.Uses, uses...)
		}
	}
	return results, ctx.Err()
}

// storeWrites counts the writes that have landed in the chain's store so far, or -1 when the store cannot count them.
func (c *Chain) storeWrites(ctx context.Context) (int, error) {
	if c.cfg.Store.writes == nil {
		return -1, nil
	}
	n, err := c.cfg.Store.writes(ctx, c.key)
	if err != nil {
		return 0, fmt.Errorf("count the writes in the store of chain %s: %w", c.cfg.Name, err)
	}
	return n, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// planApply runs `plan -out`, then applies that plan, as CI does: two engine commands, each with provider processes
// of its own.
func (f *Fleet) planApply(ctx context.Context, m *machine) (cpu time.Duration, out string, err error) {
	cpu, out, err = f.engine(ctx, m, "plan", "-out=tfplan")
	if err != nil {
		return cpu, out, err
	}
	more, applyOut, err := f.engine(ctx, m, "apply", "tfplan")
	return cpu + more, out + applyOut, err
}

// engine runs one engine command in the machine's working directory and returns its CPU time and its output.
func (f *Fleet) engine(ctx context.Context, m *machine, sub string, rest ...string) (time.Duration, string, error) {
	args := append([]string{sub, "-input=false", "-no-color", "-compact-warnings"}, rest...)
	cmd := exec.CommandContext(ctx, f.cfg.Engine, args...)
	cmd.Dir = m.work
	cmd.Env = m.env
	// On cancellation, let the engine stop its provider processes and release its locks, as Ctrl-C would.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var cpu time.Duration
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return cpu, out.String(), fmt.Errorf("%s: %w\n%s", sub, err, tail(out.String(), 40))
	}
	return cpu, out.String(), nil
}

// redact replaces every secret in s.
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[secret]")
		}
	}
	return s
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"[...]"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

func readUses(path string) ([]Use, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errors.New("no use recorded: the provisioner did not run")
	}
	if err != nil {
		return nil, err
	}
	var uses []Use
	for line := range strings.Lines(string(b)) {
		var u Use
		if err := json.Unmarshal([]byte(line), &u); err != nil {
			return uses, fmt.Errorf("result line %q: %w", strings.TrimSpace(line), err)
		}
		uses = append(uses, u)
	}
	return uses, nil
}

// Head is the chain as the store holds it.
type Head struct {
	// Generation counts the exchanges recorded on the chain.
	Generation int64
	// RefreshLive and AccessLive say whether the fake server would accept the stored head and access token now.
	RefreshLive, AccessLive bool
}

// Head reads the chain's record from the store, as a machine would, and asks the fake server about it.
func (c *Chain) Head(ctx context.Context, lockDir string) (Head, error) {
	st, err := c.cfg.Store.open(c.fleet.cfg.Runner, lockDir)
	if err != nil {
		return Head{}, err
	}
	rec, err := st.Load(ctx, c.key, c.seed)
	if err != nil {
		return Head{}, err
	}
	if rec == nil {
		return Head{}, errors.New("the store holds no record of the chain")
	}
	return Head{Generation: rec.Generation, RefreshLive: c.srv.RefreshTokenLive(rec.RefreshToken),
		AccessLive: c.srv.AccessTokenLive(rec.AccessToken)}, nil
}
