package tokenstore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRescue_WriteReadRestore(t *testing.T) {
	t.Parallel()
	for name, open := range conditionalStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st, _ := open(t)
			key := testKey(testSeed)
			g7 := sampleRecord()
			if err := saveLocked(t, st, key, g7, nil); err != nil {
				t.Fatal(err)
			}
			g8 := nextRecord(g7)
			dir := filepath.Join(t.TempDir(), "rescue")
			path, err := WriteRescue(dir, st, key, testSeed, g8, g7.Revision().Ptr())
			if err != nil {
				t.Fatal(err)
			}
			if posixPerms {
				fi, err := os.Stat(path)
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("got rescue file mode %v (err %v); want 0600", fi.Mode().Perm(), err)
				}
				di, err := os.Stat(dir)
				if err != nil || di.Mode().Perm() != 0o700 {
					t.Fatalf("got rescue dir mode %v (err %v); want 0700", di.Mode().Perm(), err)
				}
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			assertNoSecret(t, "rescue file", string(raw))
			r, err := ReadRescue(path)
			if err != nil {
				t.Fatal(err)
			}
			if r.Key != key || r.Replaces != g7.Revision().Ptr().String() || r.Store != st.Describe() {
				t.Fatalf("got %+v; want the key, the replaced revision and the store", r)
			}
			ctx := t.Context()
			if res, err := Restore(ctx, st, r); err != nil || res != Restored {
				t.Fatalf("got (%v, %v); want the record restored", res, err)
			}
			if got := loadOrFail(t, st, key); !recordsEqual(got, g8) {
				t.Fatalf("got %v; want the rescued %v", got, g8)
			}
			// Restoring twice is harmless; restoring over a newer record is refused.
			if res, err := Restore(ctx, st, r); err != nil || res != RestoreAlreadyHeld {
				t.Fatalf("second restore: got (%v, %v); want (%v, nil)", res, err, RestoreAlreadyHeld)
			}
			if err := saveLocked(t, st, key, nextRecord(g8), g8.Revision().Ptr()); err != nil {
				t.Fatal(err)
			}
			stale, err := WriteRescue(dir, st, key, testSeed, nextRecord(g7), g7.Revision().Ptr())
			if err != nil {
				t.Fatal(err)
			}
			rs, err := ReadRescue(stale)
			if err != nil {
				t.Fatal(err)
			}
			if res, err := Restore(ctx, st, rs); !errors.Is(err, ErrConflict) || res != RestoreRefused {
				t.Fatalf("stale rescue: got (%v, %v); want (%v, ErrConflict)", res, err, RestoreRefused)
			}
		})
	}
}

func TestReadRescue_Refuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not json":     "hello",
		"bad key":      `{"key":"../x","replaces":"none","envelope":"bts2.1.0123456789abcdef0123456789abcdef.A.A.A"}`,
		"bad envelope": `{"key":"` + string(testKey(testSeed)) + `","replaces":"none","envelope":"nope"}`,
		"bad replaces": `{"key":"` + string(testKey(testSeed)) + `","replaces":"7","envelope":"bts1.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA.AAAA"}`,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if r, err := ReadRescue(p); err == nil {
			t.Errorf("%s: got %+v; want an error", name, r)
		}
	}
}

// A hand-out rewrites a record with its leases and a new ID but the same generation and head. A rescued record of the
// next generation consumed that head: the rewrite is older than the rescue and is replaced, whereas a record of the
// rescue's generation or a higher one is newer and refused.
func TestRestore_ReplacesLowerGenerationRewrite(t *testing.T) {
	t.Parallel()
	for name, open := range conditionalStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st, _ := open(t)
			key := testKey(testSeed)
			ctx := t.Context()
			g7 := sampleRecord()
			if err := saveLocked(t, st, key, g7, nil); err != nil {
				t.Fatal(err)
			}
			rescue := func(rec *Record, replaces *Revision) *Rescue {
				t.Helper()
				path, err := WriteRescue(t.TempDir(), st, key, testSeed, rec, replaces)
				if err != nil {
					t.Fatal(err)
				}
				r, err := ReadRescue(path)
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			g8 := nextRecord(g7)
			r8 := rescue(g8, g7.Revision().Ptr())
			// A lease-only rewrite of g7: same generation and refresh token, new ID.
			g7b := g7.Clone()
			g7b.ID = NewRecordID()
			g7b.Leases = []Lease{{ID: NewRecordID(), Until: time.Now().Add(time.Hour), MinValidity: time.Hour, At: time.Now()}}
			if err := saveLocked(t, st, key, g7b, g7.Revision().Ptr()); err != nil {
				t.Fatal(err)
			}
			res, err := Restore(ctx, st, r8)
			if err != nil || res != RestoredOverOlder {
				t.Fatalf("over a lower generation's rewrite: got (%v, %v); want (%v, nil)", res, err, RestoredOverOlder)
			}
			if got := loadOrFail(t, st, key); !recordsEqual(got, g8) {
				t.Fatalf("got %v; want the rescued %v", got, g8)
			}
			if res, err := Restore(ctx, st, r8); err != nil || res != RestoreAlreadyHeld {
				t.Fatalf("again: got (%v, %v); want (%v, nil)", res, err, RestoreAlreadyHeld)
			}
			// A rewrite of g8 has the rescue's generation: it is the chain's head as much as g8 and is not replaced.
			g8b := g8.Clone()
			g8b.ID = NewRecordID()
			if err := saveLocked(t, st, key, g8b, g8.Revision().Ptr()); err != nil {
				t.Fatal(err)
			}
			if res, err := Restore(ctx, st, r8); !errors.Is(err, ErrConflict) || res != RestoreRefused {
				t.Fatalf("over an equal generation: got (%v, %v); want (%v, ErrConflict)", res, err, RestoreRefused)
			}
			if got := loadOrFail(t, st, key); !recordsEqual(got, g8b) {
				t.Fatalf("got %v; want %v left alone", got, g8b)
			}
			// A rescue that replaced nothing goes in when the store holds an older record too.
			r9 := rescue(nextRecord(nextRecord(g8b)), nil)
			if res, err := Restore(ctx, st, r9); err != nil || res != RestoredOverOlder {
				t.Fatalf("a first record over an older one: got (%v, %v); want (%v, nil)", res, err, RestoredOverOlder)
			}
		})
	}
}
