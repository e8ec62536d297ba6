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
