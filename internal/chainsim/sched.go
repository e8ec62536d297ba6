package chainsim

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// errDied is the panic value that ends a simulated process at a yield point. It never escapes a process goroutine.
var errDied = errors.New("chainsim: the simulated process died here")

// errGone is what every call out of a dead process returns at once, so that its deferred unlocks and saves do not
// touch the world.
var errGone = errors.New("chainsim: the process is dead")

// fault is what the scheduler decides for a call out of tokensource when it lets the caller go on.
type fault int

const (
	faultNone     fault = iota
	faultFail           // the call fails before it has any effect
	faultLandFail       // the call has its effect, then the caller gets an error (a save that landed)
	faultBusy           // Bipsync answers 429 or 503: nothing was consumed
	faultLost           // Bipsync rotated, and its answer was lost: the outcome is unknown to the caller
)

func (f fault) String() string {
	return [...]string{"", " FAIL", " LAND+FAIL", " 503", " LOST-ANSWER"}[f]
}

// event is what a process goroutine tells the scheduler: it is parked at a yield point, or its operation ended.
type event struct {
	p    *proc
	done bool
	// parked
	what  string
	ready func() bool // nil: always
	wake  time.Time   // non-zero: a sleep until then (global time)
	// done
	res opResult
}

// decision is the scheduler's answer to a parked process.
type decision struct {
	fault fault
	die   bool
}

// holder names one incarnation of a process, for locks: a lock held by an incarnation that died is free.
type holder struct {
	p   *proc
	inc int
}

func (h holder) alive() bool { return h.p != nil && h.p.inc == h.inc && !h.p.dead }

// proc is one simulated provider process (a Terraform run, a CLI command) on a machine. It runs its operations one
// after the other; a process that dies is restarted later as a new incarnation with a fresh Registry.
type proc struct {
	w      *world
	id     int
	inc    int
	m      *machine
	reg    *tokensource.Registry
	cmd    tokenstore.Store // this incarnation's command store (command kinds), whose helper runs yield
	srcs   []*tokensource.Source
	opens  []openHandle
	dead   bool
	ops    []opSpec
	next   int
	busy   bool
	wakeAt time.Time // global time at which an idle process starts its next operation

	// while parked
	parked bool
	ev     event
	resume chan decision

	// the running operation
	cur      *opSpec
	opStep   int
	opStart  time.Time // global
	inflight []string  // refresh tokens Bipsync issued to this operation
}

type openHandle struct {
	src int
	key string
	at  int // step
}

func (p *proc) name() string { return fmt.Sprintf("p%d.%d@m%d", p.id, p.inc, p.m.id) }

// now is the process's clock: global virtual time plus its machine's skew.
func (p *proc) now() time.Time { return p.w.now.Add(p.m.skew) }

// yield parks the calling process goroutine at a call out of tokensource and returns the scheduler's decision. A
// decision to die panics with errDied, recovered at the top of the goroutine.
func (p *proc) yield(what string, ready func() bool, wake time.Time) decision {
	p.w.events <- event{p: p, what: what, ready: ready, wake: wake}
	d := <-p.resume
	if d.die {
		p.dead = true
		panic(errDied)
	}
	return d
}

// gone tells whether calls out of this goroutine's process must fail at once: it died.
func (p *proc) gone() bool { return p.dead }

// machine is a host: a clock skew, a lock table of its own, a file store directory and a rescue directory.
type machine struct {
	id        int
	skew      time.Duration
	dir       string
	rescueDir string
}

// trace keeps the last steps for a failure report.
type trace struct {
	lines []string
	next  int
	full  bool
	all   strings.Builder // every step, for the determinism check
	n     int
	dir   string // the world's temporary directory, shown as $DIR
}

const traceKeep = 60

// recordID matches a record or lease ID: random, so a trace shows it as <id> and replays alike.
var recordID = regexp.MustCompile(`[0-9a-f]{32}`)

func (t *trace) add(s string) {
	s = recordID.ReplaceAllString(s, "<id>")
	if t.dir != "" {
		s = strings.ReplaceAll(s, t.dir, "$DIR")
	}
	if len(t.lines) < traceKeep {
		t.lines = append(t.lines, s)
	} else {
		t.lines[t.next] = s
		t.next = (t.next + 1) % traceKeep
		t.full = true
	}
	t.n++
	if t.all.Len() < 1<<20 {
		t.all.WriteString(s)
		t.all.WriteByte('\n')
	}
}

func (t *trace) last() string {
	var b strings.Builder
	if t.full {
		fmt.Fprintf(&b, "  ... (%d earlier steps)\n", t.n-traceKeep)
		for i := range traceKeep {
			b.WriteString("  " + t.lines[(t.next+i)%traceKeep] + "\n")
		}
		return b.String()
	}
	for _, l := range t.lines {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}
