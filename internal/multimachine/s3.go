package multimachine

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// s3Region is the region of the harness's buckets; an S3 protocol server on loopback takes any.
const s3Region = "us-east-1"

// S3Store is the s3 backend on one bucket of an S3 protocol server at endpoint that every machine reaches (moto in the
// tests), with static credentials every machine has in its environment, as a CI job's would be. It creates the bucket
// with versioning on, so that every write that landed is a version the harness can count.
func S3Store(ctx context.Context, name, endpoint, bucket, accessKey, secretKey string) (Store, error) {
	client := s3.New(s3.Options{
		Region:       s3Region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	})
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return Store{}, fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	if _, err := client.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		return Store{}, fmt.Errorf("turn on versioning of bucket %s: %w", bucket, err)
	}
	return Store{
		Name: name,
		attrs: func(string) string {
			return fmt.Sprintf("    backend        = \"s3\"\n    bucket         = %q\n    region         = %q\n"+
				"    use_path_style = true\n    endpoints      = { s3 = %q }\n", bucket, s3Region, endpoint)
		},
		open: func(_, lockDir string) (tokenstore.Store, error) {
			return tokenstore.NewS3(context.Background(), tokenstore.S3Config{Bucket: bucket, Region: s3Region,
				Endpoint: endpoint, UsePathStyle: true, LockDir: lockDir,
				Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")})
		},
		// Only the credentials: they are the secrets that must never reach an engine's output.
		env: []string{"AWS_ACCESS_KEY_ID=" + accessKey, "AWS_SECRET_ACCESS_KEY=" + secretKey},
		writes: func(ctx context.Context, key tokenstore.Key) (int, error) {
			n := 0
			for _, k := range []tokenstore.Key{key, tokenstore.ClaimKey(key)} {
				out, err := client.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket),
					Prefix: aws.String(tokenstore.DefaultS3KeyPrefix + string(k))})
				if err != nil {
					return 0, err
				}
				n += len(out.Versions)
			}
			return n, nil
		},
	}, nil
}
