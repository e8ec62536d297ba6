package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

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
	summaryNoNarrowing     = "Bipsync Scope Narrowing Not Allowed"
	summaryStoreRequired   = "Bipsync Token Store Required"
	summarySaveFailed      = "Bipsync Token Store Save Failed"
	summaryStoreUnreadable = "Unreadable Bipsync Token Store Record"
	summaryStoreError      = "Bipsync Token Store Error"
	summaryScopeNotGranted = "Bipsync Scope Not Granted"
	summaryMinValidity     = "Bipsync min_validity Not Below Token Lifetime"

	// Provider configuration (resolveConfig). Each setting has an Unknown summary (a value known only after apply)
	// and, where its value is checked, an Invalid one.
	summaryMissingEndpoint         = "Missing Bipsync Endpoint"
	summaryConflictingEndpoint     = "Conflicting Bipsync Endpoint Settings"
	summaryMissingClientID         = "Missing Bipsync Client ID"
	summaryMissingStoreCommand     = "Missing Bipsync Token Store Command"
	summaryStoreSettingUnused      = "Bipsync Token Store Setting Without Effect"
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
	summaryChainDead           = "Bipsync Refresh Chain Refused Earlier"
	summaryRotationWindow      = "Bipsync Rotation Window Covers The Token Lifetime"
	summaryPreferWriteOnly     = "Available Write-Only Attribute Alternative"
	summaryTokenExpiringInRun  = "Bipsync Access Token Expiring During Run"
	summaryFileStoreOnCI       = "Bipsync File Token Store On A CI Runner"
	summaryTokenNotCached      = "Bipsync Token Not Cached"
	summaryShorterThanValidity = "Bipsync Token Shorter Than min_validity"
	summaryPromiseBroken       = "Bipsync Access Token Revoked Early"
	summaryNoClaims            = "Bipsync Chain Shared Without Claims"
	summaryGrantRecovered      = "Bipsync Grant Recovered From Journal"
	summaryJournalNotWritten   = "Bipsync Grant Journal Not Written"
)

// allSummaries is every summary constant above: the list the runbook test walks.
var allSummaries = []string{
	summaryReauth, summaryOutcomeUnknown, summaryIncomplete, summaryInvalidClient, summaryUnavailable,
	summaryCertificate, summaryRejected, summaryScopeConflict, summaryNoNarrowing, summaryStoreRequired, summarySaveFailed,
	summaryStoreUnreadable, summaryStoreError, summaryScopeNotGranted, summaryMinValidity,

	summaryMissingEndpoint, summaryConflictingEndpoint, summaryMissingClientID, summaryMissingStoreCommand,
	summaryStoreSettingUnused,
	summaryUnknownTenant, summaryInvalidTenant, summaryUnknownBaseURL, summaryInvalidBaseURL, summaryUnknownClientID,
	summaryInvalidClientID, summaryUnknownClientSecret, summaryUnknownRequestTimeout, summaryInvalidRequestTimeout,
	summaryUnknownRequestEncoding, summaryInvalidRequestEncoding, summaryUnknownRefreshLifetime,
	summaryInvalidRefreshLifetime, summaryUnknownStoreSetting, summaryInvalidStoreSetting, summaryInvalidStore,
	summaryInvalidAttribute, summaryInvalidProviderSettings,

	summaryMissingRefreshToken, summaryMissingClientSecret, summaryConflictingGrant, summaryMissingSeedVersion,

	summaryUnconfigured, summaryUnexpectedData,

	summaryChainExpiringSoon, summaryChainNarrowed, summaryChainDead, summaryRotationWindow, summaryPreferWriteOnly,
	summaryTokenExpiringInRun, summaryFileStoreOnCI, summaryTokenNotCached, summaryShorterThanValidity,
	summaryPromiseBroken, summaryGrantRecovered, summaryJournalNotWritten, summaryNoClaims,
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

// failureContext is what a diagnostic needs to know of the provider beyond the error itself.
type failureContext struct {
	clientID string
	steps    reseedSteps
	encoding bipsync.Encoding
	// noSecret tells that no client_secret was configured, so none was sent.
	noSecret bool
}

// tokenErrorDiagnostic turns a failure of the token source into one diagnostic: a stable summary, and a detail that
// says what happened, the likely cause, what to do, then the facts. It never includes a token, secret or raw body.
func tokenErrorDiagnostic(err error, fc failureContext) (summary, detail string) {
	var be *bipsync.Error
	var conflict *tokensource.ScopeConflictError
	var narrowing *tokensource.NarrowingError
	var saveErr *tokensource.SaveError
	var storeErr *tokensource.StoreError
	var incomplete *tokensource.IncompleteAnswerError
	var minValidity *tokensource.MinValidityError
	var spent *tokensource.ChainSpentError
	switch {
	case errors.As(err, &spent) && spent.Known && spent.Death != nil:
		return summaryReauth, knownDeadDetail(spent, fc)
	case errors.As(err, &incomplete):
		return summaryIncomplete, "Bipsync exchanged the refresh token, so the old one is revoked, but its answer had no " +
			"usable access token. The new refresh token was kept in the " + incomplete.Kept + ", so the chain is intact: " +
			"run again, and the next use exchanges it." + facts(err)
	case bipsync.ReauthorizationCause(err) == bipsync.CauseScope:
		return summaryScopeNotGranted, scopeDetail(err, fc)
	case bipsync.NeedsReauthorization(err):
		return summaryReauth, reauthDetail(err, fc)
	case fc.noSecret && bipsync.MissingParameter(err) == "client_secret":
		return summaryMissingClientSecret, missingSecretDetail(err, fc)
	case bipsync.IsInvalidClient(err):
		return summaryInvalidClient, "Bipsync did not accept the client credentials, so no token was exchanged and the refresh " +
			"token (if any) is still valid. Check client_id and client_secret (or BIPSYNC_CLIENT_ID and BIPSYNC_CLIENT_SECRET) " +
			"against the Bipsync OAuth application; a public application takes no client_secret, and the client_credentials " +
			"grant needs a confidential one." + facts(err)
	case fc.encoding == bipsync.EncodingJSON && errors.As(err, &be) && be.Code == "unsupported_grant_type":
		// league reads only a parsed form body: behind a front end that does not decode JSON, a JSON body arrives empty
		// and league misses grant_type. Nothing was consumed.
		return summaryRejected, "Bipsync did not find the grant type in the request, which is what it answers when it " +
			"cannot read a JSON body. Nothing was exchanged: the refresh token is still valid. Set request_encoding = \"form\" " +
			"(or unset it, or unset BIPSYNC_REQUEST_ENCODING), then run again." + facts(err)
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
	case bipsync.IsHostNotFound(err):
		return summaryUnavailable, "The token endpoint's host name does not resolve, so nothing was sent and the refresh token " +
			"is still valid. Check client (the tenant name, as in https://{client}-api.bipsync.com) or base_url (and the " +
			"BIPSYNC_CLIENT and BIPSYNC_BASE_URL environment variables) for a typo, then this machine's DNS." + facts(err)
	case bipsync.IsRetryableLater(err):
		return summaryUnavailable, "The token request did not reach Bipsync, or Bipsync asked the provider to come back later, " +
			"and the bounded retries ran out. Nothing was exchanged: the refresh token is still valid. Check the network path to " +
			"the token endpoint, and client or base_url, then run again." + facts(err)
	case errors.As(err, &conflict):
		return summaryScopeConflict, scopeConflictDetail(conflict)
	case errors.As(err, &narrowing):
		return summaryNoNarrowing, narrowingDetail(narrowing.Held, narrowing.Requested)
	case errors.As(err, &minValidity):
		return summaryMinValidity, fmt.Sprintf("min_validity (%s) is not shorter than the lifetime of the access tokens Bipsync "+
			"issues for this chain (%s), so no token can ever meet it: every use would exchange the chain again and revoke the "+
			"token handed out before. Nothing was exchanged. Lower min_validity below %s (the default is %s).",
			minValidity.MinValidity, minValidity.Lifetime, minValidity.Lifetime, defaultMinValidity)
	case errors.Is(err, tokensource.ErrStoreRequired):
		return summaryStoreRequired, "The refresh_token grant exchanges the refresh token for a new one and Bipsync revokes the " +
			"old one, but the token store is \"none\", so the new refresh token would be kept nowhere and the chain would die " +
			"with this run. Use the file store (the default), the command or postgres store, or keep the chain in a " +
			"bipsync_refresh_grant resource instead."
	case errors.As(err, &saveErr):
		return summarySaveFailed, saveDetail(saveErr)
	case errors.Is(err, tokenstore.ErrCorrupt):
		return summaryStoreUnreadable, "The token store holds a record for this chain that cannot be read with this refresh " +
			"token: it is damaged, or was written for another chain. The provider leaves it alone, because it may hold the only " +
			"live refresh token of the chain, and exchanges nothing. Move the record aside (the detail below says where) if you " +
			"are sure it is dead, or restore it from a backup.\n\nCause: " + err.Error()
	case errors.As(err, &storeErr) && storeErr.BeforeFirstExchange:
		return summaryStoreError, "The token store would not take this chain's first record, so the provider did not exchange " +
			"the refresh token: it is still valid, and nothing was consumed. A store that cannot be written would lose the chain " +
			"after its first exchange. Fix the token store (permissions to write the secret or the directory, disk space, the " +
			"command's exit status, the database grants), then run again.\n\nCause: " + err.Error()
	case errors.As(err, &storeErr):
		return summaryStoreError, "The token store could not be used, so nothing was exchanged. Check the token_store " +
			"configuration, then run again.\n\nCause: " + err.Error()
	case errors.As(err, &be):
		return summaryRejected, "Bipsync refused the token request. Nothing was exchanged." + facts(err)
	default:
		return summaryRejected, "The token request failed. Cause: " + err.Error()
	}
}

func reauthDetail(err error, fc failureContext) string {
	cause := bipsync.ReauthorizationCause(err)
	what := reauthCauses[cause]
	if what == "" {
		what = reauthCauses[bipsync.CauseInvalid]
	}
	var spent *tokensource.ChainSpentError
	if errors.As(err, &spent) {
		switch {
		case spent.OtherRunnerSeen:
			what += fmt.Sprintf(" Another runner used this chain during this run (the token store's record changed), and the "+
				"record the store holds now was refused too; the store was watched for %s for a newer one.", spent.Waited)
		case spent.Waited > 0:
			what += fmt.Sprintf(" No other runner was seen using the chain: the token store was watched for %s for a newer "+
				"record, and none came.", spent.Waited)
		}
		if spent.ClaimHolderDied {
			what += fmt.Sprintf(" Another runner (process %s) claimed the chain's head, and its claim was seen unchanged "+
				"from %s for its time to live (%s): this run took the claim over, and Bipsync refused the head. The other "+
				"runner exchanged it and stopped before saving the new refresh token, which was lost with it.",
				spent.ClaimHolder, spent.ClaimSeenAt.UTC().Format(time.RFC3339), spent.ClaimTTL)
		}
		if !spent.LastRotation.IsZero() {
			what += fmt.Sprintf(" The store's record is generation %d, last rotated at %s.", spent.Generation,
				spent.LastRotation.UTC().Format(time.RFC3339))
		}
		what = spentNotes(spent, what)
	}
	next := "The refresh chain cannot be used again; a person must authorize anew:"
	if cause == bipsync.CauseNotLinked || cause == bipsync.CauseUndecryptable {
		// Bipsync refuses these before looking at the chain, so nothing was consumed: fixing the input may be enough.
		next = "Bipsync consumed nothing: if the right value is at hand (the application's client_id, or the seed copied " +
			"again whole), use it and run again. Otherwise a person must authorize anew:"
	}
	return what + "\n\n" + next + "\n" + authorizeAnew(fc.clientID, "every scope this configuration asks for", fc.steps) + facts(err)
}

// scopeDetail explains invalid_scope: Bipsync checks scopes before it revokes anything, so the chain is intact and the
// remedy is the scopes argument; only a scope the user never consented to needs a new authorization.
func scopeDetail(err error, fc failureContext) string {
	var be *bipsync.Error
	scope := "one of the requested scopes"
	if errors.As(err, &be) && bipsync.ScopeFromHint(be.Hint) != "" {
		scope = "the scope " + bipsync.ScopeFromHint(be.Hint)
	}
	return "Bipsync refused " + scope + " for this refresh chain: it is unknown (a typo?), or the chain holds no consent " +
		"for it. Bipsync checks scopes before it revokes anything, so nothing was consumed and the refresh token is still " +
		"valid.\n\nFix scopes: remove " + scope + ", or ask only for scopes the chain holds (unset scopes asks for all of " +
		"them), then run again. A chain keeps the scopes the user consented to, narrowed by any exchange that asked for " +
		"fewer; only if this configuration truly needs a scope the chain lacks must a person authorize anew:\n" +
		authorizeAnew(fc.clientID, "every scope this configuration asks for", fc.steps) + facts(err)
}

func scopeConflictDetail(conflict *tokensource.ScopeConflictError) string {
	return conflict.Error() + ".\n\nEach exchange revokes the access token handed out before it, so two consumers of one " +
		"chain that ask for different scopes would revoke each other's token on every open, and asking for fewer scopes " +
		"narrows the chain for good (Bipsync narrows the new refresh token too). Nothing was exchanged. Ask for the same " +
		"scopes everywhere this refresh token is used, or give each scope set a chain of its own (its own authorization)."
}

func saveDetail(saveErr *tokensource.SaveError) string {
	detail := "Bipsync exchanged the refresh token and revoked the old one, but the new refresh token could not be saved in " +
		"the token store, even after retrying. The provider keeps it in memory and saves it again before the next use in this " +
		"run, and hands out no token until it is saved."
	if saveErr.Rescue != "" {
		detail += "\n\nThe new record is kept, encrypted, in the rescue file " + saveErr.Rescue + ". Once the token store " +
			"works again (fix its permissions, disk space, the command's exit status or the database), put the record back " +
			"with the same configuration in the environment (the BIPSYNC_* variables of the token store):\n\n" +
			"    terraform-provider-bipsync restore " + saveErr.Rescue + "\n\nThen run again. Until then, the chain lives only " +
			"in that file."
	} else {
		detail += " No rescue file could be written either"
		if saveErr.RescueErr != nil {
			detail += " (" + saveErr.RescueErr.Error() + ")"
		}
		detail += ": if this run ends before the store works again, the chain is lost and needs a new authorization."
	}
	return detail + "\n\nCause: " + saveErr.Err.Error()
}

// authorizeAnew is the human step every reauthorization diagnostic ends with: a new authorization, then a new seed.
// It names the provider binary's own command for the authorization (internal/cli).
func authorizeAnew(clientID, consent string, steps reseedSteps) string {
	id := ""
	if clientID != "" {
		id = " -client-id " + clientID
	}
	return "1. Get a new refresh token: run `terraform-provider-bipsync authorize" + id + " -out FILE` (the device " +
		"flow; add -pkce for the authorization code grant with PKCE), asking for and consenting to " + consent +
		". The guide \"Getting a refresh token\" has the details.\n2. " + string(steps)
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
func addTokenError(diags *diag.Diagnostics, err error, fc failureContext) {
	summary, detail := tokenErrorDiagnostic(err, fc)
	var narrowing *tokensource.NarrowingError
	if bipsync.ReauthorizationCause(err) == bipsync.CauseScope || errors.As(err, &narrowing) {
		diags.AddAttributeError(path.Root("scopes"), summary, detail)
		return
	}
	diags.AddError(summary, detail)
}

func addWarnings(diags *diag.Diagnostics, warnings []tokensource.Warning) {
	for _, w := range warnings {
		diags.AddWarning(warningText(w))
	}
}

// warningText words a warning of the token source.
func warningText(w tokensource.Warning) (summary, detail string) {
	switch w.Kind {
	case tokensource.WarnNarrowed:
		return summaryChainNarrowed, fmt.Sprintf("The chain held scopes %s and was exchanged for %s. Bipsync narrows the new "+
			"refresh token too: asking this chain for a scope outside %s later fails, and only a new authorization can widen "+
			"it again.", tokensource.DescribeScopes(w.Scopes), tokensource.DescribeScopes(w.Requested),
			tokensource.DescribeScopes(w.Requested))
	case tokensource.WarnShortLifetime:
		return summaryShorterThanValidity, fmt.Sprintf("Bipsync issued an access token valid until %s, which is less than "+
			"min_validity (%s) from now: the answer came late, or the clocks disagree. It is handed out. Should Bipsync's "+
			"tokens live no longer than min_validity, later runs fail with %q before exchanging (every use would exchange the "+
			"chain again and revoke the token handed out before): then lower min_validity below their lifetime (Bipsync "+
			"issues 1-hour tokens).", w.ExpiresAt.UTC().Format(time.RFC3339), w.MinValidity, summaryMinValidity)
	case tokensource.WarnNotCached:
		return summaryTokenNotCached, fmt.Sprintf("The client-credentials token could not be saved in the %s, so the next run "+
			"asks for a new one. Nothing is lost. Cause: %v", w.Store, w.Err)
	case tokensource.WarnPromiseBroken:
		why := fmt.Sprintf("this request needed a token valid for %s", w.MinValidity)
		if w.Forced {
			why = "a rotation was asked for"
		}
		return summaryPromiseBroken, fmt.Sprintf("This exchange revoked the access token that was handed out at %s with "+
			"min_validity %s, and so promised to stay valid until %s, because %s. A consumer that still uses that token "+
			"(another run, another runner, or another resource of this run) now gets 401 from Bipsync. Consumers of one chain "+
			"with different min_validity cut each other's tokens off: use the same min_validity everywhere this chain is "+
			"used, or give the consumer that needs a longer one a chain of its own.",
			w.PromisedAt.UTC().Format(time.RFC3339), w.PromisedMinValidity, w.PromisedUntil.UTC().Format(time.RFC3339), why)
	case tokensource.WarnNoClaims:
		return summaryNoClaims, fmt.Sprintf("Another runner used this refresh chain while this run did, through the %s, "+
			"which has no conditional writes (a command helper at protocol 1): another runner uses this chain through a "+
			"store without conditional writes, so two runners can exchange one head at the same moment. Bipsync refuses the "+
			"second exchange and the provider recovers, but a server with replay detection (RFC 9700 section 4.14.2) would "+
			"revoke the whole chain instead, and a person would have to authorize anew. Use a store where runners claim a "+
			"head before exchanging it: a command helper of protocol 2, s3, or postgres. This is said once per provider "+
			"process.", w.Store)
	default:
		return summaryRejected, fmt.Sprintf("The provider has a warning it cannot word (kind %d). This is a bug in the "+
			"provider: please report it.", w.Kind)
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
