package tokenstore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
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
			if err := Restore(ctx, st, r); err != nil {
				t.Fatalf("got %v; want the record restored", err)
			}
			if got := loadOrFail(t, st, key); !recordsEqual(got, g8) {
				t.Fatalf("got %v; want the rescued %v", got, g8)
			}
			// Restoring twice is harmless; restoring over a newer record is refused.
			if err := Restore(ctx, st, r); err != nil {
				t.Fatalf("second restore: got %v; want nil", err)
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
			if err := Restore(ctx, st, rs); !errors.Is(err, ErrConflict) {
				t.Fatalf("stale rescue: got %v; want ErrConflict", err)
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
