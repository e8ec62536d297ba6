terraform {
  required_providers {
    bipsync = {
      source = "bipsync/bipsync"
    }
  }
}

# Runners on several machines share each chain through one S3 bucket: the
# bucket of the s3 state backend serves, under a prefix of its own. Every
# write is conditional, and a runner claims a chain's refresh token before it
# exchanges it, so no two runners send the same one to Bipsync. Credentials
# come from the AWS SDK's default chain (environment, profile, GitHub
# Actions' OIDC web identity, instance or container role), never from here.
provider "bipsync" {
  client = "acme"

  token_store {
    backend    = "s3"
    bucket     = "acme-terraform-state"
    key_prefix = "bipsync-chains/"
    region     = "eu-west-2"

    # For an S3-compatible server instead of AWS S3:
    # endpoints      = { s3 = "https://minio.internal.example.com" }
    # use_path_style = true
  }
}

variable "bipsync_refresh_token" {
  type      = string
  sensitive = true
  ephemeral = true
}

ephemeral "bipsync_access_token" "api" {
  refresh_token = var.bipsync_refresh_token
}
