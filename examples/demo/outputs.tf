output "grant_rotated_at" {
  description = "When the grant's chain was last exchanged."
  value       = bipsync_refresh_grant.main.rotated_at
}

output "grant_expires_at" {
  description = "When the grant's access token expires."
  value       = bipsync_refresh_grant.main.expires_at
}

output "grant_refresh_token_expires_at" {
  description = "When the grant's chain dies unless rotated before."
  value       = bipsync_refresh_grant.main.refresh_token_expires_at
}
