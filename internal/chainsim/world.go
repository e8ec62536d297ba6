package chainsim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// Config bounds the worlds a seed may build. The seed picks everything within it.
type Config struct {
	// Name is how a failure's replay line names this configuration (the package variable holding it).
	Name string
	// Stores and Modes are the store kinds and Bipsync modes a seed picks from.
	Stores []StoreKind
	Modes  []Mode
	// MaxMachines and MaxProcs bound the machines (stores other than file) and processes.
	MaxMachines, MaxProcs int
	// OpsPerProc is the most operations a process runs.
	OpsPerProc int
	// Faults enables store failures, Bipsync's 503s and lost answers, and process deaths.
	Faults bool
	// LegacyPercent is the share of worlds whose chain was saved under tokenstore.LegacyKey by an older version.
	LegacyPercent int
	// OneAttempt lists the stores on which invariant 5 (at most one exchange attempt per due head, in strict and
	// replay modes) is checked: stores whose lock or claim reaches every runner.
	OneAttempt []StoreKind
	// MaxSteps ends a world.
	MaxSteps int
	// OpWeights weighs the operations open, close, data, rotate, status, restore and client credentials, in that
	// order; all zero: the default mix.
	OpWeights [7]int
	// SameClocks gives every machine the same clock (no skew).
	SameClocks bool
	// WrapStore, when set, wraps the store every process uses (below the scheduler's yield points): tests break a
	// store on purpose with it, to show that the invariants see what breaks.
	WrapStore func(tokenstore.Store) tokenstore.Store
}

var defaultWeights = [7]int{30, 18, 10, 10, 10, 8, 4}

// Default is the configuration of the regular test run and of soak runs.
var Default = Config{
	Name: "Default",
	Stores: []StoreKind{StoreFile, StorePostgres, StoreS3, StoreCommandGetPut, StoreCommandConditional,
		StoreCommandLiar},
	Modes:         []Mode{Strict, Fork, Replay},
	MaxMachines:   3,
	MaxProcs:      4,
	OpsPerProc:    12,
	Faults:        true,
	LegacyPercent: 15,
	OneAttempt:    []StoreKind{StoreFile, StorePostgres, StoreS3, StoreCommandConditional},
	MaxSteps:      4000,
}

// Focused configurations: each leaves out what triggers other defects, so a seed found with one shows one defect.
var (
	// Leases: failed saves (store outages) among hand-outs, releases and rotations on every store; no status, no
	// restore, no legacy records, one clock.
	Leases = focus("Leases", func(c *Config) {
		c.LegacyPercent, c.SameClocks, c.OpWeights = 0, true, [7]int{30, 18, 10, 10, 0, 0, 4}
	})
	// Restores: the restore command on the file store among failed saves and hand-outs; no status, no legacy records.
	Restores = focus("Restores", func(c *Config) {
		c.Stores, c.LegacyPercent, c.SameClocks, c.OpWeights = []StoreKind{StoreFile}, 0, true, [7]int{30, 10, 15, 5, 0, 25, 0}
	})
	// Status: the status command among first uses that fail; no rotate, no legacy records, one clock.
	Status = focus("Status", func(c *Config) {
		c.LegacyPercent, c.SameClocks, c.OpWeights = 0, true, [7]int{30, 18, 10, 0, 20, 0, 0}
	})
	// Skewed: rotations on machines whose clocks disagree; no status, no legacy records.
	Skewed = focus("Skewed", func(c *Config) {
		c.LegacyPercent, c.OpWeights = 0, [7]int{30, 18, 10, 20, 0, 0, 0}
	})
	// Commands: the real command store with simulated helpers (get/put, conditional, and a get/put helper configured
	// as conditional) in front of one secret manager.
	Commands = focus("Commands", func(c *Config) {
		c.Stores = []StoreKind{StoreCommandGetPut, StoreCommandConditional, StoreCommandLiar}
	})
	// Legacy: every chain starts under the key of an endpoint spelt as an older version keyed it; no status, no
	// rotate, one clock.
	Legacy = focus("Legacy", func(c *Config) {
		c.LegacyPercent, c.SameClocks, c.OpWeights = 100, true, [7]int{30, 18, 10, 0, 0, 0, 0}
	})
)

// focus returns Default with f applied, on the stores that keep a chain safe when shared (no get/put helper).
func focus(name string, f func(*Config)) Config {
	c := Default
	c.Name = name
	c.Stores = []StoreKind{StoreFile, StorePostgres, StoreS3, StoreCommandConditional}
	f(&c)
	return c
}

// maxSkew bounds how far a machine's clock is from global time.
const maxSkew = 15 * time.Minute

// Failure is an invariant that did not hold: the seed that replays it, what broke, and the last steps.
type Failure struct {
	Seed      uint64
	World     string
	Config    string
	Step      int
	Invariant string
	// Kind names the check that failed, in a word or two, stable across seeds: what a known defect is matched on.
	Kind string
	// LegacyReadFailed tells that a read of a record under its legacy key failed before the failure.
	LegacyReadFailed bool
	// Store and Machines describe the world: its store kind, and how many machines share it.
	Store    StoreKind
	Machines int
	Detail   string
	Trace    string
}

func (f *Failure) Error() string {
	return fmt.Sprintf("chainsim seed %d: invariant %q broken at step %d: %s\nworld: %s\nreplay: chainsim.Check(t, %d, chainsim.%s)\nlast steps:\n%s",
		f.Seed, f.Invariant, f.Step, f.Detail, f.World, f.Seed, f.Config, f.Trace)
}

// Stats are what one world did.
type Stats struct {
	Steps, Ops, Exchanges, Deaths int
	// Digest is a hash of the whole trace: a seed replays exactly when its digest does.
	Digest string
}

type world struct {
	cfg   Config
	seed  uint64
	rng   *rand.Rand
	start time.Time
	now   time.Time
	step  int
	desc  string
	store StoreKind

	mode     Mode
	url      string
	faults   faultRates
	machines []*machine
	procs    []*proc
	bip      *server
	fam      *family                  // the chain the processes use now
	model    tokenstore.Store         // the store's records, shared by every machine (the file store's are per machine)
	entries  map[string][]byte        // the secret manager behind the command store's helpers
	files    map[int]tokenstore.Store // the real file store per machine
	locks    map[string]holder
	events   chan event

	rescues  []rescueRef
	stranded map[string]holder // heads whose save failed, and the process incarnation that holds them
	maxGen   map[tokenstore.Key]int64
	scopes   [][]string // per source index

	// outage is when the store comes back, per machine: until then every read and write of it fails (a secret
	// manager's outage, a network partition).
	outage map[int]time.Time

	legacyReadFailed bool

	tr     trace
	fail   *Failure
	deaths int
	ops    int
}

type faultRates struct{ load, save, land, busy, lost, die, outage float64 }

type rescueRef struct {
	m    *machine
	path string
	key  tokenstore.Key
	fam  *family
	head string
}

// Run runs the world of seed under cfg and returns what it did, and the first invariant that broke (nil: none).
func Run(seed uint64, cfg Config) (*Stats, *Failure) {
	// tmpfs where there is one: the real file store's fsyncs cost nothing there.
	dir, err := os.MkdirTemp("/dev/shm", "chainsim-")
	if err != nil {
		dir, err = os.MkdirTemp("", "chainsim-")
	}
	if err != nil {
		return &Stats{}, &Failure{Seed: seed, Config: cfg.Name, Invariant: "setup", Kind: "setup", Detail: err.Error()}
	}
	defer os.RemoveAll(dir)
	w := newWorld(seed, cfg, dir)
	w.run()
	sum := sha256.Sum256([]byte(w.tr.all.String()))
	return &Stats{Steps: w.step, Ops: w.ops, Exchanges: w.bip.exchangN, Deaths: w.deaths, Digest: hex.EncodeToString(sum[:8])}, w.fail
}

// TB is the part of testing.TB that Check uses.
type TB interface {
	Helper()
	Fatal(args ...any)
}

// Check runs the world of seed and fails t with the replayable report of the first broken invariant.
func Check(t TB, seed uint64, cfg Config) {
	t.Helper()
	if _, f := Run(seed, cfg); f != nil {
		t.Fatal(f.Error())
	}
}

func newWorld(seed uint64, cfg Config, dir string) *world {
	w := &world{cfg: cfg, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		start: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), locks: map[string]holder{}, events: make(chan event),
		files: map[int]tokenstore.Store{}, outage: map[int]time.Time{}, stranded: map[string]holder{}, maxGen: map[tokenstore.Key]int64{}}
	w.now = w.start
	w.tr.dir = dir
	r := w.rng
	w.store = cfg.Stores[r.IntN(len(cfg.Stores))]
	w.mode = cfg.Modes[r.IntN(len(cfg.Modes))]
	w.bip = newServer(w, w.mode)
	w.bip.secrets = append(w.bip.secrets, clientSecret)
	w.url = canonicalURL
	legacy := r.IntN(100) < cfg.LegacyPercent
	if legacy {
		w.url = legacyURL
	}
	if cfg.Faults && r.IntN(10) >= 3 {
		lvl := []float64{0.01, 0.03, 0.08}[r.IntN(3)]
		w.faults = faultRates{load: lvl, save: lvl, land: lvl / 2, busy: lvl, lost: lvl / 8, die: lvl / 4, outage: lvl / 4}
	}
	nm := 1
	if w.store != StoreFile {
		nm = 1 + r.IntN(cfg.MaxMachines)
	}
	for i := range nm {
		m := &machine{id: i, dir: filepath.Join(dir, fmt.Sprintf("m%d", i))}
		if skew := time.Duration(r.Int64N(int64(2*maxSkew))) - maxSkew; !cfg.SameClocks && (i > 0 || r.IntN(2) == 0) {
			m.skew = skew
		}
		m.rescueDir = filepath.Join(m.dir, "rescue")
		w.machines = append(w.machines, m)
	}
	switch {
	case w.store == StoreFile:
		st, err := tokenstore.NewFile(filepath.Join(w.machines[0].dir, "chains"))
		if err != nil {
			panic(err)
		}
		w.files[0] = st
	case w.store.command():
		w.entries = map[string][]byte{}
		w.model = w.newCommandStore(nil, filepath.Join(dir, "locks"))
	default:
		w.model = newModelStore(w.store)
	}
	// Source index i asks for w.scopes[i]: most worlds ask for the chain's current scopes; some narrow it, or ask
	// for a scope the consent lacks.
	consent := []string{"admin", "read", "write"}
	w.scopes = [][]string{nil}
	switch r.IntN(6) {
	case 0:
		w.scopes = append(w.scopes, []string{"read", "write"})
	case 1:
		w.scopes = append(w.scopes, []string{"read"})
	case 2:
		w.scopes = append(w.scopes, []string{"delete"})
	}
	w.fam = w.bip.authorize(consent)
	if legacy {
		w.seedLegacy()
	}
	np := 2 + r.IntN(cfg.MaxProcs-1)
	for i := range np {
		p := &proc{w: w, id: i, m: w.machines[r.IntN(nm)], resume: make(chan decision)}
		p.wakeAt = w.now.Add(time.Duration(r.IntN(30)) * time.Second)
		p.ops = w.workload()
		p.restart()
		w.procs = append(w.procs, p)
	}
	w.desc = fmt.Sprintf("store=%s mode=%s machines=%d procs=%d legacy=%t scopes=%v faults=%+v skews=%v",
		w.store, w.mode, nm, np, legacy, w.scopes, w.faults, w.skews())
	return w
}

func (w *world) skews() []time.Duration {
	var out []time.Duration
	for _, m := range w.machines {
		out = append(out, m.skew)
	}
	return out
}

// seedLegacy rotates the chain a few times and saves its head under the key an older version used: the endpoint as
// spelt, not canonical.
func (w *world) seedLegacy() {
	f := w.fam
	head := f.seed
	var access string
	n := 1 + w.rng.IntN(3)
	for range n {
		w.now = w.now.Add(time.Hour)
		head, access = w.bip.rotate(head, nil)
	}
	key, _ := tokenstore.LegacyKey(legacyURL, clientID, f.seed)
	rec := &tokenstore.Record{RefreshToken: head, RefreshTokenIssuedAt: w.now, AccessToken: access, TokenType: "Bearer",
		AccessTokenExpiresAt: w.now.Add(accessLife), RotatedAt: w.now, Generation: int64(n), ID: tokenstore.NewRecordID()}
	if w.store.command() {
		// Straight into the secret manager, as an older version's helper left it: the harness is no runner, and the
		// provider's check of a protocol-2 helper is for runners to meet.
		data, err := tokenstore.Seal(key, f.seed, rec)
		if err != nil {
			panic(err)
		}
		w.entries[string(key)] = data
	} else if err := w.innerStore(w.machines[0]).Save(ctxBG, key, f.seed, rec, nil); err != nil {
		panic(err)
	}
	w.now = w.now.Add(10 * time.Minute)
}

func (w *world) innerStore(m *machine) tokenstore.Store {
	if w.model != nil {
		return w.model
	}
	return w.files[m.id]
}

// keyName names a store key in a trace.
func (w *world) keyName(k tokenstore.Key) string {
	switch k {
	case w.key(w.fam):
		return fmt.Sprintf("chain%d", w.fam.id)
	case w.legacyKey(w.fam):
		return fmt.Sprintf("legacy%d", w.fam.id)
	}
	return string(k[:6])
}

func (w *world) key(f *family) tokenstore.Key { return tokenstore.KeyFor(w.url, clientID, f.seed) }

func (w *world) legacyKey(f *family) tokenstore.Key {
	k, ok := tokenstore.LegacyKey(w.url, clientID, f.seed)
	if !ok {
		return ""
	}
	return k
}

func (w *world) note(format string, args ...any) {
	w.tr.add(fmt.Sprintf("%5d %s    . %s", w.step, w.clock(), fmt.Sprintf(format, args...)))
}

func (w *world) clock() string {
	d := w.now.Sub(w.start)
	return fmt.Sprintf("%3dd%02d:%02d:%02d", int(d.Hours())/24, int(d.Hours())%24, int(d.Minutes())%60, int(d.Seconds())%60)
}

func (w *world) failf(invariant, kind, format string, args ...any) {
	if w.fail != nil {
		return
	}
	w.fail = &Failure{Seed: w.seed, World: w.desc, Config: w.cfg.Name, Step: w.step, Invariant: invariant, Kind: kind,
		LegacyReadFailed: w.legacyReadFailed, Store: w.store, Machines: len(w.machines), Detail: fmt.Sprintf(format, args...)}
}

// run is the scheduler: one process goroutine runs at a time, and the seed decides which, and what its call out of
// tokensource meets.
func (w *world) run() {
	defer w.stopAll()
	for w.step = 1; w.step <= w.cfg.MaxSteps && w.fail == nil; w.step++ {
		var cands []*proc
		for _, p := range w.procs {
			if p.runnable() {
				cands = append(cands, p)
			}
		}
		if len(cands) == 0 {
			if !w.advance() {
				break
			}
			w.step--
			continue
		}
		p := cands[w.rng.IntN(len(cands))]
		if p.busy {
			w.resumeProc(p)
		} else {
			w.startOp(p)
		}
		w.now = w.now.Add(time.Duration(w.rng.IntN(1500)) * time.Millisecond)
		if w.fail == nil {
			w.check()
		}
	}
	if w.fail != nil {
		w.fail.Trace = w.tr.last()
	}
}

func (p *proc) runnable() bool {
	if p.busy {
		return p.parked && (p.ev.ready == nil || p.ev.ready())
	}
	return p.next < len(p.ops) && !p.w.now.Before(p.wakeAt)
}

// advance moves global time to the next wake-up when nothing can run; false when nothing ever will.
func (w *world) advance() bool {
	var next time.Time
	blocked := false
	for _, p := range w.procs {
		var t time.Time
		switch {
		case p.busy && !p.ev.wake.IsZero():
			t = p.ev.wake
		case p.busy:
			blocked = true
			continue
		case p.next < len(p.ops):
			t = p.wakeAt
		default:
			continue
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if next.IsZero() {
		if blocked {
			w.failf("progress", "deadlock", "deadlock: every busy process waits for a lock held by a live process")
		}
		return false
	}
	if next.After(w.now) {
		w.now = next
	}
	return true
}

func (w *world) chance(p float64) bool { return p > 0 && w.rng.Float64() < p }

func (w *world) resumeProc(p *proc) {
	var d decision
	what := p.ev.what
	if w.chance(w.faults.outage) {
		m := w.machines[w.rng.IntN(len(w.machines))]
		w.outage[m.id] = w.now.Add(time.Duration(20+w.rng.IntN(300)) * time.Second)
		w.note("the store is unreachable from m%d until %s", m.id, w.outage[m.id].Sub(w.start))
	}
	down := w.now.Before(w.outage[p.m.id])
	switch {
	case down && (strings.HasPrefix(what, "load") || strings.HasPrefix(what, "save") || strings.HasPrefix(what, "put-claim") ||
		strings.HasPrefix(what, "helper-")):
		d.fault = faultFail
	case strings.HasPrefix(what, "load"), strings.HasPrefix(what, "helper-get"):
		if w.chance(w.faults.load) {
			d.fault = faultFail
		}
	case strings.HasPrefix(what, "save"), strings.HasPrefix(what, "put-claim"), strings.HasPrefix(what, "helper-put"):
		switch {
		case w.chance(w.faults.save):
			d.fault = faultFail
		case w.chance(w.faults.land):
			d.fault = faultLandFail
		}
	case strings.HasPrefix(what, "exchange "), what == "client_credentials":
		switch {
		case w.chance(w.faults.busy):
			d.fault = faultBusy
		case w.chance(w.faults.lost):
			d.fault = faultLost
		}
	}
	if w.chance(w.faults.die) {
		d = decision{die: true}
	}
	line := fmt.Sprintf("%5d %s %-9s %s%s", w.step, w.clock(), p.name(), what, d.fault)
	if d.die {
		line += " DIES"
	}
	w.tr.add(line)
	p.parked = false
	p.resume <- d
	w.wait()
}

// wait takes the next event of the process that runs: it parks again, or its operation ends.
func (w *world) wait() {
	ev := <-w.events
	p := ev.p
	if ev.done {
		p.parked = false
		w.finish(p, ev.res)
		return
	}
	p.parked = true
	p.ev = ev
}

// stopAll ends every process goroutine still parked, so a world leaves nothing running.
func (w *world) stopAll() {
	for _, p := range w.procs {
		for p.busy {
			p.parked = false
			p.resume <- decision{die: true}
			ev := <-w.events
			if ev.done {
				p.busy = false
			} else {
				p.parked, p.ev = true, ev
			}
		}
	}
}

// restart makes p a fresh process: a new incarnation with an empty Registry, new Sources, and nothing open.
func (p *proc) restart() {
	p.inc++
	p.dead = false
	p.reg = tokensource.NewRegistry()
	p.opens = nil
	p.srcs = nil
	if p.w.store.command() {
		p.cmd = p.w.newCommandStore(p, filepath.Join(p.m.dir, "locks"))
	}
	for range p.w.scopes {
		p.srcs = append(p.srcs, p.newSource(p.reg))
	}
}

// newSource returns a Source of p's world with registry reg.
func (p *proc) newSource(reg *tokensource.Registry) *tokensource.Source {
	src, err := tokensource.New(tokensource.Options{
		Client:       &client{p: p, url: p.w.url},
		Store:        p.w.storeFor(p),
		ClientSecret: clientSecret,
		Now:          p.now,
		Sleep:        p.sleep,
		Registry:     reg,
		RescueDir:    p.m.rescueDir,
	})
	if err != nil {
		panic(err)
	}
	return src
}

func (w *world) startOp(p *proc) {
	if p.dead {
		p.restart()
		w.note("%s restarts", p.name())
	}
	if len(w.bip.liveHeads(w.fam)) == 0 {
		// The chain is over (revoked, lost or expired): a human authorizes anew and seeds a new chain.
		w.fam = w.bip.authorize(w.fam.consent)
		w.note("chain %d ended; a new authorization starts chain %d", w.fam.id-1, w.fam.id)
	}
	op := p.ops[p.next]
	p.next++
	p.busy, p.parked = true, false
	p.cur, p.opStep, p.opStart, p.inflight = &op, w.step, w.now, nil
	w.ops++
	w.tr.add(fmt.Sprintf("%5d %s %-9s BEGIN %s", w.step, w.clock(), p.name(), op))
	go p.runOp(op, w.fam)
	w.wait()
}

func (p *proc) runOp(op opSpec, f *family) {
	var res opResult
	defer func() {
		if r := recover(); r != nil {
			if r == errDied { //nolint:errorlint // the sentinel itself is the panic value
				res.died = true
			} else {
				res.panic = fmt.Sprintf("%v\n%s", r, debug.Stack())
			}
		}
		p.w.events <- event{p: p, done: true, res: res}
	}()
	res = p.do(op, f)
}

func (p *proc) sleep(_ ctxT, d time.Duration) error {
	if p.gone() {
		return errGone
	}
	wake := p.w.now.Add(d)
	p.yield("sleep "+d.String(), func() bool { return !p.w.now.Before(wake) }, wake)
	return nil
}

// finish takes an operation's result: op-level invariants, then what the process holds afterwards.
func (w *world) finish(p *proc, res opResult) {
	p.busy = false
	p.wakeAt = w.now.Add(p.cur.gap)
	switch {
	case res.panic != "":
		w.failf("no panic", "panic", "%s panicked: %s", p.name(), res.panic)
		return
	case res.died:
		w.deaths++
		w.tr.add(fmt.Sprintf("%5d %s %-9s DIED in %s", w.step, w.clock(), p.name(), p.cur))
		for _, h := range p.inflight {
			if w.bip.live(h) && !w.stored(h) && !w.rescued(h) {
				f := w.bip.rts[h].fam
				if f.lost == "" {
					f.lost = "a process died between an exchange and its save"
				}
			}
		}
		p.inflight = nil
		p.dead = true
		p.wakeAt = w.now.Add(time.Duration(1+w.rng.IntN(120)) * time.Second)
		return
	}
	w.tr.add(fmt.Sprintf("%5d %s %-9s END %s: %s", w.step, w.clock(), p.name(), p.cur, res.summary(w)))
	w.checkOp(p, res)
	p.inflight = nil
}

// opKind is an operation a process runs.
type opKind int

const (
	opOpen    opKind = iota // ephemeral resource Open: Token with min_validity, kept open
	opClose                 // ephemeral resource Close: Release of one open token
	opData                  // data source: Token
	opRotate                // the rotate command: Token with Force, in a process of its own
	opStatus                // the status command: Source.Record, then cli.Verdict, in a process of its own
	opRestore               // the restore command: ReadRescue and Restore of a rescue file a diagnostic named
	opCC                    // client credentials
)

// command tells whether the operation is a subcommand of the binary (status, rotate, restore): a process of its own.
func (k opKind) command() bool { return k == opRotate || k == opStatus || k == opRestore }

type opSpec struct {
	kind        opKind
	src         int
	minValidity time.Duration
	gap         time.Duration // idle time after the operation
}

func (o opSpec) String() string {
	n := [...]string{"open", "close", "data", "rotate", "status", "restore", "client-credentials"}[o.kind]
	if o.kind == opOpen || o.kind == opData {
		n += fmt.Sprintf("(src%d, min_validity=%s)", o.src, o.minValidity)
	} else if o.kind != opClose && o.kind != opRestore {
		n += fmt.Sprintf("(src%d)", o.src)
	}
	return n
}

func (w *world) workload() []opSpec {
	r := w.rng
	n := 3 + r.IntN(w.cfg.OpsPerProc-2)
	out := make([]opSpec, 0, n)
	weights := w.cfg.OpWeights
	if weights == ([7]int{}) {
		weights = defaultWeights
	}
	total := 0
	for _, x := range weights {
		total += x
	}
	for range n {
		x := r.IntN(total)
		k := 0
		for x >= weights[k] {
			x -= weights[k]
			k++
		}
		op := opSpec{kind: opKind(k), src: r.IntN(len(w.scopes))}
		if r.IntN(4) > 0 {
			op.src = 0
		}
		op.minValidity = []time.Duration{0, 5 * time.Minute, 15 * time.Minute, 45 * time.Minute}[r.IntN(4)]
		switch g := r.IntN(100); {
		case g < 70:
			op.gap = time.Duration(r.IntN(60)) * time.Second
		case g < 93:
			op.gap = time.Duration(1+r.IntN(50)) * time.Minute
		case g < 99:
			op.gap = time.Duration(1+r.IntN(40)) * time.Hour
		default:
			op.gap = time.Duration(20+r.IntN(12)) * 24 * time.Hour
		}
		out = append(out, op)
	}
	return out
}

// stored tells whether a store holds head under its chain's key or legacy key.
func (w *world) stored(head string) bool {
	t := w.bip.rts[head]
	if t == nil {
		return false
	}
	return slices.Contains(w.storeHeads(t.fam), head)
}

// storeHeads returns the heads the stores hold for f.
func (w *world) storeHeads(f *family) []string {
	var out []string
	for _, m := range w.storeMachines() {
		st := w.innerStore(m)
		for _, k := range []tokenstore.Key{w.key(f), w.legacyKey(f)} {
			if k == "" {
				continue
			}
			if rec, err := st.Load(ctxBG, k, f.seed); err == nil && rec != nil {
				out = append(out, rec.RefreshToken)
			}
		}
	}
	return out
}

func (w *world) storeMachines() []*machine {
	if w.model != nil {
		return w.machines[:1]
	}
	return w.machines
}

// rescued tells whether a rescue file a diagnostic named holds head.
func (w *world) rescued(head string) bool {
	for _, r := range w.rescues {
		if r.head == head {
			return true
		}
	}
	return false
}
