package chainsim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/cli"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

type ctxT = context.Context

var ctxBG = context.Background()

var zeroTime time.Time

// opResult is what an operation returned, for the invariants.
type opResult struct {
	died  bool
	panic string
	fam   *family
	err   error
	res   *tokensource.Result
	// status
	rec     *tokenstore.Record
	verdict string
	// restore
	rescue *rescueRef
}

func (r opResult) summary(w *world) string {
	var b strings.Builder
	if r.res != nil {
		fmt.Fprintf(&b, "ok gen=%d exchanged=%t adopted=%t", r.res.Generation, r.res.Exchanged, r.res.Adopted)
		if a := w.bip.ats[r.res.AccessToken]; a != nil && a.fam != nil {
			rev, _ := w.bip.accessRevoked(r.res.AccessToken)
			fmt.Fprintf(&b, " access(f%d revoked=%t)", a.fam.id, rev)
		}
		for _, wn := range r.res.Warnings {
			fmt.Fprintf(&b, " warning=%d", wn.Kind)
		}
	}
	if r.verdict != "" {
		fmt.Fprintf(&b, "verdict=%s gen=%d", r.verdict, r.rec.Generation)
	}
	if r.rescue != nil {
		fmt.Fprintf(&b, "restore of %s: ", w.bip.short(r.rescue.head))
	}
	if r.err != nil {
		fmt.Fprintf(&b, "error: %v", r.err)
	} else if b.Len() == 0 {
		b.WriteString("ok")
	}
	return b.String()
}

// do runs op in the process goroutine against the chain of f.
func (p *proc) do(op opSpec, f *family) opResult {
	res := opResult{fam: f}
	if op.src >= len(p.srcs) {
		op.src = 0
	}
	src := p.srcs[op.src]
	if op.kind.command() {
		// The binary's subcommands run as processes of their own: a fresh Registry, nothing pending.
		src = p.newSource(tokensource.NewRegistry())
	}
	req := tokensource.Request{RefreshToken: f.seed, Scopes: p.w.scopes[op.src], MinValidity: op.minValidity}
	switch op.kind {
	case opOpen, opData, opRotate:
		req.Force = op.kind == opRotate
		res.res, res.err = src.Token(ctxBG, req)
		if res.err == nil && op.kind == opOpen {
			p.opens = append(p.opens, openHandle{src: op.src, key: string(res.res.Key), at: p.w.step})
		}
	case opClose:
		if len(p.opens) == 0 {
			return res
		}
		i := p.w.rng.IntN(len(p.opens))
		h := p.opens[i]
		p.opens = append(p.opens[:i], p.opens[i+1:]...)
		res.err = p.srcs[h.src].Release(ctxBG, tokenstore.Key(h.key))
	case opStatus:
		res.rec, res.err = src.Record(ctxBG, f.seed)
		if res.err == nil && res.rec != nil {
			res.verdict, _ = cli.Verdict(res.rec, tokensource.DefaultRefreshTokenLifetime, p.now())
		}
	case opRestore:
		res.rescue, res.err = p.restore()
	case opCC:
		res.res, res.err = src.Token(ctxBG, tokensource.Request{Grant: tokensource.GrantClientCredentials, MinValidity: op.minValidity})
	}
	return res
}

// restore runs the restore command on a rescue file of this machine that a diagnostic named: only the real stores
// (file, command) take one, since tokenstore.Restore writes sealed envelopes, which the models do not keep.
func (p *proc) restore() (*rescueRef, error) {
	w := p.w
	var raw tokenstore.Store
	switch {
	case w.store == StoreFile:
		raw = w.files[p.m.id]
	case w.store.command():
		raw = p.cmd
	default:
		return nil, nil // the models keep no sealed envelopes to restore into
	}
	var mine []*rescueRef
	for i := range w.rescues {
		if w.rescues[i].m == p.m {
			mine = append(mine, &w.rescues[i])
		}
	}
	if len(mine) == 0 {
		return nil, nil
	}
	ref := mine[w.rng.IntN(len(mine))]
	r, err := tokenstore.ReadRescue(ref.path)
	if err != nil {
		return ref, err
	}
	// The command takes the chain's lock like every user of the store; the simulated lock stands in for the OS lock
	// that tokenstore.Restore takes again on the real store (free, since no simulated process holds OS locks). The
	// command store's helper runs yield by themselves.
	st := w.storeFor(p)
	unlock, err := st.Lock(ctxBG, r.Key)
	if err != nil {
		return ref, err
	}
	defer func() { _ = unlock() }()
	p.yield("restore "+w.bip.short(ref.head), nil, zeroTime)
	_, err = tokenstore.Restore(ctxBG, raw, r)
	return ref, err
}

// holds tells whether p's current incarnation holds a head whose save failed (it must save it before anything else).
func (w *world) holds(p *proc, f *family) bool {
	if p == nil {
		return false
	}
	for h, hd := range w.stranded {
		if hd == (holder{p: p, inc: p.inc}) && w.outstanding(h, f) {
			return true
		}
	}
	return false
}

// outstanding tells whether head, a head of f whose save failed, is still live and in no store.
func (w *world) outstanding(head string, f *family) bool {
	t := w.bip.rts[head]
	return t != nil && t.fam == f && w.bip.live(head) && !w.stored(head)
}

// strandedElsewhere tells whether a save of f's head failed in another process (or an earlier incarnation of p; any
// process when p is nil): the store is stale for a reason p cannot see, until that head is saved or restored.
func (w *world) strandedElsewhere(p *proc, f *family) bool {
	for h, hd := range w.stranded {
		if (p == nil || hd != (holder{p: p, inc: p.inc})) && w.outstanding(h, f) {
			return true
		}
	}
	return false
}

// exchanging tells whether a live process other than p is between an exchange of f and its save.
func (w *world) exchanging(f *family, p *proc) bool {
	for _, q := range w.procs {
		if q == p || !q.busy || q.dead {
			continue
		}
		for _, h := range q.inflight {
			if w.bip.rts[h].fam == f && !w.stored(h) {
				return true
			}
		}
	}
	return false
}

// findable returns the live heads of f that the configuration (the seed), a store, a rescue file a diagnostic named, or a live process between
// exchange and save holds.
func (w *world) findable(f *family, except *proc) []string {
	var out []string
	add := func(h string) {
		t := w.bip.rts[h]
		if t != nil && t.fam == f && w.bip.live(h) {
			out = append(out, h)
		}
	}
	add(f.seed) // the configuration holds the seed
	for _, h := range w.storeHeads(f) {
		add(h)
	}
	for _, r := range w.rescues {
		add(r.head)
	}
	for _, q := range w.procs {
		if q != except && q.busy && !q.dead {
			for _, h := range q.inflight {
				add(h)
			}
		}
	}
	return out
}

func isReauth(err error) bool {
	var spent *tokensource.ChainSpentError
	if errors.As(err, &spent) {
		return true
	}
	return bipsync.NeedsReauthorization(err) && bipsync.ReauthorizationCause(err) != bipsync.CauseScope
}

// checkOp checks what one operation returned (invariants 2, 3, 6 and the restore and rotate verdicts), and records
// the rescue files its diagnostics named.
func (w *world) checkOp(p *proc, r opResult) {
	f := r.fam
	// who ran the operation: p, or for a command of the binary (status, rotate, restore) a process of its own that
	// has exited since, and holds nothing.
	who, me := p, holder{p: p, inc: p.inc}
	if p.cur.kind.command() {
		who, me = nil, holder{}
	}
	ended := f.lost != "" || f.revoked
	// 6: no secret in any error or warning.
	texts := []string{}
	if r.err != nil {
		texts = append(texts, r.err.Error(), fmt.Sprintf("%+v", r.err), fmt.Sprintf("%#v", r.err))
	}
	if r.res != nil {
		for _, wn := range r.res.Warnings {
			texts = append(texts, fmt.Sprintf("%+v", wn))
			if wn.Err != nil {
				texts = append(texts, wn.Err.Error())
			}
		}
		texts = append(texts, r.res.String(), fmt.Sprintf("%v %+v", r.res, r.res))
	}
	if r.rec != nil {
		texts = append(texts, r.rec.String(), fmt.Sprintf("%v %+v %#v", r.rec, r.rec, r.rec))
	}
	for _, t := range texts {
		for _, s := range w.bip.secrets {
			if strings.Contains(t, s) {
				w.failf("6 no secret in errors", "secret", "%s's %s printed a token Bipsync issued (shown here as <token>): %q",
					p.name(), p.cur, strings.ReplaceAll(t, s, "<token>"))
				return
			}
		}
	}

	// Rescue files a diagnostic named.
	var se *tokensource.SaveError
	if errors.As(r.err, &se) && se.Rescue != "" {
		w.addRescue(p, se.Rescue, f)
		for _, h := range p.inflight {
			if w.outstanding(h, f) {
				w.stranded[h] = me
			}
		}
	}

	// 2: nothing handed out that Bipsync had revoked.
	if r.res != nil && r.res.Key != "" {
		if revoked, at := w.bip.accessRevoked(r.res.AccessToken); revoked {
			// Without a lock that reaches every runner, a runner on another machine may rotate the chain while this one
			// hands out the token it read, or be between its exchange and its save: the store cannot tell yet.
			race := !w.innerStore(p.m).Traits().SharedLock && (at >= p.opStep || w.exchanging(f, p))
			if !ended && !w.strandedElsewhere(who, f) && !race {
				why, kind := "", "revoked hand-out"
				if w.holds(who, f) {
					why, kind = " (this process holds the chain's live head, whose save failed: it should have saved it first)", "revoked hand-out by holder"
				}
				w.failf("2 no revoked token handed out", kind, "%s's %s handed out an access token of chain %d that Bipsync revoked at step %d%s",
					p.name(), p.cur, f.id, at, why)
				return
			}
		}
	}

	// 3: a reauthorization error only when the chain has no live head anywhere.
	if r.err != nil && isReauth(r.err) && !w.strandedElsewhere(who, f) {
		if live := w.findable(f, p); len(live) > 0 {
			kind := "false reauthorization"
			if w.holds(who, f) {
				kind = "false reauthorization by holder"
			}
			w.failf("3 reauthorization only when true", kind, "%s's %s said the chain needs reauthorization (%v), but chain %d's head %s is live and %s",
				p.name(), p.cur, r.err, f.id, w.bip.short(live[0]), w.where(live[0]))
			return
		}
	}
	// Of status's verdicts, "expired" and "dead" say the chain has ended ("ok", "expiring" and "not_exchanged" do not).
	if (r.verdict == "expired" || r.verdict == "dead") && !w.strandedElsewhere(who, f) {
		for _, h := range w.findable(f, nil) {
			if w.bip.rts[h].issued.Add(refreshLife).After(w.now.Add(maxSkew)) {
				kind := "status ended"
				if r.rec.Generation == 0 && r.rec.RefreshTokenIssuedAt.IsZero() {
					kind = "status ended at generation 0"
				}
				w.failf("3 reauthorization only when true", kind, "status said %q for chain %d (record generation %d), but its head %s is live until %s and %s",
					r.verdict, f.id, r.rec.Generation, w.bip.short(h), w.bip.rts[h].issued.Add(refreshLife).Format("2006-01-02 15:04"), w.where(h))
				return
			}
		}
	}

	// restore: a conflict calls the rescue stale; it must not be the only live head.
	if r.rescue != nil && errors.Is(r.err, tokenstore.ErrConflict) && w.bip.live(r.rescue.head) {
		storeLive := false
		for _, h := range w.storeHeads(f) {
			storeLive = storeLive || w.bip.live(h)
		}
		if !storeLive {
			w.failf("1 no lost chain", "restore called live head stale", "restore called the rescue of head %s stale, but it is chain %d's only live head: the store holds a spent one",
				w.bip.short(r.rescue.head), f.id)
			return
		}
	}

	// rotate: a forced rotation returns only after an exchange of the chain that began after the request did.
	if p.cur.kind == opRotate && r.err == nil && r.res != nil && !ended {
		rotated := false
		for _, s := range f.exchanges {
			rotated = rotated || s >= p.opStep
		}
		if !rotated {
			w.failf("rotate rotates", "rotate skipped", "%s's rotate returned generation %d without an exchange of chain %d since it began at step %d",
				p.name(), r.res.Generation, f.id, p.opStep)
			return
		}
	}
}

// refusedAttempt checks invariant 5 when Bipsync refuses an exchange of an already rotated head.
func (w *world) refusedAttempt(p *proc, f *family, head string) {
	if w.mode == Fork || f.lost != "" || f.revoked || !w.oneAttempt() {
		return
	}
	for h := range w.stranded {
		if w.outstanding(h, f) {
			return
		}
	}
	w.failf("5 one exchange attempt per due head", "refused attempt", "%s sent chain %d's head %s, rotated at step %d, to Bipsync again (replay detection would revoke the chain)",
		p.name(), f.id, w.bip.short(head), w.bip.rts[head].rotStep)
}

func (w *world) oneAttempt() bool {
	for _, k := range w.cfg.OneAttempt {
		if k == w.store {
			return true
		}
	}
	return false
}

func (w *world) addRescue(p *proc, path string, f *family) {
	for _, r := range w.rescues {
		if r.path == path {
			return
		}
	}
	ref := rescueRef{m: p.m, path: path, fam: f}
	if r, err := tokenstore.ReadRescue(path); err == nil {
		ref.key = r.Key
		if rec, err := tokenstore.Open(r.Key, f.seed, []byte(r.Envelope)); err == nil {
			ref.head = rec.RefreshToken
		}
	}
	w.rescues = append(w.rescues, ref)
}

// where says where a head is kept, for a report.
func (w *world) where(h string) string {
	var at []string
	if w.stored(h) {
		at = append(at, "in the store")
	}
	if w.rescued(h) {
		at = append(at, "in a rescue file")
	}
	for _, q := range w.procs {
		for _, x := range q.inflight {
			if x == h && q.busy {
				at = append(at, q.name()+" holds it between exchange and save")
			}
		}
	}
	if len(at) == 0 {
		return "nowhere"
	}
	return strings.Join(at, ", ")
}

// check runs the invariants that hold after every step: 1 (no lost chain) and 4 (the store never goes back).
func (w *world) check() {
	for _, f := range w.bip.fams {
		if f.lost != "" || f.revoked {
			continue
		}
		live := w.bip.liveHeads(f)
		if len(live) == 0 {
			continue
		}
		if len(w.findable(f, nil)) == 0 {
			w.failf("1 no lost chain", "lost chain", "chain %d has live head(s) %s at Bipsync, but no store, rescue file or running process holds one",
				f.id, w.bip.short(live[0]))
			return
		}
	}
	for _, m := range w.storeMachines() {
		st := w.innerStore(m)
		for _, f := range w.bip.fams {
			k := w.key(f)
			rec, err := st.Load(ctxBG, k, f.seed)
			if err != nil || rec == nil {
				continue
			}
			if rec.Dead != nil && f.lost == "" && !f.revoked && !w.strandedElsewhere(nil, f) {
				if live := w.findable(f, nil); len(live) > 0 {
					w.failf("3 reauthorization only when true", "dead record of live chain",
						"chain %d's record is marked dead (%s), but its head %s is live and %s", f.id, rec.Dead.Cause,
						w.bip.short(live[0]), w.where(live[0]))
					return
				}
			}
			mk := tokenstore.Key(fmt.Sprintf("%d/%s", m.id, k))
			if rec.Generation < w.maxGen[mk] {
				w.failf("4 the store never goes back", "store went back", "chain %d's record went from generation %d back to %d", f.id, w.maxGen[mk], rec.Generation)
				return
			}
			w.maxGen[mk] = rec.Generation
		}
	}
}
