package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// Diagnostic summaries: every summary the provider reports is one of these constants, and allSummaries lists them
// all. They are stable: tests, docs and users' scripts match them, and the reauthorization runbook names each one
// (TestDocs_runbookNamesEveryDiagnostic). TestDiagnostics_everySummaryListed fails when a summary constant is missing
// from allSummaries, and TestDiagnostics_noLiteralSummaries when a call site passes a summary that is not a constant.
const (
	// Token exchange failures (tokenErrorDiagnostic).
	summaryReauth          = "Bipsync Reauthorization Required"
	summaryOutcomeUnknown  = "Bipsync Token Exchange Outcome Unknown"
	summaryIncomplete      = "Bipsync Token Answer Incomplete"
	summaryInvalidClient   = "Invalid Bipsync Client Credentials"
	summaryUnavailable     = "Bipsync Token Endpoint Unavailable"
	summaryCertificate     = "Untrusted Bipsync TLS Certificate"
	summaryRejected        = "Bipsync Token Request Rejected"
	summaryScopeConflict   = "Conflicting Bipsync Scope Requests"
	summaryStoreRequired   = "Bipsync Token Store Required"
	summarySaveFailed      = "Bipsync Token Store Save Failed"
	summaryStoreUnreadable = "Unreadable Bipsync Token Store Record"
	summaryStoreError      = "Bipsync Token Store Error"

	// Provider configuration (resolveConfig). Each setting has an Unknown summary (a value known only after apply)
	// and, where its value is checked, an Invalid one.
	summaryMissingEndpoint         = "Missing Bipsync Endpoint"
	summaryConflictingEndpoint     = "Conflicting Bipsync Endpoint Settings"
	summaryMissingClientID         = "Missing Bipsync Client ID"
	summaryMissingStoreCommand     = "Missing Bipsync Token Store Command"
	summaryUnknownTenant           = "Unknown Bipsync Tenant"
	summaryInvalidTenant           = "Invalid Bipsync Tenant"
	summaryUnknownBaseURL          = "Unknown Bipsync Base URL"
	summaryInvalidBaseURL          = "Invalid Bipsync Base URL"
	summaryUnknownClientID         = "Unknown Bipsync Client ID"
	summaryInvalidClientID         = "Invalid Bipsync Client ID"
	summaryUnknownClientSecret     = "Unknown Bipsync Client Secret"
	summaryUnknownRequestTimeout   = "Unknown Bipsync Request Timeout"
	summaryInvalidRequestTimeout   = "Invalid Bipsync Request Timeout"
	summaryUnknownRequestEncoding  = "Unknown Bipsync Request Encoding"
	summaryInvalidRequestEncoding  = "Invalid Bipsync Request Encoding"
	summaryUnknownRefreshLifetime  = "Unknown Bipsync Refresh Token Lifetime"
	summaryInvalidRefreshLifetime  = "Invalid Bipsync Refresh Token Lifetime"
	summaryUnknownStoreSetting     = "Unknown Bipsync Token Store Setting"
	summaryInvalidStoreSetting     = "Invalid Bipsync Token Store Setting"
	summaryInvalidStore            = "Invalid Bipsync Token Store"
	summaryInvalidAttribute        = "Invalid Attribute Value"
	summaryInvalidProviderSettings = "Invalid Bipsync Provider Configuration"

	// Arguments of the types.
	summaryMissingRefreshToken = "Missing Bipsync Refresh Token"
	summaryMissingClientSecret = "Missing Bipsync Client Secret"
	summaryConflictingGrant    = "Conflicting Bipsync Grant Settings"
	summaryMissingSeedVersion  = "Missing Bipsync Seed Version"

	// Provider or engine bugs.
	summaryUnconfigured   = "Unconfigured Bipsync Provider"
	summaryUnexpectedData = "Unexpected Provider Data"

	// Warnings.
	summaryChainExpiringSoon   = "Bipsync Refresh Chain Expiring Soon"
	summaryChainNarrowed       = "Bipsync Refresh Chain Narrowed"
	summaryRotationWindow      = "Bipsync Rotation Window Covers The Token Lifetime"
	summaryPreferWriteOnly     = "Available Write-Only Attribute Alternative"
	summaryTokenExpiringInRun  = "Bipsync Access Token Expiring During Run"
	summaryFileStoreOnCI       = "Bipsync File Token Store On A CI Runner"
	summaryTokenNotCached      = "Bipsync Token Not Cached"
	summaryShorterThanValidity = "Bipsync Token Shorter Than min_validity"
)

// allSummaries is every summary constant above: the list the runbook test walks.
var allSummaries = []string{
	summaryReauth, summaryOutcomeUnknown, summaryIncomplete, summaryInvalidClient, summaryUnavailable,
	summaryCertificate, summaryRejected, summaryScopeConflict, summaryStoreRequired, summarySaveFailed,
	summaryStoreUnreadable, summaryStoreError,

	summaryMissingEndpoint, summaryConflictingEndpoint, summaryMissingClientID, summaryMissingStoreCommand,
	summaryUnknownTenant, summaryInvalidTenant, summaryUnknownBaseURL, summaryInvalidBaseURL, summaryUnknownClientID,
	summaryInvalidClientID, summaryUnknownClientSecret, summaryUnknownRequestTimeout, summaryInvalidRequestTimeout,
	summaryUnknownRequestEncoding, summaryInvalidRequestEncoding, summaryUnknownRefreshLifetime,
	summaryInvalidRefreshLifetime, summaryUnknownStoreSetting, summaryInvalidStoreSetting, summaryInvalidStore,
	summaryInvalidAttribute, summaryInvalidProviderSettings,

	summaryMissingRefreshToken, summaryMissingClientSecret, summaryConflictingGrant, summaryMissingSeedVersion,

	summaryUnconfigured, summaryUnexpectedData,

	summaryChainExpiringSoon, summaryChainNarrowed, summaryRotationWindow, summaryPreferWriteOnly,
	summaryTokenExpiringInRun, summaryFileStoreOnCI, summaryTokenNotCached, summaryShorterThanValidity,
}

// reseedSteps says how a user starts a new chain for one kind of consumer, once they hold a new refresh token.
type reseedSteps string

const (
	reseedEphemeral reseedSteps = "Set refresh_token (or the BIPSYNC_REFRESH_TOKEN environment variable) to the new refresh " +
		"token and run again. A new seed starts a new chain in the token store; the dead chain's record is left alone."
	reseedGrant reseedSteps = "Set refresh_token_wo to the new refresh token and, if the grant already exists, increase " +
		"refresh_token_wo_version (without write-only support, set seed_refresh_token instead), then apply. The grant " +
		"exchanges the new seed in one apply."
)

// reauthCauses explains each reason Bipsync gives for refusing a refresh token.
var reauthCauses = map[bipsync.ReauthCause]string{
	bipsync.CauseExpired: "The refresh token is past its lifetime: Bipsync keeps a refresh token for one month after issuing " +
		"it, and this chain was not exchanged within that month.",
	bipsync.CauseRevoked: "The refresh token has been revoked. Either it was already exchanged (by another process, another " +
		"copy of this chain, or from an older copy of state or of the token store), or the user withdrew consent.",
	bipsync.CauseNotLinked: "The refresh token was issued to another OAuth application than client_id. Use the client_id " +
		"(and client_secret) of the application that ran the authorization.",
	bipsync.CauseUndecryptable: "The value is not a refresh token this Bipsync tenant issued: it may be truncated, mistyped, " +
		"or from another tenant or environment.",
	bipsync.CauseInvalid: "Bipsync refused the refresh token.",
}

// tokenErrorDiagnostic turns a failure of the token source into one diagnostic: a stable summary, and a detail that
// says what happened, the likely cause, what to do, then the facts. It never includes a token, secret or raw body.
func tokenErrorDiagnostic(err error, clientID string, steps reseedSteps) (summary, detail string) {
	var be *bipsync.Error
	var conflict *tokensource.ScopeConflictError
	var saveErr *tokensource.SaveError
	var storeErr *tokensource.StoreError
	var incomplete *tokensource.IncompleteAnswerError
	switch {
	case errors.As(err, &incomplete):
		return summaryIncomplete, "Bipsync exchanged the refresh token, so the old one is revoked, but its answer had no " +
			"usable access token. The new refresh token was kept in the " + incomplete.Kept + ", so the chain is intact: " +
			"run again, and the next use exchanges it." + facts(err)
	case bipsync.NeedsReauthorization(err):
		return summaryReauth, reauthDetail(err, clientID, steps)
	case bipsync.IsInvalidClient(err):
		return summaryInvalidClient, "Bipsync did not accept the client credentials, so no token was exchanged and the refresh " +
			"token (if any) is still valid. Check client_id and client_secret (or BIPSYNC_CLIENT_ID and BIPSYNC_CLIENT_SECRET) " +
			"against the Bipsync OAuth application; a public application takes no client_secret, and the client_credentials " +
			"grant needs a confidential one." + facts(err)
	case bipsync.IsOutcomeUnknown(err):
		return summaryOutcomeUnknown, "The token request reached Bipsync but no usable answer came back, so the provider cannot " +
			"tell whether Bipsync exchanged the refresh token (and so revoked it) or not. The provider does not send the same " +
			"refresh token again on its own: replaying a consumed token fails, and a second exchange would revoke the first " +
			"one's tokens.\n\nTo recover, run again. If the refresh token was not consumed, the run succeeds. If it fails with " +
			"\"" + summaryReauth + "\" (Token has been revoked), follow that diagnostic's steps." + facts(err)
	case bipsync.IsCertificateError(err):
		return summaryCertificate, "The token endpoint's TLS certificate could not be verified, so no request was sent and " +
			"the refresh token is still valid. Check base_url (a proxy or sandbox needs a certificate this machine trusts; " +
			"add its CA to the system trust store, or SSL_CERT_FILE), then run again." + facts(err)
	case bipsync.IsRetryableLater(err):
		return summaryUnavailable, "The token request did not reach Bipsync, or Bipsync asked the provider to come back later, " +
			"and the bounded retries ran out. Nothing was exchanged: the refresh token is still valid. Check the network path to " +
			"the token endpoint (and base_url), then run again." + facts(err)
	case errors.As(err, &conflict):
		return summaryScopeConflict, fmt.Sprintf("%s.\n\nEach exchange revokes the access token handed out before it, so two "+
			"consumers of one chain that ask for different scopes would revoke each other's token on every open, and asking for "+
			"fewer scopes narrows the chain for good (Bipsync narrows the new refresh token too). Ask for the same scopes "+
			"everywhere this refresh token is used, or give each scope set a chain of its own (its own authorization).", conflict)
	case errors.Is(err, tokensource.ErrStoreRequired):
		return summaryStoreRequired, "The refresh_token grant exchanges the refresh token for a new one and Bipsync revokes the " +
			"old one, but the token store is \"none\", so the new refresh token would be kept nowhere and the chain would die " +
			"with this run. Use the file store (the default) or the command store, or keep the chain in a bipsync_refresh_grant " +
			"resource instead."
	case errors.As(err, &saveErr):
		return summarySaveFailed, "Bipsync exchanged the refresh token and revoked the old one, but the new refresh token could " +
			"not be saved. The provider keeps it in memory and saves it again before the next use in this run, and hands out no " +
			"token until it is saved. If this run ends first, the chain is lost and needs a new authorization (authorization " +
			"code grant). Fix the token store so it can be written (permissions, disk space, the command's exit status).\n\n" +
			"Cause: " + saveErr.Err.Error()
	case errors.Is(err, tokenstore.ErrCorrupt):
		return summaryStoreUnreadable, "The token store holds a record for this chain that cannot be read with this refresh " +
			"token: it is damaged, or was written for another chain. The provider leaves it alone, because it may hold the only " +
			"live refresh token of the chain, and exchanges nothing. Move the record aside (the detail below says where) if you " +
			"are sure it is dead, or restore it from a backup.\n\nCause: " + err.Error()
	case errors.As(err, &storeErr):
		return summaryStoreError, "The token store could not be used, so nothing was exchanged. Check the token_store " +
			"configuration, then run again.\n\nCause: " + err.Error()
	case errors.As(err, &be):
		return summaryRejected, "Bipsync refused the token request. Nothing was exchanged." + facts(err)
	default:
		return summaryRejected, "The token request failed. Cause: " + err.Error()
	}
}

func reauthDetail(err error, clientID string, steps reseedSteps) string {
	cause := bipsync.ReauthorizationCause(err)
	var what string
	if cause == bipsync.CauseScope {
		var be *bipsync.Error
		scope := "one of the requested scopes"
		if errors.As(err, &be) && bipsync.ScopeFromHint(be.Hint) != "" {
			scope = "the scope " + bipsync.ScopeFromHint(be.Hint)
		}
		what = "The refresh chain has no consent for " + scope + ". A chain keeps the scopes the user consented to, narrowed " +
			"by any exchange that asked for fewer; it never widens again without a new authorization."
	} else {
		what = reauthCauses[cause]
		if what == "" {
			what = reauthCauses[bipsync.CauseInvalid]
		}
	}
	next := "The refresh chain cannot be used again; a person must authorize anew:"
	if cause == bipsync.CauseNotLinked || cause == bipsync.CauseUndecryptable {
		// Bipsync refuses these before looking at the chain, so nothing was consumed: fixing the input may be enough.
		next = "Bipsync consumed nothing: if the right value is at hand (the application's client_id, or the seed copied " +
			"again whole), use it and run again. Otherwise a person must authorize anew:"
	}
	return what + "\n\n" + next + "\n" + authorizeAnew(clientID, "every scope this configuration asks for", steps) + facts(err)
}

// authorizeAnew is the human step every reauthorization diagnostic ends with: a new authorization, then a new seed.
func authorizeAnew(clientID, consent string, steps reseedSteps) string {
	who := ""
	if clientID != "" {
		who = " for client " + clientID
	}
	return "1. Run the authorization code grant (with PKCE)" + who + " in a browser, consenting to " + consent +
		", to get a new refresh token.\n2. " + string(steps)
}

// facts lists what Bipsync said, one fact a line. OAuth error fields are server-chosen words, never tokens.
func facts(err error) string {
	var be *bipsync.Error
	if !errors.As(err, &be) {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n")
	if be.StatusCode != 0 {
		fmt.Fprintf(&b, "\nHTTP status: %d", be.StatusCode)
	}
	if be.Code != "" {
		fmt.Fprintf(&b, "\nOAuth error: %s", be.Code)
	}
	if be.Description != "" {
		fmt.Fprintf(&b, "\nDescription: %s", be.Description)
	}
	if be.Hint != "" {
		fmt.Fprintf(&b, "\nHint: %s", be.Hint)
	}
	if be.Message != "" && be.Message != be.Description {
		fmt.Fprintf(&b, "\nMessage: %s", be.Message)
	}
	if be.Attempts > 1 {
		fmt.Fprintf(&b, "\nAttempts: %d", be.Attempts)
	}
	// With a status too: a 200 that is not a token answer, a body over the cap or a redirect's target tell a proxy's
	// login page or a wrong base_url apart. The client's causes are fixed texts or scrubbed of secrets.
	if be.Err != nil {
		fmt.Fprintf(&b, "\nCause: %v", be.Err)
	}
	return b.String()
}

// addTokenError adds the diagnostic for a token source failure. It is attached to an attribute only when that
// attribute holds no secret (scopes): the CLI quotes the source line of an attribute's diagnostic, and a seed written
// inline would be printed with it.
func addTokenError(diags *diag.Diagnostics, err error, clientID string, steps reseedSteps) {
	summary, detail := tokenErrorDiagnostic(err, clientID, steps)
	if bipsync.ReauthorizationCause(err) == bipsync.CauseScope {
		diags.AddAttributeError(path.Root("scopes"), summary, detail)
		return
	}
	diags.AddError(summary, detail)
}

func addWarnings(diags *diag.Diagnostics, warnings []tokensource.Warning) {
	for _, w := range warnings {
		diags.AddWarning(w.Summary, w.Detail)
	}
}

// Token shapes Bipsync issues: league refresh tokens are hex after a defuse header, access tokens are JWTs.
var (
	refreshTokenShape = regexp.MustCompile(`def50200[0-9a-fA-F]+`)
	jwtShape          = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`)
)

// maskSecrets returns a context whose log entries never show the given secrets, the secret field names, or anything
// shaped like a Bipsync token. Every RPC gets a fresh context from the framework, so each entry point calls it.
func maskSecrets(ctx context.Context, secrets ...string) context.Context {
	ctx = tflog.MaskFieldValuesWithFieldKeys(ctx, "refresh_token", "access_token", "client_secret", "Authorization",
		"refresh_token_wo")
	ctx = tflog.MaskAllFieldValuesRegexes(ctx, refreshTokenShape, jwtShape)
	ctx = tflog.MaskMessageRegexes(ctx, refreshTokenShape, jwtShape)
	var nonEmpty []string
	for _, s := range secrets {
		if s != "" {
			nonEmpty = append(nonEmpty, s)
		}
	}
	if len(nonEmpty) > 0 {
		ctx = tflog.MaskLogStrings(ctx, nonEmpty...)
	}
	return ctx
}
