package provider

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/bipsync/terraform-provider-bipsync/internal/acctest"
)

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
	f.ledger.Expect(1, "inline seed create and destroy")()
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
	f.ledger.Expect(1, "create")()
	var firstAccessToken string
	w.checkState(statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.Capture(&firstAccessToken)))

	// 30 minutes in, 30 left: outside the 15m window. The keepers change plans an update.
	f.clock.Advance(30 * time.Minute)
	w.writeConfig(grantConfig(f, 1, `keepers = { k = "2" }`))
	out := w.mustRun("plan", "-out=update.tfplan")
	if !strings.Contains(out, "will be updated in-place") {
		t.Fatalf("plan before the window: got\n%s\nwant an in-place update", out)
	}
	f.ledger.Expect(0, "plan before the window")()
	if !planFileContains(t, w, "update.tfplan", f.baseURL) {
		t.Error("saved plan: the base_url of its configuration not found; the search for the seed would prove nothing")
	}
	if planFileContains(t, w, "update.tfplan", seed) {
		t.Error("saved plan holds the write-only seed")
	}

	// 50 minutes in: the window is open when the saved plan is applied, so apply-time planning rotates too.
	f.clock.Advance(20 * time.Minute)
	w.mustRun("apply", "update.tfplan")
	f.ledger.Expect(1, "saved update plan applied in the window")()
	w.checkState(
		statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.LiveAccessToken(f.server)),
		statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.ReplacesAccessToken(f.server, &firstAccessToken)),
		statecheck.ExpectKnownValue(grantAddr, attrPath("rotated_at"), acctest.RFC3339(f.clock.Now())), // the apply time
	)

	// A no-op plan saved while the new token is fresh, applied after its window opened, changes nothing.
	w.mustRun("plan", "-out=noop.tfplan")
	f.clock.Advance(50 * time.Minute)
	var head string
	w.checkState(statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), acctest.Capture(&head)))
	out = w.mustRun("apply", "noop.tfplan")
	if !strings.Contains(out, "0 added, 0 changed, 0 destroyed") {
		t.Errorf("apply of the no-op plan: got\n%s\nwant no changes", out)
	}
	f.ledger.Expect(0, "saved no-op plan applied in the window")()
	w.checkState(statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), knownvalue.StringExact(head))) // unchanged
	// The window really is open: a fresh plan now rotates.
	if _, _, err := w.run("plan", "-detailed-exitcode"); exitCode(err) != 2 {
		t.Errorf("fresh plan in the window: got exit %d (%v); want 2 (changes)", exitCode(err), err)
	}
	f.ledger.Expect(0, "fresh plan")()

	raw := w.rawState()
	if strings.Contains(string(raw), seed) {
		t.Error("state file holds the write-only seed")
	}
	w.checkState(statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token_wo"), knownvalue.Null()))
	w.mustRun("destroy", "-auto-approve")
	f.ledger.Expect(0, "destroy")()
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
	f.ledger.Expect(1, "create")()

	f.clock.Advance(24 * 24 * time.Hour)
	out := w.mustRun("plan")
	if !words("Warning: Bipsync Refresh Chain Expiring Soon").MatchString(out) {
		t.Errorf("plan 6 days before the chain expires: got\n%s\nwant the expiry warning", out)
	}
	f.ledger.Expect(0, "plan with the warning")()

	f.clock.Advance(7 * 24 * time.Hour)
	stdout, stderr, err := w.run("plan")
	if err == nil || !words("Error: Bipsync Reauthorization Required").MatchString(stderr) {
		t.Errorf("plan after the chain expired: got error %v\nstdout:\n%s\nstderr:\n%s\nwant the reauthorization error", err, stdout, stderr)
	}
	f.ledger.Expect(0, "plan of an expired chain")()

	// A seed issued now (after a new authorization) with a new version starts a new chain in one apply.
	newSeed := f.seed()
	w.env = []string{"TF_VAR_seed=" + newSeed}
	w.writeConfig(grantConfig(f, 2))
	w.mustRun("apply", "-auto-approve")
	f.ledger.Expect(1, "re-seed after expiry")()
	w.checkState(statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.LiveAccessToken(f.server)))
	if f.server.RefreshTokenLive(newSeed) {
		t.Error("new seed: still live; want consumed")
	}
	w.mustRun("destroy", "-auto-approve")
	f.ledger.Expect(0, "destroy")()
}
