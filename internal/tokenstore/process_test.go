package tokenstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testHelperEnv marks a re-executed test binary as a helper process rather than a test run.
const testHelperEnv = "TOKENSTORE_TEST_HELPER"

// helperArgv is the command line that re-executes this test binary as a helper; args follow "--".
func helperArgv(args ...string) []string {
	return append([]string{os.Args[0], "-test.run=^TestHelperProcess$", "--"}, args...)
}

func helperCmd(ctx context.Context, args ...string) *exec.Cmd {
	argv := helperArgv(args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = testHelperEnviron()
	return cmd
}

// testHelperEnviron marks the child as a helper. Under the race detector a process that exits 0 sleeps a second
// so that reports can flush; helpers exit often enough for that to dominate the run, so it is switched off.
func testHelperEnviron() []string {
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	return append(os.Environ(), testHelperEnv+"=1", "GORACE="+gorace)
}

// TestHelperProcess is not a test: other tests run the test binary as a separate process through it, so
// that locks and crashes are exercised across real process boundaries.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(testHelperEnv) != "1" {
		return
	}
	args := flag.Args()
	if err := runHelper(args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runHelper(args []string) error {
	if len(args) == 0 {
		return errors.New("helper: no mode")
	}
	ctx := context.Background()
	mode, args := args[0], args[1:]
	switch mode {
	case "loop": // DIR KEY SEED N: N lock/load/increment/save rounds
		st, err := NewFile(args[0])
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(args[3])
		return incrementLoop(ctx, st, Key(args[1]), args[2], n)
	case "crash": // DIR KEY SEED: increment forever, printing each generation once its Save returned
		st, err := NewFile(args[0])
		if err != nil {
			return err
		}
		for {
			g, err := incrementOnce(ctx, st, Key(args[1]), args[2])
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stdout, "%d\n", g)
		}
	case "hold": // DIR KEY: hold the lock until stdin closes
		st, err := NewFile(args[0])
		if err != nil {
			return err
		}
		unlock, err := st.Lock(ctx, Key(args[1]))
		if err != nil {
			return err
		}
		fmt.Fprintln(os.Stdout, "locked")
		if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
			return errors.Join(fmt.Errorf("helper: reading stdin: %w", err), unlock())
		}
		return unlock()
	case "fakesm": // DIR get|put KEY: a secret manager keeping one file per key
		return fakeSecretManager(args)
	}
	if h, ok := postgresHelpers[mode]; ok {
		return h(ctx, args)
	}
	return fmt.Errorf("helper: unknown mode %q", mode)
}

// startHelper starts a helper and returns its stdout lines reader; stderr is collected for failures.
func startHelper(t *testing.T, ctx context.Context, stdin io.Reader, args ...string) (*exec.Cmd, *bufio.Reader, *bytes.Buffer) {
	t.Helper()
	cmd := helperCmd(ctx, args...)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewReader(out), &stderr
}

func TestFileStore_CrossProcessIncrements(t *testing.T) {
	t.Parallel()
	st, dir := newTestFileStore(t)
	key := testKey(testSeed)
	const procs, loops = 8, 50
	ctx := withTimeout(t, 60*time.Second)
	var wg sync.WaitGroup
	errs := make([]error, procs)
	stderrs := make([]bytes.Buffer, procs)
	for i := range procs {
		cmd := helperCmd(ctx, "loop", dir, string(key), testSeed, strconv.Itoa(loops))
		cmd.Stderr = &stderrs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { errs[i] = cmd.Wait() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("process %d: got %v (stderr %q); want success", i, err, stderrs[i].String())
		}
	}
	rec, err := st.Load(t.Context(), key, testSeed)
	if err != nil || rec == nil {
		t.Fatalf("got (%v, %v); want the record", rec, err)
	}
	if rec.Generation != procs*loops {
		t.Fatalf("got generation %d; want %d (a lower count means two processes held the lock at once)", rec.Generation, procs*loops)
	}
}

func TestFileStore_LockExcludesOtherProcess(t *testing.T) {
	t.Parallel()
	st, dir := newTestFileStore(t)
	key := testKey(testSeed)
	stdinR, stdinW := io.Pipe()
	cmd, out, stderr := startHelper(t, withTimeout(t, 30*time.Second), stdinR, "hold", dir, string(key))
	if line, err := out.ReadString('\n'); line != "locked\n" {
		t.Fatalf("got %q, %v (stderr %q); want the helper to report the lock", line, err, stderr.String())
	}

	expectLockedElsewhere(t, st, key, 100*time.Millisecond, "another process holds it", 2*time.Second)

	stdinW.Close()
	u, err := st.Lock(withTimeout(t, 20*time.Second), key)
	if err != nil {
		t.Fatalf("after the helper let go: got %v; want the lock", err)
	}
	mustUnlock(t, u)
	if _, err := io.Copy(io.Discard, out); err != nil {
		t.Fatalf("got %v draining the helper's output; want EOF", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: got %v (stderr %q); want success", err, stderr.String())
	}
}

func TestFileStore_CrashSafety(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL")
	}
	st, dir := newTestFileStore(t)
	key := testKey(testSeed)
	const kills = 200
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, seed))
	ctx := withTimeout(t, 60*time.Second)

	var last int64 // generation loaded after the previous kill
	survived, unacked := 0, 0
	for i := range kills {
		cmd, out, stderr := startHelper(t, ctx, nil, "crash", dir, string(key), testSeed)
		// The first line means the helper is saving; the kill lands a random moment later, mostly inside a
		// Save since that is where the loop spends its time.
		line, err := out.ReadString('\n')
		if err != nil {
			// Only reaping the helper: its own failure is reported below with its stderr.
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("kill %d: helper did not start: %v (stderr %q)", i, err, stderr.String())
		}
		time.Sleep(time.Duration(rng.Int64N(int64(2 * time.Millisecond))))
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		// Read to EOF before Wait, which closes the pipe; only whole lines count as acknowledged saves.
		rest, _ := io.ReadAll(out)
		// The exit status only repeats the SIGKILL; any other error, such as a failure collecting the helper's
		// stderr, is a failure of the test.
		var exit *exec.ExitError
		if err := cmd.Wait(); err != nil && !errors.As(err, &exit) {
			t.Fatalf("kill %d: waiting for the helper: %v", i, err)
		}
		acked := lastWholeLine(line + string(rest))

		ctx := withTimeout(t, 10*time.Second)
		unlock, err := st.Lock(ctx, key)
		if err != nil {
			t.Fatalf("kill %d: lock after the crash: %v", i, err)
		}
		rec, err := st.Load(ctx, key, testSeed)
		mustUnlock(t, unlock)
		switch {
		case err != nil:
			t.Fatalf("kill %d (rng seed %d): got load error %v; want the old or the new record", i, seed, err)
		case rec == nil:
			t.Fatalf("kill %d: got no record; want one", i)
		case rec.Generation < last:
			t.Fatalf("kill %d: got generation %d after %d; want it never to go backwards", i, rec.Generation, last)
		case rec.Generation < acked:
			t.Fatalf("kill %d: got generation %d; want at least %d, whose Save had returned", i, rec.Generation, acked)
		case rec.Generation > acked+1:
			t.Fatalf("kill %d: got generation %d; want at most one save beyond the acknowledged %d", i, rec.Generation, acked)
		}
		if rec.Generation == acked+1 {
			unacked++
		}
		last = rec.Generation
		survived++
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("got leftover %s after the last lock; want temporary files cleaned", e.Name())
		}
	}
	// unacked counts kills that landed between a rename and its acknowledgement: evidence that kills fall
	// inside Save, not only between Saves.
	t.Logf("survived %d of %d SIGKILLs; final generation %d; %d kills after an unacknowledged save", survived, kills, last, unacked)
}

// revisionOfEntry is what a protocol-2 helper computes from the entry it holds, as the protocol documents: the second
// and third dot-separated fields of a bts2 envelope, or "legacy" for a bts1 one.
func revisionOfEntry(data []byte) string {
	parts := strings.SplitN(strings.TrimSpace(string(data)), ".", 4)
	if len(parts) >= 3 && parts[0] == "bts2" {
		return parts[1] + "." + parts[2]
	}
	return "legacy"
}

func lastWholeLine(s string) int64 {
	lines := strings.Split(s, "\n")
	// The element after the last newline is empty or a partial line.
	for i := len(lines) - 2; i >= 0; i-- {
		if n, err := strconv.ParseInt(lines[i], 10, 64); err == nil {
			return n
		}
	}
	return 0
}

// fakeSecretManager stores each key's envelope in a file, as a secret manager's CLI would.
// Modes beyond get/put are selected by the directory's marker files, so one argv serves every case.
func fakeSecretManager(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("fakesm: got %q; want DIR get|put KEY", args)
	}
	dir, op, key := args[0], args[1], args[2]
	marker := func(name string) bool { _, err := os.Stat(filepath.Join(dir, name)); return err == nil }
	var stdin []byte
	if op == "put" {
		var err error
		if stdin, err = io.ReadAll(os.Stdin); err != nil {
			return fmt.Errorf("fakesm: reading stdin: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "last-put"), stdin, 0o600); err != nil {
			return fmt.Errorf("fakesm: %w", err)
		}
	}
	if marker("DUMP-ENV") {
		if err := os.WriteFile(filepath.Join(dir, "env"), []byte(strings.Join(os.Environ(), "\n")), 0o600); err != nil {
			return err
		}
	}
	switch {
	case marker("FAIL"), marker("FAIL-" + op):
		// A careless helper that echoes its input into its error message.
		fmt.Fprintf(os.Stderr, "vault: permission denied on secret/bipsync/%s; input was: %s", key, stdin)
		os.Exit(3)
	case marker("NOISY"):
		os.Stderr.WriteString("boom " + strings.Repeat("x", 10000))
		os.Exit(4)
	case marker("HANG"):
		time.Sleep(time.Hour)
	case marker("GARBAGE") && op == "get":
		os.Stdout.WriteString("GARBAGE-FROM-THE-VAULT " + testAccessToken + "\n")
		return nil
	}
	path := filepath.Join(dir, key)
	switch op {
	case "get":
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(data)
		return err
	case "put":
		if marker("LIE") {
			// A protocol-2 helper that says "newer" although it holds nothing newer.
			os.Exit(ExitConflict)
		}
		if err := appendLine(filepath.Join(dir, "put-log"), key); err != nil {
			return err
		}
		if os.Getenv(EnvStoreProtocol) == strconv.Itoa(ProtocolConditional) && !marker("GETPUT") {
			// The conditional write a protocol-2 helper does with its secret manager, compare-and-swap on a file
			// here: the entry must hold BIPSYNC_STORE_REPLACES, or already the record being put.
			cur := "none"
			if data, err := os.ReadFile(path); err == nil {
				cur = revisionOfEntry(data)
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if cur != os.Getenv(EnvStoreReplaces) && cur != os.Getenv(EnvStoreRevision) {
				fmt.Fprintf(os.Stderr, "fakesm: entry holds %s, not %s\n", cur, os.Getenv(EnvStoreReplaces))
				os.Exit(ExitConflict)
			}
		}
		if err := os.WriteFile(path, stdin, 0o600); err != nil {
			return err
		}
		if marker("LAND-THEN-FAIL") {
			// The secret manager stored the record, then the CLI failed (or was killed) before saying so.
			fmt.Fprintln(os.Stderr, "fakesm: connection reset after the write")
			os.Exit(1)
		}
		return nil
	}
	return fmt.Errorf("fakesm: unknown operation %q", op)
}

// appendLine appends line to the file at path, creating it.
func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("fakesm: %w", err)
	}
	_, err = fmt.Fprintln(f, line)
	return errors.Join(err, f.Close())
}
