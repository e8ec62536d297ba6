package provider

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// shortMonth is the refresh token lifetime of a tenant whose chains live 7 days: a token reused minutes after an
// exchange then comes from a chain that ends within the 7-day warning window.
const shortMonth = 7 * 24 * time.Hour

// shortMonthProviderBlock is the fixture's provider block with refresh_token_lifetime set to shortMonth.
func shortMonthProviderBlock(f *fixture) string {
	return strings.Replace(f.providerBlock(), "  token_store {",
		fmt.Sprintf("  refresh_token_lifetime = %q\n  token_store {", shortMonth.String()), 1)
}

// TestAccAccessToken_chainExpiringSoonShown: the chain-expiring warning of the ephemeral resource and of the data
// source is raised where every engine shows it (Open, Read), not only in Renew, whose diagnostics Terraform before 1.17
// drops. A call that has just exchanged the chain is not warned about (its month starts then); one that reuses a
// stored token from a chain within 7 days of its end is, and neither calls Bipsync for it.
func TestAccAccessToken_chainExpiringSoonShown(t *testing.T) {
	t.Parallel()
	for _, kind := range []struct {
		name, block string
	}{
		{"ephemeral", `
ephemeral "bipsync_access_token" "t" {
  refresh_token = %q
}
`},
		{"data source", `
data "bipsync_access_token" "t" {
  refresh_token = %q
}
`},
	} {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			f := startFixtureWith(t, false, bipsynctest.Options{RefreshTokenTTL: shortMonth})
			w := f.workspace()
			w.writeConfig(shortMonthProviderBlock(f) + fmt.Sprintf(kind.block, f.seed()))
			w.mustRun("init")
			warning := words("Warning: Bipsync Refresh Chain Expiring Soon")

			out := w.mustRun("apply", "-auto-approve")
			f.ledger.Expect(1, "first apply")()
			if warning.MatchString(out) {
				t.Errorf("apply that exchanged the chain (its 7 days start now): got the warning\n%s", out)
			}

			f.clock.Advance(10 * time.Minute)
			stdout, stderr, err := w.run("plan")
			if err != nil {
				t.Fatalf("plan: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
			}
			f.ledger.Expect(0, "plan that reuses the stored token")()
			end := f.clock.Now().Add(-10 * time.Minute).Add(shortMonth).UTC().Format(time.RFC3339)
			if !summaryWith("Warning: Bipsync Refresh Chain Expiring Soon", "ends at "+end, "terraform-provider-bipsync rotate").
				MatchString(stdout + stderr) {
				t.Errorf("plan that reused a token from a chain ending at %s: got\nstdout:\n%s\nstderr:\n%s\nwant the expiry warning", end, stdout, stderr)
			}
		})
	}
}
