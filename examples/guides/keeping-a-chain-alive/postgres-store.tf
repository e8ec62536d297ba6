terraform {
  required_providers {
    bipsync = {
      source = "bipsync/bipsync"
    }
  }
}

# Runners on several machines share each chain through one PostgreSQL
# database, and queue on its lock. The password is not in the configuration:
# the runner's environment gives it (PGPASSWORD, or ~/.pgpass), as for psql.
provider "bipsync" {
  client = "acme"

  token_store {
    backend  = "postgres"
    conn_str = "postgres://bipsync_runner@db.internal.example.com:5432/terraform?sslmode=verify-full"
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
