package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

var _ datasource.DataSourceWithConfigure = (*accessTokenDataSource)(nil)

// NewAccessTokenDataSource returns the bipsync_access_token data source.
func NewAccessTokenDataSource() datasource.DataSource {
	return &accessTokenDataSource{}
}

type accessTokenDataSource struct {
	data *providerData
}

func (d *accessTokenDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_access_token"
}

func (d *accessTokenDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Hands out a Bipsync access token through the same token source as the ephemeral resource, for " +
			"Terraform before 1.10 and OpenTofu before 1.11. **Its result is stored in state and in saved plan files**, access " +
			"token included (marked sensitive, but in clear in the state file). Prefer the `bipsync_access_token` ephemeral " +
			"resource wherever the engine supports it.",
		Attributes: map[string]schema.Attribute{
			"grant_type":               schema.StringAttribute{Optional: true, MarkdownDescription: descGrantType, Validators: grantTypeValidators()},
			"refresh_token":            schema.StringAttribute{Optional: true, Sensitive: true, MarkdownDescription: descRefreshToken + " A seed set here is stored in state with the rest of the data source; the `BIPSYNC_REFRESH_TOKEN` environment variable keeps it out."},
			"scopes":                   schema.SetAttribute{Optional: true, Computed: true, ElementType: types.StringType, MarkdownDescription: descScopes, Validators: scopesValidators()},
			"allow_narrowing":          schema.BoolAttribute{Optional: true, MarkdownDescription: descAllowNarrowing},
			"min_validity":             schema.StringAttribute{Optional: true, CustomType: timetypes.GoDurationType{}, MarkdownDescription: descMinValidity, Validators: minValidityValidators()},
			"access_token":             schema.StringAttribute{Computed: true, Sensitive: true, MarkdownDescription: descAccessToken + " Stored in state."},
			"token_type":               schema.StringAttribute{Computed: true, MarkdownDescription: descTokenType},
			"expires_at":               schema.StringAttribute{Computed: true, CustomType: timetypes.RFC3339Type{}, MarkdownDescription: descExpiresAt},
			"expires_in":               schema.Int64Attribute{Computed: true, MarkdownDescription: descExpiresIn},
			"refresh_token_expires_at": schema.StringAttribute{Computed: true, CustomType: timetypes.RFC3339Type{}, MarkdownDescription: descRTExpiresAt},
		},
	}
}

func (d *accessTokenDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *accessTokenDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	if d.data == nil {
		resp.Diagnostics.AddError(summaryUnconfigured,
			"This is a bug in the Bipsync provider, or in the engine: the data source was read before the provider was "+
				"configured. Please report it.")
		return
	}
	var m accessTokenModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// A data source has no Close: its consumers count as open for as long as this provider instance runs.
	fetchAccessToken(ctx, d.data, &m, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
