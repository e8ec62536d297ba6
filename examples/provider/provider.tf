terraform {
  required_providers {
    bipsync = {
      source = "bipsync/bipsync"
    }
  }
}

# Every argument can come from the environment instead, which keeps
# credentials out of the configuration:
#
#   export BIPSYNC_CLIENT_ID="..."     # the Bipsync OAuth application
#   export BIPSYNC_CLIENT_SECRET="..." # confidential applications only
#
# With those set, this block needs only the tenant (or BIPSYNC_CLIENT).
provider "bipsync" {
  # The tenant slug: its API is https://acme-api.bipsync.com.
  client = "acme"

  # Where bipsync_access_token keeps each refresh chain between runs. The
  # file backend is the default; on a CI runner that is not kept between
  # jobs, use the command backend, and for runners on several machines the
  # postgres backend (guide: "Keeping a refresh chain alive").
  token_store {
    backend = "file"
  }
}
