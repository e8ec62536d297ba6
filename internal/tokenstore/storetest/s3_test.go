package storetest_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/mototest"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/storetest"
)

// The s3 store reads credentials as the AWS SDK does, from the environment, and the suite's cases run in parallel: the
// test binary gets moto's dummy credentials once, and keeps the machine's AWS files out. Each store names its server
// in its configuration.
func init() {
	for _, kv := range mototest.Env("") {
		if k, v, _ := strings.Cut(kv, "="); v != "" {
			_ = os.Setenv(k, v)
		}
	}
	none := filepath.Join(os.TempDir(), "bipsync-storetest-no-aws-files", "none")
	_ = os.Setenv("AWS_CONFIG_FILE", none)
	_ = os.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	_ = os.Unsetenv("AWS_PROFILE")
	_ = os.Unsetenv("AWS_ENDPOINT_URL_S3")
}

var s3Buckets atomic.Int64

// s3Backend keeps each case's records in a bucket of its own on a moto server of its own. Handles have lock
// directories of their own (runners on other machines): only S3's conditional writes keep their saves apart.
func s3Backend() storetest.Backend {
	var mu sync.Mutex
	clients := map[tokenstore.Store]*s3.Client{}
	buckets := map[tokenstore.Store]string{}
	return storetest.Backend{
		New: func(t testing.TB) (tokenstore.Store, func(testing.TB) tokenstore.Store) {
			endpoint := mototest.Start(t)
			bucket := fmt.Sprintf("storetest-%d-%d", os.Getpid(), s3Buckets.Add(1))
			awsCfg, err := config.LoadDefaultConfig(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			client := s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.BaseEndpoint, o.UsePathStyle = aws.String(endpoint), true })
			if _, err := client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
				t.Fatalf("create bucket: %v", err)
			}
			open := func(t testing.TB) tokenstore.Store {
				st, err := tokenstore.NewS3(t.Context(), tokenstore.S3Config{Bucket: bucket, Region: "us-east-1", Endpoint: endpoint,
					UsePathStyle: true, LockDir: t.TempDir()})
				if err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				clients[st], buckets[st] = client, bucket
				mu.Unlock()
				return st
			}
			return open(t), open
		},
		WriteRaw: func(t testing.TB, st tokenstore.Store, key tokenstore.Key, data []byte) {
			mu.Lock()
			client, bucket := clients[st], buckets[st]
			mu.Unlock()
			if _, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket),
				Key: aws.String(tokenstore.DefaultS3KeyPrefix + string(key)), Body: bytes.NewReader(data)}); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func TestConformance_s3(t *testing.T) {
	t.Parallel()
	storetest.Run(t, s3Backend())
}
