# A refresh token from the authorization code grant. The grant reads it when
# it is created and when refresh_token_wo_version changes; in between, the
# chain's current refresh token lives in state. It is write-only, so it is
# never stored, but every run must still give it a value (for example
# TF_VAR_bipsync_seed from a secret manager).
variable "bipsync_seed" {
  type      = string
  sensitive = true
  ephemeral = true
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
