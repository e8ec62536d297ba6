package provider

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/echoprovider"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/bipsync/terraform-provider-bipsync/internal/settings"
)

// Variables of the tests against a real Bipsync tenant. The endpoint and client come from the provider's own
// BIPSYNC_* variables; the chain is kept in BIPSYNC_TEST_STORE_PATH, which must persist between runs, because every run
// rotates the chain and only the store holds its head afterwards.
const (
	envTestRefreshToken = "BIPSYNC_TEST_REFRESH_TOKEN"
	envTestStorePath    = "BIPSYNC_TEST_STORE_PATH"
)

// TestAccTenant_ephemeralAccessToken exchanges a real refresh chain through the engine. It runs only with TF_ACC set
// and a tenant configured, and says what is missing otherwise.
func TestAccTenant_ephemeralAccessToken(t *testing.T) {
	accPreCheck(t)
	for k, v := range userEnv { // TestMain cleared them so that no other test sees the user's tenant
		t.Setenv(k, v)
	}
	missing := []string{}
	for _, v := range []string{settings.EnvClientID, envTestRefreshToken, envTestStorePath} {
		if os.Getenv(v) == "" {
			missing = append(missing, v)
		}
	}
	if os.Getenv(settings.EnvClient) == "" && os.Getenv(settings.EnvBaseURL) == "" {
		missing = append(missing, settings.EnvClient+" or "+settings.EnvBaseURL)
	}
	if os.Getenv("TF_ACC") == "" || len(missing) > 0 {
		t.Skipf("tests against a real Bipsync tenant need TF_ACC=1 and %v (missing: %v)", []string{settings.EnvClient, settings.EnvClientID,
			settings.EnvClientSecret + " (confidential clients)", envTestRefreshToken, envTestStorePath}, missing)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: map[string]func() (tfprotov6.ProviderServer, error){
			"bipsync": providerserver.NewProtocol6WithError(New("test")()),
			"echo":    echoprovider.NewProviderServer(),
		},
		Steps: []resource.TestStep{{
			ConfigVariables: config.Variables{
				"seed":  config.StringVariable(os.Getenv(envTestRefreshToken)),
				"store": config.StringVariable(os.Getenv(envTestStorePath)),
			},
			Config: `
variable "seed" {
  type      = string
  sensitive = true
}
variable "store" {
  type = string
}
provider "bipsync" {
  token_store {
    path = var.store
  }
}
ephemeral "bipsync_access_token" "t" {
  refresh_token = var.seed
}
provider "echo" {
  data = ephemeral.bipsync_access_token.t
}
resource "echo" "t" {}
`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("echo.t", tfjsonpath.New("data").AtMapKey("token_type"),
					knownvalue.StringFunc(func(v string) error {
						if v != "Bearer" && v != "bearer" {
							return fmt.Errorf("token type %q is not bearer", v)
						}
						return nil
					})),
				statecheck.ExpectKnownValue("echo.t", tfjsonpath.New("data").AtMapKey("expires_in"),
					knownvalue.Int64Func(func(v int64) error {
						if time.Duration(v)*time.Second < defaultMinValidity {
							return fmt.Errorf("the token expires in %ds, less than min_validity", v)
						}
						return nil
					})),
			},
		}},
	})
}
