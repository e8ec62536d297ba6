package provider

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

const grantAddr = "bipsync_refresh_grant.g"

// grantConfig is the fixture's provider block and a grant seeded through the write-only refresh_token_wo from an
// ephemeral variable, with args added inside the resource block.
func grantConfig(f *fixture, version int, args ...string) string {
	return f.providerBlock() + fmt.Sprintf(`
variable "seed" {
  type      = string
  sensitive = true
  ephemeral = true
}

resource "bipsync_refresh_grant" "g" {
  refresh_token_wo         = var.seed
  refresh_token_wo_version = %d
%s
}
`, version, strings.Join(args, "\n"))
}

// seedVars passes a seed refresh token to grantConfig's variable.
func seedVars(seed string) config.Variables {
	return config.Variables{"seed": config.StringVariable(seed)}
}

// attrPath is a path to a top-level attribute.
func attrPath(name string) tfjsonpath.Path { return tfjsonpath.New(name) }

// capture is a state check of a string value that keeps the value for later steps.
func capture(dst *string) knownvalue.Check {
	return knownvalue.StringFunc(func(v string) error {
		*dst = v
		return nil
	})
}

// checkFunc is a state check that runs an arbitrary assertion once the step's state is known.
type checkFunc func(*tfjson.State) error

func (c checkFunc) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	resp.Error = c(req.State)
}

// notLive checks that the fake no longer accepts the access token *at: a rotation revokes the pair before it.
func (f *fixture) notLive(at *string) statecheck.StateCheck {
	return checkFunc(func(*tfjson.State) error {
		if *at == "" {
			return errors.New("no previous access token was captured")
		}
		if f.server.AccessTokenLive(*at) {
			return errors.New("the previous access token is still live at the fake; a rotation revokes it")
		}
		return nil
	})
}

// liveRefreshToken checks that a state value is the head of a live chain at the fake.
func (f *fixture) liveRefreshToken() knownvalue.Check {
	return knownvalue.StringFunc(func(v string) error {
		if !f.server.RefreshTokenLive(v) {
			return errors.New("the refresh token in state is not live at the fake")
		}
		return nil
	})
}

// stateSecretsCheck inspects the state JSON as the engine shows it: none of secrets may appear in it, and each
// of the sensitive attributes of addr must be marked in sensitive_values.
type stateSecretsCheck struct {
	addr      string
	secrets   []string
	sensitive []string
}

func (c stateSecretsCheck) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	b, err := json.Marshal(req.State)
	if err != nil {
		resp.Error = err
		return
	}
	for i, s := range c.secrets {
		if s == "" || strings.Contains(string(b), s) {
			resp.Error = fmt.Errorf("state JSON holds secret #%d (or the secret is empty)", i)
			return
		}
	}
	if req.State.Values == nil || req.State.Values.RootModule == nil {
		resp.Error = errors.New("state has no root module")
		return
	}
	for _, r := range req.State.Values.RootModule.Resources {
		if r.Address != c.addr {
			continue
		}
		var marks map[string]any
		if err := json.Unmarshal(r.SensitiveValues, &marks); err != nil {
			resp.Error = fmt.Errorf("decoding sensitive_values of %s: %w", c.addr, err)
			return
		}
		for _, name := range c.sensitive {
			if marks[name] != true {
				resp.Error = fmt.Errorf("sensitive_values[%q] of %s: got %v; want true", name, c.addr, marks[name])
				return
			}
		}
		return
	}
	resp.Error = fmt.Errorf("%s not found in state", c.addr)
}

// rfc3339 formats t as the grant stores times.
func rfc3339(t time.Time) knownvalue.Check {
	return knownvalue.StringExact(t.UTC().Format(time.RFC3339))
}

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
				statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), f.liveAccessToken()),
				statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), capture(&accessToken)),
				statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), f.liveRefreshToken()),
				statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), capture(&refreshToken)),
				statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token_wo"), knownvalue.Null()),
				statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token_wo_version"), knownvalue.Int64Exact(1)),
				statecheck.ExpectKnownValue(grantAddr, attrPath("seed_refresh_token"), knownvalue.Null()),
				statecheck.ExpectKnownValue(grantAddr, attrPath("id"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]{32}$`))),
				statecheck.ExpectKnownValue(grantAddr, attrPath("token_type"), knownvalue.StringExact("Bearer")),
				statecheck.ExpectKnownValue(grantAddr, attrPath("rotate_before"), knownvalue.StringExact("15m")),
				statecheck.ExpectKnownValue(grantAddr, attrPath("expires_at"), rfc3339(start.Add(time.Hour))),
				statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token_expires_at"), rfc3339(start.Add(720*time.Hour))),
				statecheck.ExpectKnownValue(grantAddr, attrPath("rotated_at"), rfc3339(start)),
				stateSecretsCheck{addr: grantAddr, secrets: []string{seed}, sensitive: []string{"refresh_token", "access_token"}},
			},
		}},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.expect(1, "create step")()
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
// nothing (invariant 3: plan-only runs never rotate).
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
					f.ledger.expect(1, "create step")()
					f.clock.Advance(44 * time.Minute) // 16m left: just outside the 15m window
				},
				Config: grantConfig(f, 1), ConfigVariables: vars,
				PlanOnly: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				PreConfig: f.ledger.expect(0, "plan-only step"),
				Config:    grantConfig(f, 1), ConfigVariables: vars,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{
					same.AddStateValue(grantAddr, attrPath("refresh_token")),
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), f.liveAccessToken()),
				},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.expect(0, "re-apply step")()
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
	var rotationTime time.Time
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{
				Config: grantConfig(f, 1), ConfigVariables: vars,
				ConfigStateChecks: []statecheck.StateCheck{
					rotated.AddStateValue(grantAddr, attrPath("refresh_token")),
					sameID.AddStateValue(grantAddr, attrPath("id")),
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), capture(&firstAccessToken)),
				},
			},
			{
				PreConfig: func() {
					f.ledger.expect(1, "create step")()
					f.clock.Advance(45 * time.Minute) // now + rotate_before == expires_at: the window opens
					rotationTime = f.clock.Now()
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
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), f.liveAccessToken()),
					statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), f.liveRefreshToken()),
					f.notLive(&firstAccessToken),
					checkFunc(func(s *tfjson.State) error {
						return expectStateString(s, "rotated_at", rotationTime.UTC().Format(time.RFC3339))
					}),
					checkFunc(func(s *tfjson.State) error {
						return expectStateString(s, "expires_at", rotationTime.Add(time.Hour).UTC().Format(time.RFC3339))
					}),
					checkFunc(func(s *tfjson.State) error {
						return expectStateString(s, "refresh_token_expires_at", rotationTime.Add(720*time.Hour).UTC().Format(time.RFC3339))
					}),
				},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.expect(1, "rotation step")()
			return nil
		},
	})
}

// expectStateString checks a string attribute of the grant in a state, for values only known once a step runs.
func expectStateString(s *tfjson.State, name, want string) error {
	if s.Values == nil || s.Values.RootModule == nil {
		return errors.New("state has no root module")
	}
	for _, r := range s.Values.RootModule.Resources {
		if r.Address == grantAddr {
			if got := r.AttributeValues[name]; got != want {
				return fmt.Errorf("%s: got %v; want %s", name, got, want)
			}
			return nil
		}
	}
	return fmt.Errorf("%s not found in state", grantAddr)
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
				f.ledger.expect(1, fmt.Sprintf("step %d", i))()
				f.clock.Advance(50 * time.Minute)
			},
			Config: grantConfig(f, 1), ConfigVariables: vars,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(grantAddr, plancheck.ResourceActionUpdate),
			}},
			ConfigStateChecks: []statecheck.StateCheck{
				rotated.AddStateValue(grantAddr, attrPath("refresh_token")),
				statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), keep),
				statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), f.liveAccessToken()),
			},
		})
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps:                    steps,
		CheckDestroy: func(*terraform.State) error {
			f.ledger.expect(1, "last rotation step")()
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
					statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), capture(&head)),
				},
			},
			{
				PreConfig: func() {
					f.ledger.expect(1, "create step")()
					f.server.RevokeChain(head) // the user withdrew consent
					f.clock.Advance(50 * time.Minute)
				},
				Config: grantConfig(f, 1), ConfigVariables: vars,
				ExpectError: regexp.MustCompile(`(?s)Bipsync Reauthorization Required.*refresh\s+token\s+has\s+been\s+revoked.*` +
					`authorization\s+code\s+grant.*refresh_token_wo_version.*Hint:\s+Token\s+has\s+been\s+revoked`),
			},
			{
				PreConfig: f.ledger.expect(0, "revoked step"),
				Config:    grantConfig(f, 2), ConfigVariables: seedVars(newSeed),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(grantAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), f.liveAccessToken()),
					statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), f.liveRefreshToken()),
					statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token_wo_version"), knownvalue.Int64Exact(2)),
					stateSecretsCheck{addr: grantAddr, secrets: []string{newSeed}, sensitive: []string{"refresh_token"}},
				},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.expect(1, "re-seed step")()
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
					f.ledger.expect(1, "create step")()
					f.clock.Advance(31 * 24 * time.Hour)
				},
				Config: grantConfig(f, 1), ConfigVariables: vars,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Bipsync Reauthorization Required.*refresh\s+chain\s+in\s+state\s+expired\s+at`),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.expect(0, "expired plan step and destroy")()
			return nil
		},
	})
	if got := f.server.Stats().TokenRequests; got != 1 {
		t.Errorf("token requests: got %d; want 1 (the create only: an expired chain is refused before any call)", got)
	}
}

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
			f.ledger.expect(0, "seed input steps")()
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

// meScopes asks the fake's protected endpoint which scopes an access token carries.
func (f *fixture) meScopes(accessToken string) ([]string, error) {
	req, err := http.NewRequest(http.MethodGet, f.baseURL+"/v1/me", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/v1/me: got status %d; want 200", resp.StatusCode)
	}
	var me struct {
		Scopes []string `json:"scopes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&me); err != nil {
		return nil, err
	}
	slices.Sort(me.Scopes)
	return me.Scopes, nil
}

// scopesAre checks the scopes the fake sees on a state's access token.
func (f *fixture) scopesAre(want ...string) knownvalue.Check {
	return knownvalue.StringFunc(func(v string) error {
		got, err := f.meScopes(v)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("access token scopes: got %v; want %v", got, want)
		}
		return nil
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
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), f.scopesAre("read", "write")),
				},
			},
			{
				PreConfig: f.ledger.expect(1, "create step"),
				Config:    grantConfig(f, 1, `keepers = { k = "2" }`), ConfigVariables: vars,
				ConfigPlanChecks: update,
				ConfigStateChecks: []statecheck.StateCheck{
					rotated.AddStateValue(grantAddr, attrPath("refresh_token")),
					sameID.AddStateValue(grantAddr, attrPath("id")),
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), f.liveAccessToken()),
				},
			},
			{
				PreConfig: f.ledger.expect(1, "keepers step"),
				Config:    grantConfig(f, 1, `keepers = { k = "2" }`, `scopes = ["read"]`), ConfigVariables: vars,
				ConfigPlanChecks: update,
				ConfigStateChecks: []statecheck.StateCheck{
					rotated.AddStateValue(grantAddr, attrPath("refresh_token")),
					sameID.AddStateValue(grantAddr, attrPath("id")),
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), f.scopesAre("read")),
				},
			},
			{
				PreConfig: f.ledger.expect(1, "narrowing step"),
				Config:    grantConfig(f, 1, `keepers = { k = "2" }`, `scopes = ["read", "write"]`), ConfigVariables: vars,
				ExpectError: regexp.MustCompile(`(?s)Bipsync Reauthorization Required.*holds\s+scopes\s+\[read\]\s+and\s+cannot\s+widen\s+to\s+\[write\]`),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.expect(0, "widening step")()
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
			f.ledger.expect(0, "create beyond consent")()
			return nil
		},
	})
	if !f.server.RefreshTokenLive(seed) {
		t.Error("seed: consumed; want untouched after invalid_scope")
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
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), f.liveAccessToken()),
					statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), capture(&head)),
				},
			},
			{
				PreConfig: func() {
					f.ledger.expect(1, "create step")()
					if f.server.RefreshTokenLive(first) {
						t.Error("first seed: still live after the create; want consumed")
					}
				},
				Config: cfg(second),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(grantAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), f.liveAccessToken()),
					statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), f.liveRefreshToken()),
					checkFunc(func(*tfjson.State) error {
						if f.server.RefreshTokenLive(second) {
							return errors.New("second seed: still live; want consumed by the re-seed")
						}
						if !f.server.RefreshTokenLive(head) {
							return errors.New("old chain head: consumed; want a re-seed to exchange the new seed, not the head")
						}
						return nil
					}),
				},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.expect(1, "re-seed step")()
			return nil
		},
	})
}

// TestAccRefreshGrant_inlineSeedNotPrinted checks that a seed written inline as seed_refresh_token never reaches the
// CLI's output: the write-only recommendation must not quote the attribute's source line, and no token the fake
// issued may be printed by init, plan, apply or destroy.
func TestAccRefreshGrant_inlineSeedNotPrinted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w := f.workspace()
	w.writeConfig(f.providerBlock() + fmt.Sprintf(`
resource "bipsync_refresh_grant" "g" {
  seed_refresh_token = %q
}
`, f.seed()))
	var printed strings.Builder
	for _, args := range [][]string{{"init"}, {"plan"}, {"apply", "-auto-approve"}, {"destroy", "-auto-approve"}} {
		stdout, stderr, err := w.run(args...)
		if err != nil {
			t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", args[0], err, stdout, stderr)
		}
		printed.WriteString(stdout + stderr)
	}
	out := printed.String()
	if !strings.Contains(out, "Warning: Available Write-Only Attribute Alternative") {
		t.Errorf("output: got\n%s\nwant the write-only recommendation", out)
	}
	secrets := f.server.SeenSecrets()
	if len(secrets) < 3 {
		t.Fatalf("secrets seen by the fake: got %d; want the seed and an exchanged pair", len(secrets))
	}
	for i, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("output holds secret #%d the fake issued or accepted", i)
		}
	}
	f.ledger.expect(1, "inline seed create and destroy")()
}

// TestAccRefreshGrant_savedPlanAcrossWindow applies plans saved before the rotation window opened, after it opened:
// an update for another reason must apply cleanly and rotate once (no "inconsistent final plan"), and a no-op plan
// must apply as a no-op. terraform-plugin-testing cannot apply a plan saved in an earlier step, so the test drives
// the engine itself.
func TestAccRefreshGrant_savedPlanAcrossWindow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := f.seed()
	w := f.workspace("TF_VAR_seed=" + seed)
	w.writeConfig(grantConfig(f, 1, `keepers = { k = "1" }`))
	w.mustRun("init")
	w.mustRun("apply", "-auto-approve")
	f.ledger.expect(1, "create")()
	firstAccessToken := stateAttr(t, w, "access_token")

	// 30 minutes in, 30 left: outside the 15m window. The keepers change plans an update.
	f.clock.Advance(30 * time.Minute)
	w.writeConfig(grantConfig(f, 1, `keepers = { k = "2" }`))
	out := w.mustRun("plan", "-out=update.tfplan")
	if !strings.Contains(out, "will be updated in-place") {
		t.Fatalf("plan before the window: got\n%s\nwant an in-place update", out)
	}
	f.ledger.expect(0, "plan before the window")()
	if !planFileContains(t, w, "update.tfplan", f.baseURL) {
		t.Error("saved plan: the base_url of its configuration not found; the search for the seed would prove nothing")
	}
	if planFileContains(t, w, "update.tfplan", seed) {
		t.Error("saved plan holds the write-only seed")
	}

	// 50 minutes in: the window is open when the saved plan is applied, so apply-time planning rotates too.
	f.clock.Advance(20 * time.Minute)
	w.mustRun("apply", "update.tfplan")
	f.ledger.expect(1, "saved update plan applied in the window")()
	if at := stateAttr(t, w, "access_token"); at == firstAccessToken || !f.server.AccessTokenLive(at) {
		t.Error("access token after the saved update: unchanged or not live; want a new live token")
	}
	if f.server.AccessTokenLive(firstAccessToken) {
		t.Error("first access token: still live; want revoked by the rotation")
	}
	if got := stateAttr(t, w, "rotated_at"); got != f.clock.Now().UTC().Format(time.RFC3339) {
		t.Errorf("rotated_at: got %s; want the apply time", got)
	}

	// A no-op plan saved while the new token is fresh, applied after its window opened, changes nothing.
	w.mustRun("plan", "-out=noop.tfplan")
	f.clock.Advance(50 * time.Minute)
	head := stateAttr(t, w, "refresh_token")
	out = w.mustRun("apply", "noop.tfplan")
	if !strings.Contains(out, "0 added, 0 changed, 0 destroyed") {
		t.Errorf("apply of the no-op plan: got\n%s\nwant no changes", out)
	}
	f.ledger.expect(0, "saved no-op plan applied in the window")()
	if got := stateAttr(t, w, "refresh_token"); got != head {
		t.Error("refresh token: changed by a no-op plan")
	}
	// The window really is open: a fresh plan now rotates.
	if _, _, err := w.run("plan", "-detailed-exitcode"); exitCode(err) != 2 {
		t.Errorf("fresh plan in the window: got exit %d (%v); want 2 (changes)", exitCode(err), err)
	}
	f.ledger.expect(0, "fresh plan")()

	raw := w.rawState()
	if strings.Contains(string(raw), seed) {
		t.Error("state file holds the write-only seed")
	}
	if got := rawStateAttr(t, raw, "refresh_token_wo"); got != nil {
		t.Errorf("refresh_token_wo in the state file: got %v; want null", got)
	}
	w.mustRun("destroy", "-auto-approve")
	f.ledger.expect(0, "destroy")()
}

// TestAccRefreshGrant_chainLifeThroughEngine checks the chain's month through the CLI's own output: a plan within
// seven days of the end warns, a plan after it fails, neither calls Bipsync, and a new seed recovers.
func TestAccRefreshGrant_chainLifeThroughEngine(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w := f.workspace("TF_VAR_seed=" + f.seed())
	w.writeConfig(grantConfig(f, 1))
	w.mustRun("init")
	w.mustRun("apply", "-auto-approve")
	f.ledger.expect(1, "create")()

	f.clock.Advance(24 * 24 * time.Hour)
	out := w.mustRun("plan")
	if !words("Warning: Bipsync Refresh Chain Expiring Soon").MatchString(out) {
		t.Errorf("plan 6 days before the chain expires: got\n%s\nwant the expiry warning", out)
	}
	f.ledger.expect(0, "plan with the warning")()

	f.clock.Advance(7 * 24 * time.Hour)
	stdout, stderr, err := w.run("plan")
	if err == nil || !words("Error: Bipsync Reauthorization Required").MatchString(stderr) {
		t.Errorf("plan after the chain expired: got error %v\nstdout:\n%s\nstderr:\n%s\nwant the reauthorization error", err, stdout, stderr)
	}
	f.ledger.expect(0, "plan of an expired chain")()

	// A seed issued now (after a new authorization) with a new version starts a new chain in one apply.
	newSeed := f.seed()
	w.env = []string{"TF_VAR_seed=" + newSeed}
	w.writeConfig(grantConfig(f, 2))
	w.mustRun("apply", "-auto-approve")
	f.ledger.expect(1, "re-seed after expiry")()
	if at := stateAttr(t, w, "access_token"); !f.server.AccessTokenLive(at) {
		t.Error("access token after the re-seed: not live")
	}
	if f.server.RefreshTokenLive(newSeed) {
		t.Error("new seed: still live; want consumed")
	}
	w.mustRun("destroy", "-auto-approve")
	f.ledger.expect(0, "destroy")()
}

// stateAttr reads a string attribute of the grant through `show -json`.
func stateAttr(t *testing.T, w *engineWorkspace, name string) string {
	t.Helper()
	var st tfjson.State
	if err := json.Unmarshal([]byte(w.mustRun("show", "-json")), &st); err != nil {
		t.Fatalf("decoding show -json: %v", err)
	}
	if st.Values != nil && st.Values.RootModule != nil {
		for _, r := range st.Values.RootModule.Resources {
			if s, ok := r.AttributeValues[name].(string); ok && r.Address == grantAddr {
				return s
			}
		}
	}
	t.Fatalf("%s: no string attribute %s in state", grantAddr, name)
	return ""
}

// planFileContains tells whether any file inside a saved plan (a zip archive) contains s.
func planFileContains(t *testing.T, w *engineWorkspace, name, s string) bool {
	t.Helper()
	z, err := zip.OpenReader(filepath.Join(w.dir, name))
	if err != nil {
		t.Fatalf("opening the saved plan: %v", err)
	}
	defer z.Close()
	for _, f := range z.File {
		r, err := f.Open()
		if err != nil {
			t.Fatalf("opening %s in the saved plan: %v", f.Name, err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("reading %s in the saved plan: %v", f.Name, err)
		}
		if strings.Contains(string(b), s) {
			return true
		}
	}
	return false
}

// rawStateAttr reads an attribute of the grant from a raw state file.
func rawStateAttr(t *testing.T, raw []byte, name string) any {
	t.Helper()
	var st struct {
		Resources []struct {
			Type      string
			Name      string
			Instances []struct {
				Attributes map[string]any
			}
		}
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("decoding the state file: %v", err)
	}
	for _, r := range st.Resources {
		if r.Type == "bipsync_refresh_grant" && r.Name == "g" && len(r.Instances) == 1 {
			v, ok := r.Instances[0].Attributes[name]
			if !ok {
				t.Fatalf("state file: no attribute %s", name)
			}
			return v
		}
	}
	t.Fatal("state file: no bipsync_refresh_grant.g instance")
	return nil
}

// exitCode is the exit status of a failed command, 0 for none and -1 when it did not run.
func exitCode(err error) int {
	var ee interface{ ExitCode() int }
	if err == nil {
		return 0
	}
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

func TestRefreshGrant_checkChainLife(t *testing.T) {
	t.Parallel()
	deadline := time.Date(2026, 12, 25, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		expiresAt   timetypes.RFC3339
		now         time.Time
		wantWarning bool
		wantError   bool
	}{
		{"eight days left", timetypes.NewRFC3339TimeValue(deadline), deadline.Add(-8 * 24 * time.Hour), false, false},
		{"exactly seven days left", timetypes.NewRFC3339TimeValue(deadline), deadline.Add(-7 * 24 * time.Hour), false, false},
		{"just under seven days left", timetypes.NewRFC3339TimeValue(deadline), deadline.Add(-7*24*time.Hour + time.Second), true, false},
		{"one second left", timetypes.NewRFC3339TimeValue(deadline), deadline.Add(-time.Second), true, false},
		{"at the deadline", timetypes.NewRFC3339TimeValue(deadline), deadline, false, true},
		{"a day late", timetypes.NewRFC3339TimeValue(deadline), deadline.Add(24 * time.Hour), false, true},
		{"unknown", timetypes.NewRFC3339Unknown(), deadline, false, false},
		{"null", timetypes.NewRFC3339Null(), deadline, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var diags diag.Diagnostics
			checkChainLife(&refreshGrantModel{RefreshTokenExpiresAt: tc.expiresAt}, tc.now, &diags)
			if got := diags.HasError(); got != tc.wantError {
				t.Errorf("error: got %t; want %t (%v)", got, tc.wantError, diags)
			}
			if got := diags.WarningsCount() > 0; got != tc.wantWarning {
				t.Errorf("warning: got %t; want %t (%v)", got, tc.wantWarning, diags)
			}
			for _, d := range diags {
				want := "Bipsync Refresh Chain Expiring Soon"
				if d.Severity() == diag.SeverityError {
					want = summaryReauth
				}
				if d.Summary() != want {
					t.Errorf("summary: got %q; want %q", d.Summary(), want)
				}
				if !strings.Contains(d.Detail(), deadline.Format(time.RFC3339)) {
					t.Errorf("detail: got %q; want the deadline %s", d.Detail(), deadline.Format(time.RFC3339))
				}
			}
		})
	}
}

func TestRefreshGrant_checkScopeWidening(t *testing.T) {
	t.Parallel()
	set := func(s ...string) types.Set {
		if s == nil {
			return types.SetNull(types.StringType)
		}
		v, _ := types.SetValueFrom(context.Background(), types.StringType, s)
		return v
	}
	tests := []struct {
		name        string
		plan, state types.Set
		wantWarning bool
		wantError   string // a word of the error detail, "" for none
	}{
		{"same", set("read", "write"), set("read", "write"), false, ""},
		{"narrowing", set("read"), set("read", "write"), true, ""},
		{"widening", set("read", "write"), set("read"), false, "[write]"},
		{"other scope", set("team_abc"), set("read", "write"), false, "[team_abc]"},
		{"unset in plan", set(), set("read"), false, ""},
		{"unset in state", set("read", "write", "team_abc"), set(), false, ""},
		{"unknown in plan", types.SetUnknown(types.StringType), set("read"), false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var diags diag.Diagnostics
			checkScopeWidening(context.Background(), &refreshGrantModel{Scopes: tc.plan}, &refreshGrantModel{Scopes: tc.state}, &diags)
			if got := diags.WarningsCount() > 0; got != tc.wantWarning {
				t.Errorf("warning: got %t; want %t (%v)", got, tc.wantWarning, diags)
			}
			errs := diags.Errors()
			if tc.wantError == "" {
				if len(errs) != 0 {
					t.Errorf("errors: got %v; want none", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Summary() != summaryReauth || !strings.Contains(errs[0].Detail(), tc.wantError) {
				t.Errorf("errors: got %v; want one %q naming %s", errs, summaryReauth, tc.wantError)
			}
		})
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
				PreConfig:         func() { f.ledger.expect(1, "create")() },
				Config:            withoutSeed,
				ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), f.liveAccessToken())},
			},
			{
				PreConfig: func() {
					f.ledger.expect(0, "run without the seed")()
					f.clock.Advance(50 * time.Minute)
				},
				Config: withoutSeed,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(grantAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), f.liveAccessToken())},
			},
			{
				PreConfig: func() { f.ledger.expect(1, "rotation without the seed")() },
				Config: f.providerBlock() + `
resource "bipsync_refresh_grant" "g" {
  refresh_token_wo_version = 2
}
`,
				ExpectError: words("Missing Bipsync Refresh Token"),
			},
		},
		CheckDestroy: func(*terraform.State) error { f.ledger.expect(0, "re-seed without a seed")(); return nil },
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
				ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), capture(&head))},
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
					f.ledger.reset()
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
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), f.liveAccessToken()),
					statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), f.liveRefreshToken()),
				},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.expect(1, "the apply after the incomplete answer, from the kept head")()
			if f.server.RefreshTokenLive(next) {
				t.Error("the kept head was never exchanged")
			}
			return nil
		},
	})
}
