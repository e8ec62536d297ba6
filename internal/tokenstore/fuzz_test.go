package tokenstore

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The fuzz target opens under one fixed chain, so that the committed corpus can hold a valid envelope for it
// (testdata/fuzz/FuzzOpen) and mutations start from something that gets past the framing.
var (
	fuzzKey  = KeyFor("https://fuzz-api.bipsync.com/v1/oauth/token", "fuzz-client", "fuzz-seed")
	fuzzSeed = "fuzz-seed"
)

func FuzzOpen(f *testing.F) {
	if env, err := Seal(fuzzKey, fuzzSeed, sampleRecord()); err == nil {
		f.Add(env)
	}
	f.Add([]byte(""))
	f.Add([]byte("bts1..."))
	f.Add([]byte("bts1.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := Open(fuzzKey, fuzzSeed, data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v; want an error wrapping ErrCorrupt", err)
			}
			if rec != nil {
				t.Fatalf("got record %v with error %v; want nil", rec, err)
			}
			return
		}
		// Whatever opens must survive a round trip unchanged. A legacy record has no ID until it is saved again.
		if rec.ID == "" {
			rec.ID = testRecordID
		}
		again, err := Seal(fuzzKey, fuzzSeed, rec)
		if err != nil {
			t.Fatalf("re-seal: %v", err)
		}
		back, err := Open(fuzzKey, fuzzSeed, again)
		if err != nil || !recordsEqual(back, rec) {
			t.Fatalf("round trip: got (%v, %v); want %v", back, err, rec)
		}
	})
}

// TestFuzzCorpus_ValidEntriesOpen keeps the committed corpus meaningful: if the format changes, the valid
// entries must be regenerated, or fuzzing would start from nothing that gets past authentication.
func TestFuzzCorpus_ValidEntriesOpen(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"valid", "valid-minimal", "valid-crlf", "valid-bts2", "valid-bts2-lease"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzOpen", name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s: got %q; want a go test fuzz v1 []byte entry", name, raw)
		}
		data, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := Open(fuzzKey, fuzzSeed, []byte(data)); err != nil {
			t.Errorf("%s: got %v; want it to open under the fuzz key and seed", name, err)
		}
	}
}
