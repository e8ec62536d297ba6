package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/bipsync/terraform-provider-bipsync/internal/settings"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// s3EndpointsModel is the token_store block's endpoints attribute, as the s3 state backend spells it.
type s3EndpointsModel struct {
	S3 types.String `tfsdk:"s3"`
}

// resolveS3 reads the s3 backend's settings. As with postgres, they are checked whatever the backend: a value in the
// block is a mistake unless the backend is s3, most likely a forgotten backend = "s3", which would leave the chains in a
// local file on a runner that may be thrown away.
func resolveS3(m *tokenStoreModel, backend string, diags *diag.Diagnostics, cfg *resolvedConfig) {
	if m.Backend.IsUnknown() {
		return // reported with the backend
	}
	endpoint := types.StringNull()
	switch {
	case m.Endpoints.IsUnknown():
		endpoint = types.StringUnknown()
	case !m.Endpoints.IsNull():
		var e s3EndpointsModel
		diags.Append(m.Endpoints.As(context.Background(), &e, basetypes.ObjectAsOptions{})...)
		endpoint = e.S3
	}
	pathStyle := types.StringNull()
	switch {
	case m.UsePathStyle.IsUnknown():
		pathStyle = types.StringUnknown()
	case !m.UsePathStyle.IsNull():
		pathStyle = types.StringValue(fmt.Sprint(m.UsePathStyle.ValueBool()))
	}
	set := func(name string, v types.String, env string) setting {
		return setting{storeAttr(name), v, env, summaryUnknownStoreSetting, summaryInvalidStoreSetting}
	}
	bucketSet := set("bucket", m.Bucket, settings.EnvTokenStoreBucket)
	prefixSet := set("key_prefix", m.KeyPrefix, settings.EnvTokenStoreKeyPrefix)
	regionSet := set("region", m.Region, settings.EnvTokenStoreRegion)
	endpointSet := set("endpoints", endpoint, settings.EnvTokenStoreEndpointS3)
	endpointSet.path = storeAttr("endpoints").AtName("s3")
	pathStyleSet := set("use_path_style", pathStyle, settings.EnvTokenStoreUsePathStyle)
	profileSet := set("profile", m.Profile, settings.EnvTokenStoreProfile)
	all := []setting{bucketSet, prefixSet, regionSet, endpointSet, pathStyleSet, profileSet}
	if backend != "s3" {
		for _, s := range all {
			if !s.value.IsNull() && !s.value.IsUnknown() {
				diags.AddAttributeError(s.path, summaryStoreSettingUnused,
					fmt.Sprintf("%s is set, but the token store backend is %s, which does not use it. Set backend = \"s3\" "+
						"to keep the chains in an S3 bucket, or remove %s.", s.path, backend, s.path))
			}
		}
		return
	}
	var c tokenstore.S3Config
	var src string
	if c.Bucket, src = bucketSet.get(diags); c.Bucket == "" && src == "" && !m.Bucket.IsUnknown() {
		diags.AddAttributeError(bucketSet.path, summaryInvalidStoreSetting,
			"The s3 backend needs token_store.bucket (or the "+settings.EnvTokenStoreBucket+" environment variable): the "+
				"bucket that keeps the records, as the bucket of Terraform's s3 state backend.")
	} else if src != "" {
		if err := tokenstore.CheckS3Bucket(c.Bucket); err != nil {
			bucketSet.invalid(diags, src, err)
		}
	}
	if c.KeyPrefix, src = prefixSet.get(diags); src != "" {
		if err := tokenstore.CheckS3KeyPrefix(c.KeyPrefix); err != nil {
			prefixSet.invalid(diags, src, err)
		}
	}
	c.Region, _ = regionSet.get(diags)
	if c.Endpoint, src = endpointSet.get(diags); src != "" {
		if err := tokenstore.CheckS3Endpoint(c.Endpoint); err != nil {
			endpointSet.invalid(diags, src, err)
		}
	}
	if raw, src := pathStyleSet.get(diags); raw != "" {
		b, err := settings.ParseBool(raw)
		if err != nil {
			pathStyleSet.invalid(diags, src, err)
		}
		c.UsePathStyle = b
	}
	c.Profile, _ = profileSet.get(diags)
	cfg.storeS3 = c
}
