package cli

import (
	"flag"

	"github.com/bipsync/terraform-provider-bipsync/internal/settings"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// s3Flags name the s3 backend's bucket and how to reach it, as the provider's token_store block does.
type s3Flags struct {
	bucket, keyPrefix, region, endpoint, usePathStyle, profile string
}

func (f *s3Flags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.bucket, "token-store-bucket", "", "`bucket` of the s3 backend (default $"+settings.EnvTokenStoreBucket+")")
	fs.StringVar(&f.keyPrefix, "token-store-key-prefix", "", "`prefix` of the s3 backend's object keys (default $"+
		settings.EnvTokenStoreKeyPrefix+", else "+tokenstore.DefaultS3KeyPrefix+")")
	fs.StringVar(&f.region, "token-store-region", "", "`region` of the s3 backend's bucket (default $"+settings.EnvTokenStoreRegion+
		", else the AWS SDK's: AWS_REGION, the profile's)")
	fs.StringVar(&f.endpoint, "token-store-endpoint-s3", "", "`URL` of the s3 backend's S3 endpoint, for S3-compatible servers "+
		"(default $"+settings.EnvTokenStoreEndpointS3+", else AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS)")
	fs.StringVar(&f.usePathStyle, "token-store-use-path-style", "", "`true` to address the s3 backend's bucket in the URL path "+
		"(default $"+settings.EnvTokenStoreUsePathStyle+", else false)")
	fs.StringVar(&f.profile, "token-store-profile", "", "AWS shared configuration `profile` of the s3 backend (default $"+
		settings.EnvTokenStoreProfile+", else AWS_PROFILE); credentials come from the AWS SDK's default chain")
}

// resolve applies the environment fallbacks and checks the values, naming where a bad one came from.
func (f *s3Flags) resolve() (tokenstore.S3Config, error) {
	var c tokenstore.S3Config
	var src string
	c.Bucket, src = settings.Resolve("token-store-bucket", f.bucket, settings.EnvTokenStoreBucket)
	if src == "" {
		return c, usagef("the s3 backend needs -token-store-bucket or %s: the bucket that keeps the records", settings.EnvTokenStoreBucket)
	}
	if err := tokenstore.CheckS3Bucket(c.Bucket); err != nil {
		return c, usagef("the bucket from %s: %v", src, err)
	}
	if c.KeyPrefix, src = settings.Resolve("token-store-key-prefix", f.keyPrefix, settings.EnvTokenStoreKeyPrefix); src != "" {
		if err := tokenstore.CheckS3KeyPrefix(c.KeyPrefix); err != nil {
			return c, usagef("the key prefix from %s: %v", src, err)
		}
	}
	c.Region, _ = settings.Resolve("token-store-region", f.region, settings.EnvTokenStoreRegion)
	if c.Endpoint, src = settings.Resolve("token-store-endpoint-s3", f.endpoint, settings.EnvTokenStoreEndpointS3); src != "" {
		if err := tokenstore.CheckS3Endpoint(c.Endpoint); err != nil {
			return c, usagef("the S3 endpoint from %s: %v", src, err)
		}
	}
	if raw, src := settings.Resolve("token-store-use-path-style", f.usePathStyle, settings.EnvTokenStoreUsePathStyle); raw != "" {
		b, err := settings.ParseBool(raw)
		if err != nil {
			return c, usagef("use path style from %s: %v", src, err)
		}
		c.UsePathStyle = b
	}
	c.Profile, _ = settings.Resolve("token-store-profile", f.profile, settings.EnvTokenStoreProfile)
	return c, nil
}
