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

provider "bipsync" {
  client = "acme"
}

# Only for Terraform before 1.10 and OpenTofu before 1.11: the result,
# access token included, is stored in state and in saved plan files.
# The seed comes from BIPSYNC_REFRESH_TOKEN: set as refresh_token, it would
# be stored in state too.
data "bipsync_access_token" "api" {}

provider "restapi" {
  uri = "https://acme-api.bipsync.com"

  headers = {
    Authorization = "Bearer ${data.bipsync_access_token.api.access_token}"
  }
}
