package settings

import (
	"errors"
	"strings"
	"testing"
)

// TestResolve is not parallel: it sets environment variables.
func TestResolve(t *testing.T) {
	const env = "BIPSYNC_SETTINGS_TEST_VALUE"
	t.Setenv(env, "")
	if v, src := Resolve("client-id", "", env); v != "" || src != "" {
		t.Errorf("nothing set: got %q from %q; want nothing", v, src)
	}
	t.Setenv(env, "from-env")
	if v, src := Resolve("client-id", "", env); v != "from-env" || src != "the "+env+" environment variable" {
		t.Errorf("environment only: got %q from %q; want from-env from the variable", v, src)
	}
	if v, src := Resolve("client-id", "from-flag", env); v != "from-flag" || src != "the --client-id flag" {
		t.Errorf("flag and environment: got %q from %q; want the flag's value", v, src)
	}
}

func TestResolveEndpoint(t *testing.T) {
	t.Parallel()
	const tsrc, bsrc = "the --client flag", "the BIPSYNC_BASE_URL environment variable"
	for _, tc := range []struct {
		name, tenant, base, want string
		err                      []string
	}{
		{name: "tenant", tenant: "acme", want: "https://acme-api.bipsync.com"},
		{name: "base URL", base: "http://127.0.0.1:8080/", want: "http://127.0.0.1:8080"},
		{name: "both", tenant: "acme", base: "https://acme-api.bipsync.com", err: []string{"both", tsrc, bsrc}},
		{name: "bad tenant", tenant: "Acme", err: []string{tsrc, "tenant slug"}},
		{name: "http base URL", base: "http://example.com", err: []string{bsrc, "loopback"}},
		{name: "base URL with password", base: "https://u:hunter22@example.com", err: []string{bsrc, "user information"}},
	} {
		got, err := ResolveEndpoint(tc.tenant, tsrc, tc.base, bsrc)
		if tc.err == nil {
			if err != nil || got != tc.want {
				t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: got %q; want an error", tc.name, got)
			continue
		}
		for _, w := range tc.err {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "hunter22") {
			t.Errorf("%s: error %q repeats the password", tc.name, err)
		}
	}
	if _, err := ResolveEndpoint("", "", "", ""); !errors.Is(err, ErrNoEndpoint) {
		t.Errorf("nothing set: got %v; want ErrNoEndpoint", err)
	}
}
