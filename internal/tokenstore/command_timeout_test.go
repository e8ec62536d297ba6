package tokenstore

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CommandConfig.Timeout replaces the 60 s bound of one helper run.
func TestNewCommand_Timeout(t *testing.T) {
	t.Parallel()
	smDir := t.TempDir()
	mark(t, smDir, "HANG")
	st, err := NewCommand(CommandConfig{Argv: helperArgv("fakesm", smDir), LockDir: filepath.Join(t.TempDir(), "locks"),
		Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cs, ok := st.(*commandStore)
	if !ok {
		t.Fatalf("got NewCommand store of type %T; want *commandStore", st)
	}
	cs.environ = testHelperEnviron
	start := time.Now()
	_, err = cs.Load(withTimeout(t, 30*time.Second), testKey(testSeed), testSeed)
	if err == nil || !strings.Contains(err.Error(), "no answer within 300ms") {
		t.Fatalf("got %v; want no answer within 300ms", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("took %s; want the run ended at its timeout (plus the wait for its pipes)", d)
	}
}
