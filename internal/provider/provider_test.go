package provider

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/echoprovider"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

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

// fixture is one acceptance test's world: a fake Bipsync server, a fake clock shared with the provider, and a
// private token store directory.
type fixture struct {
	t        *testing.T
	clock    *bipsynctest.Clock
	server   *bipsynctest.Server
	baseURL  string
	storeDir string
	ledger   exchangeLedger
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	accPreCheck(t)
	clock := bipsynctest.NewClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	srv := bipsynctest.NewServer(bipsynctest.Options{Now: clock.Now})
	srv.AddClient(testClientID, testClientSecret)
	srv.AddPublicClient(testPublicClient)
	url := srv.Start()
	t.Cleanup(srv.Close)
	f := &fixture{t: t, clock: clock, server: srv, baseURL: url, storeDir: t.TempDir()}
	f.ledger = exchangeLedger{t: t, server: srv}
	return f
}

// seed issues a refresh token with consent to scopes, as the authorization code grant would.
func (f *fixture) seed(scopes ...string) string {
	if len(scopes) == 0 {
		scopes = []string{"read", "write"}
	}
	return f.server.IssueRefreshToken(testClientID, scopes)
}

// factories serves the provider in process with the fixture's clock, and the echo provider for ephemeral values.
func (f *fixture) factories() map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"bipsync": providerserver.NewProtocol6WithError(NewWithOptions("test", Options{
			Now:   f.clock.Now,
			Sleep: func(context.Context, time.Duration) error { return nil },
		})()),
		"echo": echoprovider.NewProviderServer(),
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

// liveAccessToken checks that a state value is an access token the fake accepts right now.
func (f *fixture) liveAccessToken() knownvalue.Check {
	return knownvalue.StringFunc(func(v string) error {
		if !f.server.AccessTokenLive(v) {
			return fmt.Errorf("the access token is not live at the fake's protected endpoint")
		}
		return nil
	})
}

// echoToken is a state check that the echoed ephemeral token is live.
func (f *fixture) echoToken(addr string) statecheck.StateCheck {
	return statecheck.ExpectKnownValue(addr, tfjsonpath.New("data").AtMapKey("access_token"), f.liveAccessToken())
}

// exchangeLedger asserts how many refresh exchanges each test step caused, counted by the fake server. A step's
// count includes every plan, apply, refresh and the final destroy walk, so it is checked at the start of the next
// step (PreConfig) and, for the last step, in CheckDestroy.
type exchangeLedger struct {
	t      *testing.T
	server *bipsynctest.Server
	mu     sync.Mutex
	mark   int
}

// expect returns a function asserting that want exchanges happened since the previous call; then it marks.
func (l *exchangeLedger) expect(want int, what string) func() {
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		now := l.server.Stats().RefreshExchanges
		if got := now - l.mark; got != want {
			l.t.Errorf("%s: got %d refresh exchanges; want %d", what, got, want)
		}
		l.mark = now
	}
}

// reset marks the current count without asserting.
func (l *exchangeLedger) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mark = l.server.Stats().RefreshExchanges
}

// words matches a phrase across the CLI's line wrapping.
func words(phrase string) *regexp.Regexp {
	parts := strings.Fields(phrase)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(strings.Join(parts, `\s+`))
}
