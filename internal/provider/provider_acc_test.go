package provider

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/bipsync/terraform-provider-bipsync/internal/settings"
)

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
		{"bad tenant", configWith(f, `client_id = "cli-conf"`), map[string]string{settings.EnvClient: "not a slug"},
			words("Invalid Bipsync Tenant")},
		{"tenant and base url", configWith(f, `client_id = "cli-conf"`),
			map[string]string{settings.EnvClient: "acme", settings.EnvBaseURL: "https://acme-api.bipsync.com"}, words("Conflicting Bipsync Endpoint Settings")},
		{"http base url", configWith(f, `client_id = "cli-conf"`), map[string]string{settings.EnvBaseURL: "http://example.com"},
			words("Invalid Bipsync Base URL")},
		{"bad client id", configWith(f, fmt.Sprintf(`base_url = %q`, f.baseURL)), map[string]string{settings.EnvClientID: "cli conf"},
			words("Invalid Bipsync Client ID")},
		{"timeout out of range", configWith(f, base), map[string]string{settings.EnvRequestTimeout: "2h"}, words("Invalid Bipsync Request Timeout")},
		{"bad lifetime", configWith(f, base), map[string]string{settings.EnvRefreshTokenLifetime: "forever"},
			words("Invalid Bipsync Refresh Token Lifetime")},
		{"bad encoding", configWith(f, base), map[string]string{settings.EnvRequestEncoding: "xml"}, words("Invalid Bipsync Request Encoding")},
		{"bad backend", configWith(f, base), map[string]string{settings.EnvTokenStore: "vault"}, words("Invalid Bipsync Token Store Setting")},
		{"bad command json", configWith(f, base), map[string]string{settings.EnvTokenStore: "command", settings.EnvTokenStoreCommand: `["x"`},
			words("Invalid Bipsync Token Store Setting")},
	})
}

// TestAccProvider_environmentFallbacks configures the provider from BIPSYNC_* variables alone.
func TestAccProvider_environmentFallbacks(t *testing.T) {
	f := newFixture(t)
	t.Setenv(settings.EnvBaseURL, f.baseURL)
	t.Setenv(settings.EnvClientID, testClientID)
	t.Setenv(settings.EnvClientSecret, testClientSecret)
	t.Setenv(settings.EnvTokenStorePath, f.storeDir)
	t.Setenv(settings.EnvRequestEncoding, "json")
	t.Setenv(settings.EnvRefreshToken, f.seed())
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
