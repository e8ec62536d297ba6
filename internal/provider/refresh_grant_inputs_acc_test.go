package provider

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/bipsync/terraform-provider-bipsync/internal/acctest"
)

// TestAccRefreshGrant_seedInputs checks the seed arguments: not both, one to create, the version with the write-only
// seed, and no empty seed. None of these reaches Bipsync.
func TestAccRefreshGrant_seedInputs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := f.seed()
	vars := seedVars(seed)
	withVar := f.providerBlock() + `
variable "seed" {
  type      = string
  sensitive = true
  ephemeral = true
}
`
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{
				Config: withVar + `
resource "bipsync_refresh_grant" "g" {
  refresh_token_wo         = var.seed
  refresh_token_wo_version = 1
  seed_refresh_token       = "also-a-seed"
}`,
				ConfigVariables: vars,
				ExpectError:     words("These attributes cannot be configured together: [refresh_token_wo,seed_refresh_token]"),
			},
			{
				Config: withVar + `
resource "bipsync_refresh_grant" "g" {
  scopes = ["read"]
}`,
				ConfigVariables: vars,
				ExpectError:     words("Missing Bipsync Refresh Token"),
			},
			{
				Config: withVar + `
resource "bipsync_refresh_grant" "g" {
  refresh_token_wo = var.seed
}`,
				ConfigVariables: vars,
				ExpectError:     words("Missing Bipsync Seed Version"),
			},
			{
				Config: withVar + `
resource "bipsync_refresh_grant" "g" {
  seed_refresh_token = ""
}`,
				ConfigVariables: vars,
				ExpectError:     words("Missing Bipsync Refresh Token"),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(0, "seed input steps")()
			return nil
		},
	})
	if got := f.server.Stats().TokenRequests; got != 0 {
		t.Errorf("token requests: got %d; want 0", got)
	}
	if !f.server.RefreshTokenLive(seed) {
		t.Error("seed: consumed; want untouched by configuration errors")
	}
}

// TestAccRefreshGrant_seedRefreshToken checks the non-write-only seed: it is sensitive in state, the create costs
// one exchange, and changing it re-seeds the chain in place.
func TestAccRefreshGrant_seedRefreshToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	first, second := f.seed(), f.seed()
	cfg := func(seed string) string {
		return f.providerBlock() + fmt.Sprintf(`
resource "bipsync_refresh_grant" "g" {
  seed_refresh_token = %q
}
`, seed)
	}
	var head string
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{
				Config: cfg(first),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectSensitiveValue(grantAddr, attrPath("seed_refresh_token")),
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.LiveAccessToken(f.server)),
					statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), acctest.Capture(&head)),
				},
			},
			{
				PreConfig: func() {
					f.ledger.Expect(1, "create step")()
					if f.server.RefreshTokenLive(first) {
						t.Error("first seed: still live after the create; want consumed")
					}
				},
				Config: cfg(second),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(grantAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.LiveAccessToken(f.server)),
					statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), acctest.LiveRefreshToken(f.server)),
				},
			},
		},
		// Destroy calls nothing (Delete forgets the chain), so the fake's chains are as the re-seed left them.
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(1, "re-seed step")()
			if f.server.RefreshTokenLive(second) {
				t.Error("second seed: still live; want consumed by the re-seed")
			}
			if !f.server.RefreshTokenLive(head) {
				t.Error("old chain head: consumed; want a re-seed to exchange the new seed, not the head")
			}
			return nil
		},
	})
}

// TestAccRefreshGrant_keepersAndScopes checks argument changes: keepers and a narrowing each rotate once in place;
// widening back fails at plan time, before any call.
func TestAccRefreshGrant_keepersAndScopes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	vars := seedVars(f.seed("read", "write"))
	rotated := statecheck.CompareValue(compare.ValuesDiffer())
	sameID := statecheck.CompareValue(compare.ValuesSame())
	update := resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
		plancheck.ExpectResourceAction(grantAddr, plancheck.ResourceActionUpdate),
		plancheck.ExpectUnknownValue(grantAddr, attrPath("refresh_token")),
	}}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{
				Config: grantConfig(f, 1, `keepers = { k = "1" }`), ConfigVariables: vars,
				ConfigStateChecks: []statecheck.StateCheck{
					rotated.AddStateValue(grantAddr, attrPath("refresh_token")),
					sameID.AddStateValue(grantAddr, attrPath("id")),
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.AccessTokenScopes(f.server, "read", "write")),
				},
			},
			{
				PreConfig: f.ledger.Expect(1, "create step"),
				Config:    grantConfig(f, 1, `keepers = { k = "2" }`), ConfigVariables: vars,
				ConfigPlanChecks: update,
				ConfigStateChecks: []statecheck.StateCheck{
					rotated.AddStateValue(grantAddr, attrPath("refresh_token")),
					sameID.AddStateValue(grantAddr, attrPath("id")),
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.LiveAccessToken(f.server)),
				},
			},
			{
				PreConfig: f.ledger.Expect(1, "keepers step"),
				Config:    grantConfig(f, 1, `keepers = { k = "2" }`, `scopes = ["read"]`), ConfigVariables: vars,
				ConfigPlanChecks: update,
				ConfigStateChecks: []statecheck.StateCheck{
					rotated.AddStateValue(grantAddr, attrPath("refresh_token")),
					sameID.AddStateValue(grantAddr, attrPath("id")),
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.AccessTokenScopes(f.server, "read")),
				},
			},
			{
				PreConfig: f.ledger.Expect(1, "narrowing step"),
				Config:    grantConfig(f, 1, `keepers = { k = "2" }`, `scopes = ["read", "write"]`), ConfigVariables: vars,
				ExpectError: regexp.MustCompile(`(?s)Bipsync Reauthorization Required.*holds\s+scopes\s+\[read\]\s+and\s+cannot\s+widen\s+to\s+\[write\]`),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(0, "widening step")()
			return nil
		},
	})
	if got := f.server.Stats().Errors; got != 0 {
		t.Errorf("OAuth errors at the fake: got %d; want 0 (widening is refused before any call)", got)
	}
}

// TestAccRefreshGrant_scopeBeyondConsent checks a create that asks for a scope the user did not consent to: the
// diagnostic names the scope and says nothing was consumed (fixing scopes is the remedy), and the seed is untouched.
func TestAccRefreshGrant_scopeBeyondConsent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := f.seed("read", "write")
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{{
			Config:          grantConfig(f, 1, `scopes = ["read", "team_abc"]`),
			ConfigVariables: seedVars(seed),
			ExpectError: regexp.MustCompile(`(?s)Bipsync Scope Not Granted.*Bipsync\s+refused\s+the\s+scope\s+team_abc.*` +
				`nothing\s+was\s+consumed.*OAuth\s+error:\s+invalid_scope`),
		}},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(0, "create beyond consent")()
			return nil
		},
	})
	if !f.server.RefreshTokenLive(seed) {
		t.Error("seed: consumed; want untouched after invalid_scope")
	}
}

// TestAccRefreshGrant_revokedChainNeedsReseed checks a chain revoked at Bipsync: the rotation fails with the
// reauthorization diagnostic and its cause, and a new seed with a new version recovers in one apply.
func TestAccRefreshGrant_revokedChainNeedsReseed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	vars := seedVars(f.seed())
	newSeed := f.seed()
	var head string
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{
				Config: grantConfig(f, 1), ConfigVariables: vars,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), acctest.Capture(&head)),
				},
			},
			{
				PreConfig: func() {
					f.ledger.Expect(1, "create step")()
					f.server.RevokeChain(head) // the user withdrew consent
					f.clock.Advance(50 * time.Minute)
				},
				Config: grantConfig(f, 1), ConfigVariables: vars,
				ExpectError: regexp.MustCompile(`(?s)Bipsync Reauthorization Required.*refresh\s+token\s+has\s+been\s+revoked.*` +
					`authorization\s+code\s+grant.*refresh_token_wo_version.*Hint:\s+Token\s+has\s+been\s+revoked`),
			},
			{
				PreConfig: f.ledger.Expect(0, "revoked step"),
				Config:    grantConfig(f, 2), ConfigVariables: seedVars(newSeed),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(grantAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.LiveAccessToken(f.server)),
					statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), acctest.LiveRefreshToken(f.server)),
					statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token_wo_version"), knownvalue.Int64Exact(2)),
					statecheck.ExpectSensitiveValue(grantAddr, attrPath("refresh_token")),
					acctest.ExpectNoSecrets(newSeed),
				},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(1, "re-seed step")()
			return nil
		},
	})
	if f.server.RefreshTokenLive(newSeed) {
		t.Error("new seed: still live; want consumed by the re-seed")
	}
}

// TestAccRefreshGrant_expiredChainFailsAtPlan checks a chain past its month: the plan fails, nothing is sent to
// Bipsync, and the grant can still be destroyed.
func TestAccRefreshGrant_expiredChainFailsAtPlan(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	vars := seedVars(f.seed())
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{Config: grantConfig(f, 1), ConfigVariables: vars},
			{
				PreConfig: func() {
					f.ledger.Expect(1, "create step")()
					f.clock.Advance(31 * 24 * time.Hour)
				},
				Config: grantConfig(f, 1), ConfigVariables: vars,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Bipsync Reauthorization Required.*refresh\s+chain\s+in\s+state\s+expired\s+at`),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(0, "expired plan step and destroy")()
			return nil
		},
	})
	if got := f.server.Stats().TokenRequests; got != 1 {
		t.Errorf("token requests: got %d; want 1 (the create only: an expired chain is refused before any call)", got)
	}
}
