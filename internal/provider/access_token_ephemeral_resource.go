package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

var (
	_ ephemeral.EphemeralResourceWithConfigure = (*accessTokenEphemeralResource)(nil)
	_ ephemeral.EphemeralResourceWithRenew     = (*accessTokenEphemeralResource)(nil)
	_ ephemeral.EphemeralResourceWithClose     = (*accessTokenEphemeralResource)(nil)
)

// Private-data keys under which Open leaves the chain's key for Close, and the token's expiry for Renew.
const (
	privateChainKey = "chain"
	privateRenewKey = "renew"
)

// renewLead is how long before the handed-out token expires Terraform calls Renew, so a run that outlives its token
// is told so while it still runs.
const renewLead = 2 * time.Minute

// NewAccessTokenEphemeralResource returns the ephemeral bipsync_access_token.
func NewAccessTokenEphemeralResource() ephemeral.EphemeralResource {
	return &accessTokenEphemeralResource{}
}

type accessTokenEphemeralResource struct {
	data *providerData
}

type renewPrivate struct {
	ExpiresAt time.Time `json:"expires_at"`
}

func (e *accessTokenEphemeralResource) Metadata(_ context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_access_token"
}

func (e *accessTokenEphemeralResource) Schema(_ context.Context, _ ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Hands out a Bipsync access token without ever writing it to state or plan. Terraform opens an " +
			"ephemeral resource in every plan and every apply; the token is reused from the provider's token store while it " +
			"has at least `min_validity` left, so a plan and an apply within the token's life cost one exchange in all. " +
			"The rotated refresh token is saved in the token store before the access token is handed out. Requires " +
			"Terraform 1.10 or OpenTofu 1.11 or later.",
		Attributes: map[string]schema.Attribute{
			"grant_type":               schema.StringAttribute{Optional: true, MarkdownDescription: descGrantType, Validators: grantTypeValidators()},
			"refresh_token":            schema.StringAttribute{Optional: true, Sensitive: true, MarkdownDescription: descRefreshToken},
			"scopes":                   schema.SetAttribute{Optional: true, Computed: true, ElementType: types.StringType, MarkdownDescription: descScopes, Validators: scopesValidators()},
			"allow_narrowing":          schema.BoolAttribute{Optional: true, MarkdownDescription: descAllowNarrowing},
			"min_validity":             schema.StringAttribute{Optional: true, CustomType: timetypes.GoDurationType{}, MarkdownDescription: descMinValidity, Validators: minValidityValidators()},
			"access_token":             schema.StringAttribute{Computed: true, Sensitive: true, MarkdownDescription: descAccessToken},
			"token_type":               schema.StringAttribute{Computed: true, MarkdownDescription: descTokenType},
			"expires_at":               schema.StringAttribute{Computed: true, CustomType: timetypes.RFC3339Type{}, MarkdownDescription: descExpiresAt},
			"expires_in":               schema.Int64Attribute{Computed: true, MarkdownDescription: descExpiresIn},
			"refresh_token_expires_at": schema.StringAttribute{Computed: true, CustomType: timetypes.RFC3339Type{}, MarkdownDescription: descRTExpiresAt},
		},
	}
}

func (e *accessTokenEphemeralResource) Configure(_ context.Context, req ephemeral.ConfigureRequest, resp *ephemeral.ConfigureResponse) {
	e.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (e *accessTokenEphemeralResource) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	if e.data == nil {
		resp.Diagnostics.AddError(summaryUnconfigured,
			"This is a bug in the Bipsync provider, or in the engine: the ephemeral resource was opened before the provider "+
				"was configured. Please report it.")
		return
	}
	var m accessTokenModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	key := fetchAccessToken(ctx, e.data, &m, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	if key != "" {
		b, _ := json.Marshal(string(key))
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateChainKey, b)...)
	}
	resp.Diagnostics.Append(resp.Result.Set(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	expiresAt, diags := m.ExpiresAt.ValueRFC3339Time()
	resp.Diagnostics.Append(diags...)
	if renewAt := expiresAt.Add(-renewLead); renewAt.After(e.data.now()) {
		// Renew cannot hand out a new token (the protocol allows no new result); it only warns that the token
		// handed out at open is about to expire while the run still uses it.
		resp.RenewAt = renewAt
		b, _ := json.Marshal(renewPrivate{ExpiresAt: expiresAt})
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateRenewKey, b)...)
	}
}

// Renew warns that the token handed out at Open expires while the run goes on. Terraform before 1.17 drops the
// diagnostics of Renew, so nothing a run must see is said only here: the chain's end is warned about at Open
// (warnChainExpiring).
func (e *accessTokenEphemeralResource) Renew(ctx context.Context, req ephemeral.RenewRequest, resp *ephemeral.RenewResponse) {
	b, diags := req.Private.GetKey(ctx, privateRenewKey)
	resp.Diagnostics.Append(diags...)
	var p renewPrivate
	if len(b) == 0 || json.Unmarshal(b, &p) != nil {
		return
	}
	resp.Diagnostics.AddWarning(summaryTokenExpiringInRun,
		fmt.Sprintf("The access token handed out when this run opened bipsync_access_token expires at %s, and the run is still "+
			"going. An ephemeral resource cannot hand out a new value during a run, so consumers configured with it will be "+
			"refused after that time. Split long applies, or raise min_validity so each run starts with a fresher token.",
			p.ExpiresAt.UTC().Format(time.RFC3339)))
}

// Close tells the token source that this consumer is done with its token, so that the promise made to it (the token
// stays valid for min_validity) no longer holds back or warns about an exchange. A failure costs nothing but a lease
// that expires by itself, so it is only logged.
func (e *accessTokenEphemeralResource) Close(ctx context.Context, req ephemeral.CloseRequest, resp *ephemeral.CloseResponse) {
	if e.data == nil {
		return
	}
	b, diags := req.Private.GetKey(ctx, privateChainKey)
	resp.Diagnostics.Append(diags...)
	var key string
	if len(b) == 0 || json.Unmarshal(b, &key) != nil {
		return
	}
	if err := e.data.source.Release(ctx, tokenstore.Key(key)); err != nil {
		tflog.Debug(ctx, "bipsync lease not released; it expires by itself", map[string]any{"cause": err.Error()})
	}
}
