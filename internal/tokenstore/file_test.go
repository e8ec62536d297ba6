package tokenstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestFileStore(t *testing.T) (*fileStore, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "chains")
	st, err := NewFile(dir)
	if err != nil {
		t.Fatalf("got NewFile error %v; want nil", err)
	}
	fst, ok := st.(*fileStore)
	if !ok {
		t.Fatalf("got NewFile store of type %T; want *fileStore", st)
	}
	return fst, dir
}

func skipPermsOnWindows(t *testing.T) {
	t.Helper()
	if !posixPerms {
		t.Skip("mode bits carry no access control on windows")
	}
}

// withTimeout returns a context that ends after d, for waits that must end.
func withTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestNewFile_CreatesPrivateDir(t *testing.T) {
	t.Parallel()
	skipPermsOnWindows(t)
	st, dir := newTestFileStore(t)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Fatalf("got dir mode %04o; want 0700", got)
	}
	if want := (Traits{Persistent: true, SharedLock: true, AtomicSave: true, Local: true}); st.Traits() != want {
		t.Fatalf("got traits %+v; want %+v", st.Traits(), want)
	}
	if want := "file store in " + dir; st.Describe() != want {
		t.Fatalf("got %q; want %q", st.Describe(), want)
	}
}

func TestNewFile_Refuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T) string
		want  string
		perms bool
	}{
		{"empty path", func(t *testing.T) string { return "" }, "empty", false},
		{"a regular file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, "not a directory", false},
		{"world-writable dir", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "d")
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, 0o777); err != nil {
				t.Fatal(err)
			}
			return p
		}, "chmod 700", true},
		{"group-writable dir", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "d")
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, 0o770); err != nil {
				t.Fatal(err)
			}
			return p
		}, "chmod 700", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.perms {
				skipPermsOnWindows(t)
			}
			st, err := NewFile(tt.setup(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got (%v, %v); want an error containing %q", st, err, tt.want)
			}
		})
	}
}

func TestFileStore_LoadMissing(t *testing.T) {
	t.Parallel()
	st, _ := newTestFileStore(t)
	rec, err := st.Load(t.Context(), testKey(testSeed), testSeed)
	if rec != nil || err != nil {
		t.Fatalf("got (%v, %v); want (nil, nil)", rec, err)
	}
}

func TestFileStore_SaveLoadRoundTrip(t *testing.T) {
	t.Parallel()
	st, dir := newTestFileStore(t)
	key := testKey(testSeed)
	ctx := t.Context()
	want := sampleRecord()
	if err := st.Save(ctx, key, testSeed, want, nil); err != nil {
		t.Fatalf("got Save error %v; want nil", err)
	}
	got, err := st.Load(ctx, key, testSeed)
	if err != nil || !recordsEqual(got, want) {
		t.Fatalf("got (%v, %v); want (%v, nil)", got, err, want)
	}

	// A second Save replaces the record it names.
	replaces := want.Revision()
	want = nextRecord(want)
	want.RefreshToken += "-next"
	if err := st.Save(ctx, key, testSeed, want, &replaces); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Load(ctx, key, testSeed); err != nil || !recordsEqual(got, want) {
		t.Fatalf("after overwrite: got (%v, %v); want (%v, nil)", got, err, want)
	}

	path := filepath.Join(dir, string(key)+".rec")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "record file", string(data))
	if posixPerms {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Fatalf("got record mode %04o; want 0600", got)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("got %d entries in the store dir; want only the record (no temporary files)", len(entries))
	}
}

func TestFileStore_LockFileIsPrivate(t *testing.T) {
	t.Parallel()
	skipPermsOnWindows(t)
	st, dir := newTestFileStore(t)
	key := testKey(testSeed)
	unlock, err := st.Lock(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer mustUnlock(t, unlock)
	fi, err := os.Stat(filepath.Join(dir, string(key)+".lock"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Fatalf("got lock file mode %04o; want 0600", got)
	}
}

func TestFileStore_LoadCorruptLeavesFileUntouched(t *testing.T) {
	t.Parallel()
	key := testKey(testSeed)
	valid, err := Seal(key, testSeed, sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content []byte
		seed    string
	}{
		{"garbage", []byte("SECRET-LOOKING-GARBAGE " + testAccessToken), testSeed},
		{"wrong seed", valid, "other seed"},
		{"flipped byte", append([]byte{valid[0]}, append([]byte{valid[1] ^ 1}, valid[2:]...)...), testSeed},
		{"truncated", valid[:len(valid)/2], testSeed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, dir := newTestFileStore(t)
			path := filepath.Join(dir, string(key)+".rec")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			before, _ := os.Stat(path)
			rec, err := st.Load(t.Context(), key, tt.seed)
			if !errors.Is(err, ErrCorrupt) || rec != nil {
				t.Fatalf("got (%v, %v); want (nil, ErrCorrupt)", rec, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, "move it aside") {
				t.Fatalf("got %q; want the path %s and what to do", msg, path)
			}
			assertNoSecret(t, "error", msg)
			if strings.Contains(msg, "GARBAGE") {
				t.Fatalf("got %q; want no file content in the error", msg)
			}
			after, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(after, tt.content) {
				t.Fatalf("got file content changed (err %v); want it untouched", err)
			}
			if fi, _ := os.Stat(path); fi.Mode() != before.Mode() || !fi.ModTime().Equal(before.ModTime()) {
				t.Fatalf("got mode/mtime %v %v; want %v %v", fi.Mode(), fi.ModTime(), before.Mode(), before.ModTime())
			}
		})
	}
}

func TestFileStore_LoadRefusesLoosePerms(t *testing.T) {
	t.Parallel()
	skipPermsOnWindows(t)
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			st, dir := newTestFileStore(t)
			key := testKey(testSeed)
			if err := st.Save(t.Context(), key, testSeed, sampleRecord(), nil); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, string(key)+".rec")
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			rec, err := st.Load(t.Context(), key, testSeed)
			if err == nil || rec != nil {
				t.Fatalf("got (%v, %v); want a refusal", rec, err)
			}
			if want := "chmod 600 " + path; !strings.Contains(err.Error(), want) {
				t.Fatalf("got %q; want it to say %q", err, want)
			}
			if errors.Is(err, ErrCorrupt) {
				t.Fatalf("got ErrCorrupt; want a permissions error (the record may be fine)")
			}
			fi, err := os.Stat(path)
			if err != nil || fi.Mode().Perm() != mode {
				t.Fatalf("got mode %v (err %v); want %v left as is", fi.Mode().Perm(), err, mode)
			}
		})
	}
}

func TestFileStore_RejectsInvalidKey(t *testing.T) {
	t.Parallel()
	st, dir := newTestFileStore(t)
	ctx := t.Context()
	bad := Key("../../escape")
	if _, err := st.Lock(ctx, bad); err == nil {
		t.Error("Lock: got nil error; want invalid key")
	}
	if _, err := st.Load(ctx, bad, testSeed); err == nil {
		t.Error("Load: got nil error; want invalid key")
	}
	if err := st.Save(ctx, bad, testSeed, sampleRecord(), nil); err == nil {
		t.Error("Save: got nil error; want invalid key")
	}
	if entries, _ := os.ReadDir(filepath.Dir(filepath.Dir(dir))); len(entries) != 1 {
		t.Errorf("got %d entries beside the store; want nothing written outside it", len(entries))
	}
}

func TestFileStore_LockExcludesInProcess(t *testing.T) {
	t.Parallel()
	st, dir := newTestFileStore(t)
	// A second store on the same directory is a separate handle, as two provider instances would have.
	st2, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := testKey(testSeed)
	unlock, err := st.Lock(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]Store{"same store": st, "second store": st2} {
		start := time.Now()
		u, err := s.Lock(withTimeout(t, 30*time.Millisecond), key)
		if err == nil {
			mustUnlock(t, u)
			t.Fatalf("%s: got the lock while it was held; want a wait that ends with the context", name)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for token store lock") {
			t.Fatalf("%s: got %v; want a wait error wrapping context.DeadlineExceeded", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s: waited %v; want the wait to end soon after the deadline", name, d)
		}
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	u, err := st2.Lock(withTimeout(t, 10*time.Second), key)
	if err != nil {
		t.Fatalf("after unlock: got %v; want the lock", err)
	}
	mustUnlock(t, u)
}

func TestFileStore_UnlockIsIdempotent(t *testing.T) {
	t.Parallel()
	st, _ := newTestFileStore(t)
	key := testKey(testSeed)
	u1, err := st.Lock(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := u1(); err != nil {
		t.Fatal(err)
	}
	u2, err := st.Lock(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer mustUnlock(t, u2)
	// A second call of the first unlock must not release the lock someone else now holds.
	if err := u1(); err != nil {
		t.Fatalf("got %v from a repeated unlock; want nil", err)
	}
	if u3, err := st.Lock(withTimeout(t, 30*time.Millisecond), key); err == nil {
		mustUnlock(t, u3)
		t.Fatal("got the lock after a stale unlock; want it still held by the second holder")
	}
}

func TestFileStore_LockRespectsContext(t *testing.T) {
	t.Parallel()
	st, _ := newTestFileStore(t)
	key := testKey(testSeed)

	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if u, err := st.Lock(cancelled, key); !errors.Is(err, context.Canceled) {
		if u != nil {
			mustUnlock(t, u)
		}
		t.Fatalf("free lock, cancelled context: got %v; want context.Canceled", err)
	}

	unlock, err := st.Lock(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer mustUnlock(t, unlock)
	start := time.Now()
	u, err := st.Lock(withTimeout(t, 20*time.Millisecond), key)
	if u != nil {
		mustUnlock(t, u)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("held lock, deadline while waiting: got %v; want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("waited %v; want the wait to end soon after the deadline", d)
	}
}

func TestFileStore_DifferentKeysDoNotBlock(t *testing.T) {
	t.Parallel()
	st, _ := newTestFileStore(t)
	held, err := st.Lock(t.Context(), testKey("one"))
	if err != nil {
		t.Fatal(err)
	}
	defer mustUnlock(t, held)
	other, err := st.Lock(withTimeout(t, 2*time.Second), testKey("two"))
	if err != nil {
		t.Fatalf("got %v; want another chain's lock at once", err)
	}
	mustUnlock(t, other)
}

func TestFileStore_ConcurrentIncrementsInProcess(t *testing.T) {
	t.Parallel()
	st, dir := newTestFileStore(t)
	st2, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := testKey(testSeed)
	const workers, loops = 6, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		s := Store(st)
		if i%2 == 1 {
			s = st2
		}
		wg.Go(func() {
			if err := incrementLoop(t.Context(), s, key, testSeed, loops); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rec, err := st.Load(t.Context(), key, testSeed)
	if err != nil || rec == nil || rec.Generation != workers*loops {
		t.Fatalf("got (%v, %v); want generation %d", rec, err, workers*loops)
	}
}

// incrementLoop is what a token source does on each exchange: lock, re-read, advance, save, unlock.
func incrementLoop(ctx context.Context, s Store, key Key, seed string, n int) error {
	for range n {
		if _, err := incrementOnce(ctx, s, key, seed); err != nil {
			return err
		}
	}
	return nil
}

func incrementOnce(ctx context.Context, s Store, key Key, seed string) (gen int64, err error) {
	unlock, err := s.Lock(ctx, key)
	if err != nil {
		return 0, err
	}
	// Unlock on every path and report its failure along with any earlier one: a lock that would not release
	// is as much a fault of the store as a failed save.
	defer func() { err = errors.Join(err, unlock()) }()
	rec, err := s.Load(ctx, key, seed)
	if err != nil {
		return 0, err
	}
	var replaces *Revision
	if rec == nil {
		rec = &Record{RefreshToken: seed}
	} else {
		replaces = rec.Revision().Ptr()
	}
	rec.Generation++
	rec.ID = NewRecordID()
	rec.RotatedAt = time.Unix(rec.Generation, 0)
	if err := s.Save(ctx, key, seed, rec, replaces); err != nil {
		return 0, err
	}
	return rec.Generation, nil
}

func TestFileStore_LockRemovesStaleTemps(t *testing.T) {
	t.Parallel()
	st, dir := newTestFileStore(t)
	key, other := testKey(testSeed), testKey("other")
	stale := filepath.Join(dir, string(key)+".rec.tmp")
	foreign := filepath.Join(dir, string(other)+".rec.tmp")
	for _, p := range []string{stale, foreign} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	unlock, err := st.Lock(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	mustUnlock(t, unlock)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v for this chain's stale temp; want it removed", err)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Fatalf("got %v for another chain's temp; want it left alone (that chain may be mid-save)", err)
	}
}

func TestFileStore_OSLockExcludesSecondDescriptor(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "aix" {
		t.Skip("fcntl locks do not exclude within a process; procLocks does that")
	}
	// Below procLocks: the OS lock itself must refuse a second open file description.
	path := filepath.Join(t.TempDir(), "x.lock")
	f1, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f1.Close()
	f2, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if err := tryLock(f1); err != nil {
		t.Fatalf("first tryLock: got %v; want nil", err)
	}
	if err := tryLock(f2); !errors.Is(err, errWouldBlock) {
		t.Fatalf("second tryLock: got %v; want errWouldBlock", err)
	}
	if err := unlockFile(f1); err != nil {
		t.Fatal(err)
	}
	if err := tryLock(f2); err != nil {
		t.Fatalf("tryLock after unlock: got %v; want nil", err)
	}
}
