package settings

import (
	"fmt"
	"strconv"
)

// Environment variables of the s3 token store backend, named after the arguments of Terraform's s3 state backend. The
// AWS SDK's own variables (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, credentials) apply where
// these are unset.
const (
	EnvTokenStoreBucket       = "BIPSYNC_TOKEN_STORE_BUCKET"
	EnvTokenStoreKeyPrefix    = "BIPSYNC_TOKEN_STORE_KEY_PREFIX"
	EnvTokenStoreRegion       = "BIPSYNC_TOKEN_STORE_REGION"
	EnvTokenStoreEndpointS3   = "BIPSYNC_TOKEN_STORE_ENDPOINT_S3"
	EnvTokenStoreUsePathStyle = "BIPSYNC_TOKEN_STORE_USE_PATH_STYLE"
	EnvTokenStoreProfile      = "BIPSYNC_TOKEN_STORE_PROFILE"
)

// ParseBool reads a boolean setting from the environment or a flag: true, false, 1, 0 (and the other spellings
// strconv.ParseBool takes).
func ParseBool(s string) (bool, error) {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", s)
	}
	return b, nil
}
