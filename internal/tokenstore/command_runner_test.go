package tokenstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// memHelper is a protocol-2 helper in process: a map of entries with a conditional put.
type memHelper struct {
	entries map[string][]byte
	runs    []string
	envs    [][]string
}

func (h *memHelper) run(_ context.Context, args, env []string, stdin []byte) ([]byte, int, error) {
	op, key := args[len(args)-2], args[len(args)-1]
	h.runs = append(h.runs, strings.Join(args, " "))
	h.envs = append(h.envs, env)
	if op == "get" {
		return h.entries[key], 0, nil
	}
	var replaces string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, EnvStoreReplaces+"="); ok {
			replaces = v
		}
	}
	cur := "none"
	if data := h.entries[key]; data != nil {
		rev, err := EnvelopeRevision(data)
		if err != nil {
			return nil, 1, nil //nolint:nilerr // a helper that cannot read the entry exits 1, as a real one would
		}
		cur = rev.Ptr().String()
	}
	if cur != replaces {
		return nil, ExitConflict, nil
	}
	h.entries[key] = stdin
	return nil, 0, nil
}

// TestCommandStore_Runner runs the real command store against an in-process helper: arguments, environment, the
// conditional put's conflict, and a helper that cannot be run.
func TestCommandStore_Runner(t *testing.T) {
	h := &memHelper{entries: map[string][]byte{}}
	st, err := NewCommand(CommandConfig{Argv: []string{"sm-helper-not-on-path", "--vault", "ci"}, Protocol: ProtocolConditional,
		LockDir: t.TempDir(), Runner: h.run})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := testKey(testSeed)
	rec := sampleRecord()
	if err := st.Save(ctx, key, testSeed, rec, nil); err != nil {
		t.Fatalf("first save: %v", err)
	}
	// The first run is the protocol-2 check, a put to a key of its own; the save's put comes next.
	if len(h.runs) != 2 || !strings.HasPrefix(h.runs[0], "--vault ci put ") || h.runs[0] == "--vault ci put "+string(key) {
		t.Fatalf("helper runs %q; want the protocol check's put to a key of its own, then the save's", h.runs)
	}
	if got := h.runs[1]; got != "--vault ci put "+string(key) {
		t.Errorf("helper args %q; want the fixed arguments, then put and the key", got)
	}
	if !slices.Contains(h.envs[1], EnvStoreProtocol+"=2") || !slices.Contains(h.envs[1], EnvStoreReplaces+"=none") {
		t.Errorf("helper env lacks the protocol's variables: %v", h.envs[1])
	}
	got, err := st.Load(ctx, key, testSeed)
	if err != nil || got == nil || got.RefreshToken != rec.RefreshToken {
		t.Fatalf("load: %v, %v", got, err)
	}
	// Another record in place of none: the helper refuses with ExitConflict, which is ErrConflict.
	other := nextRecord(rec)
	err = st.Save(ctx, key, testSeed, other, nil)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("save over an entry the put does not replace: got %v; want ErrConflict", err)
	}
	if err := st.Save(ctx, key, testSeed, other, rec.Revision().Ptr()); err != nil {
		t.Fatalf("save over the record it replaces: %v", err)
	}
	// A helper that cannot run.
	bad, err := NewCommand(CommandConfig{Argv: []string{"sm-helper"}, Protocol: ProtocolConditional, LockDir: t.TempDir(),
		Runner: func(context.Context, []string, []string, []byte) ([]byte, int, error) {
			return nil, 0, errors.New("no answer within 60s")
		}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Load(ctx, key, testSeed)
	if err == nil || !strings.Contains(err.Error(), `token store command "sm-helper" get: no answer within 60s`) {
		t.Fatalf("load through a helper that does not answer: got %v", err)
	}
	// A nonzero exit other than ExitConflict is a failure, not a conflict.
	fails, err := NewCommand(CommandConfig{Argv: []string{"sm-helper"}, Protocol: ProtocolConditional, LockDir: t.TempDir(),
		Runner: func(context.Context, []string, []string, []byte) ([]byte, int, error) { return nil, 3, nil }})
	if err != nil {
		t.Fatal(err)
	}
	err = fails.Save(ctx, key, testSeed, nextRecord(other), other.Revision().Ptr())
	if err == nil || errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("put that exits 3: got %v; want a failure naming exit status 3", err)
	}
}
