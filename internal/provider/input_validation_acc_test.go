package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// TestAccInputValidation_badValues gives each input that has a rule a value that breaks it, through the engine, for
// the inputs provider_acc_test.go and the grant tests leave out: every one is refused with a diagnostic naming the rule,
// and nothing reaches the token endpoint.
func TestAccInputValidation_badValues(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// provider is a provider block with settings (client_id included) and the token_store block's body.
	provider := func(settings, store string) string {
		return fmt.Sprintf("provider \"bipsync\" {\n  base_url = %q\n%s\n  token_store {\n%s\n  }\n}\n", f.baseURL, settings, store)
	}
	id := fmt.Sprintf("  client_id = %q", testClientID)
	path := fmt.Sprintf("    path = %q", f.storeDir)
	good := provider(id, path)
	withToken := func(block string) string {
		return block + "ephemeral \"bipsync_access_token\" \"t\" {\n  refresh_token = var.seed\n}\n" + seedVariable
	}
	ephemeral := func(args string) string {
		return good + "ephemeral \"bipsync_access_token\" \"t\" {\n  refresh_token = var.seed\n" + args + "\n}\n" + seedVariable
	}
	dataSource := func(args string) string {
		return good + "data \"bipsync_access_token\" \"t\" {\n  refresh_token = var.seed\n" + args + "\n}\n" + seedVariable
	}
	grant := func(args string) string {
		return good + "resource \"bipsync_refresh_grant\" \"g\" {\n  refresh_token_wo = var.seed\n" +
			"  refresh_token_wo_version = 1\n" + args + "\n}\n" + seedEphemeralVariable
	}
	cases := []struct {
		name, config string
		want         string
	}{
		{"provider client_id with white space", withToken(provider(`  client_id = "cli conf"`, path)),
			"client_id must be a client ID"},
		{"provider request_timeout below 1s", withToken(provider(id+"\n  request_timeout = \"500ms\"", path)),
			"Invalid Bipsync Request Timeout"},
		{"provider request_timeout above 10m", withToken(provider(id+"\n  request_timeout = \"11m\"", path)),
			"Invalid Bipsync Request Timeout"},
		{"provider request_timeout not a duration", withToken(provider(id+"\n  request_timeout = \"soon\"", path)), "Invalid Time Duration String Value"},
		{"provider refresh_token_lifetime below 1h", withToken(provider(id+"\n  refresh_token_lifetime = \"30m\"", path)),
			"Invalid Bipsync Refresh Token Lifetime"},
		{"provider token_store backend", withToken(provider(id, path+"\n    backend = \"vault\"")),
			`value must be one of: ["file" "command" "postgres" "s3" "none"]`},
		{"provider token_store empty path", withToken(provider(id, `    path = ""`)), "string length must be at least 1"},
		{"provider token_store empty command", withToken(provider(id, "    backend = \"command\"\n    command = []")),
			"list must contain at least 1 elements"},
		{"provider token_store empty program", withToken(provider(id, "    backend = \"command\"\n    command = [\"\"]")),
			"string length must be at least 1"},
		{"provider token_store command_protocol", withToken(provider(id, path+"\n    command_protocol = 3")),
			`value must be one of: ["1" "2"]`},
		{"provider adopt_wait shorter than request_timeout", withToken(provider(id+"\n  request_timeout = \"40s\"", path+"\n    adopt_wait = \"30s\"")),
			"token_store.adopt_wait (30s) is shorter than request_timeout (40s)"},
		{"provider adopt_wait shorter than the default request_timeout", withToken(provider(id, path+"\n    adopt_wait = \"10s\"")),
			"is shorter than request_timeout (30s)"},
		{"provider adopt_wait above 30m", withToken(provider(id, path+"\n    adopt_wait = \"31m\"")),
			"Invalid Bipsync Token Store Setting"},
		{"ephemeral grant_type", ephemeral(`  grant_type = "password"`), `value must be one of: ["refresh_token" "client_credentials"]`},
		{"ephemeral scope with a space", ephemeral(`  scopes = ["read write"]`), "must be a single OAuth scope"},
		{"ephemeral empty scopes", ephemeral(`  scopes = []`), "set must contain at least 1 elements"},
		{"ephemeral min_validity not a duration", ephemeral(`  min_validity = "soon"`), "Invalid Time Duration String Value"},
		{"ephemeral negative min_validity", ephemeral(`  min_validity = "-5m"`), "must be a duration that is not negative"},
		{"grant negative rotate_before", grant(`  rotate_before = "-1m"`), "must be a duration that is not negative"},
		{"data source grant_type", dataSource(`  grant_type = "password"`), `value must be one of: ["refresh_token" "client_credentials"]`},
		{"data source scope with a quote", dataSource(`  scopes = ["re\"ad"]`), "must be a single OAuth scope"},
		{"grant scope with a space", grant(`  scopes = ["read write"]`), "must be a single OAuth scope"},
		{"grant rotate_before not a duration", grant(`  rotate_before = "soon"`), "Invalid Time Duration String Value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: f.factories(),
				Steps: []resource.TestStep{{
					Config:          tc.config,
					ConfigVariables: config.Variables{"seed": config.StringVariable(f.seed())},
					ExpectError:     words(tc.want),
				}},
			})
		})
	}
	t.Cleanup(func() {
		if got := f.server.Stats().TokenRequests; got != 0 {
			t.Errorf("token requests: got %d; want 0 (a refused input must reach no endpoint)", got)
		}
	})
}

const seedVariable = `
variable "seed" {
  type      = string
  sensitive = true
}
`

const seedEphemeralVariable = `
variable "seed" {
  type      = string
  sensitive = true
  ephemeral = true
}
`
