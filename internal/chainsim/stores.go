package chainsim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// StoreKind is the token store a simulated world runs on.
type StoreKind int

const (
	// StoreFile is the real file store (tokenstore.NewFile) on one machine; its OS lock is replaced by a simulated
	// machine-local lock, since an OS lock would block a goroutine the scheduler holds.
	StoreFile StoreKind = iota
	// StorePostgres is a model of the postgres store: an advisory lock per chain that excludes every process on every
	// machine and dies with its process, and a conditional save in one step.
	StorePostgres
	// StoreS3 is a model of an object store with conditional puts (If-None-Match, If-Match) and claims: no lock that
	// reaches other machines.
	StoreS3
	// StoreCommandGetPut is the real command store at protocol 1, with a simulated get/put helper in front of a shared
	// secret manager: the store reads before it writes, and a writer elsewhere may slip in between.
	StoreCommandGetPut
	// StoreCommandConditional is the real command store at protocol 2, with a simulated helper whose put is
	// conditional (exit 75 on conflict).
	StoreCommandConditional
	// StoreCommandLiar is the real command store configured for protocol 2 in front of a get/put helper that never
	// checks: a misconfiguration the protocol cannot detect.
	StoreCommandLiar
)

func (k StoreKind) String() string {
	return [...]string{"file", "postgres", "s3", "command-getput", "command-conditional", "command-liar"}[k]
}

func (k StoreKind) command() bool { return k >= StoreCommandGetPut }

// lockScope returns the name of the lock table a store's Lock uses on machine m.
func (k StoreKind) lockScope(m *machine) string {
	if k == StorePostgres {
		return "global"
	}
	return fmt.Sprintf("m%d", m.id)
}

// simStore is one process's handle on a store: every call out of tokensource yields to the scheduler, which decides
// whether it fails, lands then fails, or the process dies there. Records live in inner (the real file store, or a
// model shared by every machine).
type simStore struct {
	p     *proc
	kind  StoreKind
	inner tokenstore.Store
}

// simClaimStore is a simStore whose inner store keeps claims.
type simClaimStore struct {
	*simStore
	claims tokenstore.Claimer
}

func (w *world) storeFor(p *proc) tokenstore.Store {
	inner := w.innerStore(p.m)
	if w.store.command() {
		inner = p.cmd
	}
	if w.cfg.WrapStore != nil {
		inner = w.cfg.WrapStore(inner)
	}
	s := &simStore{p: p, kind: w.store, inner: inner}
	if c, ok := s.inner.(tokenstore.Claimer); ok {
		return simClaimStore{s, c}
	}
	return s
}

func (s *simStore) Traits() tokenstore.Traits { return s.inner.Traits() }
func (s *simStore) Describe() string          { return s.inner.Describe() }

func (s *simStore) Lock(_ context.Context, key tokenstore.Key) (func() error, error) {
	p, w := s.p, s.p.w
	if p.gone() {
		return nil, errGone
	}
	name := s.kind.lockScope(p.m) + "/" + string(key)
	p.yield("lock "+w.keyName(key), func() bool { return !w.locks[name].alive() }, time.Time{})
	h := holder{p: p, inc: p.inc}
	w.locks[name] = h
	return func() error {
		if w.locks[name] == h {
			delete(w.locks, name)
		}
		return nil
	}, nil
}

func (s *simStore) Load(ctx context.Context, key tokenstore.Key, seed string) (*tokenstore.Record, error) {
	p := s.p
	if p.gone() {
		return nil, errGone
	}
	if s.kind.command() {
		return s.inner.Load(ctx, key, seed) // the helper's runs yield
	}
	d := p.yield("load "+p.w.keyName(key), nil, time.Time{})
	if d.fault != faultNone {
		if key == p.w.legacyKey(p.w.fam) {
			p.w.legacyReadFailed = true
		}
		return nil, errors.New("simulated store: the read timed out")
	}
	return s.inner.Load(ctx, key, seed)
}

func (s *simStore) Save(ctx context.Context, key tokenstore.Key, seed string, rec *tokenstore.Record, replaces *tokenstore.Revision) error {
	p := s.p
	if p.gone() {
		return errGone
	}
	var d decision
	if !s.kind.command() { // the helper's runs yield
		d = p.yield(fmt.Sprintf("save %s g%d", p.w.keyName(key), rec.Generation), nil, time.Time{})
	}
	switch d.fault {
	case faultFail:
		return errors.New("simulated store: the write failed")
	case faultLandFail:
		if err := s.inner.Save(ctx, key, seed, rec, replaces); err != nil {
			return err
		}
		return errors.New("simulated store: the connection dropped after the write")
	}
	err := s.inner.Save(ctx, key, seed, rec, replaces)
	if errors.Is(err, tokenstore.ErrConflict) {
		p.w.note("%s: the save of g%d is refused: the store holds another record", p.name(), rec.Generation)
	}
	return err
}

func (s simClaimStore) LoadClaim(ctx context.Context, key tokenstore.Key, seed string) (*tokenstore.Claim, error) {
	p := s.p
	if p.gone() {
		return nil, errGone
	}
	var d decision
	if !s.kind.command() {
		d = p.yield("load-claim "+p.w.keyName(key), nil, time.Time{})
	}
	if d.fault != faultNone {
		return nil, errors.New("simulated store: the read timed out")
	}
	return s.claims.LoadClaim(ctx, key, seed)
}

func (s simClaimStore) PutClaim(ctx context.Context, key tokenstore.Key, seed string, c, replaces *tokenstore.Claim) error {
	p := s.p
	if p.gone() {
		return errGone
	}
	var d decision
	if !s.kind.command() {
		d = p.yield("put-claim "+p.w.keyName(key), nil, time.Time{})
	}
	cl := s.claims
	switch d.fault {
	case faultFail:
		return errors.New("simulated store: the write failed")
	case faultLandFail:
		if err := cl.PutClaim(ctx, key, seed, c, replaces); err != nil {
			return err
		}
		return errors.New("simulated store: the connection dropped after the write")
	}
	return cl.PutClaim(ctx, key, seed, c, replaces)
}

// modelStore keeps records as plain data shared by every machine: the postgres and s3 models. Its conditional save
// is tokenstore's rule (checkReplace) in one step.
type modelStore struct {
	kind    StoreKind
	records map[tokenstore.Key]*tokenstore.Record
	claims  map[tokenstore.Key]*tokenstore.Claim
}

// modelClaimStore is the s3 model: a modelStore with claims.
type modelClaimStore struct{ *modelStore }

func newModelStore(kind StoreKind) tokenstore.Store {
	m := &modelStore{kind: kind, records: map[tokenstore.Key]*tokenstore.Record{}, claims: map[tokenstore.Key]*tokenstore.Claim{}}
	if kind == StoreS3 {
		return modelClaimStore{m}
	}
	return m
}

func (m *modelStore) Traits() tokenstore.Traits {
	if m.kind == StoreS3 {
		return tokenstore.Traits{Persistent: true, AtomicSave: true, Claims: true}
	}
	// as postgresStore.Traits
	return tokenstore.Traits{Persistent: true, SharedLock: true, AtomicSave: true}
}

func (m *modelStore) Describe() string { return "simulated " + m.kind.String() + " store" }

// Lock is never called: simStore takes the simulated lock.
func (m *modelStore) Lock(context.Context, tokenstore.Key) (func() error, error) {
	return func() error { return nil }, nil
}

func (m *modelStore) Load(_ context.Context, key tokenstore.Key, _ string) (*tokenstore.Record, error) {
	if r := m.records[key]; r != nil {
		return r.Clone(), nil
	}
	return nil, nil
}

func (m *modelStore) Save(_ context.Context, key tokenstore.Key, _ string, rec *tokenstore.Record, replaces *tokenstore.Revision) error {
	var cur *tokenstore.Revision
	if r := m.records[key]; r != nil {
		cur = r.Revision().Ptr()
	}
	landed, err := decide(cur, replaces, rec.Revision())
	if landed || err != nil {
		return err
	}
	m.records[key] = rec.Clone()
	return nil
}

func (m modelClaimStore) LoadClaim(_ context.Context, key tokenstore.Key, _ string) (*tokenstore.Claim, error) {
	if c := m.claims[key]; c != nil {
		cc := *c
		return &cc, nil
	}
	return nil, nil
}

func (m modelClaimStore) PutClaim(_ context.Context, key tokenstore.Key, _ string, c, replaces *tokenstore.Claim) error {
	var cur, rep *tokenstore.Revision
	if old := m.claims[key]; old != nil {
		cur = old.Revision().Ptr()
	}
	if replaces != nil {
		rep = replaces.Revision().Ptr()
	}
	landed, err := decide(cur, rep, c.Revision())
	if landed || err != nil {
		return err
	}
	cc := *c
	m.claims[key] = &cc
	return nil
}

// decide is a conditional write's rule, as every real store applies it: the write goes ahead over the revision it
// replaces, is a no-op when the store holds what it writes already, and is refused otherwise.
func decide(current, replaces *tokenstore.Revision, next tokenstore.Revision) (landed bool, err error) {
	switch {
	case current == nil && replaces == nil:
		return false, nil
	case current != nil && current.Matches(next):
		return true, nil
	case current != nil && replaces != nil && current.Matches(*replaces):
		return false, nil
	}
	return false, &tokenstore.ConflictError{Replaces: replaces, Current: current}
}

// newCommandStore returns the real command store for the world's helper kind, running the simulated helper of p (nil:
// the invariant checker's, which reads and writes the secret manager without yielding).
func (w *world) newCommandStore(p *proc, lockDir string) tokenstore.Store {
	proto := tokenstore.ProtocolConditional
	// The harness's own view (p nil) of a lying helper's entries speaks the protocol the helper really has: the
	// provider's check refuses it at protocol 2, which is what the simulated processes must meet, not the harness.
	if w.store == StoreCommandGetPut || (p == nil && w.store == StoreCommandLiar) {
		proto = tokenstore.ProtocolGetPut
	}
	st, err := tokenstore.NewCommand(tokenstore.CommandConfig{Argv: []string{"sm-helper"}, Protocol: proto, LockDir: lockDir,
		Runner: w.helper(p)})
	if err != nil {
		panic(err)
	}
	return st
}

// helper is the simulated helper: get prints the secret manager's entry; put writes it, conditionally when the helper
// speaks protocol 2 (exit 75 when the entry holds another revision than BIPSYNC_STORE_REPLACES). Each run is a yield
// point where the scheduler may make it time out, fail before writing, or write and then fail.
func (w *world) helper(p *proc) tokenstore.CommandRunner {
	return func(_ context.Context, args, env []string, stdin []byte) ([]byte, int, error) {
		op, key := args[len(args)-2], args[len(args)-1]
		if p == nil {
			return w.helperRun(op, key, env, stdin)
		}
		if p.gone() {
			return nil, 0, errGone
		}
		d := p.yield("helper-"+op+" "+w.keyName(tokenstore.Key(key)), nil, time.Time{})
		switch {
		case d.fault == faultFail && op == "get":
			if tokenstore.Key(key) == w.legacyKey(w.fam) {
				w.legacyReadFailed = true
			}
			return nil, 0, errors.New("no answer within 1m0s")
		case d.fault == faultFail:
			return nil, 1, nil
		case d.fault == faultLandFail:
			if _, code, err := w.helperRun(op, key, env, stdin); code != 0 || err != nil {
				return nil, code, err
			}
			return nil, 0, errors.New("no answer within 1m0s")
		}
		return w.helperRun(op, key, env, stdin)
	}
}

func (w *world) helperRun(op, key string, env []string, stdin []byte) ([]byte, int, error) {
	if op == "get" {
		return w.entries[key], 0, nil
	}
	if w.store == StoreCommandConditional {
		var replaces, revision string
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, tokenstore.EnvStoreReplaces+"="); ok {
				replaces = v
			}
			if v, ok := strings.CutPrefix(kv, tokenstore.EnvStoreRevision+"="); ok {
				revision = v
			}
		}
		cur := "none"
		if data := w.entries[key]; data != nil {
			rev, err := tokenstore.EnvelopeRevision(data)
			if err != nil {
				return nil, 1, nil //nolint:nilerr // a helper that cannot read the entry exits 1, as a real one would
			}
			cur = rev.Ptr().String()
		}
		switch cur {
		case revision:
			return nil, 0, nil // an earlier put of this record landed
		case replaces:
		default:
			return nil, tokenstore.ExitConflict, nil
		}
	}
	w.entries[key] = slices.Clone(stdin)
	return nil, 0, nil
}
