package tokenstore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// putLog returns the keys the fake secret manager was asked to put, in order.
func putLog(t *testing.T, smDir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(smDir, "put-log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// A get/put helper configured as protocol 2 writes whatever it is given: it would let a stale runner overwrite another
// machine's newer head. The store finds out with a probe put that a conditional helper must refuse, before anything is
// exchanged (the first Lock), and refuses to work with it.
func TestCommandStore_ProbeRefusesUnconditionalHelper(t *testing.T) {
	t.Parallel()
	cs, smDir := newFakeSMStore(t)
	cs.protocol = ProtocolConditional
	mark(t, smDir, "GETPUT") // the helper ignores BIPSYNC_STORE_REPLACES
	key := testKey(testSeed)
	ctx := withTimeout(t, 30*time.Second)
	unlock, err := cs.Lock(ctx, key)
	if err == nil {
		mustUnlock(t, unlock)
		t.Fatal("Lock of a protocol-2 store whose helper writes unconditionally: got nil error; want a refusal")
	}
	for _, want := range []string{"command_protocol", "conditional", `"1"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q; want it to say %q", err, want)
		}
	}
	if errors.Is(err, ErrConflict) {
		t.Errorf("got %v; want no ErrConflict (nothing conflicts: the helper is wrong)", err)
	}
	// Only the probe key was written, never a chain's.
	if got := putLog(t, smDir); len(got) != 1 || got[0] != string(probeKey) {
		t.Fatalf("got puts %q; want one put of the probe key %s", got, probeKey)
	}
	if probeKey == key || probeKey == ClaimKey(key) {
		t.Fatal("the probe key is a chain's key")
	}
	// A save is refused as well, and the refusal is remembered: no second probe.
	rec := sampleRecord()
	if err := cs.Save(ctx, key, testSeed, rec, nil); err == nil || !strings.Contains(err.Error(), "command_protocol") {
		t.Fatalf("Save: got %v; want the refusal", err)
	}
	if _, err := os.Stat(filepath.Join(smDir, string(key))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the chain's entry exists (err %v); want nothing written", err)
	}
	if got := putLog(t, smDir); len(got) != 1 {
		t.Fatalf("got puts %q; want the one probe", got)
	}
}

// A conditional helper refuses the probe with status 75 and writes nothing; the store then works, and probes once per
// process and helper.
func TestCommandStore_ProbePassesConditionalHelper(t *testing.T) {
	t.Parallel()
	cs, smDir := newFakeSMStore(t)
	cs.protocol = ProtocolConditional
	key := testKey(testSeed)
	rec := sampleRecord()
	if err := saveLocked(t, cs, key, rec, nil); err != nil {
		t.Fatal(err)
	}
	if err := saveLocked(t, cs, key, nextRecord(rec), rec.Revision().Ptr()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(smDir, string(probeKey))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the probe's entry exists (err %v); want nothing written by a refused probe", err)
	}
	// Another store for the same helper in this process does not probe again.
	again, err := NewCommand(CommandConfig{Argv: cs.argv, Protocol: ProtocolConditional, LockDir: cs.lockDir})
	if err != nil {
		t.Fatal(err)
	}
	acs, ok := again.(*commandStore)
	if !ok {
		t.Fatalf("got NewCommand store of type %T; want *commandStore", again)
	}
	acs.environ = testHelperEnviron
	unlock, err := again.Lock(withTimeout(t, 30*time.Second), key)
	if err != nil {
		t.Fatal(err)
	}
	mustUnlock(t, unlock)
	want := []string{string(probeKey), string(key), string(key)}
	if got := putLog(t, smDir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got puts %q; want %q (one probe, then the two saves)", got, want)
	}
}

// A probe that fails for another reason (the secret manager refused the call) fails the operation with the helper's
// words, and is tried again next time: only an answer is remembered.
func TestCommandStore_ProbeFailureIsNotRemembered(t *testing.T) {
	t.Parallel()
	cs, smDir := newFakeSMStore(t)
	cs.protocol = ProtocolConditional
	mark(t, smDir, "FAIL-put")
	key := testKey(testSeed)
	ctx := withTimeout(t, 30*time.Second)
	if _, err := cs.Lock(ctx, key); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("got %v; want the helper's failure", err)
	}
	if err := os.Remove(filepath.Join(smDir, "FAIL-put")); err != nil {
		t.Fatal(err)
	}
	unlock, err := cs.Lock(ctx, key)
	if err != nil {
		t.Fatalf("after the failure cleared: got %v; want the lock", err)
	}
	mustUnlock(t, unlock)
}
