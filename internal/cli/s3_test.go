package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bipsync/terraform-provider-bipsync/internal/settings"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/mototest"
)

// setS3TestEnv gives the process moto's dummy credentials and keeps the machine's AWS files out, for every test: the
// s3 store reads credentials as the AWS SDK does, from the environment, and tests run in parallel. The endpoint is
// each test's own and goes in flags.
func setS3TestEnv() {
	for _, kv := range mototest.Env("") {
		if k, v, _ := strings.Cut(kv, "="); v != "" {
			_ = os.Setenv(k, v)
		}
	}
	none := filepath.Join(os.TempDir(), "bipsync-cli-test-no-aws-files", "none")
	_ = os.Setenv("AWS_CONFIG_FILE", none)
	_ = os.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
}

var s3Buckets atomic.Int64

// s3StoreFlags starts a moto server for the fixture (once), creates a bucket on it, and returns the flags that name it.
func s3StoreFlags(f *fixture) []string {
	f.t.Helper()
	if f.s3Flags != nil {
		return f.s3Flags
	}
	endpoint := mototest.Start(f.t)
	bucket := fmt.Sprintf("cli-test-%d-%d", os.Getpid(), s3Buckets.Add(1))
	cfg, err := config.LoadDefaultConfig(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint, o.UsePathStyle = aws.String(endpoint), true })
	if _, err := client.CreateBucket(f.t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		f.t.Fatalf("create bucket: %v", err)
	}
	f.s3Flags = []string{"-token-store", "s3", "-token-store-bucket", bucket, "-token-store-region", "us-east-1",
		"-token-store-endpoint-s3", endpoint, "-token-store-use-path-style", "true", "-token-store-key-prefix", "cli/"}
	return f.s3Flags
}

// The s3 flags resolve to the store's configuration, fall back to their BIPSYNC_TOKEN_STORE_* variables, and a bad
// value is a usage error naming where it came from.
func TestStoreFlags_s3(t *testing.T) {
	resolve := func(args ...string) (storeSettings, error) {
		var sf storeFlags
		fs := newFlagSet(&env{IO: IO{Stderr: os.Stderr}}, "test", "")
		sf.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return sf.resolve()
	}
	ss, err := resolve("-token-store", "s3", "-token-store-bucket", "tf-chains", "-token-store-key-prefix", "ci/",
		"-token-store-region", "eu-west-2", "-token-store-endpoint-s3", "https://s3.example.com", "-token-store-use-path-style",
		"true", "-token-store-profile", "ci")
	want := tokenstore.S3Config{Bucket: "tf-chains", KeyPrefix: "ci/", Region: "eu-west-2", Endpoint: "https://s3.example.com",
		UsePathStyle: true, Profile: "ci"}
	if err != nil || ss.cfg.Backend != "s3" || ss.cfg.S3 != want {
		t.Fatalf("flags: got %+v, %v; want %+v", ss.cfg.S3, err, want)
	}

	t.Setenv(settings.EnvTokenStore, "s3")
	t.Setenv(settings.EnvTokenStoreBucket, "env-chains")
	t.Setenv(settings.EnvTokenStoreRegion, "us-west-1")
	t.Setenv(settings.EnvTokenStoreUsePathStyle, "1")
	ss, err = resolve()
	want = tokenstore.S3Config{Bucket: "env-chains", Region: "us-west-1", UsePathStyle: true}
	if err != nil || ss.cfg.S3 != want {
		t.Fatalf("environment: got %+v, %v; want %+v", ss.cfg.S3, err, want)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-token-store-bucket", "Bad_Bucket"}, "the bucket from the --token-store-bucket flag"},
		{[]string{"-token-store-key-prefix", "/abs"}, "the key prefix from the --token-store-key-prefix flag"},
		{[]string{"-token-store-endpoint-s3", "s3.example.com"}, "the S3 endpoint from the --token-store-endpoint-s3 flag"},
		{[]string{"-token-store-use-path-style", "maybe"}, "use path style from the --token-store-use-path-style flag"},
	} {
		if _, err := resolve(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v; want an error saying %q", tc.args, err, tc.want)
		}
	}
	t.Setenv(settings.EnvTokenStoreBucket, "")
	if _, err := resolve(); err == nil || !strings.Contains(err.Error(), "needs -token-store-bucket") {
		t.Errorf("no bucket: got %v; want an error naming -token-store-bucket", err)
	}
}
