package provider

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/bipsync/terraform-provider-bipsync/internal/acctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// fileStore opens the fixture's file store, as the provider does.
func (f *fixture) fileStore() tokenstore.Store {
	f.t.Helper()
	st, err := tokenstore.NewFile(f.storeDir)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

// chainKey is the store key of the chain seeded with seed at the fixture's fake.
func (f *fixture) chainKey(seed string) tokenstore.Key {
	return tokenstore.KeyFor(f.baseURL+bipsync.TokenPath, testClientID, seed)
}

// storeAuthorizedChain saves seed's chain as `terraform-provider-bipsync authorize -store` does: generation 0 with the
// scopes the authorization asked for, so the chain's scopes are known to the provider.
func (f *fixture) storeAuthorizedChain(seed string, scopes ...string) {
	f.t.Helper()
	rec := &tokenstore.Record{RefreshToken: seed, RefreshTokenIssuedAt: f.clock.Now(), Scopes: scopes, ID: tokenstore.NewRecordID()}
	if err := f.fileStore().Save(context.Background(), f.chainKey(seed), seed, rec, nil); err != nil {
		f.t.Fatal(err)
	}
}

// record returns the record the file store holds for seed's chain.
func (f *fixture) record(seed string) *tokenstore.Record {
	f.t.Helper()
	rec, err := f.fileStore().Load(context.Background(), f.chainKey(seed), seed)
	if err != nil || rec == nil {
		f.t.Fatalf("loading the chain record: got %v, %v; want a record", rec, err)
	}
	return rec
}

// bareEphemeralConfig is one ephemeral token with nothing consuming it, for tests that run the engine themselves
// (which serve no echo provider): the engine opens it in every plan and apply all the same.
func bareEphemeralConfig(f *fixture, seed string, args ...string) string {
	return f.providerBlock() + fmt.Sprintf(`
ephemeral "bipsync_access_token" "t" {
  refresh_token = %q
%s
}
`, seed, strings.Join(args, "\n"))
}

// TestAccAccessToken_narrowingNeedsAllowNarrowing: a plan used to exchange a chain whose scopes were known for fewer
// scopes with only a warning, narrowing it for every consumer for good. Now `plan -out` fails before any exchange
// unless allow_narrowing is true, and then narrows and warns.
func TestAccAccessToken_narrowingNeedsAllowNarrowing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := f.seed("read", "write")
	f.storeAuthorizedChain(seed, "read", "write")
	w := f.workspace()
	w.writeConfig(bareEphemeralConfig(f, seed, `scopes = ["read"]`))
	w.mustRun("init")

	stdout, stderr, err := w.run("plan", "-out=narrow.tfplan")
	out := stdout + stderr
	if err == nil {
		t.Fatalf("plan without allow_narrowing: succeeded; want it refused\n%s", out)
	}
	for _, want := range []string{summaryNoNarrowing, "allow_narrowing", "Nothing was exchanged", "a chain of its own"} {
		if !words(want).MatchString(out) {
			t.Errorf("plan output: got\n%s\nwant it to say %q", out, want)
		}
	}
	f.ledger.Expect(0, "refused plan")()
	if got := f.record(seed).Scopes; strings.Join(got, " ") != "read write" {
		t.Errorf("chain scopes after the refused plan: got %v; want [read write]", got)
	}
	if !f.server.RefreshTokenLive(seed) {
		t.Error("seed: spent by the refused plan; want it untouched")
	}

	w.writeConfig(bareEphemeralConfig(f, seed, `scopes = ["read"]`, `allow_narrowing = true`))
	out = w.mustRun("plan", "-out=narrow.tfplan")
	if !words("Warning: " + summaryChainNarrowed).MatchString(out) {
		t.Errorf("plan with allow_narrowing: got\n%s\nwant the narrowing warning", out)
	}
	f.ledger.Expect(1, "allowed narrowing")()
	if got := f.record(seed).Scopes; strings.Join(got, " ") != "read" {
		t.Errorf("chain scopes after the allowed narrowing: got %v; want [read]", got)
	}
}

// TestAccRefreshGrant_narrowingNeedsAllowNarrowing: a grant whose state knows the chain's scopes plans a narrowing
// only with allow_narrowing; without it the plan fails before any call.
func TestAccRefreshGrant_narrowingNeedsAllowNarrowing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	vars := seedVars(f.seed("read", "write"))
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{
				Config: grantConfig(f, 1, `scopes = ["read", "write"]`), ConfigVariables: vars,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.AccessTokenScopes(f.server, "read", "write")),
				},
			},
			{
				PreConfig: f.ledger.Expect(1, "create step"),
				Config:    grantConfig(f, 1, `scopes = ["read"]`), ConfigVariables: vars,
				ExpectError: summaryWith(summaryNoNarrowing, "known to hold scopes [read write]", "allow_narrowing = true"),
			},
			{
				PreConfig: f.ledger.Expect(0, "refused narrowing"),
				Config:    grantConfig(f, 1, `scopes = ["read"]`, `allow_narrowing = true`), ConfigVariables: vars,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(grantAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.AccessTokenScopes(f.server, "read")),
				},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(1, "allowed narrowing")()
			return nil
		},
	})
}
