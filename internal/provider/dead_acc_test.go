package provider

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/bipsync/terraform-provider-bipsync/internal/acctest"
)

// TestAccAccessToken_deadChainKnownEverywhere: the user withdraws consent, and the next use fails with the
// reauthorization; the run after that used to ask Bipsync again (or hand out the stored token while it had not
// expired). The first refusal is recorded in the token store now, so the next plan fails at once with the same
// summary and the fake sees no further token request. A new seed starts a new chain, which works.
func TestAccAccessToken_deadChainKnownEverywhere(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed, fresh := f.seed(), f.seed()
	var requests int
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{
				Config:            f.ephemeralConfig(seed, 1),
				ConfigStateChecks: []statecheck.StateCheck{f.echoToken0()},
			},
			{
				PreConfig: func() {
					f.ledger.Expect(1, "first step")()
					f.server.RevokeChain(f.head(seed)) // consent withdrawn
					f.clock.Advance(5 * time.Minute)
				},
				// 55 minutes left on the stored access token: this step's min_validity makes it exchange.
				Config:      f.ephemeralConfig(seed, 1, `min_validity = "59m"`),
				ExpectError: summaryWith(summaryReauth, "withdrew consent", "records the chain as dead"),
			},
			{
				PreConfig: func() {
					if rec := f.record(seed); rec.Dead == nil || rec.Dead.Cause != "revoked" {
						t.Fatalf("record after the refusal: dead %+v; want it recorded as revoked", rec.Dead)
					}
					requests = f.server.Stats().TokenRequests
				},
				// The default min_validity (15m) would reuse the stored access token by its expiry, but it was revoked with
				// the head: it must not be handed out.
				Config:      f.ephemeralConfig(seed, 1),
				ExpectError: summaryWith(summaryReauth, "recorded in the token store", "Nothing was sent to Bipsync this time"),
			},
			{
				PreConfig: func() {
					if got := f.server.Stats().TokenRequests; got != requests {
						t.Fatalf("token requests during the run after the death: got %d; want none", got-requests)
					}
					f.ledger.Reset()
				},
				// The echo resource keeps what it echoed first (the dead chain's token), so the new chain is checked in
				// the store.
				Config: f.ephemeralConfig(fresh, 1),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(1, "the new seed's chain")()
			if rec := f.record(fresh); rec.Dead != nil || !f.server.AccessTokenLive(rec.AccessToken) {
				return fmt.Errorf("the new seed's chain: dead %+v, access token live %t; want a live chain", rec.Dead,
					f.server.AccessTokenLive(rec.AccessToken))
			}
			return nil
		},
	})
}

// TestAccAccessToken_seedConsumedByGrantNamed: a seed given to a bipsync_refresh_grant and then to an ephemeral
// block used to fail with the generic "either it was already exchanged ... or the user withdrew consent". The grant's
// seed journal shows who exchanged it, so the diagnostic says so, with the date, and what to do.
func TestAccAccessToken_seedConsumedByGrantNamed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := f.seed()
	grantAt := f.clock.Now()
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{
				Config: grantConfig(f, 1), ConfigVariables: seedVars(seed),
			},
			{
				PreConfig: func() {
					f.ledger.Expect(1, "grant create")()
					f.clock.Advance(24 * time.Hour)
				},
				Config: grantConfig(f, 1) + `
ephemeral "bipsync_access_token" "t" {
  refresh_token = var.seed
}
provider "echo" {
  data = ephemeral.bipsync_access_token.t
}
resource "echo" "t" {}
`,
				ConfigVariables: seedVars(seed),
				ExpectError: summaryWith(summaryReauth, "This refresh token was exchanged by a bipsync_refresh_grant on "+
					grantAt.UTC().Format(time.RFC3339)+"; give this block its own authorization"),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(0, "the ephemeral block's refused use")()
			return nil
		},
	})
}

// TestAccRefreshGrant_deadChainFailsAtOnce: a grant whose rotation Bipsync refused used to send the refused head to
// Bipsync again at every apply. The refusal is recorded on the grant's journal record now, so the next plan warns and
// its apply fails at once with the reauthorization, sending nothing, and a re-seed still recovers in one apply.
func TestAccRefreshGrant_deadChainFailsAtOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	vars := seedVars(f.seed())
	newSeed := f.seed()
	var head string
	var requests int
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
				ExpectError: summaryWith(summaryReauth, "withdrew consent", "records the chain as dead"),
			},
			{
				PreConfig: func() {
					requests = f.server.Stats().TokenRequests
				},
				Config: grantConfig(f, 1), ConfigVariables: vars,
				ExpectError: summaryWith(summaryReauth, "recorded in the token store", "Nothing was sent to Bipsync this time",
					"refresh_token_wo_version"),
			},
			{
				PreConfig: func() {
					if got := f.server.Stats().TokenRequests; got != requests {
						t.Fatalf("token requests during the plan after the death: got %d; want none", got-requests)
					}
					f.ledger.Expect(0, "refused steps")()
				},
				Config: grantConfig(f, 2), ConfigVariables: seedVars(newSeed),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.LiveAccessToken(f.server)),
				},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(1, "re-seed step")()
			return nil
		},
	})
}
