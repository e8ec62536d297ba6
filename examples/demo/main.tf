# The configuration `make demo` drives against a fake Bipsync server. See
# README.md in this directory.

terraform {
  required_version = ">= 1.11"

  required_providers {
    bipsync = {
      source = "bipsync/bipsync"
    }
  }
}

provider "bipsync" {
  base_url      = var.base_url
  client_id     = var.client_id
  client_secret = var.client_secret

  # A token store of its own, so the ephemeral chain's records live with this
  # run and nowhere else.
  token_store {
    path = var.token_store_path
  }
}

# Chain 1 lives in state: the grant exchanges its seed when created, and
# again (a rotation) in the first apply whose plan finds the access token
# within rotate_before of its expiry.
resource "bipsync_refresh_grant" "main" {
  refresh_token_wo         = var.grant_seed
  refresh_token_wo_version = var.grant_seed_version
  scopes                   = ["rest_api:read"]
  rotate_before            = var.rotate_before
  keepers                  = var.grant_keepers
}

# Chain 2 lives in the token store: each plan and apply opens this ephemeral
# resource, and it reuses the stored access token while it has min_validity
# left. Its seed is a different refresh token: one chain, one owner. Without
# scopes it keeps the scopes the user consented to.
ephemeral "bipsync_access_token" "api" {
  refresh_token = var.api_seed
  min_validity  = var.min_validity
}

# The consumers call GET /v1/me with the token in an Authorization header.
# timestamp() is known only during apply, so every plan replaces them and
# every apply shows the token it was handed at work.
resource "terraform_data" "ephemeral_consumer" {
  triggers_replace = timestamp()

  provisioner "local-exec" {
    interpreter = concat(var.probe, ["ephemeral"])
    command     = "${var.base_url}/v1/me"
    environment = {
      BIPSYNC_ACCESS_TOKEN = ephemeral.bipsync_access_token.api.access_token
    }
  }
}

resource "terraform_data" "grant_consumer" {
  triggers_replace = timestamp()

  provisioner "local-exec" {
    interpreter = concat(var.probe, ["grant"])
    command     = "${var.base_url}/v1/me"
    environment = {
      BIPSYNC_ACCESS_TOKEN = bipsync_refresh_grant.main.access_token
    }
  }
}
