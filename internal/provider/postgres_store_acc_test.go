package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/jackc/pgx/v5"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/settings"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
)

// postgresConfig is a provider whose token store is the postgres backend (storeBody is the token_store block's
// body), and an ephemeral token on seed, echoed.
func (f *fixture) postgresConfig(storeBody, seed string) string {
	return f.postgresTokenConfig(storeBody, seed) + `
provider "echo" {
  data = ephemeral.bipsync_access_token.t
}
resource "echo" "t" {}
`
}

// postgresTokenConfig is postgresConfig without the echo: the ephemeral token is opened in every plan and apply all
// the same.
func (f *fixture) postgresTokenConfig(storeBody, seed string) string {
	return fmt.Sprintf(`
provider "bipsync" {
  base_url      = %q
  client_id     = %q
  client_secret = %q
  token_store {
%s
  }
}

ephemeral "bipsync_access_token" "t" {
  refresh_token = %q
}
`, f.baseURL, testClientID, testClientSecret, storeBody, seed)
}

// postgresRows returns every row of the store's table as text, the way a dump of it would show it.
func postgresRows(t *testing.T, connStr, schema string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connStr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT t::text FROM "+pgx.Identifier{schema, tokenstore.PostgresTable}.Sanitize()+" t")
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkPostgresChain checks that the store holds one row, for seed's chain, and that the row holds none of the
// chain's tokens in clear.
func (f *fixture) checkPostgresChain(connStr, schema, seed string) {
	t := f.t
	t.Helper()
	st, err := tokenstore.NewPostgres(tokenstore.PostgresConfig{ConnStr: connStr, SchemaName: schema})
	if err != nil {
		t.Fatal(err)
	}
	key := tokenstore.KeyFor(f.baseURL+bipsync.TokenPath, testClientID, seed)
	rec, err := st.Load(context.Background(), key, seed)
	if err != nil || rec == nil || rec.RefreshToken == "" || rec.RefreshToken == seed {
		t.Fatalf("the chain in the postgres store: got %v, %v; want its rotated record", rec, err)
	}
	rows := postgresRows(t, connStr, schema)
	if len(rows) != 1 || !strings.Contains(rows[0], string(key)) {
		t.Fatalf("got rows %q; want one, for the chain", rows)
	}
	for what, secret := range map[string]string{"seed": seed, "refresh token": rec.RefreshToken, "access token": rec.AccessToken,
		"client secret": testClientSecret} {
		if strings.Contains(rows[0], secret) {
			t.Errorf("the table holds the %s in clear", what)
		}
	}
}

// A chain kept in PostgreSQL: one exchange for the first run, none for the second, one row, no token in clear.
func TestAccAccessToken_postgresStore(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	connStr := pgtest.Start(t)
	seed := f.seed()
	config := f.postgresConfig(fmt.Sprintf("    backend  = \"postgres\"\n    conn_str = %q", connStr), seed)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{Config: config, ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.t")}},
			{
				PreConfig: func() {
					f.ledger.Expect(1, "first run through the postgres store")()
					f.checkPostgresChain(connStr, tokenstore.DefaultPostgresSchema, seed)
				},
				Config:            config,
				ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.t")},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(0, "second run through the postgres store")()
			return nil
		},
	})
}

// The store configured by environment alone: BIPSYNC_TOKEN_STORE=postgres, the schema from
// BIPSYNC_TOKEN_STORE_SCHEMA_NAME and the connection from the PG* variables, as a CI job would set them. Environment
// variables are process-wide, so this test is not parallel.
func TestAccAccessToken_postgresStoreFromEnvironment(t *testing.T) {
	f := newFixture(t)
	connStr := pgtest.Start(t)
	srv := pgtest.Shared(t)
	t.Setenv(settings.EnvTokenStore, "postgres")
	t.Setenv(settings.EnvTokenStoreSchemaName, "ci_chains")
	for k, v := range map[string]string{"PGHOST": "127.0.0.1", "PGPORT": strconv.Itoa(srv.Port()), "PGUSER": pgtest.Superuser,
		"PGPASSWORD": srv.Password(), "PGDATABASE": pgtest.DatabaseName(connStr), "PGSSLMODE": "disable"} {
		t.Setenv(k, v)
	}
	seed := f.seed()
	config := fmt.Sprintf(`
provider "bipsync" {
  base_url      = %q
  client_id     = %q
  client_secret = %q
}
ephemeral "bipsync_access_token" "t" {
  refresh_token = %q
}
provider "echo" {
  data = ephemeral.bipsync_access_token.t
}
resource "echo" "t" {}
`, f.baseURL, testClientID, testClientSecret, seed)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps:                    []resource.TestStep{{Config: config, ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.t")}}},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(1, "a run through the postgres store configured by environment")()
			f.checkPostgresChain(connStr, "ci_chains", seed)
			return nil
		},
	})
}

// Mistakes in the postgres settings are reported at configuration, naming the setting, and reach no endpoint.
func TestAccProvider_postgresStoreConfiguration(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := f.seed()
	runConfigCases(t, f, []configCase{
		{"conn_str without the postgres backend", f.postgresConfig(`    conn_str = "host=db.internal"`, seed), nil,
			words("Bipsync Token Store Setting Without Effect")},
		{"schema_name without the postgres backend", f.postgresConfig("    backend     = \"file\"\n    schema_name = \"chains\"", seed), nil,
			words("Bipsync Token Store Setting Without Effect")},
		{"bad conn_str", f.postgresConfig("    backend  = \"postgres\"\n    conn_str = \"host=db port=notaport password=Pa55-word-x\"", seed), nil,
			words("Invalid Bipsync Token Store Setting")},
		{"reserved schema name", f.postgresConfig("    backend     = \"postgres\"\n    schema_name = \"pg_chains\"", seed), nil,
			words("must be a PostgreSQL schema name")},
		{"unknown conn_str", f.postgresConfig("    backend  = \"postgres\"\n    conn_str = terraform_data.later.output", seed) +
			`resource "terraform_data" "later" { input = "host=db" }`, nil, words("Unknown Bipsync Token Store Setting")},
	})
}

// The same from the environment, which schema validators never see. Not parallel: environment variables.
func TestAccProvider_postgresStoreConfigurationFromEnvironment(t *testing.T) {
	f := newFixture(t)
	config := fmt.Sprintf(`
provider "bipsync" {
  base_url  = %q
  client_id = %q
}
ephemeral "bipsync_access_token" "t" {
  refresh_token = %q
}
`, f.baseURL, testClientID, f.seed())
	runConfigCases(t, f, []configCase{
		{"bad conn_str", config, map[string]string{settings.EnvTokenStore: "postgres", settings.EnvTokenStoreConnStr: "postgres://u:Pa55@db:x/tf"},
			words("Invalid Bipsync Token Store Setting")},
		{"bad PG variable", config, map[string]string{settings.EnvTokenStore: "postgres", "PGPORT": "fivefour"},
			regexp.MustCompile(`PG\*\s+environment\s+variables`)},
		{"bad schema name", config, map[string]string{settings.EnvTokenStore: "postgres", settings.EnvTokenStoreSchemaName: strings.Repeat("s", 64)},
			words("Invalid Bipsync Token Store Setting")},
	})
}

// No log of a run holds the database password: the engine's and the provider's own, at TRACE, through a run that
// works and one whose password is wrong. TF_ACC_LOG_PATH is process-wide, so this test is not parallel.
func TestAccAccessToken_postgresStoreLogsNoPassword(t *testing.T) {
	f := newFixture(t)
	connStr := pgtest.Start(t)
	right := pgtest.Shared(t).Password()
	const wrong = "wrong-Pa55-9021"
	logFile := filepath.Join(t.TempDir(), "acc.log")
	t.Setenv("TF_ACC_LOG_PATH", logFile)
	t.Setenv("TF_ACC_LOG", "TRACE")
	t.Setenv("TF_LOG_PROVIDER", "TRACE")
	t.Setenv("TF_LOG_SDK", "TRACE")
	t.Setenv("TF_LOG_SDK_FRAMEWORK", "TRACE")
	cfg := `
variable "conn_str" {
  type      = string
  sensitive = true
}
` + f.postgresConfig("    backend  = \"postgres\"\n    conn_str = var.conn_str", f.seed())
	var errText string
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		// The failing step's error is taken here rather than by ExpectError, so that its text can be scanned too.
		ErrorCheck: func(err error) error {
			if errText != "" || !summaryWith(summaryStoreError, "the server refused the login").MatchString(err.Error()) {
				return err
			}
			errText = err.Error()
			return nil
		},
		// The failing run first: the destroy after the last step runs with its configuration.
		Steps: []resource.TestStep{
			{
				Config:          cfg,
				ConfigVariables: config.Variables{"conn_str": config.StringVariable(strings.Replace(connStr, right, wrong, 1))},
			},
			{
				Config:            cfg,
				ConfigVariables:   config.Variables{"conn_str": config.StringVariable(connStr)},
				ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.t")},
			},
		},
	})
	if errText == "" {
		t.Fatal("the run with the wrong password did not fail with Bipsync Token Store Error")
	}
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "configured bipsync provider") {
		t.Fatal("the log holds no line of the provider's own; want its TRACE output scanned too")
	}
	for what, text := range map[string]string{"the log": string(log), "the error": errText} {
		for _, pw := range []string{right, wrong} {
			if strings.Contains(text, pw) {
				t.Errorf("%s holds a password", what)
			}
		}
	}
}
