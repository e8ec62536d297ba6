package provider

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/echoprovider"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/bipsync/terraform-provider-bipsync/internal/acctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// fixture is one acceptance test's world: a fake Bipsync server, a fake clock shared with the provider, a private
// token store directory, and the ledger of the exchanges each step caused. The checks the tests run against it live
// in internal/acctest.
type fixture struct {
	t        *testing.T
	clock    *bipsynctest.Clock
	server   *bipsynctest.Server
	baseURL  string
	storeDir string
	ledger   *acctest.Ledger
}

// newFixture starts a fixture with the fake served over plain http on loopback.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	return startFixture(t, false)
}

// startFixture starts a fixture; with useTLS the fake is served over https with a self-signed certificate, which the
// provider trusts only when its factories are told to (see faultWorld).
func startFixture(t *testing.T, useTLS bool) *fixture {
	t.Helper()
	return startFixtureWith(t, useTLS, bipsynctest.Options{})
}

// startFixtureWith starts a fixture whose fake has the given options (its clock is the fixture's).
func startFixtureWith(t *testing.T, useTLS bool, opts bipsynctest.Options) *fixture {
	t.Helper()
	accPreCheck(t)
	clock := bipsynctest.NewClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	opts.Now = clock.Now
	srv := bipsynctest.NewServer(opts)
	srv.AddClient(testClientID, testClientSecret)
	srv.AddPublicClient(testPublicClient)
	url := srv.Start
	if useTLS {
		url = srv.StartTLS
	}
	f := &fixture{t: t, clock: clock, server: srv, baseURL: url(), storeDir: t.TempDir()}
	t.Cleanup(srv.Close)
	f.ledger = acctest.NewLedger(t, srv)
	return f
}

// seed issues a refresh token with consent to scopes, as the authorization code grant would.
func (f *fixture) seed(scopes ...string) string {
	if len(scopes) == 0 {
		scopes = []string{"read", "write"}
	}
	return f.server.IssueRefreshToken(testClientID, scopes)
}

// options are the provider's options in tests: the fixture's clock, and retries that do not sleep.
func (f *fixture) options() Options {
	return Options{Now: f.clock.Now, Sleep: func(context.Context, time.Duration) error { return nil }}
}

// factories serves the provider in process with the fixture's clock, and the echo provider for ephemeral values.
func (f *fixture) factories() map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"bipsync": providerserver.NewProtocol6WithError(NewWithOptions("test", f.options())()),
		"echo":    echoprovider.NewProviderServer(),
	}
}

// providerBlock is a provider configuration pointing at the fake.
func (f *fixture) providerBlock() string {
	return fmt.Sprintf(`
provider "bipsync" {
  base_url      = %q
  client_id     = %q
  client_secret = %q
  token_store {
    path = %q
  }
}
`, f.baseURL, testClientID, testClientSecret, f.storeDir)
}

// echoToken is a state check that the ephemeral token echoed by addr is live.
func (f *fixture) echoToken(addr string) statecheck.StateCheck {
	return statecheck.ExpectKnownValue(addr, tfjsonpath.New("data").AtMapKey("access_token"), acctest.LiveAccessToken(f.server))
}

// echoToken0 is a state check that the first token echoed by ephemeralConfig's consumer is live.
func (f *fixture) echoToken0() statecheck.StateCheck {
	return statecheck.ExpectKnownValue("echo.t", tfjsonpath.New("data").AtSliceIndex(0).AtMapKey("access_token"),
		acctest.LiveAccessToken(f.server))
}

// head returns the chain head the file store holds for seed (the test reads the record as the provider would).
func (f *fixture) head(seed string) string {
	f.t.Helper()
	st, err := tokenstore.NewFile(f.storeDir)
	if err != nil {
		f.t.Fatal(err)
	}
	key := tokenstore.KeyFor(f.baseURL+bipsync.TokenPath, testClientID, seed)
	rec, err := st.Load(context.Background(), key, seed)
	if err != nil || rec == nil {
		f.t.Fatalf("loading the chain record: got %v, %v; want a record", rec, err)
	}
	return rec.RefreshToken
}

// words matches a phrase across the CLI's line wrapping.
func words(phrase string) *regexp.Regexp {
	parts := strings.Fields(phrase)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(strings.Join(parts, `\s+`))
}

// summaryWith matches a diagnostic summary followed, anywhere later, by each of the detail phrases.
func summaryWith(summary string, details ...string) *regexp.Regexp {
	parts := []string{words(summary).String()}
	for _, d := range details {
		parts = append(parts, words(d).String())
	}
	return regexp.MustCompile(`(?s)` + strings.Join(parts, `.*`))
}

const grantAddr = "bipsync_refresh_grant.g"

// attrPath is a path to a top-level attribute.
func attrPath(name string) tfjsonpath.Path { return tfjsonpath.New(name) }

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

// ephemeralConfig is count ephemeral tokens on one chain, echoed so the test can read what a consumer got.
func (f *fixture) ephemeralConfig(seed string, count int, args ...string) string {
	return f.providerBlock() + fmt.Sprintf(`
ephemeral "bipsync_access_token" "t" {
  count         = %d
  refresh_token = %q
%s
}

provider "echo" {
  data = ephemeral.bipsync_access_token.t
}

resource "echo" "t" {}
`, count, seed, strings.Join(args, "\n"))
}

// commandStoreConfig is a provider block whose command store is the test binary keeping records in dir, and one
// ephemeral token echoed. The test binary stands in for a secret manager (see store_helper_test.go); env(1) hands it
// its directory.
func commandStoreConfig(f *fixture, dir, seed string) string {
	return fmt.Sprintf(`
provider "bipsync" {
  base_url      = %q
  client_id     = %q
  client_secret = %q
  token_store {
    backend = "command"
    command = ["/usr/bin/env", "%s=%s", %q]
  }
}
ephemeral "bipsync_access_token" "t" {
  refresh_token = %q
}
provider "echo" {
  data = ephemeral.bipsync_access_token.t
}
resource "echo" "t" {}
`, f.baseURL, testClientID, testClientSecret, envStoreHelperDir, dir, os.Args[0], seed)
}
