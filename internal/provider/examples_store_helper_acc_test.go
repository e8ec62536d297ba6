package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/bipsync/terraform-provider-bipsync/internal/acctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// hclList writes a list of strings as an HCL tuple (JSON's syntax for it is HCL's too).
func hclList(items []string) string {
	b, err := json.Marshal(items)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// helperEngineCase is a helper run end to end through the engine.
type helperEngineCase struct {
	kind     string
	protocol string   // token_store.command_protocol
	options  []string // the helper's own options
	entry    func(h *storeHelper, key tokenstore.Key) (string, bool)
}

// runHelperThroughEngine runs a helper as the provider's command store, end to end: the first plan and apply exchange
// the chain once and save it through the helper, a second run reuses the stored token, and the entry holds only the
// encrypted record, of the chain's latest revision. It returns the stand-in's call log.
func runHelperThroughEngine(t *testing.T, c helperEngineCase) []string {
	t.Helper()
	f := newFixture(t)
	h := newStoreHelper(t, c.kind)
	seed := f.seed()
	config := fmt.Sprintf(`
provider "bipsync" {
  base_url      = %q
  client_id     = %q
  client_secret = %q
  token_store {
    backend          = "command"
    command          = %s
    command_protocol = %q
  }
}

ephemeral "bipsync_access_token" "api" {
  refresh_token = %q
}

provider "echo" {
  data = ephemeral.bipsync_access_token.api
}

resource "echo" "token" {}
`, f.baseURL, testClientID, testClientSecret, hclList(h.argv(nil, c.options...)), c.protocol, seed)

	var accessToken string
	captureToken := statecheck.ExpectKnownValue("echo.token", tfjsonpath.New("data").AtMapKey("access_token"),
		acctest.Capture(&accessToken))
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		PreCheck:                 f.ledger.Reset,
		Steps: []resource.TestStep{
			{Config: config, ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.token"), captureToken}},
			{
				PreConfig:         f.ledger.Expect(1, "first plan and apply, chain kept by the "+c.kind+" helper"),
				Config:            config,
				ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.token")},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(0, "second run and destroy, token reused from the "+c.kind+" helper")()
			return nil
		},
	})

	key := tokenstore.KeyFor(f.baseURL+bipsync.TokenPath, testClientID, seed)
	record, ok := c.entry(h, key)
	if !ok {
		t.Fatalf("the %s stand-in holds no entry for the chain under the configured names", c.kind)
	}
	if !strings.HasPrefix(record, "bts2.") {
		t.Errorf("entry: got %.12q…; want an encrypted record (bts2.…)", record)
	}
	for name, secret := range map[string]string{"the seed": seed, "the access token": accessToken} {
		if secret == "" || strings.Contains(record, secret) {
			t.Errorf("entry holds %s in clear; want only the encrypted record", name)
		}
	}
	if refreshTokenShape.MatchString(record) {
		t.Errorf("entry holds a refresh token in clear; want only the encrypted record")
	}
	st, err := tokenstore.NewCommand(tokenstore.CommandConfig{Argv: h.argv(nil, c.options...), LockDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.Load(context.Background(), key, seed)
	if err != nil || rec == nil {
		t.Fatalf("loading the chain through the helper: got %v, %v; want its record", rec, err)
	}
	if rec.Generation != 1 || rec.RefreshToken == seed {
		t.Errorf("the stored record: got generation %d; want the one exchange's record (generation 1)", rec.Generation)
	}
	return h.cli.calls()
}

// TestAccExamples_storeHelperAWS runs the guide's AWS Secrets Manager helper as the provider's command store, at both
// protocol levels, with a prefix of its own.
func TestAccExamples_storeHelperAWS(t *testing.T) {
	t.Parallel()
	entry := func(h *storeHelper, key tokenstore.Key) (string, bool) {
		v, ok, err := fakeAWSCurrent(h.cli.dir, "ci/bipsync/"+string(key))
		if err != nil {
			t.Fatal(err)
		}
		return v, ok
	}
	for _, protocol := range []string{"1", "2"} {
		t.Run("protocol "+protocol, func(t *testing.T) {
			t.Parallel()
			calls := runHelperThroughEngine(t, helperEngineCase{kind: "aws", protocol: protocol,
				options: []string{"--prefix=ci/bipsync/"}, entry: entry})
			// One entry for the chain's record; at protocol 2 one more for its claim (runners claim a head there before
			// exchanging it), created by the first claim and replaced by later ones.
			want := 1
			if protocol == "2" {
				want = 2
			}
			if n := strings.Count(strings.Join(calls, "\n"), "create-secret"); n != want {
				t.Errorf("create-secret calls: got %d; want %d\ncalls:\n%s", n, want, strings.Join(calls, "\n"))
			}
			// The provider says what each put replaces at both levels, so the helper's puts after the first are
			// conditional at both: a new version, then AWSCURRENT moved to it.
			if moves := strings.Count(strings.Join(calls, "\n"), "update-secret-version-stage"); moves == 0 {
				t.Errorf("label moves: got none; want the puts after the first to move AWSCURRENT\ncalls:\n%s",
					strings.Join(calls, "\n"))
			}
		})
	}
}

// TestAccExamples_storeHelperVault runs the guide's Vault KV v2 helper as the provider's command store at protocol 2,
// on a mount of its own.
func TestAccExamples_storeHelperVault(t *testing.T) {
	t.Parallel()
	calls := runHelperThroughEngine(t, helperEngineCase{kind: "vault", protocol: "2", options: []string{"--mount=kv"},
		entry: func(h *storeHelper, key tokenstore.Key) (string, bool) {
			v, ok, err := fakeVaultCurrent(h.cli.dir, "kv", "terraform-provider-bipsync/"+string(key))
			if err != nil {
				t.Fatal(err)
			}
			return v, ok
		}})
	if !slices.Contains(calls, "kv put") {
		t.Errorf("calls: got %v; want kv put", calls)
	}
}
