terraform {
  required_providers {
    bipsync = {
      source = "bipsync/bipsync"
    }
  }
}

# The same configuration serves a workstation and CI: the CI job chooses the
# store (s3, command, postgres) through the environment (see the workflows),
# so this block names no store at all.
provider "bipsync" {
  client = "acme"
}

variable "bipsync_refresh_token" {
  type      = string
  sensitive = true
  ephemeral = true
}

ephemeral "bipsync_access_token" "api" {
  refresh_token = var.bipsync_refresh_token
}
