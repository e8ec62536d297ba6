package provider

import (
	"fmt"
	"net/http"
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
	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// TestAccRefreshGrant_create checks the first exchange: one exchange, the seed consumed, the new pair live and
// sensitive, and the write-only seed nowhere in plan or state.
func TestAccRefreshGrant_create(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := f.seed()
	start := f.clock.Now()
	var accessToken, refreshToken string
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{{
			Config:          grantConfig(f, 1),
			ConfigVariables: seedVars(seed),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(grantAddr, plancheck.ResourceActionCreate),
				plancheck.ExpectUnknownValue(grantAddr, attrPath("refresh_token")),
				plancheck.ExpectSensitiveValue(grantAddr, attrPath("refresh_token")),
				plancheck.ExpectSensitiveValue(grantAddr, attrPath("access_token")),
				plancheck.ExpectKnownValue(grantAddr, attrPath("refresh_token_wo"), knownvalue.Null()),
			}},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectSensitiveValue(grantAddr, attrPath("refresh_token")),
				statecheck.ExpectSensitiveValue(grantAddr, attrPath("access_token")),
				statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.LiveAccessToken(f.server)),
				statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.Capture(&accessToken)),
				statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), acctest.LiveRefreshToken(f.server)),
				statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), acctest.Capture(&refreshToken)),
				statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token_wo"), knownvalue.Null()),
				statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token_wo_version"), knownvalue.Int64Exact(1)),
				statecheck.ExpectKnownValue(grantAddr, attrPath("seed_refresh_token"), knownvalue.Null()),
				statecheck.ExpectKnownValue(grantAddr, attrPath("id"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]{32}$`))),
				statecheck.ExpectKnownValue(grantAddr, attrPath("token_type"), knownvalue.StringExact("Bearer")),
				statecheck.ExpectKnownValue(grantAddr, attrPath("rotate_before"), knownvalue.StringExact("15m")),
				statecheck.ExpectKnownValue(grantAddr, attrPath("expires_at"), acctest.RFC3339(start.Add(time.Hour))),
				statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token_expires_at"), acctest.RFC3339(start.Add(720*time.Hour))),
				statecheck.ExpectKnownValue(grantAddr, attrPath("rotated_at"), acctest.RFC3339(start)),
				acctest.ExpectNoSecrets(seed),
			},
		}},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(1, "create step")()
			return nil
		},
	})
	if f.server.RefreshTokenLive(seed) {
		t.Error("seed: still live after the create; want consumed by the first exchange")
	}
	if refreshToken == seed || accessToken == "" {
		t.Error("refresh_token in state: got the seed (or no access token); want the exchanged pair")
	}
	// Delete forgets the chain without a call: Bipsync has no revocation endpoint.
	if !f.server.RefreshTokenLive(refreshToken) || !f.server.AccessTokenLive(accessToken) {
		t.Error("after destroy: the pair is no longer live; want Delete to make no call")
	}
}

// TestAccRefreshGrant_noRotationWhileFresh checks that plans and re-applies while the access token is fresh cost
// nothing: a plan-only run never rotates a chain kept in state.
func TestAccRefreshGrant_noRotationWhileFresh(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	vars := seedVars(f.seed())
	same := statecheck.CompareValue(compare.ValuesSame())
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{
				Config: grantConfig(f, 1), ConfigVariables: vars,
				ConfigStateChecks: []statecheck.StateCheck{same.AddStateValue(grantAddr, attrPath("refresh_token"))},
			},
			{
				PreConfig: func() {
					f.ledger.Expect(1, "create step")()
					f.clock.Advance(44 * time.Minute) // 16m left: just outside the 15m window
				},
				Config: grantConfig(f, 1), ConfigVariables: vars,
				PlanOnly: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				PreConfig: f.ledger.Expect(0, "plan-only step"),
				Config:    grantConfig(f, 1), ConfigVariables: vars,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{
					same.AddStateValue(grantAddr, attrPath("refresh_token")),
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.LiveAccessToken(f.server)),
				},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(0, "re-apply step")()
			return nil
		},
	})
}

// TestAccRefreshGrant_rotatesInWindow checks a rotation planned by the clock alone: an in-place update at the
// window's first minute, one exchange, a new head, and the previous access token revoked.
func TestAccRefreshGrant_rotatesInWindow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	vars := seedVars(f.seed())
	rotated := statecheck.CompareValue(compare.ValuesDiffer())
	sameID := statecheck.CompareValue(compare.ValuesSame())
	var firstAccessToken string
	rotationTime := f.clock.Now().Add(45 * time.Minute) // the clock only moves when the test moves it
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{
				Config: grantConfig(f, 1), ConfigVariables: vars,
				ConfigStateChecks: []statecheck.StateCheck{
					rotated.AddStateValue(grantAddr, attrPath("refresh_token")),
					sameID.AddStateValue(grantAddr, attrPath("id")),
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.Capture(&firstAccessToken)),
				},
			},
			{
				PreConfig: func() {
					f.ledger.Expect(1, "create step")()
					f.clock.Advance(45 * time.Minute) // now + rotate_before == expires_at: the window opens
				},
				Config: grantConfig(f, 1), ConfigVariables: vars,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(grantAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(grantAddr, attrPath("refresh_token")),
					plancheck.ExpectUnknownValue(grantAddr, attrPath("access_token")),
					plancheck.ExpectSensitiveValue(grantAddr, attrPath("refresh_token")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					rotated.AddStateValue(grantAddr, attrPath("refresh_token")),
					sameID.AddStateValue(grantAddr, attrPath("id")),
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.LiveAccessToken(f.server)),
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.ReplacesAccessToken(f.server, &firstAccessToken)),
					statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), acctest.LiveRefreshToken(f.server)),
					statecheck.ExpectKnownValue(grantAddr, attrPath("rotated_at"), acctest.RFC3339(rotationTime)),
					statecheck.ExpectKnownValue(grantAddr, attrPath("expires_at"), acctest.RFC3339(rotationTime.Add(time.Hour))),
					statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token_expires_at"), acctest.RFC3339(rotationTime.Add(720*time.Hour))),
				},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(1, "rotation step")()
			return nil
		},
	})
}

// TestAccRefreshGrant_chainOfRotations rotates ten times in a row: each exchange must use the head the previous one
// saved (the fake answers "Token has been revoked" to any other), one exchange per step.
func TestAccRefreshGrant_chainOfRotations(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	vars := seedVars(f.seed())
	rotated := statecheck.CompareValue(compare.ValuesDiffer())
	var heads []string
	keep := knownvalue.StringFunc(func(v string) error { heads = append(heads, v); return nil })
	steps := []resource.TestStep{{
		Config: grantConfig(f, 1), ConfigVariables: vars,
		ConfigStateChecks: []statecheck.StateCheck{
			rotated.AddStateValue(grantAddr, attrPath("refresh_token")),
			statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), keep),
		},
	}}
	for i := 1; i <= 10; i++ {
		steps = append(steps, resource.TestStep{
			PreConfig: func() {
				f.ledger.Expect(1, fmt.Sprintf("step %d", i))()
				f.clock.Advance(50 * time.Minute)
			},
			Config: grantConfig(f, 1), ConfigVariables: vars,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(grantAddr, plancheck.ResourceActionUpdate),
			}},
			ConfigStateChecks: []statecheck.StateCheck{
				rotated.AddStateValue(grantAddr, attrPath("refresh_token")),
				statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), keep),
				statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.LiveAccessToken(f.server)),
			},
		})
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps:                    steps,
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(1, "last rotation step")()
			return nil
		},
	})
	if got := f.server.Stats().RefreshExchanges; got != 11 {
		t.Errorf("exchanges: got %d; want 11 (a create and ten rotations)", got)
	}
	if got := f.server.Stats().Errors; got != 0 {
		t.Errorf("OAuth errors at the fake: got %d; want 0 (every exchange used the chain head)", got)
	}
	if len(heads) != 11 {
		t.Fatalf("heads captured: got %d; want 11", len(heads))
	}
	for i, h := range heads {
		if live, want := f.server.RefreshTokenLive(h), i == len(heads)-1; live != want {
			t.Errorf("head %d live: got %t; want %t (only the last head is live)", i, live, want)
		}
	}
}

// TestAccRefreshGrant_seedNeededOnlyToCreate shows that a consumed seed need not be kept: later runs, rotations
// included, work from the chain in state with no seed in the configuration, and only a re-seed asks for one again.
func TestAccRefreshGrant_seedNeededOnlyToCreate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	withoutSeed := f.providerBlock() + `
resource "bipsync_refresh_grant" "g" {
  refresh_token_wo_version = 1
}
`
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{
				Config:          grantConfig(f, 1),
				ConfigVariables: seedVars(f.seed()),
			},
			{
				PreConfig:         func() { f.ledger.Expect(1, "create")() },
				Config:            withoutSeed,
				ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.LiveAccessToken(f.server))},
			},
			{
				PreConfig: func() {
					f.ledger.Expect(0, "run without the seed")()
					f.clock.Advance(50 * time.Minute)
				},
				Config: withoutSeed,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(grantAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.LiveAccessToken(f.server))},
			},
			{
				PreConfig: func() { f.ledger.Expect(1, "rotation without the seed")() },
				Config: f.providerBlock() + `
resource "bipsync_refresh_grant" "g" {
  refresh_token_wo_version = 2
}
`,
				ExpectError: words("Missing Bipsync Refresh Token"),
			},
		},
		CheckDestroy: func(*terraform.State) error { f.ledger.Expect(0, "re-seed without a seed")(); return nil },
	})
}

// TestAccRefreshGrant_rotationKeepsNewHeadOfIncompleteAnswer: Bipsync rotated the chain and answered 200 with the new
// refresh token but no access token. The update fails, yet the new head lands in state (the old one is revoked), and
// the next apply rotates from it.
func TestAccRefreshGrant_rotationKeepsNewHeadOfIncompleteAnswer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var head, next string
	vars := seedVars(f.seed())
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{
				Config:            grantConfig(f, 1),
				ConfigVariables:   vars,
				ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), acctest.Capture(&head))},
			},
			{
				PreConfig: func() {
					f.clock.Advance(50 * time.Minute)
					// What the server did: consume the head and issue a new one, which the answer carries alone.
					next = f.seed()
					f.server.RevokeChain(head)
					f.server.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultStatus, Status: http.StatusOK,
						Header: http.Header{"Content-Type": {"application/json; charset=UTF-8"}},
						Body:   `{"token_type":"Bearer","expires_in":3600,"refresh_token":"` + next + `"}`})
				},
				Config:          grantConfig(f, 1),
				ConfigVariables: vars,
				ExpectError:     words(summaryIncomplete),
			},
			{
				PreConfig: func() {
					f.ledger.Reset()
					if !f.server.RefreshTokenLive(next) {
						t.Fatal("the rescued head was consumed before the follow-up run")
					}
				},
				Config:          grantConfig(f, 1),
				ConfigVariables: vars,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(grantAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.LiveAccessToken(f.server)),
					statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), acctest.LiveRefreshToken(f.server)),
				},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(1, "the apply after the incomplete answer, from the kept head")()
			if f.server.RefreshTokenLive(next) {
				t.Error("the kept head was never exchanged")
			}
			return nil
		},
	})
}
