package provider

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// helperStore opens the provider's command store on a helper at protocol 2, with a lock directory of its own: each
// store is one machine.
func helperStore(t *testing.T, h *storeHelper, faults ...string) tokenstore.Store {
	t.Helper()
	st, err := tokenstore.NewCommand(tokenstore.CommandConfig{Argv: h.argv(faults), Protocol: tokenstore.ProtocolConditional,
		LockDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

const helperSeed = "def50200helperstoreseed-0123456789abcdef0123456789abcdef"

func helperChainKey() tokenstore.Key {
	return tokenstore.KeyFor("https://acme-api.bipsync.com/v1/oauth/token", testClientID, helperSeed)
}

// trySaveUnderLock is saveUnderLock that returns a failure to lock instead of stopping the test.
func trySaveUnderLock(st tokenstore.Store, rec *tokenstore.Record, replaces *tokenstore.Revision) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	unlock, err := st.Lock(ctx, helperChainKey())
	if err != nil {
		return err
	}
	return errors.Join(st.Save(ctx, helperChainKey(), helperSeed, rec, replaces), unlock())
}

func saveUnderLock(t *testing.T, st tokenstore.Store, rec *tokenstore.Record, replaces *tokenstore.Revision) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	unlock, err := st.Lock(ctx, helperChainKey())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := unlock(); err != nil {
			t.Errorf("unlock: %v", err)
		}
	}()
	return st.Save(ctx, helperChainKey(), helperSeed, rec, replaces)
}

func loadHelperRecord(t *testing.T, st tokenstore.Store) *tokenstore.Record {
	t.Helper()
	rec, err := st.Load(context.Background(), helperChainKey(), helperSeed)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestExamples_storeHelpers_commandStore drives each helper through the provider's command store at protocol 2, as two
// machines sharing one secret: both load one record and save the next (a forked chain, or two runners' exchanges);
// the second save is refused with a conflict and the first stays; a stale save is refused; repeating a save that
// landed succeeds; and a record that could not be saved is put back from its rescue file only in place of the record
// it replaced.
func TestExamples_storeHelpers_commandStore(t *testing.T) {
	t.Parallel()
	for _, kind := range storeHelperKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			h := newStoreHelper(t, kind)
			machineA, machineB := helperStore(t, h), helperStore(t, h)
			if got := loadHelperRecord(t, machineA); got != nil {
				t.Fatalf("load before any save: got %v; want no record", got)
			}
			g0 := &tokenstore.Record{RefreshToken: "seed", Generation: 0, ID: tokenstore.NewRecordID()}
			if err := saveUnderLock(t, machineA, g0, nil); err != nil {
				t.Fatalf("first save: %v", err)
			}
			loadedA, loadedB := loadHelperRecord(t, machineA), loadHelperRecord(t, machineB)
			if loadedA == nil || loadedB == nil || loadedA.ID != g0.ID || loadedB.ID != g0.ID {
				t.Fatalf("both machines load: got %v and %v; want generation 0", loadedA, loadedB)
			}
			nextA := &tokenstore.Record{RefreshToken: "head-a", Generation: 1, ID: tokenstore.NewRecordID()}
			nextB := &tokenstore.Record{RefreshToken: "head-b", Generation: 1, ID: tokenstore.NewRecordID()}
			if err := saveUnderLock(t, machineA, nextA, loadedA.Revision().Ptr()); err != nil {
				t.Fatalf("machine A's save: %v", err)
			}
			if err := saveUnderLock(t, machineB, nextB, loadedB.Revision().Ptr()); !errors.Is(err, tokenstore.ErrConflict) {
				t.Fatalf("machine B's save of the fork's other head: got %v; want ErrConflict", err)
			}
			if got := loadHelperRecord(t, machineB); got.RefreshToken != "head-a" {
				t.Fatalf("after the race: got head %q; want machine A's", got.RefreshToken)
			}
			if err := saveUnderLock(t, machineA, nextA, loadedA.Revision().Ptr()); err != nil {
				t.Errorf("repeating a save that landed: got %v; want nil", err)
			}
			stale := &tokenstore.Record{RefreshToken: "stale", Generation: 0, ID: tokenstore.NewRecordID()}
			if err := saveUnderLock(t, machineB, stale, nil); !errors.Is(err, tokenstore.ErrConflict) {
				t.Errorf("a save in place of no record over generation 1: got %v; want ErrConflict", err)
			}

			// A save that failed leaves a rescue file; restore puts it back once the store works, and only in place of
			// the record the failed save replaced.
			next2 := &tokenstore.Record{RefreshToken: "head-2", Generation: 2, ID: tokenstore.NewRecordID()}
			rescueDir := t.TempDir()
			broken := helperStore(t, h, envFakeCLIFail+"=503")
			if kind == "aws" {
				broken = helperStore(t, h, envFakeCLIFail+"=ServiceUnavailable")
			}
			// The failure comes at the lock already (the store's check that the helper writes conditionally) or at the save.
			if err := trySaveUnderLock(broken, next2, nextA.Revision().Ptr()); err == nil || errors.Is(err, tokenstore.ErrConflict) {
				t.Fatalf("save while the service fails: got %v; want a failure", err)
			}
			path, err := tokenstore.WriteRescue(rescueDir, broken, helperChainKey(), helperSeed, next2, nextA.Revision().Ptr())
			if err != nil {
				t.Fatal(err)
			}
			rescue, err := tokenstore.ReadRescue(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tokenstore.Restore(context.Background(), machineB, rescue); err != nil {
				t.Fatalf("restore: got %v; want the rescued record saved", err)
			}
			if got := loadHelperRecord(t, machineA); got.RefreshToken != "head-2" {
				t.Fatalf("after the restore: got head %q; want the rescued one", got.RefreshToken)
			}
			if _, err := tokenstore.Restore(context.Background(), machineB, rescue); err != nil {
				t.Errorf("restoring again: got %v; want nil (the store holds the rescued record)", err)
			}
			next3 := &tokenstore.Record{RefreshToken: "head-3", Generation: 3, ID: tokenstore.NewRecordID()}
			if err := saveUnderLock(t, machineA, next3, next2.Revision().Ptr()); err != nil {
				t.Fatal(err)
			}
			if _, err := tokenstore.Restore(context.Background(), machineB, rescue); !errors.Is(err, tokenstore.ErrConflict) {
				t.Errorf("restoring a stale rescue: got %v; want ErrConflict", err)
			}
			if got := loadHelperRecord(t, machineA); got.RefreshToken != "head-3" {
				t.Errorf("after a stale restore: got head %q; want generation 3 kept", got.RefreshToken)
			}
		})
	}
}

// legacyEnvelope seals rec as providers did before records had IDs (bts1: no clear header, the chain key alone as
// additional data), so that the tests can hand a helper a record an older provider left.
func legacyEnvelope(t *testing.T, key tokenstore.Key, seed string, rec *tokenstore.Record) string {
	t.Helper()
	plain, err := json.Marshal(map[string]any{
		"v": 1, "refresh_token": rec.RefreshToken, "refresh_token_issued_at": rec.RefreshTokenIssuedAt,
		"access_token": rec.AccessToken, "token_type": rec.TokenType, "access_token_expires_at": rec.AccessTokenExpiresAt,
		"scopes": rec.Scopes, "rotated_at": rec.RotatedAt, "generation": rec.Generation,
	})
	if err != nil {
		t.Fatal(err)
	}
	salt, nonce := make([]byte, 16), make([]byte, 12)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(nonce)
	k, err := hkdf.Key(sha256.New, []byte(seed), salt, "terraform-provider-bipsync token store v1"+string(key), 32)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding
	ct := g.Seal(nil, nonce, plain, []byte(key))
	return "bts1." + b64.EncodeToString(salt) + "." + b64.EncodeToString(nonce) + "." + b64.EncodeToString(ct) + "\n"
}

// TestExamples_storeHelpers_legacyRecord gives each helper an entry an older provider wrote (bts1, no revision in
// clear): the command store reads it as the legacy revision, and its save replaces it through the helper; a save that
// expects no record is refused.
func TestExamples_storeHelpers_legacyRecord(t *testing.T) {
	t.Parallel()
	for _, kind := range storeHelperKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			h := newStoreHelper(t, kind)
			h.store(string(helperChainKey()), legacyEnvelope(t, helperChainKey(), helperSeed,
				&tokenstore.Record{RefreshToken: "old-head", TokenType: "Bearer", Generation: 12}))
			st := helperStore(t, h)
			old := loadHelperRecord(t, st)
			if old == nil || old.RefreshToken != "old-head" || old.Revision().Ptr().String() != "legacy" {
				t.Fatalf("load: got %v; want the legacy record", old)
			}
			next := &tokenstore.Record{RefreshToken: "new-head", Generation: 13, ID: tokenstore.NewRecordID()}
			if err := saveUnderLock(t, st, next, nil); !errors.Is(err, tokenstore.ErrConflict) {
				t.Errorf("a save in place of no record over the legacy one: got %v; want ErrConflict", err)
			}
			if err := saveUnderLock(t, st, next, old.Revision().Ptr()); err != nil {
				t.Fatalf("save in place of the legacy record: %v", err)
			}
			if got := loadHelperRecord(t, st); got.RefreshToken != "new-head" || got.ID != next.ID {
				t.Errorf("after the save: got %v; want the new record", got)
			}
		})
	}
}

// TestExamples_storeHelperVault_deletedEntry: a person who deletes the entry's current version (vault kv delete) to
// start the chain over gets no record from get, and the first save of the new chain succeeds over the deleted version.
func TestExamples_storeHelperVault_deletedEntry(t *testing.T) {
	t.Parallel()
	h := newStoreHelper(t, "vault")
	h.store(helperKey, sealedRecord(t, 4))
	if err := fakeVaultDelete(h.cli.dir, "secret", "terraform-provider-bipsync/"+helperKey); err != nil {
		t.Fatal(err)
	}
	if r := h.run(nil, nil, "", "get", helperKey); r.exit != 0 || r.stdout != "" {
		t.Fatalf("get of a deleted entry: exit %d, stdout %q; want 0 and nothing", r.exit, r.stdout)
	}
	g0 := sealedRecord(t, 0)
	if r := h.put(nil, "none", g0); r.exit != 0 {
		t.Fatalf("first put after the delete: exit %d, stderr %q", r.exit, r.stderr)
	}
	if got, _ := h.entry(); strings.TrimSpace(got) != strings.TrimSpace(g0) {
		t.Errorf("entry: got revision %s; want %s", revisionOf(t, got), revisionOf(t, g0))
	}
}

// TestExamples_storeHelperAWS_prefixFromEnvironment: the AWS helper's BIPSYNC_STORE_PREFIX, which earlier versions of
// the guide documented, reaches it through the command store (the helpers' own BIPSYNC_STORE_* namespace is not
// scrubbed with the provider's secrets), so an existing set-up finds its secrets under the same names.
func TestExamples_storeHelperAWS_prefixFromEnvironment(t *testing.T) { // not parallel: it sets the environment
	h := newStoreHelper(t, "aws")
	st, err := tokenstore.NewCommand(tokenstore.CommandConfig{Argv: h.argv(nil), LockDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("BIPSYNC_STORE_PREFIX", "team-a/bipsync/")
	rec := &tokenstore.Record{RefreshToken: "def50200aa", ID: tokenstore.NewRecordID()}
	if err := saveUnderLock(t, st, rec, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := fakeAWSCurrent(h.cli.dir, "team-a/bipsync/"+string(helperChainKey())); err != nil || !ok {
		t.Fatalf("secret under the prefix from BIPSYNC_STORE_PREFIX: got (found %t, %v); want it there", ok, err)
	}
}
