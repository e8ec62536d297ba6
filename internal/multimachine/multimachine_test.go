package multimachine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/multimachine"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// helperMain runs the test binary as the store helper when its first argument names a helper mode, so that the
// contract tests can hand the command store a real program.
func helperMain() {
	if len(os.Args) > 1 && (os.Args[1] == multimachine.HelperGetPut || os.Args[1] == multimachine.HelperConditional) {
		os.Exit(multimachine.RunStoreHelper(os.Args[1], os.Args[2:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
	}
}

const seed = "seed-refresh-token"

func commandStore(t *testing.T, mode, dir string, protocol int) tokenstore.Store {
	t.Helper()
	st, err := tokenstore.NewCommand(tokenstore.CommandConfig{Argv: []string{os.Args[0], mode, dir}, Protocol: protocol, LockDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func record(gen int64, head string) *tokenstore.Record {
	return &tokenstore.Record{RefreshToken: head, Generation: gen, ID: tokenstore.NewRecordID()}
}

// TestStoreHelper_conditional: the conditional helper is a protocol-2 helper to the command store: it refuses a put that
// replaces a record the entry no longer holds, accepts a repeat of a put that landed, and keeps the newer record.
func TestStoreHelper_conditional(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	st := commandStore(t, multimachine.HelperConditional, dir, tokenstore.ProtocolConditional)
	key := tokenstore.KeyFor("http://127.0.0.1:1/v1/oauth/token", "cli", seed)

	first := record(0, seed)
	if err := st.Save(ctx, key, seed, first, nil); err != nil {
		t.Fatalf("first save: %v", err)
	}
	if err := st.Save(ctx, key, seed, record(0, seed), nil); !errors.Is(err, tokenstore.ErrConflict) {
		t.Fatalf("a second first record: got %v; want a conflict", err)
	}
	next := record(1, "rt-1")
	if err := st.Save(ctx, key, seed, next, first.Revision().Ptr()); err != nil {
		t.Fatalf("save replacing the first record: %v", err)
	}
	if err := st.Save(ctx, key, seed, next, first.Revision().Ptr()); err != nil {
		t.Fatalf("the same save again (it landed): got %v; want success", err)
	}
	if err := st.Save(ctx, key, seed, record(1, "rt-fork"), first.Revision().Ptr()); !errors.Is(err, tokenstore.ErrConflict) {
		t.Fatalf("a fork's save replacing the first record: got %v; want a conflict", err)
	}
	got, err := st.Load(ctx, key, seed)
	if err != nil || got.RefreshToken != "rt-1" || got.Revision() != next.Revision() {
		t.Fatalf("load: got (%v, %v); want the record of rt-1", got, err)
	}
	if !st.Traits().AtomicSave {
		t.Error("a protocol-2 command store should say its saves are atomic")
	}
}

// TestStoreHelper_getPut: the get/put helper writes whatever it is given: the provider's read before its write is the
// only check, as with a secret manager that has no conditional write.
func TestStoreHelper_getPut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	key := tokenstore.KeyFor("http://127.0.0.1:1/v1/oauth/token", "cli", seed)
	st := commandStore(t, multimachine.HelperGetPut, dir, tokenstore.ProtocolGetPut)
	if rec, err := st.Load(ctx, key, seed); rec != nil || err != nil {
		t.Fatalf("load of nothing: got (%v, %v); want (nil, nil)", rec, err)
	}
	first := record(0, seed)
	if err := st.Save(ctx, key, seed, first, nil); err != nil {
		t.Fatal(err)
	}
	// A put from a runner that read the entry before the first save (the race protocol 1 cannot close) overwrites it.
	stale, err := tokenstore.Seal(key, seed, record(0, seed))
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := multimachine.RunStoreHelper(multimachine.HelperGetPut, []string{dir, "put", string(key)}, bytes.NewReader(stale), &bytes.Buffer{}, &stderr,
		func(string) string { return "" }); code != 0 {
		t.Fatalf("put: exit %d: %s", code, stderr.String())
	}
	got, err := st.Load(ctx, key, seed)
	if err != nil || got.Revision() == first.Revision() {
		t.Fatalf("load: got (%v, %v); want the record put last", got, err)
	}
}

// TestStoreHelper_usage: bad arguments are refused with status 2, a conditional put without its revisions too.
func TestStoreHelper_usage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := strings.Repeat("a", 64)
	env := func(string) string { return "" }
	for name, tc := range map[string]struct {
		mode string
		args []string
	}{
		"unknown mode":               {"store-other", []string{dir, "get", key}},
		"unknown operation":          {multimachine.HelperGetPut, []string{dir, "delete", key}},
		"key not a store key":        {multimachine.HelperGetPut, []string{dir, "get", "../etc/passwd"}},
		"missing key":                {multimachine.HelperGetPut, []string{dir, "get"}},
		"conditional put, no header": {multimachine.HelperConditional, []string{dir, "put", key}},
	} {
		var stderr bytes.Buffer
		if code := multimachine.RunStoreHelper(tc.mode, tc.args, strings.NewReader("x"), &bytes.Buffer{}, &stderr, env); code != 2 || stderr.Len() == 0 {
			t.Errorf("%s: exit %d, stderr %q; want 2 and a message", name, code, stderr.String())
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("refused calls left %d entries in the directory; want none", len(entries))
	}
}

// TestClock: processes that read the clock file compute the harness's time; Advance jumps it; a bad file is refused.
func TestClock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	sc, err := multimachine.NewSharedClock(filepath.Join(dir, "clock.json"), start, 100)
	if err != nil {
		t.Fatal(err)
	}
	c, err := multimachine.ReadClockFile(sc.Path())
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Now().Sub(sc.Now()); d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Errorf("the file's clock is %s off the harness's; want the same time", d)
	}
	before := sc.Now()
	time.Sleep(20 * time.Millisecond)
	if ran := sc.Now().Sub(before); ran < 2*time.Second {
		t.Errorf("20ms of real time at rate 100: the clock ran %s; want at least 2s", ran)
	}
	if got := sc.Real(10 * time.Second); got != 100*time.Millisecond {
		t.Errorf("Real(10s) at rate 100: got %s; want 100ms", got)
	}
	if err := sc.Advance(time.Hour); err != nil {
		t.Fatal(err)
	}
	c, err = multimachine.ReadClockFile(sc.Path())
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Now().Sub(start); d < time.Hour || d > time.Hour+time.Minute {
		t.Errorf("after Advance(1h) the file's clock is %s past the start; want just over 1h", d)
	}

	for name, content := range map[string]string{"not JSON": "soon", "no rate": `{"base_real":"2026-11-25T12:00:00Z","base_fake":"2026-11-25T12:00:00Z"}`} {
		p := filepath.Join(dir, "bad.json")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := multimachine.ReadClockFile(p); err == nil {
			t.Errorf("%s: got no error", name)
		}
	}
	if _, err := multimachine.ReadClockFile(""); err == nil || !strings.Contains(err.Error(), multimachine.ClockFileEnv) {
		t.Errorf("no file: got %v; want the variable named", err)
	}
}

// TestConsumer: a consumer waits its fake time, uses the token once and records the server's answer without the token.
func TestConsumer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc, err := multimachine.NewSharedClock(filepath.Join(dir, "clock.json"), time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), 1000)
	if err != nil {
		t.Fatal(err)
	}
	srv := bipsynctest.NewServer(bipsynctest.Options{Now: sc.Now})
	srv.AddClient("cli", "sec")
	url := srv.Start()
	t.Cleanup(srv.Close)
	live, _ := srv.IssueTokenPair("cli", []string{"read"})
	result := filepath.Join(dir, "uses.jsonl")
	for _, token := range []string{live, "not-a-token", ""} {
		env := map[string]string{multimachine.ClockFileEnv: sc.Path(), multimachine.TokenEnv: token}
		var stderr bytes.Buffer
		if code := multimachine.RunConsumer([]string{result, url, "20s"}, &stderr, func(k string) string { return env[k] }); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	}
	b, err := os.ReadFile(result)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), live) {
		t.Fatal("the result file holds the token")
	}
	var uses []multimachine.Use
	for line := range strings.Lines(string(b)) {
		var u multimachine.Use
		if err := json.Unmarshal([]byte(line), &u); err != nil {
			t.Fatal(err)
		}
		uses = append(uses, u)
	}
	want := []int{200, 401, 0}
	if len(uses) != len(want) {
		t.Fatalf("got %d uses; want %d", len(uses), len(want))
	}
	for i, u := range uses {
		if u.Status != want[i] {
			t.Errorf("use %d: status %d (%s); want %d", i, u.Status, u.Error, want[i])
		}
		if waited := u.Used.Sub(u.Started); waited < 20*time.Second {
			t.Errorf("use %d: used %s after it started; want at least 20s", i, waited)
		}
	}
	if uses[2].Error == "" {
		t.Error("a consumer without a token recorded no reason")
	}
}

// TestRound_secretInEngineOutput: a round reports an engine whose output holds a secret, and never shows the secret.
// The engine here is a script that prints the seed it was given, then fails like an engine whose apply failed.
func TestRound_secretInEngineOutput(t *testing.T) {
	t.Parallel()
	dir := shortTempDir(t)
	engine := filepath.Join(dir, "engine")
	if err := os.WriteFile(engine, []byte("#!/bin/sh\necho \"seed: $TF_VAR_seed\"\n[ \"$1\" = plan ]\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := multimachine.NewFleet(multimachine.FleetConfig{Engine: engine, Runner: os.Args[0], Dir: dir,
		Start: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), Rate: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.NewChain(multimachine.ChainConfig{Name: "c", Store: multimachine.DirStore("c", multimachine.HelperGetPut, dir), Machines: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	results, err := f.Round(context.Background(), []*multimachine.Chain{c}, multimachine.RoundOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	failed := strings.Join(append(r.Failed, r.Problems...), "\n")
	if got := strings.Count(strings.Join(r.Problems, "\n"), "the engine's output holds a token or the client secret"); got != 2 {
		t.Errorf("got %d machines reported for a secret in the output; want 2:\n%s", got, failed)
	}
	if r.FailedApplies() != 2 {
		t.Errorf("got %d failed applies; want 2:\n%s", r.FailedApplies(), failed)
	}
	if got := strings.Count(strings.Join(r.Failed, "\n"), "apply: exit status 1"); got != 2 {
		t.Errorf("got %d failed applies reported; want 2:\n%s", got, failed)
	}
	if !strings.Contains(failed, "seed: [secret]") {
		t.Errorf("the failures do not quote the engine's output with the secret redacted:\n%s", failed)
	}
	for _, s := range append(c.Server().SeenSecrets(), "def50200") {
		if strings.Contains(failed, s) {
			t.Fatalf("the failures show a secret:\n%s", failed)
		}
	}
	if len(r.Uses) != 0 || r.Exchanges != 0 {
		t.Errorf("got %d uses and %d exchanges; want none", len(r.Uses), r.Exchanges)
	}
}

// TestNewFleet_longDirectory: a directory too long for the plugin sockets beneath it is refused up front, not left to
// an engine that only says it read nothing from the plugin.
func TestNewFleet_longDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(shortTempDir(t), strings.Repeat("d", 64))
	_, err := multimachine.NewFleet(multimachine.FleetConfig{Engine: "tofu", Runner: os.Args[0], Dir: dir, Start: time.Now(), Rate: 1})
	if err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("got %v; want the directory refused as too long", err)
	}
}
