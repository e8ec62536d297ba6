package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/bipsync/terraform-provider-bipsync/internal/acctest"
)

// Secret hygiene: every flow of both consumers (create, reuse, rotation, a reauthorization error, a client-credentials
// token) runs with TRACE logging, and everything the runs leave behind is searched for every token and secret the fake
// issued or accepted. The only place a token may appear is the grant's access_token and refresh_token in state (and
// in plan JSON, which shows state), marked sensitive.
//
// Two tests share the work. TestAccSecretHygiene runs through terraform-plugin-testing with TF_ACC_LOG_PATH, the one
// way to get the in-process provider's own tflog output (through the framework's test sink) at TRACE, next to the
// engine's; it sets a process-wide variable, so it is not parallel. TestAccSecretHygiene_engineOutput drives the CLI
// itself, to scan what a user sees: human plan and show output, warnings and errors, `show -json` of plans and state,
// and the engine's TF_LOG=trace log.

// hygieneConfig passes every secret through an ephemeral, sensitive variable: a literal in HCL would be printed by the
// engine's own source snippets, and a non-ephemeral variable's value is kept in the plan.
func hygieneConfig(f *fixture, withUserToken bool) string {
	user := ""
	if withUserToken {
		user = `
ephemeral "bipsync_access_token" "user" {
  refresh_token = var.seed_user
}
`
	}
	return fmt.Sprintf(`
variable "client_secret" {
  type      = string
  sensitive = true
  ephemeral = true
}

variable "seed_user" {
  type      = string
  sensitive = true
  ephemeral = true
}

variable "seed_grant" {
  type      = string
  sensitive = true
  ephemeral = true
}

provider "bipsync" {
  base_url      = %q
  client_id     = %q
  client_secret = var.client_secret
  token_store {
    path = %q
  }
}
%s
ephemeral "bipsync_access_token" "team" {
  grant_type = "client_credentials"
  scopes     = ["read", "team_abc"]
}

resource "bipsync_refresh_grant" "g" {
  refresh_token_wo         = var.seed_grant
  refresh_token_wo_version = 1
}
`, f.baseURL, testClientID, f.storeDir, user)
}

// recordPlan is a plan check that adds the plan's JSON to the corpus.
type recordPlan struct {
	t      *testing.T
	corpus *hygieneCorpus
	name   string
	tokens *int
}

func (r recordPlan) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	b, err := json.Marshal(req.Plan)
	if err != nil {
		resp.Error = err
		return
	}
	*r.tokens += r.corpus.addShowJSON(r.t, "plan JSON: "+r.name, b)
}

// recordState is a state check that adds the state's JSON to the corpus.
type recordState struct {
	t      *testing.T
	corpus *hygieneCorpus
	name   string
	tokens *int
}

func (r recordState) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	b, err := json.Marshal(req.State)
	if err != nil {
		resp.Error = err
		return
	}
	*r.tokens += r.corpus.addShowJSON(r.t, "state JSON: "+r.name, b)
}

// TestAccSecretHygiene runs every flow with the engine and the provider logging at TRACE, then searches the log, the
// plan and state JSON of every step, every error, the token store and the fake's request log for every secret.
func TestAccSecretHygiene(t *testing.T) {
	f := newFixture(t)
	logFile := filepath.Join(t.TempDir(), "acc.log")
	// The engine logs at TRACE into this file, and the provider's tflog output joins it through the test sink.
	t.Setenv("TF_ACC_LOG_PATH", logFile)
	t.Setenv("TF_ACC_LOG", "TRACE") // the engine's level; terraform-exec leaves it off otherwise
	t.Setenv("TF_LOG_PROVIDER", "TRACE")
	t.Setenv("TF_LOG_SDK", "TRACE")
	t.Setenv("TF_LOG_SDK_FRAMEWORK", "TRACE")
	t.Setenv("TF_LOG_SDK_PROTO", "TRACE")

	corpus := newHygieneCorpus()
	seedUser, seedGrant := f.seed(), f.seed()
	vars := config.Variables{
		"client_secret": config.StringVariable(testClientSecret),
		"seed_user":     config.StringVariable(seedUser),
		"seed_grant":    config.StringVariable(seedGrant),
	}
	full, grantOnly := hygieneConfig(f, true), hygieneConfig(f, false)

	var grantHead string
	tokens := 0
	// Steps that must fail record their error here instead of in ExpectError, so that its text is scanned too.
	var errMu sync.Mutex
	var wantErr *regexp.Regexp
	var gotErr string
	expectErr := func(re *regexp.Regexp) func() {
		return func() {
			errMu.Lock()
			defer errMu.Unlock()
			wantErr, gotErr = re, ""
		}
	}
	checkErr := func(step string) {
		errMu.Lock()
		defer errMu.Unlock()
		if wantErr != nil && gotErr == "" {
			t.Errorf("%s: got no error; want %s", step, wantErr)
		}
		wantErr = nil
	}
	step := func(name string, cfg string, pre func(), failing bool) resource.TestStep {
		s := resource.TestStep{
			PreConfig:       pre,
			Config:          cfg,
			ConfigVariables: vars,
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply:             []plancheck.PlanCheck{recordPlan{t, corpus, name + " (before apply)", &tokens}},
				PostApplyPostRefresh: []plancheck.PlanCheck{recordPlan{t, corpus, name + " (after apply)", &tokens}},
			},
		}
		if !failing {
			s.ConfigStateChecks = []statecheck.StateCheck{
				recordState{t, corpus, name, &tokens},
				statecheck.ExpectKnownValue(grantAddr, tfjsonpath.New("refresh_token"), acctest.Capture(&grantHead)),
				statecheck.ExpectSensitiveValue(grantAddr, tfjsonpath.New("access_token")),
				statecheck.ExpectSensitiveValue(grantAddr, tfjsonpath.New("refresh_token")),
			}
		}
		return s
	}
	then := func(fns ...func()) func() {
		return func() {
			for _, fn := range fns {
				fn()
			}
		}
	}

	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		ErrorCheck: func(err error) error {
			errMu.Lock()
			defer errMu.Unlock()
			corpus.add("diagnostics: error output", []byte(err.Error()))
			if wantErr != nil && wantErr.MatchString(err.Error()) {
				gotErr = err.Error()
				return nil
			}
			return err
		},
		Steps: []resource.TestStep{
			// Create: the user chain and the grant each exchange once; the team token is a client-credentials grant.
			step("create", full, nil, false),
			// Reuse: nothing is exchanged.
			step("reuse", full, f.ledger.Expect(2, "create"), false),
			// Rotation: 50 minutes on, both chains are exchanged again.
			step("rotation", full, then(f.ledger.Expect(0, "reuse"), func() { f.clock.Advance(50 * time.Minute) }), false),
			// The user chain revoked behind the provider's back: the plan fails with the reauthorization diagnostic.
			step("user reauthorization", full, then(
				f.ledger.Expect(2, "rotation"),
				func() { f.server.RevokeChain(f.head(seedUser)); f.clock.Advance(50 * time.Minute) },
				expectErr(summaryWith(summaryReauth, "Hint: Token has been revoked")),
			), true),
			// The grant's chain revoked: its rotation fails at apply with the reauthorization diagnostic.
			step("grant reauthorization", grantOnly, then(
				func() { checkErr("user reauthorization") },
				f.ledger.Expect(0, "user reauthorization"),
				func() { f.server.RevokeChain(grantHead) },
				expectErr(summaryWith(summaryReauth, "Hint: Token has been revoked")),
			), true),
		},
		CheckDestroy: func(*terraform.State) error {
			checkErr("grant reauthorization")
			f.ledger.Expect(0, "grant reauthorization")()
			return nil
		},
	})
	if got := f.server.Stats().ClientCredentials; got < 2 {
		t.Errorf("client-credentials grants: got %d; want at least 2 (one per token lifetime)", got)
	}
	if tokens == 0 {
		t.Error("no grant token value was found in plan or state JSON; the scan of the allowed attributes saw nothing")
	}

	logBytes, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatalf("reading the TRACE log: %v", err)
	}
	// The capture is only worth something if both sides really logged into it, at TRACE.
	for _, want := range []string{"[TRACE]", "GRPCProvider.v6", "configured bipsync provider", "bipsync access token ready",
		"rotated bipsync refresh chain", "Calling provider defined Resource Update"} {
		if !bytes.Contains(logBytes, []byte(want)) {
			t.Errorf("TRACE log (%d bytes): no %q; the provider's or the engine's log was not captured", len(logBytes), want)
		}
	}
	corpus.add("TRACE log: engine and provider", logBytes)
	if n := corpus.addStoreFiles(t, f.storeDir); n == 0 {
		t.Error("token store: no files; want the user chain's and the team token's records")
	}
	corpus.add("request log: fake server", []byte(fmt.Sprintf("%+v", f.server.Requests())))

	secrets := append(f.server.SeenSecrets(), testClientSecret)
	scanned := corpus.check(t, secrets)
	t.Logf("secret hygiene (plugin-testing, TRACE): %d secrets searched in %d bytes (%s); %d grant token values "+
		"in plan and state JSON were checked sensitive and set aside", len(secrets), scanned, corpus.summary(), tokens)
}

// TestAccSecretHygiene_engineOutput drives the CLI with TF_LOG=trace through create, reuse, rotation and both
// reauthorization errors, and searches every byte it printed or wrote: human and JSON plans, `show` of state, errors
// and warnings, the engine's log, the raw state file, the token store and the fake's request log.
func TestAccSecretHygiene_engineOutput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	corpus := newHygieneCorpus()
	seedUser, seedGrant := f.seed(), f.seed()
	engineLog := filepath.Join(t.TempDir(), "engine.log")
	w := f.workspace("TF_VAR_client_secret="+testClientSecret, "TF_VAR_seed_user="+seedUser, "TF_VAR_seed_grant="+seedGrant,
		"TF_LOG=trace", "TF_LOG_PATH="+engineLog)
	w.writeConfig(hygieneConfig(f, true))

	tokens := 0
	var grantHead string
	// run runs a command and adds what it printed to the corpus; `show -json` output is added by showJSON, with the
	// grant's tokens set aside.
	run := func(wantErr *regexp.Regexp, args ...string) string {
		t.Helper()
		stdout, stderr, err := w.run(args...)
		name := strings.Join(args, " ")
		if len(args) > 1 && args[0] == "show" && args[1] == "-json" {
			corpus.add("CLI output: "+name+" (stderr)", []byte(stderr))
		} else {
			corpus.add("CLI output: "+name, []byte(stdout+"\n"+stderr))
		}
		switch {
		case wantErr == nil && err != nil:
			t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", name, err, stdout, stderr)
		case wantErr != nil && (err == nil || !wantErr.MatchString(stderr)):
			t.Fatalf("%s: got error %v, stderr:\n%s\nwant an error matching %s", name, err, stderr, wantErr)
		}
		return stdout
	}
	showJSON := func(name string, args ...string) {
		t.Helper()
		out := run(nil, append([]string{"show", "-json"}, args...)...)
		tokens += corpus.addShowJSON(t, "show -json: "+name, []byte(out))
		if len(args) == 0 {
			err := acctest.CheckShowJSON([]byte(out),
				statecheck.ExpectKnownValue(grantAddr, tfjsonpath.New("refresh_token"), acctest.Capture(&grantHead)))
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	sensitiveShown := func(name, out string) {
		t.Helper()
		if !strings.Contains(out, "(sensitive value)") {
			t.Errorf("%s: the grant's tokens are not shown as (sensitive value):\n%s", name, out)
		}
	}

	run(nil, "init")
	// Create.
	run(nil, "plan", "-out=create.tfplan")
	run(nil, "show", "create.tfplan")
	showJSON("create plan", "create.tfplan")
	run(nil, "apply", "create.tfplan")
	f.ledger.Expect(2, "create")()
	sensitiveShown("show after create", run(nil, "show"))
	showJSON("state after create")
	// Reuse.
	if out := run(nil, "plan"); !strings.Contains(out, "No changes") {
		t.Errorf("plan within the tokens' life: got\n%s\nwant no changes", out)
	}
	f.ledger.Expect(0, "reuse")()
	// Rotation.
	f.clock.Advance(50 * time.Minute)
	sensitiveShown("rotation plan", run(nil, "plan", "-out=rotate.tfplan"))
	showJSON("rotation plan", "rotate.tfplan")
	run(nil, "apply", "rotate.tfplan")
	f.ledger.Expect(2, "rotation")()
	showJSON("state after rotation")
	// Reauthorization errors: the user chain at plan, the grant's chain at apply.
	f.server.RevokeChain(f.head(seedUser))
	f.clock.Advance(50 * time.Minute)
	run(summaryWith(summaryReauth, "Hint: Token has been revoked"), "plan")
	w.writeConfig(hygieneConfig(f, false))
	if grantHead == "" {
		t.Fatal("no grant head in state")
	}
	f.server.RevokeChain(grantHead)
	run(summaryWith(summaryReauth, "Hint: Token has been revoked"), "apply", "-auto-approve")
	f.ledger.Expect(0, "reauthorization errors")()

	raw, n, err := dropStateFileGrantTokens(w.rawState())
	if err != nil {
		t.Error(err)
	}
	if n == 0 {
		t.Error("state file: no grant token values; want the chain kept in state")
	}
	corpus.add("state file: terraform.tfstate", raw)
	run(nil, "destroy", "-auto-approve")

	logBytes, err := os.ReadFile(engineLog)
	if err != nil {
		t.Fatalf("reading the engine log: %v", err)
	}
	if !bytes.Contains(logBytes, []byte("[TRACE]")) || !bytes.Contains(logBytes, []byte("GRPCProvider.v6")) {
		t.Errorf("engine log (%d bytes): no TRACE entries of provider calls", len(logBytes))
	}
	corpus.add("engine log: TF_LOG=trace", logBytes)
	corpus.addStoreFiles(t, f.storeDir)
	corpus.add("request log: fake server", []byte(fmt.Sprintf("%+v", f.server.Requests())))

	secrets := append(f.server.SeenSecrets(), testClientSecret)
	scanned := corpus.check(t, secrets)
	t.Logf("secret hygiene (engine CLI, TF_LOG=trace): %d secrets searched in %d bytes (%s); %d grant token values in "+
		"show -json output and %d in the state file were checked sensitive and set aside",
		len(secrets), scanned, corpus.summary(), tokens, n)
}
