package tokenstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
)

// conditionalStores returns one store of each kind that checks what a save replaces, each with the directory of the
// fake secret manager's entries and markers ("" for the other stores). writeRaw and readRaw reach the record a store
// holds directly, bypassing the store's own code.
func conditionalStores(t *testing.T) map[string]func(t *testing.T) (Store, string) {
	t.Helper()
	return map[string]func(t *testing.T) (Store, string){
		"file": func(t *testing.T) (Store, string) {
			st, _ := newTestFileStore(t)
			return st, ""
		},
		"command protocol 1": func(t *testing.T) (Store, string) {
			cs, dir := newFakeSMStore(t)
			return cs, dir
		},
		"command protocol 2": func(t *testing.T) (Store, string) {
			cs, dir := newFakeSMStore(t)
			cs.protocol = ProtocolConditional
			return cs, dir
		},
		"postgres": func(t *testing.T) (Store, string) {
			return newTestPostgresStore(t, pgtest.Start(t)), ""
		},
		"s3": func(t *testing.T) (Store, string) {
			return newParallelS3Store(t), ""
		},
	}
}

// writeRaw puts data in st's place for key's record, as someone editing the store by hand would.
func writeRaw(t *testing.T, st Store, smDir string, key Key, data []byte) {
	t.Helper()
	switch st := st.(type) {
	case *fileStore:
		if err := os.WriteFile(st.recPath(key), data, 0o600); err != nil {
			t.Fatal(err)
		}
	case *postgresStore:
		pgWriteRaw(t, st, key, data)
	case *s3Store:
		s3WriteRaw(t, st, key, data)
	default:
		if err := os.WriteFile(filepath.Join(smDir, string(key)), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// readRaw returns what st holds for key's record, read by hand.
func readRaw(t *testing.T, st Store, smDir string, key Key) []byte {
	t.Helper()
	switch st := st.(type) {
	case *fileStore:
		b, _ := os.ReadFile(st.recPath(key))
		return b
	case *postgresStore:
		return pgReadRaw(t, st, key)
	case *s3Store:
		return s3ReadRaw(t, st, key)
	default:
		b, _ := os.ReadFile(filepath.Join(smDir, string(key)))
		return b
	}
}

// saveLocked saves under the chain's lock, as every caller must.
func saveLocked(t *testing.T, st Store, key Key, rec *Record, replaces *Revision) error {
	t.Helper()
	ctx := withTimeout(t, 30*time.Second)
	unlock, err := st.Lock(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer mustUnlock(t, unlock)
	return st.Save(ctx, key, testSeed, rec, replaces)
}

func loadOrFail(t *testing.T, st Store, key Key) *Record {
	t.Helper()
	rec, err := st.Load(withTimeout(t, 30*time.Second), key, testSeed)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// A save names the record it replaces; the store refuses it when it holds anything else, so a stale writer (a
// runner that saves a record another runner has already rotated past, or the second head of a forked chain) can never
// put the store back.
func TestStore_SaveIsConditional(t *testing.T) {
	t.Parallel()
	for name, open := range conditionalStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st, _ := open(t)
			key := testKey(testSeed)
			g7 := sampleRecord()
			if err := saveLocked(t, st, key, g7, nil); err != nil {
				t.Fatalf("first save: got %v; want nil", err)
			}
			if err := saveLocked(t, st, key, nextRecord(g7), nil); !errors.Is(err, ErrConflict) {
				t.Fatalf("a save that expects no record over generation 7: got %v; want ErrConflict", err)
			}
			winner, sibling := nextRecord(g7), nextRecord(g7)
			if err := saveLocked(t, st, key, winner, g7.Revision().Ptr()); err != nil {
				t.Fatalf("generation 8 over 7: got %v; want nil", err)
			}
			// The other head of a fork (generation 8 too, from the same generation 7) comes second: refused.
			var conflict *ConflictError
			if err := saveLocked(t, st, key, sibling, g7.Revision().Ptr()); !errors.As(err, &conflict) {
				t.Fatalf("the fork's sibling: got %v; want a *ConflictError", err)
			}
			if !strings.Contains(conflict.Error(), "7."+testRecordID) {
				t.Fatalf("got %q; want it to name the revision the save replaced", conflict)
			}
			// A stale record (generation 7 again, a new ID) over generation 8: refused.
			stale := g7.Clone()
			stale.ID = NewRecordID()
			if err := saveLocked(t, st, key, stale, g7.Revision().Ptr()); !errors.Is(err, ErrConflict) {
				t.Fatalf("a stale record: got %v; want ErrConflict", err)
			}
			if got := loadOrFail(t, st, key); !recordsEqual(got, winner) {
				t.Fatalf("got %v; want the winner %v, never the sibling or the stale record", got, winner)
			}
			// Saving the winner again, as a retry of a save that reported a failure after landing: accepted.
			if err := saveLocked(t, st, key, winner, g7.Revision().Ptr()); err != nil {
				t.Fatalf("repeating a landed save: got %v; want nil", err)
			}
		})
	}
}

// A record written before records had IDs is replaced by a save that names it as legacy, and by nothing else.
func TestStore_SaveReplacesLegacyRecord(t *testing.T) {
	t.Parallel()
	for name, open := range conditionalStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st, smDir := open(t)
			key := testKey(testSeed)
			old := sampleRecord()
			old.ID = ""
			writeRaw(t, st, smDir, key, legacyEnvelope(t, key, old))
			loaded := loadOrFail(t, st, key)
			if loaded.Revision().Ptr().String() != "legacy" {
				t.Fatalf("got revision %s; want legacy", loaded.Revision().Ptr().String())
			}
			if err := saveLocked(t, st, key, nextRecord(sampleRecord()), nil); !errors.Is(err, ErrConflict) {
				t.Fatalf("a save that expects no record over a legacy one: got %v; want ErrConflict", err)
			}
			next := nextRecord(loaded)
			if err := saveLocked(t, st, key, next, loaded.Revision().Ptr()); err != nil {
				t.Fatalf("got %v; want the legacy record replaced", err)
			}
			if got := loadOrFail(t, st, key); !recordsEqual(got, next) {
				t.Fatalf("got %v; want %v", got, next)
			}
		})
	}
}

// A helper that stored the record and then failed (a network error after the write, or killed at its timeout) makes
// Save report a failure although the record landed. Saving the same record again must succeed, and a save of the
// record it replaced (the stale state the provider would otherwise write back) must be refused.
func TestCommandStore_SaveThatLandedThenFailed(t *testing.T) {
	t.Parallel()
	for _, protocol := range []int{ProtocolGetPut, ProtocolConditional} {
		t.Run("protocol "+string(rune('0'+protocol)), func(t *testing.T) {
			t.Parallel()
			cs, smDir := newFakeSMStore(t)
			cs.protocol = protocol
			key := testKey(testSeed)
			g7 := sampleRecord()
			if err := saveLocked(t, cs, key, g7, nil); err != nil {
				t.Fatal(err)
			}
			mark(t, smDir, "LAND-THEN-FAIL")
			g8 := nextRecord(g7)
			if err := saveLocked(t, cs, key, g8, g7.Revision().Ptr()); err == nil || errors.Is(err, ErrConflict) {
				t.Fatalf("got %v; want the helper's failure", err)
			}
			if err := os.Remove(filepath.Join(smDir, "LAND-THEN-FAIL")); err != nil {
				t.Fatal(err)
			}
			// Another process loaded the landed generation 8 and rotated it to 9 meanwhile.
			g9 := nextRecord(g8)
			if err := saveLocked(t, cs, key, g9, g8.Revision().Ptr()); err != nil {
				t.Fatal(err)
			}
			// The first process retries its save of 8 over 7: refused, generation 9 stays.
			if err := saveLocked(t, cs, key, g8, g7.Revision().Ptr()); !errors.Is(err, ErrConflict) {
				t.Fatalf("retry after another process rotated: got %v; want ErrConflict", err)
			}
			if got := loadOrFail(t, cs, key); !recordsEqual(got, g9) {
				t.Fatalf("got generation %d; want 9 kept", got.Generation)
			}
		})
	}
}

// The same for the file store: a failed directory fsync after the rename means the record is in place.
func TestFileStore_SaveThatLandedThenFailed(t *testing.T) {
	t.Parallel()
	st, _ := newTestFileStore(t)
	key := testKey(testSeed)
	g7 := sampleRecord()
	if err := saveLocked(t, st, key, g7, nil); err != nil {
		t.Fatal(err)
	}
	g8 := nextRecord(g7)
	// What writeFileAtomic leaves when the directory fsync fails: the new record renamed into place.
	env, err := Seal(key, testSeed, g8)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(st.recPath(key), env, 0o600); err != nil {
		t.Fatal(err)
	}
	g9 := nextRecord(g8)
	if err := saveLocked(t, st, key, g9, g8.Revision().Ptr()); err != nil {
		t.Fatal(err)
	}
	if err := saveLocked(t, st, key, g8, g7.Revision().Ptr()); !errors.Is(err, ErrConflict) {
		t.Fatalf("retry after another process rotated: got %v; want ErrConflict", err)
	}
	if got := loadOrFail(t, st, key); !recordsEqual(got, g9) {
		t.Fatalf("got generation %d; want 9 kept", got.Generation)
	}
}

// A protocol-2 helper that reports a conflict is believed (the token source re-reads the store); its exit status
// becomes a *ConflictError, while at protocol 1 the same status is an ordinary failure.
func TestCommandStore_ExitConflict(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		protocol int
		conflict bool
	}{{ProtocolGetPut, false}, {ProtocolConditional, true}} {
		cs, smDir := newFakeSMStore(t)
		cs.protocol = tt.protocol
		mark(t, smDir, "LIE")
		err := saveLocked(t, cs, testKey(testSeed), sampleRecord(), nil)
		if err == nil || errors.Is(err, ErrConflict) != tt.conflict {
			t.Errorf("protocol %d: got %v; want conflict %t", tt.protocol, err, tt.conflict)
		}
	}
}

// A record the seed cannot open, or that is no envelope at all, is never replaced: it may hold the only live head of
// the chain, and the person who looks at it should find it as it was.
func TestStore_SaveLeavesUnreadableRecordAlone(t *testing.T) {
	t.Parallel()
	key := testKey(testSeed)
	foreign, err := Seal(key, "another seed", nextRecord(sampleRecord()))
	if err != nil {
		t.Fatal(err)
	}
	for name, open := range conditionalStores(t) {
		for what, held := range map[string][]byte{"another seed's record": foreign, "garbage": []byte("hello\n")} {
			t.Run(name+"/"+what, func(t *testing.T) {
				t.Parallel()
				st, smDir := open(t)
				writeRaw(t, st, smDir, key, held)
				err := saveLocked(t, st, key, sampleRecord(), nil)
				if !errors.Is(err, ErrConflict) && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("got %v; want ErrConflict or ErrCorrupt", err)
				}
				if got := readRaw(t, st, smDir, key); string(got) != string(held) {
					t.Fatal("the unreadable record was replaced; want it left alone")
				}
			})
		}
	}
}

// The helper runs without the provider's secrets in its environment, and with the protocol's variables.
func TestCommandStore_HelperEnvironment(t *testing.T) {
	t.Parallel()
	environ := []string{
		"PATH=/usr/bin", "HOME=/home/ci", "AWS_PROFILE=ci", "VAULT_TOKEN=s.vault", "HTTPS_PROXY=http://proxy:3128",
		"BIPSYNC_CLIENT_SECRET=" + testAccessToken, "BIPSYNC_REFRESH_TOKEN=" + testSeed, "bipsync_client_secret=lower",
		"TF_VAR_bipsync_refresh_token=" + testRefreshToken, "TF_CLI_ARGS_apply=-var=x=" + testSeed, "TF_TOKEN_app_terraform_io=tfe",
		"TF_LOG=DEBUG", "BIPSYNC_STORE_PREFIX=team-a/", "BIPSYNC_STORE_REPLACES=7.stale", "bipsync_store_operation=put",
	}
	got := helperEnv(environ, "put", []string{EnvStoreReplaces + "=none"})
	joined := strings.Join(got, "\n")
	for _, keep := range []string{"PATH=/usr/bin", "HOME=/home/ci", "AWS_PROFILE=ci", "VAULT_TOKEN=s.vault", "HTTPS_PROXY=http://proxy:3128", "TF_LOG=DEBUG", "BIPSYNC_STORE_PREFIX=team-a/", EnvStoreOperation + "=put", EnvStoreReplaces + "=none"} {
		if !strings.Contains(joined, keep) {
			t.Errorf("got environment %q; want %q kept", got, keep)
		}
	}
	for _, drop := range []string{"BIPSYNC_CLIENT_SECRET", "BIPSYNC_REFRESH_TOKEN", "bipsync_client_secret", "TF_VAR_", "TF_CLI_ARGS", "TF_TOKEN_", "7.stale", "bipsync_store_operation"} {
		if strings.Contains(joined, drop) {
			t.Errorf("got environment %q; want %s removed", got, drop)
		}
	}
	assertNoSecret(t, "helper environment", joined)
}

// Through a real helper process: it sees no secret of the provider's environment.
func TestCommandStore_HelperSeesNoProviderSecret(t *testing.T) {
	t.Parallel()
	cs, smDir := newFakeSMStore(t)
	cs.environ = func() []string {
		return append(testHelperEnviron(), "BIPSYNC_CLIENT_SECRET="+testAccessToken, "TF_VAR_seed="+testSeed)
	}
	mark(t, smDir, "DUMP-ENV")
	if _, err := cs.Load(withTimeout(t, 30*time.Second), testKey(testSeed), testSeed); err != nil {
		t.Fatal(err)
	}
	dumped, err := os.ReadFile(filepath.Join(smDir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "the helper's environment", string(dumped))
	if !strings.Contains(string(dumped), EnvStoreOperation+"=get") || !strings.Contains(string(dumped), EnvStoreProtocol+"=1") {
		t.Fatalf("got %q; want the operation and protocol variables", dumped)
	}
}

func TestStillAtPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "x.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if same, err := stillAtPath(f, path); err != nil || !same {
		t.Fatalf("got (%t, %v); want the file at its path", same, err)
	}
	other := filepath.Join(dir, "y")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	if same, err := stillAtPath(f, path); err != nil || same {
		t.Fatalf("after the path was replaced: got (%t, %v); want false", same, err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if same, err := stillAtPath(f, path); err != nil || same {
		t.Fatalf("after the path was removed: got (%t, %v); want false", same, err)
	}
}

// A lock directory or lock file that another user owns is refused: its owner could swap the lock files.
func TestLock_RefusesForeignOwner(t *testing.T) {
	t.Parallel()
	skipPermsOnWindows(t)
	if os.Getuid() != 0 {
		t.Skip("SKIP: changing a file's owner needs root; the owner check is exercised by CI, which runs as root")
	}
	dir := filepath.Join(t.TempDir(), "locks")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := ensurePrivateDir(dir); err == nil || !strings.Contains(err.Error(), "belongs to user ID 65534") {
		t.Fatalf("foreign directory: got %v; want a refusal naming the owner", err)
	}
	own := t.TempDir()
	lock := filepath.Join(own, "k.lock")
	if err := os.WriteFile(lock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(lock, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if unlock, err := lockFile(ctx, lock); err == nil {
		_ = unlock()
		t.Fatal("foreign lock file: got the lock; want a refusal")
	}
}
