package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// TestAccAccessToken_missingClientSecretNamed: with no client_secret for a confidential application, the provider
// sends none and Bipsync answers invalid_request "Check the `client_secret` parameter". That used to be reported as a
// generic rejection with no next step; the diagnostic names client_secret and BIPSYNC_CLIENT_SECRET now, and the seed
// is untouched (Bipsync checks the client before the refresh token).
func TestAccAccessToken_missingClientSecretNamed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := f.seed()
	config := fmt.Sprintf(`
provider "bipsync" {
  base_url  = %q
  client_id = %q
  token_store {
    path = %q
  }
}
ephemeral "bipsync_access_token" "t" {
  refresh_token = %q
}
provider "echo" {
  data = ephemeral.bipsync_access_token.t
}
resource "echo" "t" {}
`, f.baseURL, testClientID, f.storeDir, seed)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{{
			Config: config,
			ExpectError: summaryWith(summaryMissingClientSecret, "client_secret", "BIPSYNC_CLIENT_SECRET",
				"A public client needs no secret", "Nothing was exchanged", "Hint: Check the `client_secret` parameter"),
		}},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(0, "refused for the missing secret")()
			if !f.server.RefreshTokenLive(seed) {
				return fmt.Errorf("seed: spent; want it untouched")
			}
			return nil
		},
	})
}
