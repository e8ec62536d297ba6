package provider

import (
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// The token_store block's attributes of the s3 backend, named and described as the s3 state backend's arguments, so
// that a user copies what they have.

func s3BucketAttribute() schema.StringAttribute {
	return schema.StringAttribute{
		Optional: true,
		MarkdownDescription: "Bucket of the `s3` backend, which keeps one object per chain, `<key_prefix><chain key>`, " +
			"encrypted like every record. The bucket must support S3 conditional writes (`If-None-Match` and " +
			"`If-Match`), as AWS S3 does; the provider checks that once per run with an object `<key_prefix>probe` and " +
			"refuses a bucket that ignores them. The credentials need `s3:GetObject` and `s3:PutObject` on the objects " +
			"under `key_prefix`. Required with the `s3` backend. Falls back to the `BIPSYNC_TOKEN_STORE_BUCKET` " +
			"environment variable.",
		Validators: []validator.String{checkString("an S3 bucket name", tokenstore.CheckS3Bucket)},
	}
}

func s3KeyPrefixAttribute() schema.StringAttribute {
	return schema.StringAttribute{
		Optional: true,
		MarkdownDescription: "Prefix of the `s3` backend's object keys. Defaults to `" + tokenstore.DefaultS3KeyPrefix +
			"`. Falls back to the `BIPSYNC_TOKEN_STORE_KEY_PREFIX` environment variable.",
		Validators: []validator.String{checkString("an S3 key prefix", tokenstore.CheckS3KeyPrefix)},
	}
}

func s3RegionAttribute() schema.StringAttribute {
	return schema.StringAttribute{
		Optional: true,
		MarkdownDescription: "Region of the `s3` backend's bucket, for example `eu-west-2`. Falls back to the " +
			"`BIPSYNC_TOKEN_STORE_REGION` environment variable, then to what the AWS SDK reads (`AWS_REGION`, " +
			"`AWS_DEFAULT_REGION`, the profile's `region`). Required one way or another.",
	}
}

func s3EndpointsAttribute() schema.SingleNestedAttribute {
	return schema.SingleNestedAttribute{
		Optional: true,
		MarkdownDescription: "Custom service endpoints of the `s3` backend, as in the `s3` state backend: " +
			"`endpoints = { s3 = \"https://s3.example.com\" }`, for S3-compatible servers and private endpoints.",
		Attributes: map[string]schema.Attribute{
			"s3": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "URL of the S3 endpoint. Falls back to the `BIPSYNC_TOKEN_STORE_ENDPOINT_S3` environment " +
					"variable, then to the AWS SDK's `AWS_ENDPOINT_URL_S3` and `AWS_ENDPOINT_URL`, then to AWS's own endpoint " +
					"for the region.",
				Validators: []validator.String{checkString("an http or https URL", tokenstore.CheckS3Endpoint)},
			},
		},
	}
}

func s3UsePathStyleAttribute() schema.BoolAttribute {
	return schema.BoolAttribute{
		Optional: true,
		MarkdownDescription: "Whether the `s3` backend addresses the bucket in the URL path " +
			"(`https://host/bucket/key`) instead of the host name, as most S3-compatible servers need. Defaults to " +
			"`false`. Falls back to the `BIPSYNC_TOKEN_STORE_USE_PATH_STYLE` environment variable (`true` or `false`).",
	}
}

func s3ProfileAttribute() schema.StringAttribute {
	return schema.StringAttribute{
		Optional: true,
		MarkdownDescription: "Profile of the AWS shared configuration and credentials files that the `s3` backend uses. " +
			"Falls back to the `BIPSYNC_TOKEN_STORE_PROFILE` environment variable, then `AWS_PROFILE`. Credentials come " +
			"from the AWS SDK's default chain: environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, " +
			"`AWS_SESSION_TOKEN`), the profile, web identity (`AWS_ROLE_ARN` with `AWS_WEB_IDENTITY_TOKEN_FILE`, as " +
			"GitHub Actions' OIDC gives), and container and instance roles.",
	}
}
