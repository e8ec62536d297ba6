package main

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	eschema "github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	pschema "github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	rschema "github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// Canned results. The token values are not secrets: nothing accepts them.
const (
	cannedAccessToken  = "floor-access-token"
	cannedRefreshToken = "floor-refresh-token"
	cannedTokenType    = "Bearer"
	cannedID           = "floor"
	cannedTTL          = time.Hour
	cannedChainLife    = 720 * time.Hour
)

var (
	_ provider.ProviderWithEphemeralResources = (*floorProvider)(nil)
	_ resource.Resource                       = (*grantResource)(nil)
	_ ephemeral.EphemeralResource             = (*tokenEphemeralResource)(nil)
)

func newProvider() provider.Provider { return &floorProvider{} }

type floorProvider struct{}

func (p *floorProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "bipsync"
	resp.Version = "floor"
}

// Schema has the Bipsync provider's attributes and block so that the same provider block is accepted; nothing
// reads them.
func (p *floorProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = pschema.Schema{
		Attributes: map[string]pschema.Attribute{
			"client":                 pschema.StringAttribute{Optional: true},
			"base_url":               pschema.StringAttribute{Optional: true},
			"client_id":              pschema.StringAttribute{Optional: true},
			"client_secret":          pschema.StringAttribute{Optional: true, Sensitive: true},
			"request_timeout":        pschema.StringAttribute{Optional: true},
			"request_encoding":       pschema.StringAttribute{Optional: true},
			"refresh_token_lifetime": pschema.StringAttribute{Optional: true},
		},
		Blocks: map[string]pschema.Block{
			"token_store": pschema.SingleNestedBlock{
				Attributes: map[string]pschema.Attribute{
					"backend":          pschema.StringAttribute{Optional: true},
					"path":             pschema.StringAttribute{Optional: true},
					"command":          pschema.ListAttribute{Optional: true, ElementType: types.StringType},
					"command_protocol": pschema.StringAttribute{Optional: true},
					"adopt_wait":       pschema.StringAttribute{Optional: true},
					"conn_str":         pschema.StringAttribute{Optional: true, Sensitive: true},
					"schema_name":      pschema.StringAttribute{Optional: true},
					"bucket":           pschema.StringAttribute{Optional: true},
					"key_prefix":       pschema.StringAttribute{Optional: true},
					"region":           pschema.StringAttribute{Optional: true},
					"endpoints": pschema.SingleNestedAttribute{Optional: true, Attributes: map[string]pschema.Attribute{
						"s3": pschema.StringAttribute{Optional: true},
					}},
					"use_path_style": pschema.BoolAttribute{Optional: true},
					"profile":        pschema.StringAttribute{Optional: true},
				},
			},
		},
	}
}

// Configure does nothing: the floor has no client to build.
func (p *floorProvider) Configure(context.Context, provider.ConfigureRequest, *provider.ConfigureResponse) {
}

func (p *floorProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{func() resource.Resource { return &grantResource{} }}
}

func (p *floorProvider) EphemeralResources(context.Context) []func() ephemeral.EphemeralResource {
	return []func() ephemeral.EphemeralResource{func() ephemeral.EphemeralResource { return &tokenEphemeralResource{} }}
}

func (p *floorProvider) DataSources(context.Context) []func() datasource.DataSource { return nil }

// grantResource has bipsync_refresh_grant's schema, with the default and the plan modifier that shape its plans,
// but no validators and no ModifyPlan: those are work the floor leaves out.
type grantResource struct{}

type grantModel struct {
	ID                    types.String `tfsdk:"id"`
	RefreshTokenWO        types.String `tfsdk:"refresh_token_wo"`
	RefreshTokenWOVersion types.Int64  `tfsdk:"refresh_token_wo_version"`
	SeedRefreshToken      types.String `tfsdk:"seed_refresh_token"`
	Scopes                types.Set    `tfsdk:"scopes"`
	RotateBefore          types.String `tfsdk:"rotate_before"`
	Keepers               types.Map    `tfsdk:"keepers"`
	AllowNarrowing        types.Bool   `tfsdk:"allow_narrowing"`
	AccessToken           types.String `tfsdk:"access_token"`
	TokenType             types.String `tfsdk:"token_type"`
	ExpiresAt             types.String `tfsdk:"expires_at"`
	RefreshToken          types.String `tfsdk:"refresh_token"`
	RefreshTokenExpiresAt types.String `tfsdk:"refresh_token_expires_at"`
	RotatedAt             types.String `tfsdk:"rotated_at"`
}

func (r *grantResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_refresh_grant"
}

func (r *grantResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = rschema.Schema{
		Attributes: map[string]rschema.Attribute{
			"id": rschema.StringAttribute{
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"refresh_token_wo":         rschema.StringAttribute{Optional: true, WriteOnly: true, Sensitive: true},
			"refresh_token_wo_version": rschema.Int64Attribute{Optional: true},
			"seed_refresh_token":       rschema.StringAttribute{Optional: true, Sensitive: true},
			"scopes":                   rschema.SetAttribute{Optional: true, ElementType: types.StringType},
			"rotate_before": rschema.StringAttribute{
				Optional: true,
				Computed: true,
				Default:  stringdefault.StaticString("15m"),
			},
			"keepers":                  rschema.MapAttribute{Optional: true, ElementType: types.StringType},
			"allow_narrowing":          rschema.BoolAttribute{Optional: true},
			"access_token":             rschema.StringAttribute{Computed: true, Sensitive: true},
			"token_type":               rschema.StringAttribute{Computed: true},
			"expires_at":               rschema.StringAttribute{Computed: true},
			"refresh_token":            rschema.StringAttribute{Computed: true, Sensitive: true},
			"refresh_token_expires_at": rschema.StringAttribute{Computed: true},
			"rotated_at":               rschema.StringAttribute{Computed: true},
		},
	}
}

func (r *grantResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m grantModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	m.ID = types.StringValue(cannedID)
	cannedGrant(&m, time.Now())
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// Read trusts state, as bipsync_refresh_grant does.
func (r *grantResource) Read(context.Context, resource.ReadRequest, *resource.ReadResponse) {}

func (r *grantResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m grantModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	cannedGrant(&m, time.Now())
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// Delete has nothing to release, as bipsync_refresh_grant has not.
func (r *grantResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {}

func cannedGrant(m *grantModel, now time.Time) {
	m.AccessToken = types.StringValue(cannedAccessToken)
	m.TokenType = types.StringValue(cannedTokenType)
	m.ExpiresAt = types.StringValue(now.Add(cannedTTL).UTC().Format(time.RFC3339))
	m.RefreshToken = types.StringValue(cannedRefreshToken)
	m.RefreshTokenExpiresAt = types.StringValue(now.Add(cannedChainLife).UTC().Format(time.RFC3339))
	m.RotatedAt = types.StringValue(now.UTC().Format(time.RFC3339))
}

// tokenEphemeralResource has the ephemeral bipsync_access_token's schema and hands out a canned token.
type tokenEphemeralResource struct{}

type tokenModel struct {
	GrantType             types.String `tfsdk:"grant_type"`
	RefreshToken          types.String `tfsdk:"refresh_token"`
	Scopes                types.Set    `tfsdk:"scopes"`
	MinValidity           types.String `tfsdk:"min_validity"`
	AllowNarrowing        types.Bool   `tfsdk:"allow_narrowing"`
	AccessToken           types.String `tfsdk:"access_token"`
	TokenType             types.String `tfsdk:"token_type"`
	ExpiresAt             types.String `tfsdk:"expires_at"`
	ExpiresIn             types.Int64  `tfsdk:"expires_in"`
	RefreshTokenExpiresAt types.String `tfsdk:"refresh_token_expires_at"`
}

func (e *tokenEphemeralResource) Metadata(_ context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_access_token"
}

func (e *tokenEphemeralResource) Schema(_ context.Context, _ ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	resp.Schema = eschema.Schema{
		Attributes: map[string]eschema.Attribute{
			"grant_type":               eschema.StringAttribute{Optional: true},
			"refresh_token":            eschema.StringAttribute{Optional: true, Sensitive: true},
			"scopes":                   eschema.SetAttribute{Optional: true, Computed: true, ElementType: types.StringType},
			"min_validity":             eschema.StringAttribute{Optional: true},
			"allow_narrowing":          eschema.BoolAttribute{Optional: true},
			"access_token":             eschema.StringAttribute{Computed: true, Sensitive: true},
			"token_type":               eschema.StringAttribute{Computed: true},
			"expires_at":               eschema.StringAttribute{Computed: true},
			"expires_in":               eschema.Int64Attribute{Computed: true},
			"refresh_token_expires_at": eschema.StringAttribute{Computed: true},
		},
	}
}

func (e *tokenEphemeralResource) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	var m tokenModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	now := time.Now()
	m.AccessToken = types.StringValue(cannedAccessToken)
	m.TokenType = types.StringValue(cannedTokenType)
	m.ExpiresAt = types.StringValue(now.Add(cannedTTL).UTC().Format(time.RFC3339))
	m.ExpiresIn = types.Int64Value(int64(cannedTTL / time.Second))
	m.RefreshTokenExpiresAt = types.StringValue(now.Add(cannedChainLife).UTC().Format(time.RFC3339))
	if m.Scopes.IsUnknown() {
		m.Scopes = types.SetNull(types.StringType)
	}
	resp.Diagnostics.Append(resp.Result.Set(ctx, &m)...)
}
