package settings

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestValidateTenant(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"acme", true},
		{"acme-capital", true},
		{"a1", true},
		{"a", true},
		{strings.Repeat("a", 59), true},
		{strings.Repeat("a", 60), false}, // "-api" must still fit in a 63-character label
		{"", false},
		{"Acme", false},
		{"-acme", false},
		{"acme-", false},
		{"acme.example", false},
		{"acme_capital", false},
		{"acme capital", false},
		{"https://acme-api.bipsync.com", false},
	} {
		err := ValidateTenant(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateTenant(%q): got %v; want ok=%t", tc.in, err, tc.ok)
		}
	}
}

func TestNormalizeBaseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "https://acme-api.bipsync.com", want: "https://acme-api.bipsync.com"},
		{in: "https://acme-api.bipsync.com/", want: "https://acme-api.bipsync.com"},
		{in: "https://proxy.example.com/bipsync/", want: "https://proxy.example.com/bipsync"},
		{in: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{in: "http://localhost:8080", want: "http://localhost:8080"},
		{in: "http://[::1]:8080", want: "http://[::1]:8080"},
		{in: "http://[::1%25lo]:8080", err: "IPv6 zone"},
		{in: "https://[::%25\xa5]", err: "IPv6 zone"},
		{in: "http://acme-api.bipsync.com", err: "plain http is only allowed for loopback hosts"},
		{in: "http://10.0.0.1", err: "plain http is only allowed for loopback hosts"},
		{in: "https://user:pw@acme-api.bipsync.com", err: "user information"},
		{in: "https://acme-api.bipsync.com?x=1", err: "query string"},
		{in: "https://acme-api.bipsync.com?", err: "query string"},
		{in: "https://acme-api.bipsync.com#frag", err: "fragment"},
		{in: "ftp://acme-api.bipsync.com", err: "scheme"},
		{in: "acme-api.bipsync.com", err: "not an absolute URL"},
		{in: "", err: "not an absolute URL"},
		{in: "https://", err: "not an absolute URL"},
		{in: "https://:", err: "not an absolute URL"},
		{in: "https://:443/x", err: "not an absolute URL"},
		{in: "https://acme-api.bipsync.com:99999", err: "port"},
		{in: "https://acme-api.bipsync.com:0", err: "port"},
		{in: "https://acme-api.bipsync.com:8443", want: "https://acme-api.bipsync.com:8443"},
	} {
		got, err := NormalizeBaseURL(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("NormalizeBaseURL(%q): got error %v; want %q", tc.in, err, tc.want)
		case tc.err == "" && got != tc.want:
			t.Errorf("NormalizeBaseURL(%q): got %q; want %q", tc.in, got, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("NormalizeBaseURL(%q): got %v; want an error containing %q", tc.in, err, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), "pw") && strings.Contains(tc.in, "pw@") {
			t.Errorf("NormalizeBaseURL(%q): error %q repeats the password", tc.in, err)
		}
	}
}

func TestValidateClientIDAndScopes(t *testing.T) {
	t.Parallel()
	for in, ok := range map[string]bool{"cli-conf": true, "": false, " cli": false, "cli conf": false, "cli\n": false} {
		if err := ValidateClientID(in); (err == nil) != ok {
			t.Errorf("ValidateClientID(%q): got %v; want ok=%t", in, err, ok)
		}
	}
	for in, ok := range map[string]bool{"read": true, "rest_api:read": true, "team_65df": true, "": false, "read write": false,
		"read\twrite": false, `a"b`: false, `a\b`: false} {
		if err := ValidateScope(in); (err == nil) != ok {
			t.Errorf("ValidateScope(%q): got %v; want ok=%t", in, err, ok)
		}
	}
}

func TestParseDurationIn(t *testing.T) {
	t.Parallel()
	if d, err := ParseDurationIn("45s", time.Second, time.Minute); err != nil || d != 45*time.Second {
		t.Errorf("45s: got %v, %v; want 45s", d, err)
	}
	for _, bad := range []string{"", "5", "ten seconds", "-1s", "0s", "2m"} {
		if _, err := ParseDurationIn(bad, time.Second, time.Minute); err == nil {
			t.Errorf("ParseDurationIn(%q): got no error; want one", bad)
		}
	}
}

func TestParseCommandEnv(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"store-helper --profile ci":    "[store-helper --profile ci]",
		`["/opt/my tools/helper","x"]`: "[/opt/my tools/helper x]",
	} {
		got, err := ParseCommandEnv(in)
		if err != nil || fmt.Sprint(got) != want {
			t.Errorf("ParseCommandEnv(%q): got %v, %v; want %s", in, got, err, want)
		}
	}
	if _, err := ParseCommandEnv(`["helper", ""]`); err == nil {
		t.Error("ParseCommandEnv with an empty argument: got no error; want one")
	}
	for in, ok := range map[string]bool{"0s": true, "15m": true, "-1s": false, "soon": false} {
		if err := ValidateNonNegativeDuration(in); (err == nil) != ok {
			t.Errorf("ValidateNonNegativeDuration(%q): got %v; want ok=%t", in, err, ok)
		}
	}
	if _, err := ParseCommandEnv(`["unterminated`); err == nil {
		t.Error("ParseCommandEnv of bad JSON: got no error; want one")
	}
}
