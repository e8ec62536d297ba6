terraform {
  required_providers {
    bipsync = {
      source = "bipsync/bipsync"
    }
    http = {
      source = "hashicorp/http"
    }
  }
}

variable "bipsync_seed" {
  type      = string
  sensitive = true
  ephemeral = true
  default   = null
}

resource "bipsync_refresh_grant" "reporting" {
  refresh_token_wo         = var.bipsync_seed
  refresh_token_wo_version = 1
}

# The grant's access_token is an ordinary (sensitive) attribute, so any
# argument can take it. When the plan rotates the grant, access_token is
# unknown until apply, and this read waits for the apply: it always uses a
# token that the rotation has not revoked.
data "http" "content_types" {
  url = "https://acme-api.bipsync.com/v1/contenttype"

  request_headers = {
    Accept        = "application/json"
    Authorization = "Bearer ${bipsync_refresh_grant.reporting.access_token}"
  }

  lifecycle {
    postcondition {
      condition     = self.status_code == 200
      error_message = "Bipsync answered ${self.status_code} to the content type listing."
    }
  }
}
