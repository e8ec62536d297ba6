package tokenstore

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	testTokenURL     = "https://acme-api.bipsync.com/v1/oauth/token"
	testClientID     = "client-123"
	testSeed         = "def50200seedrefreshtoken-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	testRefreshToken = "def50200rotatedrefreshtoken-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	testAccessToken  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.access-cccccccccccccccccccc"
)

func testKey(seed string) Key { return KeyFor(testTokenURL, testClientID, seed) }

// mustUnlock releases a lock the test holds. A failed release is a failure of the store under test, so it is
// reported, not dropped; Errorf rather than Fatal keeps it safe in a defer and lets an earlier failure stand.
func mustUnlock(t *testing.T, unlock func() error) {
	t.Helper()
	if err := unlock(); err != nil {
		t.Errorf("got unlock error %v; want nil", err)
	}
}

func sampleRecord() *Record {
	base := time.Date(2026, 3, 4, 5, 6, 7, 891011121, time.UTC)
	return &Record{
		RefreshToken:         testRefreshToken,
		RefreshTokenIssuedAt: base,
		AccessToken:          testAccessToken,
		TokenType:            "Bearer",
		AccessTokenExpiresAt: base.Add(time.Hour),
		Scopes:               []string{"read", "write"},
		RotatedAt:            base,
		Generation:           7,
		ID:                   testRecordID,
	}
}

// testRecordID is a fixed record ID, so that tests can compare records whole.
const testRecordID = "0123456789abcdef0123456789abcdef"

// nextRecord returns the record that follows prev on its chain, with a fresh ID.
func nextRecord(prev *Record) *Record {
	next := prev.Clone()
	next.Generation++
	next.ID = NewRecordID()
	return next
}

// secretForms lists each secret in clear and in the encodings a careless serialisation would use.
func secretForms() []string {
	var out []string
	for _, s := range []string{testSeed, testRefreshToken, testAccessToken} {
		b := []byte(s)
		out = append(out, s,
			base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
			base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
			hex.EncodeToString(b),
			// A distinctive middle piece catches partial leaks (a prefix trimmed off, a truncated quote).
			s[len(s)/2-8:len(s)/2+8],
		)
	}
	return out
}

// assertNoSecret fails if text holds any form of a test secret.
func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, f := range secretForms() {
		if strings.Contains(text, f) {
			t.Errorf("%s contains secret form %q: %s", what, f, text)
		}
	}
}

func recordsEqual(a, b *Record) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	if a == nil {
		return true
	}
	if (a.Scopes == nil) != (b.Scopes == nil) || len(a.Scopes) != len(b.Scopes) {
		return false
	}
	for i := range a.Scopes {
		if a.Scopes[i] != b.Scopes[i] {
			return false
		}
	}
	return a.RefreshToken == b.RefreshToken && a.RefreshTokenIssuedAt.Equal(b.RefreshTokenIssuedAt) &&
		a.AccessToken == b.AccessToken && a.TokenType == b.TokenType &&
		a.AccessTokenExpiresAt.Equal(b.AccessTokenExpiresAt) && a.RotatedAt.Equal(b.RotatedAt) &&
		a.Generation == b.Generation && a.ID == b.ID && len(a.Asks) == len(b.Asks) && leasesEqual(a.Leases, b.Leases)
}

func leasesEqual(a, b []Lease) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || !a[i].Until.Equal(b[i].Until) || a[i].MinValidity != b[i].MinValidity || !a[i].At.Equal(b[i].At) {
			return false
		}
	}
	return true
}

// expectLockedElsewhere checks a chain's lock while another process holds it: a Lock within wait ends in
// context.DeadlineExceeded about when the deadline passes, its error says what it waited for (says), and
// another chain's lock is still taken within otherChain.
func expectLockedElsewhere(t *testing.T, st Store, key Key, wait time.Duration, says string, otherChain time.Duration) {
	t.Helper()
	start := time.Now()
	if u, err := st.Lock(withTimeout(t, wait), key); !errors.Is(err, context.DeadlineExceeded) {
		if u != nil {
			mustUnlock(t, u)
		}
		t.Fatalf("while another process holds it: got %v; want a wait ending in context.DeadlineExceeded", err)
	} else if !strings.Contains(err.Error(), says) {
		t.Fatalf("got %q; want the error to say what it waited for (%q)", err, says)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("waited %v; want about the deadline", d)
	}
	if u, err := st.Lock(withTimeout(t, otherChain), testKey("other chain")); err != nil {
		t.Fatalf("another chain: got %v; want its lock at once", err)
	} else {
		mustUnlock(t, u)
	}
}
