package provider

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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

// engineSkipReason is set by TestMain when no engine is available for acceptance tests.
var engineSkipReason string

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
	cliConfig := filepath.Join(dir, "cli.tfrc")
	if err := os.WriteFile(cliConfig, nil, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Setenv("TF_CLI_CONFIG_FILE", cliConfig)
	os.Setenv("CHECKPOINT_DISABLE", "1")
	configureEngine()                                        // before XDG_CACHE_HOME moves: the engine cache is the user's
	os.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache")) // the file store's default directory lives here in tests
	for _, v := range []string{envClient, envBaseURL, envClientID, envClientSecret, envRequestTimeout, envRequestEncoding,
		envRefreshTokenLifetime, envTokenStore, envTokenStorePath, envTokenStoreCommand, envRefreshToken, "CI"} {
		if val, ok := os.LookupEnv(v); ok {
			userEnv[v] = val
		}
		os.Unsetenv(v)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// configureEngine picks the engine for acceptance tests: TF_ACC_TERRAFORM_PATH, else the OpenTofu that `make test`
// caches. With OpenTofu the testing framework needs the provider namespace and host OpenTofu resolves.
func configureEngine() {
	engine := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if engine == "" {
		cache := os.Getenv("BIPSYNC_CACHE_DIR")
		if cache == "" {
			if d, err := os.UserCacheDir(); err == nil {
				cache = filepath.Join(d, "terraform-provider-bipsync")
			}
		}
		if p := filepath.Join(cache, "tofu-1.12.6", "tofu"); cache != "" && isExecutable(p) {
			engine = p
			os.Setenv("TF_ACC_TERRAFORM_PATH", p)
		}
	}
	if engine == "" {
		engineSkipReason = "no engine: set TF_ACC_TERRAFORM_PATH, or run `make test`, which builds OpenTofu"
		fmt.Println("SKIP provider acceptance tests: " + engineSkipReason)
		return
	}
	out, _ := exec.Command(engine, "version").Output()
	if strings.Contains(string(out), "OpenTofu") {
		setDefaultEnv("TF_ACC_PROVIDER_NAMESPACE", "hashicorp")
		setDefaultEnv("TF_ACC_PROVIDER_HOST", "registry.opentofu.org")
	}
	fmt.Printf("provider acceptance tests run with %s", out)
}

func setDefaultEnv(k, v string) {
	if os.Getenv(k) == "" {
		os.Setenv(k, v)
	}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// accPreCheck skips an acceptance test when no engine is configured, saying why.
func accPreCheck(t *testing.T) {
	t.Helper()
	if engineSkipReason != "" {
		t.Skip(engineSkipReason)
	}
}
