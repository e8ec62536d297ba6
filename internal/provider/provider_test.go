package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bipsync/terraform-provider-bipsync/internal/settings"
	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
)

// How the provider's tests are laid out:
//
//   - <type>_acc_test.go: acceptance tests of one type through terraform-plugin-testing, against an in-process fake
//     Bipsync server. <type>_cli_test.go: tests that drive the engine themselves (engineWorkspace in engine_test.go)
//     for what terraform-plugin-testing cannot reach: a plan saved in one run and applied in another, the CLI's output.
//   - <file>_test.go next to <file>.go: plain unit tests of that file's functions.
//   - Cross-cutting suites: fault_matrix_test.go (every token endpoint fault, rows in fault_cases_test.go),
//     secret_hygiene_test.go (no secret in anything a run leaves behind), examples_test.go and docs_test.go (the
//     examples and the sources of the generated docs), tenant_test.go (a real tenant, only when asked).
//   - Helpers: this file (TestMain, the engine), fixture_test.go (the fake server, clock, token store and exchange
//     ledger every acceptance test starts from, and the configurations built on it), engine_test.go. The checks the
//     tests share live in internal/acctest; state is read only through its checks and terraform-plugin-testing's
//     statecheck, in steps or on `show -json` (engineWorkspace.checkState).

// Test credentials of the fake server's confidential client.
const (
	testClientID     = "cli-conf"
	testClientSecret = "sec-conf-0123456789abcdef"
	testPublicClient = "cli-pub"
)

// userEnv keeps the BIPSYNC_* variables TestMain cleared, for the tests against a real tenant.
var userEnv = map[string]string{}

var (
	// accEngine is the engine the acceptance tests run, identified by TestMain.
	accEngine tfcli.Engine
	// engineSkipReason is set by TestMain when no engine is configured, engineErr when the one configured fails.
	engineSkipReason string
	engineErr        error
	// cliConfig is the empty CLI configuration TestMain gives every engine run.
	cliConfig string
)

// TestMain gives the acceptance tests an engine and a CLI configuration of their own. The environment may point
// TF_CLI_CONFIG_FILE at a file that does not exist, which makes the CLI print a warning that breaks the testing
// framework's version check; and no test may touch the user's token cache.
func TestMain(m *testing.M) {
	if helperMain() {
		return
	}
	dir, err := os.MkdirTemp("", "bipsync-provider-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if cliConfig, err = tfcli.EmptyCLIConfig(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Setenv("TF_CLI_CONFIG_FILE", cliConfig)
	os.Setenv("CHECKPOINT_DISABLE", "1")
	configureEngine(dir)                                     // before XDG_CACHE_HOME moves: the engine cache is the user's
	os.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache")) // the file store's default directory lives here in tests
	for _, v := range []string{settings.EnvClient, settings.EnvBaseURL, settings.EnvClientID, settings.EnvClientSecret,
		settings.EnvRequestTimeout, settings.EnvRequestEncoding, settings.EnvRefreshTokenLifetime, settings.EnvTokenStore,
		settings.EnvTokenStorePath, settings.EnvTokenStoreCommand, settings.EnvTokenStoreConnStr, settings.EnvTokenStoreSchemaName,
		settings.EnvRefreshToken, settings.EnvTokenStoreBucket, settings.EnvTokenStoreKeyPrefix, settings.EnvTokenStoreRegion,
		settings.EnvTokenStoreEndpointS3, settings.EnvTokenStoreUsePathStyle, settings.EnvTokenStoreProfile} {
		if val, ok := os.LookupEnv(v); ok {
			userEnv[v] = val
		}
		os.Unsetenv(v)
	}
	// The postgres store's tests must run on CI (or fail), although CI leaves the environment just below.
	pgtest.RequireIfCI(os.Getenv("CI"))
	// A test run on a CI runner (or HCP Terraform) must not make every file-store test warn about it; the tests of
	// that warning set these variables themselves.
	for _, r := range throwAwayRunners {
		os.Unsetenv(r.Variable)
	}
	// libpq's variables would reach the postgres store's tests: a developer's PGHOST must not decide where they go.
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "PG") {
			os.Unsetenv(name)
		}
	}
	code := pgtest.Run(m) // and remove the PostgreSQL server the postgres store's tests share
	os.RemoveAll(dir)
	os.Exit(code)
}

// configureEngine picks the engine for acceptance tests: TF_ACC_TERRAFORM_PATH, else the OpenTofu that `make test`
// caches (never built here: that takes minutes). With OpenTofu the testing framework needs the provider namespace and
// the host OpenTofu resolves.
func configureEngine(dir string) {
	bin := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if bin == "" {
		if tofu, ok := tfcli.CachedTofu(tfcli.Config{}); ok {
			bin = tofu
			os.Setenv("TF_ACC_TERRAFORM_PATH", bin)
		}
	}
	if bin == "" {
		engineSkipReason = "no engine: set TF_ACC_TERRAFORM_PATH, or run `make test`, which builds OpenTofu"
		fmt.Println("SKIP provider acceptance tests: " + engineSkipReason)
		return
	}
	accEngine, engineErr = tfcli.Identify(context.Background(), tfcli.Config{CacheDir: dir}, bin)
	if engineErr != nil {
		fmt.Println("provider acceptance tests fail: the engine does not run: " + engineErr.Error())
		return
	}
	if accEngine.OpenTofu {
		setDefaultEnv("TF_ACC_PROVIDER_NAMESPACE", "hashicorp")
		setDefaultEnv("TF_ACC_PROVIDER_HOST", accEngine.RegistryHost())
	}
	fmt.Printf("provider acceptance tests run with %s\n", accEngine)
}

func setDefaultEnv(k, v string) {
	if os.Getenv(k) == "" {
		os.Setenv(k, v)
	}
}

// accPreCheck skips an acceptance test when no engine is configured, saying why, and fails it when the engine does
// not run.
func accPreCheck(t *testing.T) {
	t.Helper()
	if engineSkipReason != "" {
		t.Skip(engineSkipReason)
	}
	if engineErr != nil {
		t.Fatalf("the engine does not run: %v", engineErr)
	}
}
