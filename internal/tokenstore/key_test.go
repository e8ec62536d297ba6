package tokenstore

import (
	"regexp"
	"testing"
)

func TestKeyFor_Format(t *testing.T) {
	t.Parallel()
	k := KeyFor(testTokenURL, testClientID, testSeed)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(string(k)) {
		t.Fatalf("got key %q; want 64 lower-case hex characters", k)
	}
	if err := k.validate(); err != nil {
		t.Fatalf("got validate error %v; want nil", err)
	}
	if again := KeyFor(testTokenURL, testClientID, testSeed); again != k {
		t.Fatalf("got %s on second call; want the stable %s", again, k)
	}
}

func TestKeyFor_Distinct(t *testing.T) {
	t.Parallel()
	// Each pair differs only in where the field boundaries lie or in one field; length prefixes and the
	// fingerprint must keep them apart.
	tests := []struct {
		name string
		a, b [3]string
	}{
		{"seed differs", [3]string{"u", "c", "s1"}, [3]string{"u", "c", "s2"}},
		{"client differs", [3]string{"u", "c1", "s"}, [3]string{"u", "c2", "s"}},
		{"url differs", [3]string{"u1", "c", "s"}, [3]string{"u2", "c", "s"}},
		{"boundary url/client", [3]string{"ab", "c", "s"}, [3]string{"a", "bc", "s"}},
		{"boundary client/seed", [3]string{"u", "ab", "c"}, [3]string{"u", "a", "bc"}},
		{"empty fields shift", [3]string{"", "x", ""}, [3]string{"x", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ka := KeyFor(tt.a[0], tt.a[1], tt.a[2])
			kb := KeyFor(tt.b[0], tt.b[1], tt.b[2])
			if ka == kb {
				t.Fatalf("got equal keys %s for %q and %q; want distinct", ka, tt.a, tt.b)
			}
		})
	}
}

func TestKey_ValidateRejects(t *testing.T) {
	t.Parallel()
	good := string(testKey(testSeed))
	tests := []struct {
		name string
		key  Key
	}{
		{"empty", ""},
		{"short", Key(good[:63])},
		{"long", Key(good + "0")},
		{"upper case", Key("A" + good[1:])},
		{"path traversal", Key("../../../../etc/passwd" + good[22:])},
		{"separator", Key("/" + good[1:])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.key.validate(); err == nil {
				t.Fatalf("got nil error for key %q; want rejection", tt.key)
			}
		})
	}
}

// One endpoint spelt differently is one chain: a second configuration (or BIPSYNC_BASE_URL on CI) that spells the
// tenant's URL another way must find the chain the first one keeps, not exchange its spent seed.
func TestKeyFor_CanonicalEndpoint(t *testing.T) {
	t.Parallel()
	canonical := "https://acme-api.bipsync.com/v1/oauth/token"
	want := KeyFor(canonical, testClientID, testSeed)
	for _, spelling := range []string{
		canonical,
		"https://ACME-api.bipsync.com/v1/oauth/token",
		"HTTPS://acme-api.bipsync.com/v1/oauth/token",
		"https://acme-api.bipsync.com:443/v1/oauth/token",
		"https://acme-api.bipsync.com./v1/oauth/token",
		"https://Acme-API.Bipsync.com.:443/v1/oauth/token",
	} {
		if got := KeyFor(spelling, testClientID, testSeed); got != want {
			t.Errorf("%s: got key %s; want %s, the key of %s", spelling, got, want, canonical)
		}
		legacy, differs := LegacyKey(spelling, testClientID, testSeed)
		if differs != (spelling != canonical) {
			t.Errorf("%s: got LegacyKey differs %t; want %t", spelling, differs, spelling != canonical)
		}
		if differs && legacy == want {
			t.Errorf("%s: got the canonical key as the legacy one", spelling)
		}
	}
	for _, other := range []string{
		"https://acme-api.bipsync.com:8443/v1/oauth/token",
		"http://acme-api.bipsync.com/v1/oauth/token",
		"https://acme2-api.bipsync.com/v1/oauth/token",
		"https://acme-api.bipsync.com/V1/oauth/token",
	} {
		if KeyFor(other, testClientID, testSeed) == want {
			t.Errorf("%s: got the same key as %s; want another endpoint to be another chain", other, canonical)
		}
	}
	for in, out := range map[string]string{
		"http://127.0.0.1:80/v1/oauth/token":   "http://127.0.0.1/v1/oauth/token",
		"http://[::1]:8080/v1/oauth/token":     "http://[::1]:8080/v1/oauth/token",
		"http://[::1]:80/v1/oauth/token":       "http://[::1]/v1/oauth/token",
		"http://LOCALHOST:4000/v1/oauth/token": "http://localhost:4000/v1/oauth/token",
		"not a url":                            "not a url",
	} {
		if got := CanonicalEndpoint(in); got != out {
			t.Errorf("CanonicalEndpoint(%q): got %q; want %q", in, got, out)
		}
	}
}
