package provider

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/bipsync/terraform-provider-bipsync/internal/acctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

func TestAccAccessToken_ephemeralOneExchangePerStep(t *testing.T) {
	t.Parallel()
	for _, count := range []int{1, 10} {
		t.Run(fmt.Sprintf("%d resources", count), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			seed := f.seed()
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: f.factories(),
				Steps: []resource.TestStep{{
					Config: f.ephemeralConfig(seed, count),
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue("echo.t", tfjsonpath.New("data").AtSliceIndex(0).AtMapKey("access_token"),
							acctest.LiveAccessToken(f.server)),
						statecheck.ExpectKnownValue("echo.t", tfjsonpath.New("data").AtSliceIndex(count-1).AtMapKey("token_type"),
							knownvalue.StringExact("Bearer")),
						statecheck.ExpectKnownValue("echo.t", tfjsonpath.New("data").AtSliceIndex(0).AtMapKey("expires_at"),
							knownvalue.StringExact(f.clock.Now().Add(time.Hour).UTC().Format(time.RFC3339))),
					},
				}},
				// Every plan, apply, refresh and destroy walk opened the resource; the fake saw one exchange in all.
				CheckDestroy: func(*terraform.State) error {
					f.ledger.Expect(1, fmt.Sprintf("one step with %d ephemeral resources on one chain", count))()
					t.Logf("exchanges for one step with %d ephemeral resources on one chain: %d (token requests %d)",
						count, f.server.Stats().RefreshExchanges, f.server.Stats().TokenRequests)
					return nil
				},
			})
		})
	}
}

func TestAccAccessToken_ephemeralReuseThenRotate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := f.seed()
	var firstHead string
	tokens := statecheck.CompareValue(compare.ValuesDiffer())
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{
				Config: f.ephemeralConfig(seed, 1),
				ConfigStateChecks: []statecheck.StateCheck{
					tokens.AddStateValue("echo.t", tfjsonpath.New("data").AtSliceIndex(0).AtMapKey("access_token")),
				},
			},
			{
				// Another run with the same seed while the token has more than min_validity left: no exchange.
				PreConfig: func() { f.ledger.Expect(1, "first run")(); firstHead = f.head(seed) },
				Config:    f.ephemeralConfig(seed, 1),
				ConfigStateChecks: []statecheck.StateCheck{
					f.echoToken0(),
				},
			},
			{
				// 50 minutes on, the token has 10 minutes left, less than min_validity (15m): exactly one exchange.
				PreConfig: func() {
					f.ledger.Expect(0, "second run within the token's life")()
					f.clock.Advance(50 * time.Minute)
				},
				Config: f.ephemeralConfig(seed, 1) + `
resource "echo" "after" {}
`,
				ConfigStateChecks: []statecheck.StateCheck{
					// echo.t keeps what it got in the first run: that token was revoked by the exchange.
					statecheck.ExpectKnownValue("echo.t", tfjsonpath.New("data").AtSliceIndex(0).AtMapKey("access_token"),
						acctest.RevokedAccessToken(f.server)),
					statecheck.ExpectKnownValue("echo.after", tfjsonpath.New("data").AtSliceIndex(0).AtMapKey("access_token"),
						acctest.LiveAccessToken(f.server)),
					tokens.AddStateValue("echo.after", tfjsonpath.New("data").AtSliceIndex(0).AtMapKey("access_token")),
				},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(1, "run after the token passed min_validity")()
			if h := f.head(seed); h == firstHead || h == seed {
				t.Errorf("chain head did not move after the rotation")
			}
			return nil
		},
	})
}

func TestAccAccessToken_reauthorizationCauses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		setup  func(f *fixture) (seed string, args []string)
		before func(f *fixture)
		want   string
	}{
		{
			name: "revoked seed",
			setup: func(f *fixture) (string, []string) {
				s := f.seed()
				f.server.RevokeChain(s)
				return s, nil
			},
			want: "The refresh token has been revoked",
		},
		{
			name:   "chain past its month",
			setup:  func(f *fixture) (string, []string) { return f.seed(), nil },
			before: func(f *fixture) { f.clock.Advance(31 * 24 * time.Hour) },
			want:   "The refresh token is past its lifetime",
		},
		{
			name: "garbage seed",
			setup: func(f *fixture) (string, []string) {
				return "def50200" + strings.Repeat("ab", 40), nil
			},
			want: "is not a refresh token this Bipsync tenant issued",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			seed, args := tc.setup(f)
			steps := []resource.TestStep{}
			if tc.before != nil {
				// A first run puts the chain in the store; then time passes.
				steps = append(steps, resource.TestStep{Config: f.ephemeralConfig(seed, 1, args...)})
			}
			steps = append(steps, resource.TestStep{
				PreConfig: func() {
					if tc.before != nil {
						tc.before(f)
					}
				},
				Config:      f.ephemeralConfig(seed, 1, args...),
				ExpectError: regexp.MustCompile(`(?s)` + words("Bipsync Reauthorization Required").String() + `.*` + words(tc.want).String()),
			})
			if tc.before == nil {
				// The runbook's recovery: a new authorization gives a new seed, which starts a new chain in one run.
				fresh := f.seed("read", "write")
				steps = append(steps, resource.TestStep{
					Config:            f.ephemeralConfig(fresh, 1, args...),
					ConfigStateChecks: []statecheck.StateCheck{f.echoToken0()},
				})
			} else {
				// A seed issued now would be as old as the clock jump, so the last step just drops the dead chain's
				// consumer (the final destroy opens every ephemeral resource left in the configuration).
				steps = append(steps, resource.TestStep{Config: f.providerBlock()})
			}
			resource.UnitTest(t, resource.TestCase{ProtoV6ProviderFactories: f.factories(), Steps: steps})
		})
	}
}

// A scope the chain has no consent for (a typo, or one never granted) is refused by Bipsync before it revokes
// anything: the diagnostic says nothing was consumed and points at scopes, and fixing scopes is the whole remedy (the
// same seed works at once).
func TestAccAccessToken_scopeNotGranted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := f.seed("read")
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{
				Config: f.ephemeralConfig(seed, 1, `scopes = ["reed"]`),
				ExpectError: regexp.MustCompile(`(?s)` + words("Bipsync Scope Not Granted").String() + `.*` +
					words("Bipsync refused the scope reed").String() + `.*` + words("nothing was consumed").String() + `.*` +
					words("Fix scopes").String()),
			},
			{
				PreConfig: func() {
					if !f.server.RefreshTokenLive(seed) {
						t.Fatal("seed: consumed by the refused request; want it untouched")
					}
				},
				Config:            f.ephemeralConfig(seed, 1, `scopes = ["read"]`),
				ConfigStateChecks: []statecheck.StateCheck{f.echoToken0()},
			},
		},
	})
}

func TestAccAccessToken_invalidClientCredentials(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := f.seed()
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
provider "bipsync" {
  base_url      = %q
  client_id     = %q
  client_secret = "wrong-secret"
  token_store {
    path = %q
  }
}
ephemeral "bipsync_access_token" "t" {
  refresh_token = %q
}
`, f.baseURL, testClientID, f.storeDir, seed),
			ExpectError: words("Invalid Bipsync Client Credentials"),
		}},
	})
	if !f.server.RefreshTokenLive(seed) {
		t.Errorf("the seed was consumed by a request with bad client credentials")
	}
}

func TestAccAccessToken_scopeConflictInOneRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := f.seed()
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{{
			Config: f.providerBlock() + fmt.Sprintf(`
ephemeral "bipsync_access_token" "wide" {
  refresh_token = %[1]q
  scopes        = ["read", "write"]
}
ephemeral "bipsync_access_token" "narrow" {
  refresh_token = %[1]q
  scopes        = ["read"]
}
`, seed),
			ExpectError: words("Conflicting Bipsync Scope Requests"),
		}},
	})
}

func TestAccAccessToken_fileStoreHoldsNoSecretAndGuardsItsRecords(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := f.seed()
	var original, corrupted []byte
	recPath := filepath.Join(f.storeDir, string(tokenstore.KeyFor(f.baseURL+bipsync.TokenPath, testClientID, seed))+".rec")
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{Config: f.ephemeralConfig(seed, 1)},
			{
				PreConfig: func() {
					secrets := append(f.server.SeenSecrets(), testClientSecret)
					var scanned int
					err := filepath.WalkDir(f.storeDir, func(p string, d os.DirEntry, err error) error {
						if err != nil || d.IsDir() {
							return err
						}
						b, err := os.ReadFile(p)
						if err != nil {
							return err
						}
						scanned += len(b)
						for _, s := range secrets {
							if bytes.Contains(b, []byte(s)) {
								t.Errorf("%s holds a token or secret in clear", d.Name())
							}
						}
						return nil
					})
					if err != nil || scanned == 0 {
						t.Fatalf("scanning the store: scanned %d bytes, err %v; want a record", scanned, err)
					}
					// Damage the record: the provider must refuse it, exchange nothing and leave it alone.
					b, err := os.ReadFile(recPath)
					if err != nil {
						t.Fatal(err)
					}
					original = bytes.Clone(b)
					b[len(b)/2] ^= 0x01
					corrupted = b
					if err := os.WriteFile(recPath, b, 0o600); err != nil {
						t.Fatal(err)
					}
					f.ledger.Reset()
				},
				Config:      f.ephemeralConfig(seed, 1),
				ExpectError: words("Unreadable Bipsync Token Store Record"),
			},
			{
				// The record is untouched after the failed run; restored from backup, the chain goes on.
				PreConfig: func() {
					f.ledger.Expect(0, "run over a damaged record")()
					if b, _ := os.ReadFile(recPath); !bytes.Equal(b, corrupted) {
						t.Errorf("the damaged record was overwritten")
					}
					if err := os.WriteFile(recPath, original, 0o600); err != nil {
						t.Fatal(err)
					}
				},
				Config:            f.ephemeralConfig(seed, 1),
				ConfigStateChecks: []statecheck.StateCheck{f.echoToken0()},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(0, "run over the restored record (its token is still valid)")()
			return nil
		},
	})
}

func TestAccAccessToken_commandStore(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := f.seed()
	records := t.TempDir()
	config := commandStoreConfig(f, records, seed)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{Config: config, ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.t")}},
			{
				PreConfig: func() {
					f.ledger.Expect(1, "first run through the command store")()
					entries, _ := os.ReadDir(records)
					if len(entries) != 1 {
						t.Errorf("records kept by the helper: got %d; want 1", len(entries))
					}
				},
				Config:            config,
				ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.t")},
			},
		},
		CheckDestroy: func(*terraform.State) error { f.ledger.Expect(0, "second run through the command store")(); return nil },
	})
}

func TestAccAccessToken_clientCredentials(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	config := f.providerBlock() + `
ephemeral "bipsync_access_token" "team" {
  grant_type = "client_credentials"
  scopes     = ["read", "team_abc"]
}
provider "echo" {
  data = ephemeral.bipsync_access_token.team
}
resource "echo" "t" {}

data "bipsync_access_token" "team" {
  grant_type = "client_credentials"
  scopes     = ["team_abc", "read"]
}
`
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					f.echoToken("echo.t"),
					statecheck.ExpectKnownValue("data.bipsync_access_token.team", tfjsonpath.New("access_token"), acctest.LiveAccessToken(f.server)),
					statecheck.ExpectKnownValue("data.bipsync_access_token.team", tfjsonpath.New("refresh_token_expires_at"), knownvalue.Null()),
					statecheck.ExpectSensitiveValue("data.bipsync_access_token.team", tfjsonpath.New("access_token")),
				},
			},
			{PreConfig: func() { f.clock.Advance(10 * time.Minute) }, Config: config},
		},
		// The ephemeral resource and the data source ask for the same scopes: one token serves every walk of both steps.
		CheckDestroy: func(*terraform.State) error {
			if got := f.server.Stats().ClientCredentials; got != 1 {
				t.Errorf("client-credentials grants over two steps: got %d; want 1", got)
			}
			return nil
		},
	})
}

func TestAccAccessToken_dataSourceSharesTheChain(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := f.seed()
	config := f.providerBlock() + fmt.Sprintf(`
data "bipsync_access_token" "t" {
  refresh_token = %q
  min_validity  = "10m"
}
ephemeral "bipsync_access_token" "t" {
  refresh_token = %q
  min_validity  = "10m"
}
provider "echo" {
  data = ephemeral.bipsync_access_token.t
}
resource "echo" "t" {}
`, seed, seed)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{{
			Config: config,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.bipsync_access_token.t", tfjsonpath.New("access_token"), acctest.LiveAccessToken(f.server)),
				statecheck.ExpectSensitiveValue("data.bipsync_access_token.t", tfjsonpath.New("access_token")),
				statecheck.ExpectKnownValue("data.bipsync_access_token.t", tfjsonpath.New("refresh_token_expires_at"),
					knownvalue.StringExact(f.clock.Now().Add(30*24*time.Hour).UTC().Format(time.RFC3339))),
				f.echoToken("echo.t"),
			},
		}},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(1, "data source and ephemeral resource on one chain")()
			return nil
		},
	})
}
