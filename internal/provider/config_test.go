package provider

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
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
		err := validateTenant(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("validateTenant(%q): got %v; want ok=%t", tc.in, err, tc.ok)
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
		got, err := normalizeBaseURL(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("normalizeBaseURL(%q): got error %v; want %q", tc.in, err, tc.want)
		case tc.err == "" && got != tc.want:
			t.Errorf("normalizeBaseURL(%q): got %q; want %q", tc.in, got, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("normalizeBaseURL(%q): got %v; want an error containing %q", tc.in, err, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), "pw") && strings.Contains(tc.in, "pw@") {
			t.Errorf("normalizeBaseURL(%q): error %q repeats the password", tc.in, err)
		}
	}
}

func TestValidateClientIDAndScopes(t *testing.T) {
	t.Parallel()
	for in, ok := range map[string]bool{"cli-conf": true, "": false, " cli": false, "cli conf": false, "cli\n": false} {
		if err := validateClientID(in); (err == nil) != ok {
			t.Errorf("validateClientID(%q): got %v; want ok=%t", in, err, ok)
		}
	}
	for in, ok := range map[string]bool{"read": true, "rest_api:read": true, "team_65df": true, "": false, "read write": false,
		"read\twrite": false, `a"b`: false, `a\b`: false} {
		if err := validateScope(in); (err == nil) != ok {
			t.Errorf("validateScope(%q): got %v; want ok=%t", in, err, ok)
		}
	}
}

func TestParseDurationIn(t *testing.T) {
	t.Parallel()
	if d, err := parseDurationIn("45s", time.Second, time.Minute); err != nil || d != 45*time.Second {
		t.Errorf("45s: got %v, %v; want 45s", d, err)
	}
	for _, bad := range []string{"", "5", "ten seconds", "-1s", "0s", "2m"} {
		if _, err := parseDurationIn(bad, time.Second, time.Minute); err == nil {
			t.Errorf("parseDurationIn(%q): got no error; want one", bad)
		}
	}
}

func TestParseCommandEnv(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"store-helper --profile ci":    "[store-helper --profile ci]",
		`["/opt/my tools/helper","x"]`: "[/opt/my tools/helper x]",
	} {
		got, err := parseCommandEnv(in)
		if err != nil || fmt.Sprint(got) != want {
			t.Errorf("parseCommandEnv(%q): got %v, %v; want %s", in, got, err, want)
		}
	}
	if _, err := parseCommandEnv(`["helper", ""]`); err == nil {
		t.Error("parseCommandEnv with an empty argument: got no error; want one")
	}
	for in, ok := range map[string]bool{"0s": true, "15m": true, "-1s": false, "soon": false} {
		if err := validateNonNegativeDuration(in); (err == nil) != ok {
			t.Errorf("validateNonNegativeDuration(%q): got %v; want ok=%t", in, err, ok)
		}
	}
	if _, err := parseCommandEnv(`["unterminated`); err == nil {
		t.Error("parseCommandEnv of bad JSON: got no error; want one")
	}
}

type configCase struct {
	name   string
	config string
	env    map[string]string
	want   *regexp.Regexp
}

// runConfigCases drives each provider configuration error through the engine: the summary names the setting, and
// nothing reaches the token endpoint.
func runConfigCases(t *testing.T, f *fixture, cases []configCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: f.factories(),
				Steps:                    []resource.TestStep{{Config: tc.config, ExpectError: tc.want}},
			})
		})
	}
	if got := f.server.Stats().TokenRequests; got != 0 {
		t.Errorf("token requests: got %d; want 0 (a configuration error must reach no endpoint)", got)
	}
}

// configWith returns a provider block with lines, and an ephemeral token that makes the engine configure it.
func configWith(f *fixture, lines string) string {
	return "provider \"bipsync\" {\n" + lines + "\n}\n" + fmt.Sprintf(`
ephemeral "bipsync_access_token" "t" {
  refresh_token = %q
}
`, f.seed())
}

func TestAccProvider_configuration(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	store := fmt.Sprintf("token_store {\n path = %q\n}", f.storeDir)
	runConfigCases(t, f, []configCase{
		{"missing endpoint", configWith(f, `client_id = "cli-conf"`), nil, words("Missing Bipsync Endpoint")},
		{"both endpoints", configWith(f, `client = "acme"
base_url = "https://acme-api.bipsync.com"
client_id = "cli-conf"`), nil, words("Attribute \"base_url\" cannot be specified when \"client\" is specified")},
		{"bad tenant", configWith(f, `client = "Acme Capital"
client_id = "cli-conf"`), nil, words("must be a Bipsync tenant slug")},
		{"http base url", configWith(f, `base_url = "http://acme-api.bipsync.com"
client_id = "cli-conf"`), nil, words("plain http is only allowed for loopback hosts")},
		{"base url with userinfo", configWith(f, `base_url = "https://u:p@acme-api.bipsync.com"
client_id = "cli-conf"`), nil, words("carries user information")},
		{"base url with query", configWith(f, `base_url = "https://acme-api.bipsync.com/?a=b"
client_id = "cli-conf"`), nil, words("has a query string")},
		{"missing client id", configWith(f, fmt.Sprintf(`base_url = %q`, f.baseURL)), nil, words("Missing Bipsync Client ID")},
		{"bad timeout", configWith(f, fmt.Sprintf(`base_url = %q
client_id = "cli-conf"
request_timeout = "ten"`, f.baseURL)), nil, regexp.MustCompile(`(?i)duration`)},
		{"bad encoding", configWith(f, fmt.Sprintf(`base_url = %q
client_id = "cli-conf"
request_encoding = "xml"`, f.baseURL)), nil, words(`value must be one of: ["form" "json"]`)},
		{"command store without command", configWith(f, fmt.Sprintf(`base_url = %q
client_id = "cli-conf"
token_store {
  backend = "command"
}`, f.baseURL)), nil, words("Missing Bipsync Token Store Command")},
		{"store none fails closed", configWith(f, fmt.Sprintf(`base_url = %q
client_id = "cli-conf"
client_secret = %q
token_store {
  backend = "none"
}`, f.baseURL, testClientSecret)), nil, words("Bipsync Token Store Required")},
		{"unknown client id", configWith(f, fmt.Sprintf(`base_url = %q
client_id = terraform_data.later.output
%s`, f.baseURL, store)) + `resource "terraform_data" "later" { input = "cli-conf" }`, nil, words("Unknown Bipsync Client ID")},
	})
}

// TestAccProvider_configurationFromEnvironment checks values that come from BIPSYNC_* variables, which schema
// validators never see. Environment variables are process-wide, so this test is not parallel.
func TestAccProvider_configurationFromEnvironment(t *testing.T) {
	f := newFixture(t)
	base := fmt.Sprintf(`base_url = %q
client_id = "cli-conf"`, f.baseURL)
	runConfigCases(t, f, []configCase{
		{"bad tenant", configWith(f, `client_id = "cli-conf"`), map[string]string{envClient: "not a slug"},
			words("Invalid Bipsync Tenant")},
		{"tenant and base url", configWith(f, `client_id = "cli-conf"`),
			map[string]string{envClient: "acme", envBaseURL: "https://acme-api.bipsync.com"}, words("Conflicting Bipsync Endpoint Settings")},
		{"http base url", configWith(f, `client_id = "cli-conf"`), map[string]string{envBaseURL: "http://example.com"},
			words("Invalid Bipsync Base URL")},
		{"bad client id", configWith(f, fmt.Sprintf(`base_url = %q`, f.baseURL)), map[string]string{envClientID: "cli conf"},
			words("Invalid Bipsync Client ID")},
		{"timeout out of range", configWith(f, base), map[string]string{envRequestTimeout: "2h"}, words("Invalid Bipsync Request Timeout")},
		{"bad lifetime", configWith(f, base), map[string]string{envRefreshTokenLifetime: "forever"},
			words("Invalid Bipsync Refresh Token Lifetime")},
		{"bad encoding", configWith(f, base), map[string]string{envRequestEncoding: "xml"}, words("Invalid Bipsync Request Encoding")},
		{"bad backend", configWith(f, base), map[string]string{envTokenStore: "vault"}, words("Invalid Bipsync Token Store Setting")},
		{"bad command json", configWith(f, base), map[string]string{envTokenStore: "command", envTokenStoreCommand: `["x"`},
			words("Invalid Bipsync Token Store Setting")},
	})
}

// TestAccProvider_environmentFallbacks configures the provider from BIPSYNC_* variables alone.
func TestAccProvider_environmentFallbacks(t *testing.T) {
	f := newFixture(t)
	t.Setenv(envBaseURL, f.baseURL)
	t.Setenv(envClientID, testClientID)
	t.Setenv(envClientSecret, testClientSecret)
	t.Setenv(envTokenStorePath, f.storeDir)
	t.Setenv(envRequestEncoding, "json")
	t.Setenv(envRefreshToken, f.seed())
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{{
			Config: `
provider "bipsync" {}
ephemeral "bipsync_access_token" "t" {}
provider "echo" {
  data = ephemeral.bipsync_access_token.t
}
resource "echo" "t" {}
`,
			ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.t")},
		}},
		CheckDestroy: func(*terraform.State) error { f.ledger.Expect(1, "env-configured step")(); return nil },
	})
	reqs := f.server.Requests()
	if len(reqs) == 0 || !strings.HasPrefix(reqs[0].ContentType, "application/json") {
		t.Errorf("first request: got %+v; want a JSON body (BIPSYNC_REQUEST_ENCODING=json)", reqs)
	}
}
