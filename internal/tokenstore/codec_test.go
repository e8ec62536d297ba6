package tokenstore

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// sealPlaintext seals arbitrary bytes under testSeed the way Seal does, with the header of generation 0 and
// testRecordID, to reach Open's checks behind authentication.
func sealPlaintext(t *testing.T, key Key, plain []byte) []byte {
	t.Helper()
	return sealWithHeader(t, key, header(Revision{Generation: 0, ID: testRecordID}), plain)
}

// sealWithHeader seals plain under testSeed behind the given clear header; an empty header makes a legacy (bts1)
// envelope, as records were sealed before they had IDs.
func sealWithHeader(t *testing.T, key Key, hdr string, plain []byte) []byte {
	t.Helper()
	salt := make([]byte, saltSize)
	nonce := make([]byte, nonceSize)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(nonce)
	g, err := aead(key, testSeed, salt)
	if err != nil {
		t.Fatal(err)
	}
	ct := g.Seal(nil, nonce, plain, additionalData(key, hdr))
	prefix := hdr
	if prefix == "" {
		prefix = legacyEnvelopePrefix
	}
	return []byte(prefix + "." + b64.EncodeToString(salt) + "." + b64.EncodeToString(nonce) + "." + b64.EncodeToString(ct) + "\n")
}

// legacyEnvelope seals rec as records were sealed before they had IDs: bts1, no clear header.
func legacyEnvelope(t *testing.T, key Key, rec *Record) []byte {
	t.Helper()
	plain, err := json.Marshal(wireRecord{
		Version: wireVersion, RefreshToken: rec.RefreshToken, RefreshTokenIssuedAt: rec.RefreshTokenIssuedAt,
		AccessToken: rec.AccessToken, TokenType: rec.TokenType, AccessTokenExpiresAt: rec.AccessTokenExpiresAt,
		Scopes: rec.Scopes, RotatedAt: rec.RotatedAt, Generation: rec.Generation,
	})
	if err != nil {
		t.Fatal(err)
	}
	return sealWithHeader(t, key, "", plain)
}

func TestSeal_RoundTrip(t *testing.T) {
	t.Parallel()
	key := testKey(testSeed)
	full := sampleRecord()
	full.Leases = []Lease{{ID: testRecordID, Until: full.RotatedAt.Add(20 * time.Minute), MinValidity: 15 * time.Minute, At: full.RotatedAt.Add(5 * time.Minute)}}
	full.Asks = []ScopeAsk{{Scopes: []string{"read"}, At: full.RotatedAt}, {Scopes: nil, At: full.RotatedAt.Add(time.Second)}}
	tests := []struct {
		name string
		rec  *Record
	}{
		{"full", full},
		{"zero", &Record{ID: testRecordID}},
		{"client credentials", &Record{AccessToken: testAccessToken, TokenType: "Bearer", AccessTokenExpiresAt: full.AccessTokenExpiresAt, ID: testRecordID}},
		{"nil scopes stay nil", &Record{RefreshToken: testRefreshToken, Scopes: nil, ID: testRecordID}},
		{"empty scopes stay empty", &Record{RefreshToken: testRefreshToken, Scopes: []string{}, ID: testRecordID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, err := Seal(key, testSeed, tt.rec)
			if err != nil {
				t.Fatalf("got Seal error %v; want nil", err)
			}
			got, err := Open(key, testSeed, env)
			if err != nil {
				t.Fatalf("got Open error %v; want nil", err)
			}
			if !recordsEqual(got, tt.rec) {
				t.Fatalf("got %#v (scopes nil: %t); want %#v (scopes nil: %t)", got, got.Scopes == nil, tt.rec, tt.rec.Scopes == nil)
			}
			for i, a := range tt.rec.Asks {
				if !a.At.Equal(got.Asks[i].At) || strings.Join(a.Scopes, " ") != strings.Join(got.Asks[i].Scopes, " ") || (a.Scopes == nil) != (got.Asks[i].Scopes == nil) {
					t.Fatalf("ask %d: got %+v; want %+v", i, got.Asks[i], a)
				}
			}
			rev, err := EnvelopeRevision(env)
			if err != nil || rev != tt.rec.Revision() {
				t.Fatalf("got EnvelopeRevision (%+v, %v); want (%+v, nil), read without the seed", rev, err, tt.rec.Revision())
			}
		})
	}
}

// Records sealed before records had IDs (bts1) must still open: an upgrade must not strand a chain.
func TestOpen_LegacyEnvelope(t *testing.T) {
	t.Parallel()
	key := testKey(testSeed)
	want := sampleRecord()
	want.ID = ""
	env := legacyEnvelope(t, key, want)
	got, err := Open(key, testSeed, env)
	if err != nil || !recordsEqual(got, want) {
		t.Fatalf("got (%v, %v); want (%v, nil)", got, err, want)
	}
	if rev, err := EnvelopeRevision(env); err != nil || rev != (Revision{}) {
		t.Fatalf("got EnvelopeRevision (%+v, %v); want the legacy revision {0 \"\"}", rev, err)
	}
	if got.Revision().Ptr().String() != "legacy" {
		t.Fatalf("got revision %q; want legacy", got.Revision().Ptr().String())
	}
}

func TestSeal_EnvelopeShape(t *testing.T) {
	t.Parallel()
	key := testKey(testSeed)
	a, err := Seal(key, testSeed, sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(a, []byte("bts2.7."+testRecordID+".")) || !bytes.HasSuffix(a, []byte("\n")) || bytes.Count(a, []byte(".")) != 5 {
		t.Fatalf("got envelope %q; want bts2.<generation>.<id>.<salt>.<nonce>.<ciphertext>\\n", a)
	}
	for i, c := range a[:len(a)-1] {
		if !isEnvelopeRune(rune(c)) {
			t.Fatalf("got byte %q at %d; want only base64url and dots", c, i)
		}
	}
	b, err := Seal(key, testSeed, sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Fatalf("got identical envelopes for two Seals; want a fresh salt and nonce each time")
	}
}

func TestSeal_NoSecretInClear(t *testing.T) {
	t.Parallel()
	env, err := Seal(testKey(testSeed), testSeed, sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "sealed record", string(env))
	for _, word := range []string{"Bearer", "refresh_token", "read", "write"} {
		if bytes.Contains(env, []byte(word)) {
			t.Errorf("got %q in the envelope; want nothing of the record in clear", word)
		}
	}
}

func TestSeal_Refuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		key  Key
		seed string
		rec  *Record
	}{
		{"empty seed", testKey(""), "", sampleRecord()},
		{"nil record", testKey(testSeed), testSeed, nil},
		{"invalid key", Key("../x"), testSeed, sampleRecord()},
		{"no ID", testKey(testSeed), testSeed, &Record{RefreshToken: testRefreshToken}},
		{"ID not hex", testKey(testSeed), testSeed, &Record{ID: strings.Repeat("g", 32)}},
		{"negative generation", testKey(testSeed), testSeed, &Record{ID: testRecordID, Generation: -1}},
		{"larger than a store takes", testKey(testSeed), testSeed, &Record{ID: testRecordID, RefreshToken: strings.Repeat("<", maxEnvelope/4)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if env, err := Seal(tt.key, tt.seed, tt.rec); err == nil {
				t.Fatalf("got envelope %q; want an error", env)
			}
		})
	}
}

func TestOpen_Corrupt(t *testing.T) {
	t.Parallel()
	key := testKey(testSeed)
	env, err := Seal(key, testSeed, sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	otherKey := testKey("another seed")
	otherEnv, err := Seal(otherKey, testSeed, sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		key    Key
		seed   string
		data   []byte
		reason string
	}{
		{"wrong seed", key, "not the seed", env, "authentication failed"},
		{"record of another key", key, testSeed, otherEnv, "authentication failed"},
		{"right record under another key", otherKey, testSeed, env, "authentication failed"},
		{"empty", key, testSeed, nil, "not a token store envelope"},
		{"garbage", key, testSeed, []byte("hello world"), "not a token store envelope"},
		{"json", key, testSeed, []byte(`{"refresh_token":"x"}`), "not a token store envelope"},
		{"future version", key, testSeed, bytes.Replace(env, []byte("bts2"), []byte("bts3"), 1), "not a token store envelope"},
		{"generation edited", key, testSeed, bytes.Replace(env, []byte("bts2.7."), []byte("bts2.8."), 1), "authentication failed"},
		{"ID edited", key, testSeed, bytes.Replace(env, []byte(testRecordID), []byte(strings.Repeat("f", 32)), 1), "authentication failed"},
		{"header of a legacy envelope added", key, testSeed, bytes.Replace(legacyEnvelope(t, key, sampleRecord()), []byte("bts1."), []byte("bts2.7."+testRecordID+"."), 1), "authentication failed"},
		{"bad generation", key, testSeed, bytes.Replace(env, []byte("bts2.7."), []byte("bts2.07."), 1), "bad generation"},
		{"negative header generation", key, testSeed, bytes.Replace(env, []byte("bts2.7."), []byte("bts2.-7."), 1), "bad generation"},
		{"bad ID", key, testSeed, bytes.Replace(env, []byte(testRecordID), []byte("xyz"), 1), "bad record ID"},
		{"header and record disagree", key, testSeed, sealPlaintext(t, key, []byte(`{"v":1,"generation":3}`)), "header's generation differs"},
		{"extra part", key, testSeed, bytes.Replace(env, []byte("\n"), []byte(".AAAA\n"), 1), "not a token store envelope"},
		{"padded base64", key, testSeed, bytes.Replace(env, []byte("\n"), []byte("==\n"), 1), "bad ciphertext encoding"},
		{"short salt", key, testSeed, []byte("bts1.AAAA." + strings.Repeat("A", 16) + "." + strings.Repeat("A", 40)), "bad salt"},
		{"short nonce", key, testSeed, []byte("bts1." + strings.Repeat("A", 22) + ".AAAA." + strings.Repeat("A", 40)), "bad nonce"},
		{"short ciphertext", key, testSeed, []byte("bts1." + strings.Repeat("A", 22) + "." + strings.Repeat("A", 16) + ".AAAA"), "ciphertext too short"},
		{"huge", key, testSeed, bytes.Repeat([]byte("A"), maxEnvelope+1), "larger than any record"},
		{"malformed json inside", key, testSeed, sealPlaintext(t, key, []byte(`{"v":1,"access_token":"`+testAccessToken)), "malformed record"},
		{"wrong type inside", key, testSeed, sealPlaintext(t, key, []byte(`{"v":1,"generation":"`+testAccessToken+`"}`)), "malformed record"},
		{"other version inside", key, testSeed, sealPlaintext(t, key, []byte(`{"v":2,"refresh_token":"`+testRefreshToken+`"}`)), "record version 2"},
		{"negative generation", key, testSeed, sealPlaintext(t, key, []byte(`{"v":1,"generation":-1}`)), "negative generation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec, err := Open(tt.key, tt.seed, tt.data)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got (%v, %v); want an error wrapping ErrCorrupt", rec, err)
			}
			if rec != nil {
				t.Fatalf("got record %v with the error; want nil", rec)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("got %q; want the reason %q", err, tt.reason)
			}
			assertNoSecret(t, "error", err.Error())
		})
	}
}

func TestOpen_EveryFlippedByteIsCorrupt(t *testing.T) {
	t.Parallel()
	key := testKey(testSeed)
	env, err := Seal(key, testSeed, sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	for i := range env {
		for _, bit := range []byte{0x01, 0x20, 0x80} {
			bad := bytes.Clone(env)
			bad[i] ^= bit
			if _, err := Open(key, testSeed, bad); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flipping bit %#x of byte %d (%q): got %v; want ErrCorrupt", bit, i, env[i], err)
			}
		}
	}
}

func TestOpen_EveryTruncationIsCorrupt(t *testing.T) {
	t.Parallel()
	key := testKey(testSeed)
	env, err := Seal(key, testSeed, sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	// Dropping only the final newline leaves the whole envelope, which must still open.
	if _, err := Open(key, testSeed, env[:len(env)-1]); err != nil {
		t.Fatalf("without the trailing newline: got %v; want the record", err)
	}
	for n := 0; n < len(env)-1; n++ {
		if _, err := Open(key, testSeed, env[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: got %v; want ErrCorrupt", n, len(env), err)
		}
	}
}

func TestOpen_ToleratesLineEndings(t *testing.T) {
	t.Parallel()
	key := testKey(testSeed)
	env, err := Seal(key, testSeed, sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	trimmed := bytes.TrimRight(env, "\n")
	for _, data := range [][]byte{trimmed, append(bytes.Clone(trimmed), "\r\n"...), append(bytes.Clone(env), '\n')} {
		if _, err := Open(key, testSeed, data); err != nil {
			t.Errorf("got %v for ending %q; want the record", err, data[len(trimmed):])
		}
	}
}

// The largest answer the token client accepts (a 1 MiB body) must make a record every store takes and opens again:
// a record that is saved and then cannot be read is a stuck chain. JSON escapes '<' into six bytes and control
// characters likewise, the worst case for a token's size in the record.
func TestSeal_LargestAcceptedAnswerRoundTrips(t *testing.T) {
	t.Parallel()
	const clientMaxBody = 1 << 20 // internal/bipsync's cap on an answer's body
	key := testKey(testSeed)
	rec := &Record{
		ID:           testRecordID,
		RefreshToken: strings.Repeat("<", clientMaxBody-4096),
		AccessToken:  strings.Repeat("\x01", 2048),
		TokenType:    "Bearer",
	}
	env, err := Seal(key, testSeed, rec)
	if err != nil {
		t.Fatalf("got %v; want the largest accepted answer sealed", err)
	}
	got, err := Open(key, testSeed, env)
	if err != nil || got.RefreshToken != rec.RefreshToken || got.AccessToken != rec.AccessToken {
		t.Fatalf("got Open error %v; want the record back whole (envelope of %d bytes)", err, len(env))
	}
}

func TestClaim_SealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	key := KeyFor("https://acme-api.bipsync.com/v1/oauth/token", "client", "seed")
	c := &Claim{ID: NewRecordID(), Head: Revision{Generation: 7, ID: NewRecordID()}, Holder: "h1",
		At: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC), TTL: 3 * time.Minute}
	env, err := SealClaim(key, "seed", c)
	if err != nil {
		t.Fatal(err)
	}
	if rev, err := EnvelopeRevision(env); err != nil || !rev.Matches(c.Revision()) {
		t.Fatalf("claim envelope revision %v, %v; want %v", rev, err, c.Revision())
	}
	got, err := OpenClaim(key, "seed", env)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *c {
		t.Fatalf("got %+v; want %+v", got, c)
	}
	if _, err := Open(ClaimKey(key), "seed", env); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a claim opened as a record: %v", err)
	}
	rec := &Record{RefreshToken: "rt", ID: NewRecordID()}
	renv, err := Seal(ClaimKey(key), "seed", rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenClaim(key, "seed", renv); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a record opened as a claim: %v", err)
	}
	if _, err := OpenClaim(key, "other seed", env); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a claim opened with another seed: %v", err)
	}
}

func TestRecord_DeadRoundTrips(t *testing.T) {
	t.Parallel()
	key := KeyFor("https://acme-api.bipsync.com/v1/oauth/token", "client", "seed")
	rec := &Record{RefreshToken: "rt", ID: NewRecordID(), Generation: 3,
		Dead: &Death{At: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC), Cause: "revoked", Detail: "invalid_grant: Token has been revoked",
			By: "ci-runner-7, pid 4242"}}
	env, err := Seal(key, "seed", rec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(key, "seed", env)
	if err != nil {
		t.Fatal(err)
	}
	if got.Dead == nil || *got.Dead != *rec.Dead {
		t.Fatalf("dead %+v; want %+v", got.Dead, rec.Dead)
	}
}
