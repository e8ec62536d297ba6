package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/bipsync/terraform-provider-bipsync/internal/settings"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

func s3Endpoints(v types.String) types.Object {
	return types.ObjectValueMust(map[string]attr.Type{"s3": types.StringType}, map[string]attr.Value{"s3": v})
}

// The s3 settings: which setting a diagnostic names, and what the configuration and the environment resolve to.
func TestResolveS3(t *testing.T) {
	s3 := types.StringValue("s3")
	for name, tc := range map[string]struct {
		m        tokenStoreModel
		wantPath string
		want     string
	}{
		"no bucket":      {tokenStoreModel{Backend: s3}, "token_store.bucket", summaryInvalidStoreSetting},
		"bad bucket":     {tokenStoreModel{Backend: s3, Bucket: types.StringValue("Not_A_Bucket")}, "token_store.bucket", summaryInvalidStoreSetting},
		"unknown bucket": {tokenStoreModel{Backend: s3, Bucket: types.StringUnknown()}, "token_store.bucket", summaryUnknownStoreSetting},
		"bad prefix": {tokenStoreModel{Backend: s3, Bucket: types.StringValue("tf-chains"), KeyPrefix: types.StringValue("/x/")},
			"token_store.key_prefix", summaryInvalidStoreSetting},
		"bad endpoint": {tokenStoreModel{Backend: s3, Bucket: types.StringValue("tf-chains"), Endpoints: s3Endpoints(types.StringValue("ftp://x"))},
			"token_store.endpoints.s3", summaryInvalidStoreSetting},
		"unknown endpoint": {tokenStoreModel{Backend: s3, Bucket: types.StringValue("tf-chains"), Endpoints: s3Endpoints(types.StringUnknown())},
			"token_store.endpoints.s3", summaryUnknownStoreSetting},
		"bucket for the file store": {tokenStoreModel{Backend: types.StringValue("file"), Bucket: types.StringValue("tf-chains")},
			"token_store.bucket", summaryStoreSettingUnused},
		"profile for postgres": {tokenStoreModel{Backend: types.StringValue("postgres"), ConnStr: types.StringValue("host=db"), Profile: types.StringValue("ci")},
			"token_store.profile", summaryStoreSettingUnused},
		"path style for the file store": {tokenStoreModel{UsePathStyle: types.BoolValue(true)},
			"token_store.use_path_style", summaryStoreSettingUnused},
	} {
		t.Run(name, func(t *testing.T) {
			for _, env := range []string{settings.EnvTokenStore, settings.EnvTokenStoreBucket, settings.EnvTokenStoreKeyPrefix,
				settings.EnvTokenStoreRegion, settings.EnvTokenStoreEndpointS3, settings.EnvTokenStoreUsePathStyle, settings.EnvTokenStoreProfile} {
				t.Setenv(env, "")
			}
			m := tc.m
			m.Command = types.ListNull(types.StringType)
			var diags diag.Diagnostics
			var cfg resolvedConfig
			resolveStore(&m, &diags, &cfg)
			if len(diags) != 1 {
				t.Fatalf("got %d diagnostics (%v); want 1", len(diags), diags)
			}
			ad, ok := diags[0].(diag.DiagnosticWithPath)
			if !ok || ad.Path().String() != tc.wantPath || diags[0].Summary() != tc.want {
				t.Fatalf("got %q at %v; want %q at %s", diags[0].Summary(), diags[0], tc.want, tc.wantPath)
			}
		})
	}

	t.Run("configuration", func(t *testing.T) {
		var diags diag.Diagnostics
		var cfg resolvedConfig
		resolveStore(&tokenStoreModel{Backend: s3, Command: types.ListNull(types.StringType), Bucket: types.StringValue("tf-chains"),
			KeyPrefix: types.StringValue("ci/"), Region: types.StringValue("eu-west-2"),
			Endpoints: s3Endpoints(types.StringValue("https://s3.example.com")), UsePathStyle: types.BoolValue(true),
			Profile: types.StringValue("ci")}, &diags, &cfg)
		want := tokenstore.S3Config{Bucket: "tf-chains", KeyPrefix: "ci/", Region: "eu-west-2", Endpoint: "https://s3.example.com",
			UsePathStyle: true, Profile: "ci"}
		if diags.HasError() || cfg.storeBackend != "s3" || cfg.storeS3 != want {
			t.Fatalf("got %v, %+v; want %+v", diags, cfg.storeS3, want)
		}
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv(settings.EnvTokenStore, "s3")
		t.Setenv(settings.EnvTokenStoreBucket, "env-chains")
		t.Setenv(settings.EnvTokenStoreKeyPrefix, "env/")
		t.Setenv(settings.EnvTokenStoreRegion, "us-west-1")
		t.Setenv(settings.EnvTokenStoreEndpointS3, "http://127.0.0.1:9000")
		t.Setenv(settings.EnvTokenStoreUsePathStyle, "true")
		t.Setenv(settings.EnvTokenStoreProfile, "env-profile")
		var diags diag.Diagnostics
		var cfg resolvedConfig
		resolveStore(&tokenStoreModel{Command: types.ListNull(types.StringType)}, &diags, &cfg)
		want := tokenstore.S3Config{Bucket: "env-chains", KeyPrefix: "env/", Region: "us-west-1", Endpoint: "http://127.0.0.1:9000",
			UsePathStyle: true, Profile: "env-profile"}
		if diags.HasError() || cfg.storeBackend != "s3" || cfg.storeS3 != want {
			t.Fatalf("got %v, %+v; want %+v", diags, cfg.storeS3, want)
		}
		t.Setenv(settings.EnvTokenStoreUsePathStyle, "sometimes")
		diags = nil
		resolveStore(&tokenStoreModel{Command: types.ListNull(types.StringType)}, &diags, &cfg)
		if len(diags) != 1 || diags[0].Summary() != summaryInvalidStoreSetting {
			t.Fatalf("use_path_style from the environment %q: got %v; want one invalid setting", "sometimes", diags)
		}
	})
}
