terraform {
  required_providers {
    bipsync = {
      source = "bipsync/bipsync"
    }
    restapi = {
      source = "Mastercard/restapi"
    }
  }
}

# A refresh token from an authorization (terraform-provider-bipsync
# authorize). It seeds the chain once;
# after that the token store holds the chain's current refresh token, and
# this value only names and unlocks the chain's record. Pass the same value
# on every run, for example as TF_VAR_bipsync_refresh_token from a secret
# manager, or leave refresh_token unset and export BIPSYNC_REFRESH_TOKEN.
variable "bipsync_refresh_token" {
  type      = string
  sensitive = true
  ephemeral = true
}

provider "bipsync" {
  client = "acme"
}

# Opened in every plan and every apply. The first open exchanges the chain
# and stores the result; later opens reuse the stored access token while it
# has at least min_validity (default 15m) left. Plan plus apply: one exchange.
ephemeral "bipsync_access_token" "api" {
  refresh_token = var.bipsync_refresh_token
}

# The token never reaches plan or state: a provider block is one of the
# places an ephemeral value may go.
provider "restapi" {
  uri                  = "https://acme-api.bipsync.com"
  write_returns_object = true

  headers = {
    Authorization = "Bearer ${ephemeral.bipsync_access_token.api.access_token}"
  }
}
