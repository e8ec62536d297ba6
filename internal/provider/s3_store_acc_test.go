package provider

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/settings"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/mototest"
)

// The s3 store's tests set the AWS SDK's environment (credentials, region), which the provider, served in this process,
// reads as it would on a runner: they are not parallel.

// s3AccEnv points the AWS SDK at endpoint with moto's dummy credentials, and away from the machine's own AWS files.
func s3AccEnv(t *testing.T, endpoint string) {
	t.Helper()
	for _, kv := range mototest.Env(endpoint) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
}

var s3AccBuckets atomic.Int64

// s3AccBucket creates a bucket of the test's own at endpoint (with the environment s3AccEnv set) and returns its name
// and a client for it.
func s3AccBucket(t *testing.T, endpoint string) (string, *s3.Client) {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint, o.UsePathStyle = aws.String(endpoint), true })
	bucket := fmt.Sprintf("acc-%d-%d", os.Getpid(), s3AccBuckets.Add(1))
	if _, err := client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return bucket, client
}

// s3Objects returns every object of the bucket by key, with its content.
func s3Objects(t *testing.T, client *s3.Client, bucket string) map[string]string {
	t.Helper()
	out := map[string]string{}
	list, err := client.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Contents {
		obj, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[aws.ToString(o.Key)] = string(b)
	}
	return out
}

// s3StoreBody is a token_store block's body for the s3 backend on bucket at endpoint, as a user of an S3-compatible
// server writes it.
func s3StoreBody(bucket, endpoint, prefix string) string {
	return fmt.Sprintf(`    backend        = "s3"
    bucket         = %q
    key_prefix     = %q
    region         = "us-east-1"
    endpoints      = { s3 = %q }
    use_path_style = true`, bucket, prefix, endpoint)
}

// checkS3Chain checks that the bucket holds the chain's record under the key prefix, readable with the seed, and that
// no object holds a token or the client secret in clear.
func (f *fixture) checkS3Chain(client *s3.Client, bucket, endpoint, prefix, seed string) {
	t := f.t
	t.Helper()
	st, err := tokenstore.NewS3(context.Background(), tokenstore.S3Config{Bucket: bucket, KeyPrefix: prefix, Endpoint: endpoint,
		UsePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	key := tokenstore.KeyFor(f.baseURL+bipsync.TokenPath, testClientID, seed)
	rec, err := st.Load(context.Background(), key, seed)
	if err != nil || rec == nil || rec.RefreshToken == "" || rec.RefreshToken == seed {
		t.Fatalf("the chain in the s3 store: got %v, %v; want its rotated record", rec, err)
	}
	objects := s3Objects(t, client, bucket)
	if _, ok := objects[prefix+string(key)]; !ok {
		t.Fatalf("objects %v; want the record at %s", keysOf(objects), prefix+string(key))
	}
	if _, ok := objects[prefix+tokenstore.S3ProbeName]; !ok {
		t.Fatalf("objects %v; want the conditional-write probe at %s", keysOf(objects), prefix+tokenstore.S3ProbeName)
	}
	for name, body := range objects {
		if !strings.HasPrefix(name, prefix) {
			t.Errorf("object %s is outside the key prefix %q", name, prefix)
		}
		for what, secret := range map[string]string{"seed": seed, "refresh token": rec.RefreshToken, "access token": rec.AccessToken,
			"client secret": testClientSecret} {
			if strings.Contains(body, secret) {
				t.Errorf("object %s holds the %s in clear", name, what)
			}
		}
	}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A chain kept in an S3 bucket: one exchange for the first run, none for the second, the record under the key prefix,
// no token in clear.
func TestAccAccessToken_s3Store(t *testing.T) {
	f := newFixture(t)
	endpoint := mototest.Start(t)
	s3AccEnv(t, endpoint)
	t.Setenv("AWS_ENDPOINT_URL", "") // the configuration names the endpoint
	bucket, client := s3AccBucket(t, endpoint)
	seed := f.seed()
	const prefix = "ci/bipsync/"
	config := f.postgresConfig(s3StoreBody(bucket, endpoint, prefix), seed)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		Steps: []resource.TestStep{
			{Config: config, ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.t")}},
			{
				PreConfig: func() {
					f.ledger.Expect(1, "first run through the s3 store")()
					f.checkS3Chain(client, bucket, endpoint, prefix, seed)
				},
				Config:            config,
				ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.t")},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(0, "second run through the s3 store")()
			return nil
		},
	})
}

// The store configured by environment alone, as a CI job sets it: BIPSYNC_TOKEN_STORE=s3, the bucket and prefix from
// BIPSYNC_TOKEN_STORE_*, the endpoint, region and credentials from the AWS SDK's own variables.
func TestAccAccessToken_s3StoreFromEnvironment(t *testing.T) {
	f := newFixture(t)
	endpoint := mototest.Start(t)
	s3AccEnv(t, endpoint)
	bucket, client := s3AccBucket(t, endpoint)
	t.Setenv(settings.EnvTokenStore, "s3")
	t.Setenv(settings.EnvTokenStoreBucket, bucket)
	t.Setenv(settings.EnvTokenStoreUsePathStyle, "true")
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
			f.ledger.Expect(1, "a run through the s3 store configured by environment")()
			f.checkS3Chain(client, bucket, endpoint, tokenstore.DefaultS3KeyPrefix, seed)
			return nil
		},
	})
}

// A bucket that cannot be used fails the run before anything is exchanged, with a diagnostic that names the bucket and
// the object and says what to do, and no output or log of the run holds the AWS secret key.
func TestAccAccessToken_s3StoreFaults(t *testing.T) {
	const secret = "s3cr3t-acc-key-9f8e7d6c5b4a"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()
	for name, tc := range map[string]struct {
		setup func(t *testing.T) (bucket, endpoint string)
		want  *regexp.Regexp
	}{
		"wrong credentials": {func(t *testing.T) (string, string) {
			endpoint := mototest.StartAuth(t, 1)
			s3AccEnv(t, endpoint)
			bucket, _ := s3AccBucket(t, endpoint)
			return bucket, endpoint
		}, words("S3 refused the credentials")},
		"missing bucket": {func(t *testing.T) (string, string) {
			endpoint := mototest.Start(t)
			s3AccEnv(t, endpoint)
			return "no-such-bucket", endpoint
		}, words("the bucket does not exist")},
		"endpoint down": {func(t *testing.T) (string, string) {
			s3AccEnv(t, down)
			t.Setenv("AWS_MAX_ATTEMPTS", "1")
			return "some-bucket", down
		}, words("cannot reach the S3 endpoint")},
		"bucket ignores conditional writes": {func(t *testing.T) (string, string) {
			endpoint := mototest.Start(t)
			s3AccEnv(t, endpoint)
			bucket, _ := s3AccBucket(t, endpoint)
			target, _ := url.Parse(endpoint)
			rp := httputil.NewSingleHostReverseProxy(target)
			proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Header.Del("If-None-Match")
				r.Header.Del("If-Match")
				rp.ServeHTTP(w, r)
			}))
			t.Cleanup(proxy.Close)
			return bucket, proxy.URL
		}, regexp.MustCompile(words("ignored a conditional write").String() + `[\s\S]*` +
			words("the s3 token store needs S3 conditional writes (If-None-Match / If-Match)").String())},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			bucket, endpoint := tc.setup(t)
			t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
			engineLog := filepath.Join(t.TempDir(), "engine.log")
			w := f.workspace("TF_LOG=trace", "TF_LOG_PATH="+engineLog)
			w.writeConfig(f.postgresTokenConfig(s3StoreBody(bucket, endpoint, tokenstore.DefaultS3KeyPrefix), f.seed()))
			w.mustRun("init")
			stdout, stderr, err := w.run("plan")
			if err == nil || !words("Bipsync Token Store Error").MatchString(stderr) || !tc.want.MatchString(stderr) ||
				!words("s3://"+bucket+"/"+tokenstore.DefaultS3KeyPrefix).MatchString(stderr) {
				t.Fatalf("got %v\nstderr:\n%s\nwant the plan to fail with Bipsync Token Store Error matching %s and naming the object",
					err, stderr, tc.want)
			}
			if got := f.server.Stats().TokenRequests; got != 0 {
				t.Errorf("token requests: got %d; want 0 (nothing may be exchanged when the store cannot be used)", got)
			}
			log, _ := os.ReadFile(engineLog)
			for what, text := range map[string]string{"stdout": stdout, "stderr": stderr, "the engine's trace log": string(log)} {
				if strings.Contains(text, secret) {
					t.Errorf("%s holds the AWS secret key", what)
				}
			}
		})
	}
}

// Mistakes in the s3 settings are reported at configuration, naming the setting, and reach no endpoint.
func TestAccProvider_s3StoreConfiguration(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := f.seed()
	runConfigCases(t, f, []configCase{
		{"bucket without the s3 backend", f.postgresConfig(`    bucket = "tf-chains"`, seed), nil,
			words("Bipsync Token Store Setting Without Effect")},
		{"endpoints without the s3 backend", f.postgresConfig("    backend   = \"file\"\n    endpoints = { s3 = \"https://s3.example.com\" }", seed), nil,
			words("Bipsync Token Store Setting Without Effect")},
		{"no bucket", f.postgresConfig(`    backend = "s3"`, seed), nil, words("The s3 backend needs token_store.bucket")},
		{"bad bucket", f.postgresConfig("    backend = \"s3\"\n    bucket  = \"Tf_Chains\"", seed), nil, words("must be an S3 bucket name")},
		{"bad endpoint", f.postgresConfig("    backend   = \"s3\"\n    bucket    = \"tf-chains\"\n    endpoints = { s3 = \"s3.example.com\" }", seed),
			nil, words("must be an http or https URL")},
		{"unknown bucket", f.postgresConfig("    backend = \"s3\"\n    bucket  = terraform_data.later.output", seed) +
			`resource "terraform_data" "later" { input = "tf-chains" }`, nil, words("Unknown Bipsync Token Store Setting")},
	})
}

// No log of a run holds the AWS credentials: the provider's own at TRACE, through a run whose bucket is missing and one
// that works. TF_ACC_LOG_PATH is process-wide, so this test is not parallel.
func TestAccAccessToken_s3StoreLogsNoCredentials(t *testing.T) {
	f := newFixture(t)
	endpoint := mototest.Start(t)
	s3AccEnv(t, endpoint)
	bucket, _ := s3AccBucket(t, endpoint)
	const secret, session = "s3cr3t-log-key-0a1b2c3d4e5f", "s3ss10n-log-token-6a7b8c9d0e1f"
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", session)
	logFile := filepath.Join(t.TempDir(), "acc.log")
	t.Setenv("TF_ACC_LOG_PATH", logFile)
	t.Setenv("TF_ACC_LOG", "TRACE")
	t.Setenv("TF_LOG_PROVIDER", "TRACE")
	t.Setenv("TF_LOG_SDK", "TRACE")
	t.Setenv("TF_LOG_SDK_FRAMEWORK", "TRACE")
	seed := f.seed()
	var errText string
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		// The failing step's error is taken here rather than by ExpectError, so that its text can be scanned too.
		ErrorCheck: func(err error) error {
			if errText != "" || !summaryWith(summaryStoreError, "the bucket does not exist").MatchString(err.Error()) {
				return err
			}
			errText = err.Error()
			return nil
		},
		// The failing run first: the destroy after the last step runs with its configuration.
		Steps: []resource.TestStep{
			{Config: f.postgresConfig(s3StoreBody("no-such-bucket", endpoint, tokenstore.DefaultS3KeyPrefix), seed)},
			{
				Config:            f.postgresConfig(s3StoreBody(bucket, endpoint, tokenstore.DefaultS3KeyPrefix), seed),
				ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.t")},
			},
		},
	})
	if errText == "" {
		t.Fatal("the run with the missing bucket did not fail with Bipsync Token Store Error")
	}
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "configured bipsync provider") || !strings.Contains(string(log), "s3 store: bucket") {
		t.Fatal("the log holds no line of the provider's own about the s3 store; want its TRACE output scanned too")
	}
	for what, text := range map[string]string{"the log": string(log), "the error": errText} {
		for _, s := range []string{secret, session} {
			if strings.Contains(text, s) {
				t.Errorf("%s holds an AWS credential", what)
			}
		}
	}
}
