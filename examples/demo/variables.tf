variable "base_url" {
  description = "Base URL of the Bipsync API (the fake server's, on 127.0.0.1)."
  type        = string
}

variable "client_id" {
  description = "OAuth client of the application."
  type        = string
}

variable "client_secret" {
  description = "Secret of the OAuth client."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "grant_seed" {
  description = "Refresh token that seeds the grant's chain (the demo has the fake server issue it, as an authorization would)."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "grant_seed_version" {
  description = "Version of grant_seed: increase it with a new grant_seed to re-seed the chain."
  type        = number
  default     = 1
}

variable "grant_keepers" {
  description = "Any change rotates the grant's chain in the next apply."
  type        = map(string)
  default     = {}
}

variable "api_seed" {
  description = "Refresh token that seeds the ephemeral resource's chain (the demo gets it with terraform-provider-bipsync authorize)."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "rotate_before" {
  description = "Rotation window of the grant. Short here because the fake issues short-lived access tokens."
  type        = string
  default     = "25s"
}

variable "min_validity" {
  description = "Life an access token from the ephemeral resource keeps at least."
  type        = string
  default     = "15s"
}

variable "token_store_path" {
  description = "Directory of the file token store."
  type        = string
}

variable "probe" {
  description = "Program and arguments that call GET /v1/me with $BIPSYNC_ACCESS_TOKEN; a label and the URL are appended."
  type        = list(string)
}
