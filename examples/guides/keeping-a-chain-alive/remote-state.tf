# The chain lives in state: the backend must lock (two applies at once would
# both rotate the chain) and encrypt, and only the pipeline should read it.
terraform {
  required_providers {
    bipsync = {
      source = "bipsync/bipsync"
    }
  }

  backend "s3" {
    bucket       = "acme-terraform-state"
    key          = "bipsync/reporting.tfstate"
    region       = "eu-west-2"
    encrypt      = true
    use_lockfile = true
  }
}

provider "bipsync" {
  client = "acme"
}

# Given only to the run that creates the grant, or re-seeds it with a higher
# refresh_token_wo_version; every other run leaves it unset.
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
