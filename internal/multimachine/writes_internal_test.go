package multimachine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
)

// TestDirStore_writes: a directory store counts the writes that landed for a chain, its record's and its claim's, and
// no others: not a conditional put refused, not a repeat of one that landed, not another chain's.
func TestDirStore_writes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const seed = "seed-refresh-token"
	for _, tc := range []struct {
		mode     string
		protocol int
		// want is the count after: a first record, the same save again, a fork's save of the same revision, a save of
		// another chain, a claim.
		want []int
	}{
		{HelperGetPut, tokenstore.ProtocolGetPut, []int{1, 2, 3, 3, -1}},
		{HelperConditional, tokenstore.ProtocolConditional, []int{1, 1, 1, 1, 2}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			// The helper's puts run in this process, as RunStoreHelper; the store only counts.
			st := DirStore(tc.mode, tc.mode, dir)
			key := tokenstore.KeyFor("http://127.0.0.1:1/v1/oauth/token", "cli", seed)
			other := tokenstore.KeyFor("http://127.0.0.1:1/v1/oauth/token", "cli", "another seed")
			first := &tokenstore.Record{RefreshToken: seed, ID: tokenstore.NewRecordID()}
			fork := &tokenstore.Record{RefreshToken: seed, ID: tokenstore.NewRecordID()}

			check := func(step int) {
				t.Helper()
				if tc.want[step] < 0 {
					return
				}
				got, err := st.writes(ctx, key)
				if err != nil || got != tc.want[step] {
					t.Errorf("step %d: got (%d, %v) writes; want %d", step, got, err, tc.want[step])
				}
			}
			put(t, tc.mode, dir, key, seed, first)
			check(0)
			put(t, tc.mode, dir, key, seed, first)
			check(1)
			put(t, tc.mode, dir, key, seed, fork)
			check(2)
			put(t, tc.mode, dir, other, "another seed", first)
			check(3)
			if tc.protocol == tokenstore.ProtocolConditional {
				claim := &tokenstore.Claim{ID: tokenstore.NewRecordID(), Head: first.Revision(), Holder: "h", At: time.Now(), TTL: time.Minute}
				data, err := tokenstore.SealClaim(key, seed, claim)
				if err != nil {
					t.Fatal(err)
				}
				putData(t, tc.mode, dir, tokenstore.ClaimKey(key), data, "none", claim.Revision().Ptr().String())
				check(4)
			}
		})
	}
}

// put runs the helper's put of rec in place of no record, as the command store does.
func put(t *testing.T, mode, dir string, key tokenstore.Key, seed string, rec *tokenstore.Record) {
	t.Helper()
	data, err := tokenstore.Seal(key, seed, rec)
	if err != nil {
		t.Fatal(err)
	}
	putData(t, mode, dir, key, data, "none", rec.Revision().Ptr().String())
}

func putData(t *testing.T, mode, dir string, key tokenstore.Key, data []byte, replaces, revision string) {
	t.Helper()
	env := map[string]string{tokenstore.EnvStoreReplaces: replaces, tokenstore.EnvStoreRevision: revision}
	var stderr bytes.Buffer
	code := RunStoreHelper(mode, []string{dir, "put", string(key)}, bytes.NewReader(data), io.Discard, &stderr, func(k string) string { return env[k] })
	if code != 0 && code != tokenstore.ExitConflict {
		t.Fatalf("put: exit %d: %s", code, stderr.String())
	}
}

// TestPostgresStore_writes: the postgres store counts, through its trigger, the rows of a chain that a save inserted or
// updated, and no others: not a save that changed nothing (a repeat of one that landed), not another chain's.
func TestPostgresStore_writes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const seed = "seed-refresh-token"
	db := pgtest.DatabaseName(pgtest.Start(t))
	srv := pgtest.Shared(t)
	st := PostgresStore("postgres", fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable",
		srv.Port(), pgtest.Superuser, db), srv.Password())
	store, err := st.open("", "")
	if err != nil {
		t.Fatal(err)
	}
	key := tokenstore.KeyFor("http://127.0.0.1:1/v1/oauth/token", "cli", seed)
	other := tokenstore.KeyFor("http://127.0.0.1:1/v1/oauth/token", "cli", "another seed")
	check := func(step string, want int) {
		t.Helper()
		if got, err := st.writes(ctx, key); err != nil || got != want {
			t.Errorf("%s: got (%d, %v) writes; want %d", step, got, err, want)
		}
	}
	check("before anything", 0) // installs the trigger
	first := &tokenstore.Record{RefreshToken: seed, ID: tokenstore.NewRecordID()}
	if err := store.Save(ctx, key, seed, first, nil); err != nil {
		t.Fatal(err)
	}
	check("the first record", 1)
	if err := store.Save(ctx, key, seed, first, nil); err != nil {
		t.Fatalf("the same save again: %v", err)
	}
	check("the same save again", 1)
	if err := store.Save(ctx, other, "another seed", first, nil); err != nil {
		t.Fatal(err)
	}
	check("another chain's record", 1)
	next := &tokenstore.Record{RefreshToken: "rt-1", Generation: 1, ID: tokenstore.NewRecordID()}
	if err := store.Save(ctx, key, seed, next, first.Revision().Ptr()); err != nil {
		t.Fatal(err)
	}
	check("the next record", 2)
}
