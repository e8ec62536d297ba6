terraform {
  required_providers {
    bipsync = {
      source = "bipsync/bipsync"
    }
  }
}

# A workstation, or a runner whose disk is kept between runs (Atlantis, a
# self-hosted agent). Each chain is one encrypted file under path, locked
# while a run exchanges it, so several workspaces and parallel runs on this
# machine share a chain safely.
provider "bipsync" {
  client = "acme"

  token_store {
    backend = "file"
    path    = "/var/lib/atlantis/bipsync-chains"
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
