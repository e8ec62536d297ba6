# The provider against the fake Bipsync server on this machine (README: "Try
# it locally"). Start the fake with
#
#   go run ./internal/bipsynctest/cmd/bipsync-fake -addr 127.0.0.1:8089 \
#     -client-secret local-secret -state-file /tmp/bipsync-fake.json
#
# and give the client secret and the seed through the environment:
# BIPSYNC_CLIENT_SECRET and TF_VAR_seed.
terraform {
  required_providers {
    bipsync = {
      source = "bipsync/bipsync"
    }
  }
}

provider "bipsync" {
  # Plain http is accepted on loopback hosts only.
  base_url  = "http://127.0.0.1:8089"
  client_id = "demo-client"
}

# The fake's refresh token (its state file, or POST /_fake/seed). Needed only
# to create the grant: later runs work from the chain in state.
variable "seed" {
  type      = string
  sensitive = true
  ephemeral = true
  default   = null
}

# Change to rotate the chain now, whatever the access token's age.
variable "rotation" {
  type    = string
  default = "1"
}

resource "bipsync_refresh_grant" "local" {
  refresh_token_wo         = var.seed
  refresh_token_wo_version = 1

  keepers = {
    rotation = var.rotation
  }
}

output "rotated_at" {
  value = bipsync_refresh_grant.local.rotated_at
}

output "access_token_expires_at" {
  value = bipsync_refresh_grant.local.expires_at
}
