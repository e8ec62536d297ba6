terraform {
  required_providers {
    bipsync = {
      source = "bipsync/bipsync"
    }
    aws = {
      source = "hashicorp/aws"
    }
  }
}

# The client_credentials grant needs a confidential application: export
# BIPSYNC_CLIENT_ID and BIPSYNC_CLIENT_SECRET. No refresh token, no chain.
provider "bipsync" {
  client = "acme"
}

# A team token. The team_{id} scope is required by this grant. Client
# credentials tokens do not revoke one another, so a copy handed to another
# system stays valid until it expires.
ephemeral "bipsync_access_token" "team" {
  grant_type   = "client_credentials"
  scopes       = ["team_65df73340142feec34d7d6ee", "rest_api:read"]
  min_validity = "45m"
}

resource "aws_secretsmanager_secret" "bipsync" {
  name = "reporting/bipsync-access-token"
}

# secret_string_wo is write-only: the token goes to Secrets Manager and never
# into plan or state. A write-only value is sent only when its version
# changes; this version changes every hour, so a scheduled run stores a
# token with at least 45 minutes left for the jobs that read the secret.
resource "aws_secretsmanager_secret_version" "bipsync" {
  secret_id                = aws_secretsmanager_secret.bipsync.id
  secret_string_wo         = ephemeral.bipsync_access_token.team.access_token
  secret_string_wo_version = parseint(formatdate("YYYYMMDDhh", plantimestamp()), 10)
}
