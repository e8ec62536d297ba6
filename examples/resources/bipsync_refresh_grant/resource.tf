terraform {
  required_providers {
    bipsync = {
      source = "bipsync/bipsync"
    }
  }
}

# The seed: a refresh token from an authorization (terraform-provider-bipsync
# authorize). The grant
# exchanges it when it is created, and again only when
# refresh_token_wo_version changes (a re-seed). Every other run, rotations
# included, works from the chain's current refresh token in state, so the
# seed may be left unset: Bipsync has consumed it, and there is nothing to
# keep. It is write-only, so it is never stored in plan or state.
#
# A pipeline sets TF_VAR_bipsync_seed (from its secret store) only for the
# plan and apply that create or re-seed the grant, and leaves it unset on
# every other run. A plan that creates or re-seeds without a seed fails
# before any exchange ("Missing Bipsync Refresh Token").
variable "bipsync_seed" {
  type      = string
  sensitive = true
  ephemeral = true
  default   = null
}

resource "bipsync_refresh_grant" "reporting" {
  refresh_token_wo = var.bipsync_seed
  # Increase together with a new bipsync_seed to start over after a
  # reauthorization (guide: "Reauthorization runbook").
  refresh_token_wo_version = 1
}

# Every rotation renews the chain's month; plans warn when fewer than 7 days
# are left and fail once it has passed.
output "bipsync_chain_expires_at" {
  value = bipsync_refresh_grant.reporting.refresh_token_expires_at
}
