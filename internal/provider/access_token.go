package provider

import (
	"context"
	"os"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/bipsync/terraform-provider-bipsync/internal/settings"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// defaultMinValidity is how long a handed-out access token must stay valid at least. Bipsync issues 1-hour tokens, so
// 15 minutes lets a stored token serve the plan and apply of one run, and several runs within 45 minutes, with one
// exchange, while every consumer still gets a token that outlives a long apply step.
const defaultMinValidity = 15 * time.Minute

// accessTokenModel is shared by the ephemeral resource and the data source: same inputs, same results.
type accessTokenModel struct {
	GrantType             types.String         `tfsdk:"grant_type"`
	RefreshToken          types.String         `tfsdk:"refresh_token"`
	Scopes                types.Set            `tfsdk:"scopes"`
	AllowNarrowing        types.Bool           `tfsdk:"allow_narrowing"`
	MinValidity           timetypes.GoDuration `tfsdk:"min_validity"`
	AccessToken           types.String         `tfsdk:"access_token"`
	TokenType             types.String         `tfsdk:"token_type"`
	ExpiresAt             timetypes.RFC3339    `tfsdk:"expires_at"`
	ExpiresIn             types.Int64          `tfsdk:"expires_in"`
	RefreshTokenExpiresAt timetypes.RFC3339    `tfsdk:"refresh_token_expires_at"`
}

// Attribute descriptions shared by the ephemeral resource and the data source.
const (
	descGrantType = "OAuth grant: `refresh_token` (the default) exchanges the refresh chain seeded by `refresh_token`; " +
		"`client_credentials` asks for a team token with the provider's `client_id` and `client_secret` (a confidential " +
		"application; include a `team_{id}` scope in `scopes`)."
	descRefreshToken = "Seed of the refresh chain: a refresh token from an authorization (`terraform-provider-bipsync authorize` gets " +
		"one). Sensitive. Falls back to " +
		"the `BIPSYNC_REFRESH_TOKEN` environment variable. The chain's current head lives in the token store once the seed has " +
		"been exchanged, so the seed is needed only to find and decrypt the chain: keep it the same while the chain is " +
		"alive. A different seed starts a different chain. The chain head itself is never handed out."
	descScopes = "Scopes to ask for. Unset asks for the chain's current scopes (the user's original consent until narrowed). " +
		"Asking for fewer scopes than the chain holds would narrow the chain for good: Bipsync narrows the new refresh token " +
		"too, and only a new authorization can widen it. So when the chain's scopes are known (a chain whose seed " +
		"`terraform-provider-bipsync authorize -store` saved, or one an earlier exchange asked for explicit scopes), such a " +
		"request fails before anything is exchanged unless `allow_narrowing` is true. When they are not known (a seed from " +
		"elsewhere, before any exchange asked for explicit scopes), the provider cannot tell, and the first exchange that " +
		"asks for fewer narrows the chain without a word. Asking one chain for different scopes from two places in one " +
		"provider configuration's run is an error."
	descAllowNarrowing = "Whether an exchange may narrow the chain to `scopes` when the chain is known to hold more. " +
		"Defaults to false: such a request fails with `Bipsync Scope Narrowing Not Allowed` before anything is exchanged, " +
		"because the narrowing is for good and every other consumer of the chain loses the other scopes too. Set it to " +
		"true only when this chain is meant to hold fewer scopes from now on; a consumer that needs fewer scopes while " +
		"others need more should get a chain of its own (its own authorization). It has no effect while the chain's " +
		"scopes are not known (see `scopes`)."
	descMinValidity = "How long the access token must stay valid at least, as a Go duration. A stored token with at least this " +
		"much life left is handed out again without an exchange; otherwise the chain is exchanged. The hand-out is recorded " +
		"as a promise until the consumer is closed, and an exchange that breaks a promise still running warns. Defaults to " +
		"`15m`. Must be shorter than the token lifetime (Bipsync issues 1-hour tokens). When Bipsync issues tokens that " +
		"live no longer than this, the first use fails, in a plan as in an apply, with an error that names the lifetime: " +
		"every later use would have to exchange again and revoke the token handed out before, so a plan that passed would " +
		"have an apply that fails. The exchange that found it is kept in the token store; lower `min_validity` and run " +
		"again. A token handed out only a little short of this (a slow answer) is handed out with a warning."
	descAccessToken = "The access token, for an `Authorization: Bearer` header. Sensitive."
	descTokenType   = "Token type as Bipsync returned it (`Bearer`)."
	descExpiresAt   = "When the access token expires (RFC 3339, UTC)."
	descExpiresIn   = "Seconds from now until the access token expires."
	descRTExpiresAt = "When the refresh chain dies unless exchanged again: the last exchange plus the provider's " +
		"`refresh_token_lifetime` (RFC 3339). Null for `client_credentials`. A token handed out without an exchange from a " +
		"chain that ends within 7 days warns (Bipsync Refresh Chain Expiring Soon)."
)

func grantTypeValidators() []validator.String {
	return []validator.String{stringvalidator.OneOf(string(tokensource.GrantRefreshToken), string(tokensource.GrantClientCredentials))}
}

func minValidityValidators() []validator.String {
	return []validator.String{checkString("a duration that is not negative", settings.ValidateNonNegativeDuration)}
}

func scopesValidators() []validator.Set {
	return []validator.Set{
		setvalidator.SizeAtLeast(1),
		setvalidator.ValueStringsAre(checkString("a single OAuth scope", settings.ValidateScope)),
	}
}

// fetchAccessToken runs the token source for m and fills m's results. It is the whole of ephemeral Open and data
// source Read. It returns the chain's key, which the consumer hands to the source's Release when it is done ("" when
// there is nothing to release).
func fetchAccessToken(ctx context.Context, data *providerData, m *accessTokenModel, diags *diag.Diagnostics) tokenstore.Key {
	req, seed := accessTokenRequest(ctx, m, data, diags)
	if diags.HasError() {
		return ""
	}
	ctx = maskSecrets(ctx, seed, data.clientSecret)
	res, err := data.source.Token(ctx, req)
	if err != nil {
		addTokenError(diags, err, data.failureContext(reseedEphemeral))
		return ""
	}
	tflog.Debug(ctx, "bipsync access token ready", map[string]any{
		"grant_type": string(req.Grant),
		"exchanged":  res.Exchanged,
		"adopted":    res.Adopted,
		"generation": res.Generation,
		"expires_at": res.ExpiresAt.UTC().Format(time.RFC3339),
	})
	if req.Grant == tokensource.GrantRefreshToken && failShortLifetime(diags, res, req.MinValidity, data.now()) {
		// Nothing is handed out, so the promise the hand-out recorded ends now.
		if err := data.source.Release(ctx, res.Key); err != nil {
			tflog.Debug(ctx, "bipsync lease not released; it expires by itself", map[string]any{"cause": err.Error()})
		}
		return ""
	}
	addWarnings(diags, res.Warnings)
	warnChainExpiring(diags, res, data.now())
	if req.Grant == tokensource.GrantRefreshToken && data.store.Traits().Local {
		if runner, ok := detectThrowAwayRunner(os.Getenv); ok {
			diags.AddWarning(summaryFileStoreOnCI, fileStoreOnCIDetail(runner, data.store.Describe()))
		}
	}
	resultToAccessTokenModel(ctx, res, data.now(), m, diags)
	return res.Key
}

// accessTokenRequest turns the model into a token source request, applying defaults and the env fallback.
func accessTokenRequest(ctx context.Context, m *accessTokenModel, data *providerData, diags *diag.Diagnostics) (tokensource.Request, string) {
	req := tokensource.Request{Grant: tokensource.GrantRefreshToken, MinValidity: defaultMinValidity}
	if !m.GrantType.IsNull() {
		req.Grant = tokensource.Grant(m.GrantType.ValueString())
	}
	if !m.MinValidity.IsNull() {
		d, ds := m.MinValidity.ValueGoDuration() // not negative: the schema validator checks it
		diags.Append(ds...)
		req.MinValidity = d
	}
	if !m.Scopes.IsNull() {
		diags.Append(m.Scopes.ElementsAs(ctx, &req.Scopes, false)...)
	}
	req.AllowNarrowing = m.AllowNarrowing.ValueBool()
	switch req.Grant {
	case tokensource.GrantRefreshToken:
		seed := m.RefreshToken.ValueString()
		if m.RefreshToken.IsNull() {
			seed, _ = settings.Lookup(settings.EnvRefreshToken)
		}
		if seed == "" {
			diags.AddAttributeError(path.Root("refresh_token"), summaryMissingRefreshToken,
				"The refresh_token grant needs a seed: set refresh_token (for example from a variable marked sensitive) or the "+
					"BIPSYNC_REFRESH_TOKEN environment variable to a refresh token from an authorization: "+
					"`terraform-provider-bipsync authorize` gets one.")
		}
		req.RefreshToken = seed
		return req, seed
	case tokensource.GrantClientCredentials:
		if !m.RefreshToken.IsNull() {
			diags.AddAttributeError(path.Root("grant_type"), summaryConflictingGrant,
				"refresh_token is set but grant_type is client_credentials, which uses no refresh token. Remove one of them.")
		}
		if data.clientSecret == "" {
			diags.AddAttributeError(path.Root("grant_type"), summaryMissingClientSecret,
				"The client_credentials grant needs a confidential application: set client_secret in the provider block or the "+
					"BIPSYNC_CLIENT_SECRET environment variable.")
		}
	}
	return req, ""
}

func resultToAccessTokenModel(ctx context.Context, res *tokensource.Result, now time.Time, m *accessTokenModel, diags *diag.Diagnostics) {
	m.AccessToken = types.StringValue(res.AccessToken)
	m.TokenType = types.StringValue(res.TokenType)
	m.ExpiresAt = timetypes.NewRFC3339TimeValue(res.ExpiresAt.UTC())
	m.ExpiresIn = types.Int64Value(int64(res.ExpiresAt.Sub(now).Seconds()))
	if res.RefreshTokenExpiresAt.IsZero() {
		m.RefreshTokenExpiresAt = timetypes.NewRFC3339Null()
	} else {
		m.RefreshTokenExpiresAt = timetypes.NewRFC3339TimeValue(res.RefreshTokenExpiresAt.UTC())
	}
	if m.Scopes.IsNull() || m.Scopes.IsUnknown() {
		if res.Scopes == nil {
			m.Scopes = types.SetNull(types.StringType)
		} else {
			s, ds := types.SetValueFrom(ctx, types.StringType, res.Scopes)
			diags.Append(ds...)
			m.Scopes = s
		}
	}
}

// providerDataFrom converts the ProviderData handed to Configure. Nil means the provider is not configured yet
// (validation); any other type is a provider bug.
func providerDataFrom(v any, diags *diag.Diagnostics) *providerData {
	if v == nil {
		return nil
	}
	d, ok := v.(*providerData)
	if !ok {
		diags.AddError(summaryUnexpectedData,
			"This is a bug in the Bipsync provider: please report it. The provider handed over an unexpected type.")
		return nil
	}
	return d
}
