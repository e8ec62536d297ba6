package provider

// missingSecretDetail explains Bipsync's invalid_request for client_secret when none was configured: the application is
// confidential, and league checks the client before any token, so nothing was consumed.
func missingSecretDetail(err error, fc failureContext) string {
	app := "the OAuth application"
	if fc.clientID != "" {
		app = "the OAuth application " + fc.clientID
	}
	return "Bipsync asked for the client_secret parameter, and the provider sent none: neither client_secret in the " +
		"provider block nor the BIPSYNC_CLIENT_SECRET environment variable is set. A public client needs no secret, so " +
		app + " is a confidential one. Nothing was exchanged: Bipsync checks the client before the refresh token, so " +
		"the refresh token is still valid.\n\nSet client_secret (for example from a variable marked sensitive) or " +
		"BIPSYNC_CLIENT_SECRET to the application's secret, then run again." + facts(err)
}
