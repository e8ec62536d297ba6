package tokenstore

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newFakeSMStore returns a command store whose helper is this test binary acting as a secret manager that
// keeps envelopes in the returned directory. Marker files in that directory switch the helper's failure modes.
func newFakeSMStore(t *testing.T) (*commandStore, string) {
	t.Helper()
	smDir := t.TempDir()
	st, err := NewCommand(CommandConfig{Argv: helperArgv("fakesm", smDir), LockDir: filepath.Join(t.TempDir(), "locks")})
	if err != nil {
		t.Fatalf("got NewCommand error %v; want nil", err)
	}
	cs, ok := st.(*commandStore)
	if !ok {
		t.Fatalf("got NewCommand store of type %T; want *commandStore", st)
	}
	cs.environ = testHelperEnviron
	return cs, smDir
}

func mark(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestNewCommand(t *testing.T) {
	t.Parallel()
	st, err := NewCommand(CommandConfig{Argv: []string{os.Args[0], "--vault-token=s.hunter2"}})
	if err != nil {
		t.Fatalf("got %v; want a store", err)
	}
	if want := (Traits{Persistent: true}); st.Traits() != want {
		t.Fatalf("got traits %+v; want %+v (protocol 1 by default)", st.Traits(), want)
	}
	// The default lock directory is the user's own, never a directory shared by every user of the machine.
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(cache, "terraform-provider-bipsync", "locks")
	if d := st.Describe(); !strings.Contains(d, want) || !strings.Contains(d, os.Args[0]) || strings.Contains(d, "hunter2") {
		t.Fatalf("got %q; want the program and lock dir %s, and no fixed arguments", d, want)
	}
	cond, err := NewCommand(CommandConfig{Argv: []string{os.Args[0]}, Protocol: ProtocolConditional})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Traits{Persistent: true, AtomicSave: true, Claims: true}); cond.Traits() != want {
		t.Fatalf("protocol 2: got traits %+v; want %+v", cond.Traits(), want)
	}

	for name, cfg := range map[string]CommandConfig{
		"nil":        {},
		"empty":      {Argv: []string{""}},
		"not found":  {Argv: []string{filepath.Join(t.TempDir(), "no-such-helper")}},
		"protocol 3": {Argv: []string{os.Args[0]}, Protocol: 3},
	} {
		if st, err := NewCommand(cfg); err == nil {
			t.Errorf("%s: got %v; want an error", name, st)
		}
	}
}

func TestCommandStore_EndToEnd(t *testing.T) {
	t.Parallel()
	cs, smDir := newFakeSMStore(t)
	ctx := withTimeout(t, 30*time.Second)
	key := testKey(testSeed)

	if rec, err := cs.Load(ctx, key, testSeed); rec != nil || err != nil {
		t.Fatalf("missing record: got (%v, %v); want (nil, nil)", rec, err)
	}

	unlock, err := cs.Lock(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	want := sampleRecord()
	if err := cs.Save(ctx, key, testSeed, want, nil); err != nil {
		t.Fatalf("got Save error %v; want nil", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	got, err := cs.Load(ctx, key, testSeed)
	if err != nil || !recordsEqual(got, want) {
		t.Fatalf("got (%v, %v); want (%v, nil)", got, err, want)
	}

	// The secret manager holds the sealed envelope only.
	stored, err := os.ReadFile(filepath.Join(smDir, string(key)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(stored), "bts2.7."+testRecordID+".") {
		t.Fatalf("got stored %q; want an envelope", stored)
	}
	assertNoSecret(t, "secret manager entry", string(stored))
	if _, err := Open(key, testSeed, stored); err != nil {
		t.Fatalf("got %v opening the stored entry; want the record", err)
	}
}

func TestCommandStore_LockExcludes(t *testing.T) {
	t.Parallel()
	cs, _ := newFakeSMStore(t)
	key := testKey(testSeed)
	unlock, err := cs.Lock(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cs.lockDir, string(key)+".lock")); err != nil {
		t.Fatalf("got %v; want the lock file in the lock dir", err)
	}
	if u, err := cs.Lock(withTimeout(t, 30*time.Millisecond), key); !errors.Is(err, context.DeadlineExceeded) {
		if u != nil {
			mustUnlock(t, u)
		}
		t.Fatalf("got %v; want a wait ending in context.DeadlineExceeded", err)
	}
	if u, err := cs.Lock(withTimeout(t, 2*time.Second), testKey("other")); err != nil {
		t.Fatalf("another chain: got %v; want its lock at once", err)
	} else {
		mustUnlock(t, u)
	}
	mustUnlock(t, unlock)
}

func TestCommandStore_Failures(t *testing.T) {
	t.Parallel()
	key := testKey(testSeed)
	tests := []struct {
		name    string
		marker  string
		op      string // "get" or "put"
		timeout time.Duration
		want    []string // substrings of the error
		corrupt bool
		maxX    int // most 'x' characters of NOISY stderr the error may quote
	}{
		{
			name: "failing put quotes stderr", marker: "FAIL-put", op: "put",
			want: []string{"exit status 3", "put failed", "permission denied on secret/bipsync/" + string(key), os.Args[0], "[record redacted]"},
		},
		{
			name: "failing get quotes stderr", marker: "FAIL", op: "get",
			want: []string{"exit status 3", "get failed", "permission denied"},
		},
		{
			name: "stderr is cut", marker: "NOISY", op: "get",
			want: []string{"exit status 4", "boom xxx"}, maxX: stderrQuote,
		},
		{
			name: "hang times out", marker: "HANG", op: "get", timeout: 300 * time.Millisecond,
			want: []string{"no answer within 300ms"},
		},
		{
			name: "garbage record", marker: "GARBAGE", op: "get",
			want: []string{"move it aside", string(key)}, corrupt: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cs, smDir := newFakeSMStore(t)
			if tt.timeout > 0 {
				cs.timeout = tt.timeout
			}
			mark(t, smDir, tt.marker)
			ctx := withTimeout(t, 30*time.Second)
			var err error
			if tt.op == "put" {
				err = cs.Save(ctx, key, testSeed, sampleRecord(), nil)
			} else {
				var rec *Record
				rec, err = cs.Load(ctx, key, testSeed)
				if rec != nil {
					t.Fatalf("got record %v; want none", rec)
				}
			}
			if err == nil {
				t.Fatal("got nil error; want a failure")
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("got %q; want it to contain %q", msg, w)
				}
			}
			if got := errors.Is(err, ErrCorrupt); got != tt.corrupt {
				t.Errorf("got errors.Is(err, ErrCorrupt) %t; want %t", got, tt.corrupt)
			}
			if tt.maxX > 0 {
				if n := strings.Count(msg, "x"); n > tt.maxX || n < tt.maxX-10 {
					t.Errorf("got %d bytes of stderr quoted; want about %d", n, tt.maxX)
				}
			}
			assertNoSecret(t, "error", msg)
			if strings.Contains(msg, "GARBAGE") {
				t.Errorf("got %q; want nothing of stdout quoted", msg)
			}
			// The helper saw the envelope it was given; no piece of its sealed part (salt, nonce, ciphertext) may
			// reach the error. The clear header (generation, record ID) is no secret.
			if put, err := os.ReadFile(filepath.Join(smDir, "last-put")); err == nil {
				for _, part := range strings.Split(strings.TrimSpace(string(put)), ".")[3:] {
					if strings.Contains(msg, part) {
						t.Errorf("got %q; want no piece of the envelope (%q)", msg, part)
					}
				}
			}
		})
	}
}

func TestCommandStore_CancelledContext(t *testing.T) {
	t.Parallel()
	cs, smDir := newFakeSMStore(t)
	mark(t, smDir, "HANG")
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := cs.Load(ctx, testKey(testSeed), testSeed)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v; want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v; want the helper killed on cancel", d)
	}
}

func TestRedactEnvelopes(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"plain error", "plain error"},
		{"got bts1.AAAA.BBBB.CC-_ then failed", "got [record redacted] then failed"},
		{"a bts1.x\nb bts1.y.z", "a [record redacted]\nb [record redacted]"},
		{"cut at the end bts1.AAAA", "cut at the end [record redacted]"},
	}
	for _, tt := range tests {
		if got := redactEnvelopes(tt.in); got != tt.want {
			t.Errorf("redactEnvelopes(%q): got %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestCapBuffer(t *testing.T) {
	t.Parallel()
	b := &capBuffer{max: 10}
	// Wrapped so io.Copy cannot take a WriterTo shortcut: it must go through Write or ReadFrom.
	n, err := io.Copy(b, struct{ io.Reader }{strings.NewReader(strings.Repeat("y", 100))})
	if err != nil || n != 100 {
		t.Fatalf("got (%d, %v); want every byte accepted", n, err)
	}
	if got := string(b.Bytes()); got != strings.Repeat("y", 10) || !b.overflow {
		t.Fatalf("got %q, overflow %t; want the first 10 bytes and overflow", got, b.overflow)
	}
}
