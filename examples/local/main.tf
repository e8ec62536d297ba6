# The provider against the fake Bipsync server on this machine (README: "Try
# it locally"). The provider takes the endpoint, the client and the seed from
# BIPSYNC_BASE_URL, BIPSYNC_CLIENT_ID, BIPSYNC_CLIENT_SECRET and
# BIPSYNC_REFRESH_TOKEN, so this configuration names none of them.
terraform {
  required_providers {
    bipsync = {
      source = "bipsync/bipsync"
    }
  }
}

provider "bipsync" {}

# Reuses the access token in the token store (a file in the user cache
# directory) while it has min_validity left; otherwise exchanges the chain
# once and saves the new refresh token before handing the access token out.
ephemeral "bipsync_access_token" "local" {}

# A consumer: calls the fake's protected endpoint with the token. The token
# reaches curl through the environment, and is never stored or shown.
resource "terraform_data" "whoami" {
  triggers_replace = timestamp()

  provisioner "local-exec" {
    command = "curl -fsS -H \"Authorization: Bearer $BIPSYNC_ACCESS_TOKEN\" \"$BIPSYNC_BASE_URL/v1/me\""
    environment = {
      BIPSYNC_ACCESS_TOKEN = ephemeral.bipsync_access_token.local.access_token
    }
  }
}
