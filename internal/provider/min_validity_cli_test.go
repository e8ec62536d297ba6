package provider

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/echoprovider"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// TestAccAccessToken_minValidityAboveLifetimeFailsThePlan: with 90-second tokens and the default min_validity (15m),
// a saved plan must not pass where its apply would fail. The plan fails at its first use, with an error that names
// min_validity, the token lifetime and what to set; the exchange it made is kept, so after min_validity is lowered
// the next plan reuses that token, and the saved plan applies cleanly, exchanging once when the token no longer has
// min_validity left.
func TestAccAccessToken_minValidityAboveLifetimeFailsThePlan(t *testing.T) {
	t.Parallel()
	for _, kind := range []struct {
		name, block string
		// applyExchanges is what the apply of the saved plan exchanges: the ephemeral resource is opened again in the
		// apply (its kept token has too little left by then), the data source is read in the plan only.
		applyExchanges int
	}{
		{"ephemeral", `
ephemeral "bipsync_access_token" "t" {
  refresh_token = %q
%s
}
provider "echo" {
  data = ephemeral.bipsync_access_token.t.expires_at
}
resource "echo" "t" {}
`, 1},
		{"data source", `
data "bipsync_access_token" "t" {
  refresh_token = %q
%s
}
`, 0},
	} {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			f := startFixtureWith(t, false, bipsynctest.Options{AccessTokenTTL: 90 * time.Second})
			seed := f.seed()
			w := f.workspace()
			run := func(args ...string) (string, string, error) { return runWithEcho(w, args...) }
			w.writeConfig(f.providerBlock() + fmt.Sprintf(kind.block, seed, ""))
			if stdout, stderr, err := run("init"); err != nil {
				t.Fatalf("init: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
			}

			stdout, stderr, err := run("plan", "-out", "tfplan")
			if exitCode(err) != 1 || !summaryWith("Error: Bipsync min_validity Not Below Token Lifetime", "lives 1m30s",
				"min_validity is 15m0s", `min_validity = "45s"`).MatchString(stderr) {
				t.Fatalf("plan -out with 90 s tokens and min_validity 15m: got exit %d (%v)\nstdout:\n%s\nstderr:\n%s\nwant "+
					"exit 1 and the error naming the lifetime, min_validity and what to set", exitCode(err), err, stdout, stderr)
			}
			f.ledger.Expect(1, "the failing plan's exchange, kept")()

			w.writeConfig(f.providerBlock() + fmt.Sprintf(kind.block, seed, `  min_validity = "45s"`))
			if stdout, stderr, err := run("plan", "-out", "tfplan"); err != nil {
				t.Fatalf("plan -out with min_validity 45s: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
			}
			f.ledger.Expect(0, "plan that reuses the kept token")()
			f.clock.Advance(time.Minute) // the kept token has 30 s left: the apply must exchange
			if stdout, stderr, err := run("apply", "tfplan"); err != nil {
				t.Fatalf("apply of the saved plan: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
			}
			f.ledger.Expect(kind.applyExchanges, "apply of the saved plan")()
		})
	}
}

// runWithEcho is w.run with the echo provider served next to the fixture's, so that a configuration can hand an
// ephemeral value to a resource (echo) without a registry.
func runWithEcho(w *engineWorkspace, args ...string) (stdout, stderr string, err error) {
	w.t.Helper()
	if len(args) > 0 {
		args = append([]string{args[0], "-no-color"}, args[1:]...)
	}
	bipsyncAttach, stopBipsync := serveProvider(w.t, testProviderAddress(w.engine), w.provider)
	defer stopBipsync()
	echoServer, err := echoprovider.NewProviderServer()()
	if err != nil {
		w.t.Fatal(err)
	}
	echoAttach, stopEcho := serveProvider(w.t, w.engine.RegistryHost()+"/hashicorp/echo",
		func() tfprotov6.ProviderServer { return echoServer })
	defer stopEcho()
	both := map[string]json.RawMessage{}
	for _, raw := range []string{bipsyncAttach, echoAttach} {
		if err := json.Unmarshal([]byte(raw), &both); err != nil {
			w.t.Fatal(err)
		}
	}
	reattach, err := json.Marshal(both)
	if err != nil {
		w.t.Fatal(err)
	}
	env := append(append([]string{}, w.env...), "TF_REATTACH_PROVIDERS="+string(reattach))
	return runEngine(w.t, w.dir, env, args...)
}
