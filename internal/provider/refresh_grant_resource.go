package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/bipsync/terraform-provider-bipsync/internal/settings"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

var (
	_ resource.ResourceWithConfigure        = (*refreshGrantResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*refreshGrantResource)(nil)
	_ resource.ResourceWithConfigValidators = (*refreshGrantResource)(nil)
	_ resource.ResourceWithValidateConfig   = (*refreshGrantResource)(nil)
)

// defaultRotateBefore is the default rotation window. A grant whose access token has less than this left is rotated
// by the next apply, so a resource configured from access_token at apply time gets a token with at least as much life
// as a bipsync_access_token with its default min_validity.
const defaultRotateBefore = "15m"

// expiryWarningWindow is how long before the refresh chain dies the plan warns, naming the date.
const expiryWarningWindow = 7 * 24 * time.Hour

// NewRefreshGrantResource returns the bipsync_refresh_grant resource.
func NewRefreshGrantResource() resource.Resource {
	return &refreshGrantResource{}
}

type refreshGrantResource struct {
	data *providerData
}

type refreshGrantModel struct {
	ID                    types.String         `tfsdk:"id"`
	RefreshTokenWO        types.String         `tfsdk:"refresh_token_wo"`
	RefreshTokenWOVersion types.Int64          `tfsdk:"refresh_token_wo_version"`
	SeedRefreshToken      types.String         `tfsdk:"seed_refresh_token"`
	Scopes                types.Set            `tfsdk:"scopes"`
	AllowNarrowing        types.Bool           `tfsdk:"allow_narrowing"`
	RotateBefore          timetypes.GoDuration `tfsdk:"rotate_before"`
	Keepers               types.Map            `tfsdk:"keepers"`
	AccessToken           types.String         `tfsdk:"access_token"`
	TokenType             types.String         `tfsdk:"token_type"`
	ExpiresAt             timetypes.RFC3339    `tfsdk:"expires_at"`
	RefreshToken          types.String         `tfsdk:"refresh_token"`
	RefreshTokenExpiresAt timetypes.RFC3339    `tfsdk:"refresh_token_expires_at"`
	RotatedAt             timetypes.RFC3339    `tfsdk:"rotated_at"`
}

// rotatedAttributes are the attributes an exchange replaces; a planned rotation marks them unknown.
var rotatedAttributes = map[string]attr.Value{
	"access_token":             types.StringUnknown(),
	"token_type":               types.StringUnknown(),
	"expires_at":               timetypes.NewRFC3339Unknown(),
	"refresh_token":            types.StringUnknown(),
	"refresh_token_expires_at": timetypes.NewRFC3339Unknown(),
	"rotated_at":               timetypes.NewRFC3339Unknown(),
}

func (r *refreshGrantResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_refresh_grant"
}

func (r *refreshGrantResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Keeps a Bipsync refresh chain in Terraform state. `Create` exchanges the seed refresh token; " +
			"every later exchange (a *rotation*) happens only in `apply`, planned as an in-place update when the access token " +
			"enters the `rotate_before` window, or when `scopes`, `keepers`, the seed or any other argument changes. `plan` " +
			"and `refresh` never call Bipsync, so a plan that is never applied loses nothing. The current refresh token and " +
			"access token are stored in state (sensitive): use a state backend you trust, encrypted where possible.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Random identifier of this grant. It carries no token.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"refresh_token_wo": schema.StringAttribute{
				Optional:  true,
				WriteOnly: true,
				Sensitive: true,
				MarkdownDescription: "Seed refresh token from an authorization (`terraform-provider-bipsync authorize` gets one), " +
					"write-only: never stored in plan or " +
					"state, and it accepts ephemeral values. Read only when the grant is created or `refresh_token_wo_version` " +
					"changes: it is needed only to create or re-seed the grant, and later runs may leave it unset (the chain " +
					"lives in state). Requires Terraform 1.11 or OpenTofu 1.11 or later. Conflicts with `seed_refresh_token`.",
			},
			"refresh_token_wo_version": schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: "Version of `refresh_token_wo`. Increase it together with a new `refresh_token_wo` to " +
					"re-seed the chain (after a reauthorization); the next apply exchanges the new seed instead of the refresh " +
					"token in state. Required with `refresh_token_wo`.",
			},
			"seed_refresh_token": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				MarkdownDescription: "Seed refresh token, for engines without write-only attributes. **Stored in state and plan** " +
					"(sensitive). Setting it to a new value re-seeds the chain; removing it does not. Prefer `refresh_token_wo`. It is not named `refresh_token` " +
					"because that attribute holds the current chain head, which every rotation replaces.",
			},
			"scopes": schema.SetAttribute{
				Optional:    true,
				ElementType: types.StringType,
				MarkdownDescription: "Scopes to ask for at every exchange. Unset keeps the chain's current scopes (the original " +
					"consent until narrowed). Narrowing narrows the chain for good (Bipsync narrows the new refresh token too), so " +
					"once state knows the chain's scopes (after an exchange that asked for explicit `scopes`), a change to fewer " +
					"scopes fails at plan time unless `allow_narrowing` is true. Before that the provider cannot see the original " +
					"consent, and the first exchange that asks for fewer narrows the chain without a word. Asking again for a " +
					"scope the chain no longer holds fails at plan time unless the seed changes too. A change rotates the chain.",
				Validators: scopesValidators(),
			},
			"allow_narrowing": schema.BoolAttribute{
				Optional: true,
				MarkdownDescription: "Whether a change of `scopes` may narrow the chain when state knows it holds more. " +
					"Defaults to false: such a plan fails with `Bipsync Scope Narrowing Not Allowed`, and nothing is exchanged, " +
					"because the narrowing is for good. Set it to true only when this chain is meant to hold fewer scopes from " +
					"now on; a consumer that needs fewer scopes while others need more should get a chain of its own (its own " +
					"authorization).",
			},
			"rotate_before": schema.StringAttribute{
				Optional:   true,
				Computed:   true,
				CustomType: timetypes.GoDurationType{},
				Default:    stringdefault.StaticString(defaultRotateBefore),
				Validators: []validator.String{checkString("a duration that is not negative", settings.ValidateNonNegativeDuration)},
				MarkdownDescription: "Rotation window, as a Go duration: a plan made when the access token has less than this " +
					"left plans a rotation. Defaults to `15m`, the same margin `bipsync_access_token` keeps by default, so a " +
					"resource fed from `access_token` gets a token with at least 15 minutes left. With Bipsync's 1-hour tokens " +
					"any apply more than 45 minutes after the last rotation rotates, which also renews the refresh chain's month.",
			},
			"keepers": schema.MapAttribute{
				Optional:            true,
				ElementType:         types.StringType,
				MarkdownDescription: "Arbitrary values; any change rotates the chain in place (never a replacement).",
			},
			"access_token": schema.StringAttribute{
				Computed:            true,
				Sensitive:           true,
				MarkdownDescription: "Access token from the last exchange. Sensitive; **stored in state**.",
			},
			"token_type": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Token type as Bipsync returned it (`Bearer`).",
			},
			"expires_at": schema.StringAttribute{
				Computed:            true,
				CustomType:          timetypes.RFC3339Type{},
				MarkdownDescription: "When the access token expires (RFC 3339, UTC).",
			},
			"refresh_token": schema.StringAttribute{
				Computed:  true,
				Sensitive: true,
				MarkdownDescription: "Current head of the refresh chain, the refresh token the next rotation exchanges. " +
					"Sensitive; **stored in state**. Never copy it elsewhere: using it anywhere else forks the chain and " +
					"revokes this grant's tokens.",
			},
			"refresh_token_expires_at": schema.StringAttribute{
				Computed:   true,
				CustomType: timetypes.RFC3339Type{},
				MarkdownDescription: "When the chain dies unless rotated: the last exchange plus the provider's " +
					"`refresh_token_lifetime` (RFC 3339). Plans warn within 7 days of it and fail after it.",
			},
			"rotated_at": schema.StringAttribute{
				Computed:            true,
				CustomType:          timetypes.RFC3339Type{},
				MarkdownDescription: "When the last exchange happened (RFC 3339, UTC).",
			},
		},
	}
}

func (r *refreshGrantResource) ConfigValidators(_ context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		// The seed is needed only to create the grant or re-seed it, so neither input is required on every run: the
		// chain lives in state, and a consumed seed need not be kept (ModifyPlan asks for one when it is needed).
		resourcevalidator.Conflicting(path.MatchRoot("refresh_token_wo"), path.MatchRoot("seed_refresh_token")),
	}
}

// ValidateConfig recommends the write-only seed where the engine supports it. The warning is not attached to
// seed_refresh_token on purpose: the CLI quotes the source line of an attribute's diagnostic, which would print a
// seed written inline in the configuration on every plan (framework-validators' PreferWriteOnlyAttribute does that).
func (r *refreshGrantResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var wo types.String
	var version types.Int64
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("refresh_token_wo"), &wo)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("refresh_token_wo_version"), &version)...)
	if !wo.IsNull() && version.IsNull() {
		// Without a version the grant could never tell a new write-only seed from the one it already consumed.
		resp.Diagnostics.AddAttributeError(path.Root("refresh_token_wo_version"), summaryMissingSeedVersion,
			"refresh_token_wo needs refresh_token_wo_version: the grant reads the write-only seed only when the version "+
				"changes (write-only values are never stored, so they cannot be compared). Set refresh_token_wo_version = 1, "+
				"and increase it whenever you set a new seed.")
	}
	if !req.ClientCapabilities.WriteOnlyAttributesAllowed {
		return
	}
	var seed types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("seed_refresh_token"), &seed)...)
	if seed.IsNull() || seed.IsUnknown() {
		return
	}
	resp.Diagnostics.AddWarning(summaryPreferWriteOnly,
		"seed_refresh_token is stored in plan and state. This engine supports write-only arguments: set "+
			"refresh_token_wo (with refresh_token_wo_version) instead, so that the seed is never stored.")
}

func (r *refreshGrantResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

// ModifyPlan plans rotations and checks the chain's life. It never calls Bipsync: a plan cannot save state, so an
// exchange here would revoke the chain in state and keep its successor nowhere.
func (r *refreshGrantResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	var plan, state refreshGrantModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if req.State.Raw.IsNull() {
		requireSeed(ctx, req.Config, &plan, "Creating the grant", &resp.Diagnostics)
		return
	}
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || r.data == nil {
		return // provider not configured: nothing to check against
	}
	now := r.data.now()
	reseed := seedChanged(&plan, &state)

	if reseed {
		requireSeed(ctx, req.Config, &plan, "Re-seeding the grant (refresh_token_wo_version changed)", &resp.Diagnostics)
	} else {
		if rec, _ := r.journalAhead(ctx, req.Private, &state); rec != nil {
			// State's head was spent by a rotation whose state write was lost: the apply adopts the journal's head.
			recoveryWarning(rec, &resp.Diagnostics)
			planRotation(ctx, resp)
			return
		}
		checkChainLife(&state, now, &resp.Diagnostics)
		r.checkJournalDeath(ctx, req.Private, &state, &resp.Diagnostics)
		checkScopeWidening(ctx, &plan, &state, &resp.Diagnostics)
		checkGrantNarrowing(ctx, &plan, &state, &resp.Diagnostics)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	if plan.RotateBefore.IsUnknown() {
		return // any change of configuration already rotates (the framework marks the token attributes unknown)
	}
	rotateBefore, diags := plan.RotateBefore.ValueGoDuration()
	resp.Diagnostics.Append(diags...)
	expiresAt, diags := state.ExpiresAt.ValueRFC3339Time()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if rotatedAt, ds := state.RotatedAt.ValueRFC3339Time(); !ds.HasError() && rotateBefore >= expiresAt.Sub(rotatedAt) {
		resp.Diagnostics.AddAttributeWarning(path.Root("rotate_before"), summaryRotationWindow,
			fmt.Sprintf("rotate_before (%s) is at least the access token's lifetime (%s), so every apply rotates the chain. "+
				"Lower rotate_before below the lifetime (Bipsync issues 1-hour tokens; the default is 15m).",
				rotateBefore, expiresAt.Sub(rotatedAt).Round(time.Second)))
	}
	if now.Add(rotateBefore).Before(expiresAt) {
		return
	}
	tflog.Debug(ctx, "planning bipsync chain rotation", map[string]any{
		"expires_at":    expiresAt.UTC().Format(time.RFC3339),
		"rotate_before": rotateBefore.String(),
	})
	planRotation(ctx, resp)
}

// planRotation plans an in-place update of the token attributes by marking them unknown.
func planRotation(ctx context.Context, resp *resource.ModifyPlanResponse) {
	for name, unknown := range rotatedAttributes {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root(name), unknown)...)
	}
}

func (r *refreshGrantResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan refreshGrantModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	seed := r.seedFromConfig(ctx, req.Config, &plan, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	plan.ID = types.StringValue(hex.EncodeToString(id))
	j := newJournalData()
	if r.rotate(ctx, opCreate, r.seedStart(ctx, seed), &plan, &plan, j, &resp.Diagnostics) {
		writeJournalData(ctx, resp.Private, j, &resp.Diagnostics)
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	}
}

// seedStart returns the record a seed's first exchange starts from: the seed itself, or, when an earlier first
// exchange of this seed had its state write lost, the head that exchange journaled.
func (r *refreshGrantResource) seedStart(ctx context.Context, seed string) *tokenstore.Record {
	if r.journalOn() {
		if rec := r.loadJournal(ctx, r.seedJournalKey(seed), seed); rec != nil && rec.RefreshToken != "" {
			return rec
		}
	}
	return &tokenstore.Record{RefreshToken: seed}
}

// rotate brings the chain forward from prev into m: prev is adopted as it is when it came from a journal and neither
// its token nor the configuration asks for a rotation, and exchanged otherwise. Every new head is journaled before the
// engine is answered. It reports whether m holds a head that must be written to state.
func (r *refreshGrantResource) rotate(ctx context.Context, op grantOp, prev *tokenstore.Record, plan, prior *refreshGrantModel, j *grantJournal, diags *diag.Diagnostics) bool {
	if r.data == nil {
		diags.AddError(summaryUnconfigured, "This is a bug in the Bipsync provider: please report it.")
		return false
	}
	journaled := prev.Generation > 0 // a record from a journal, not a bare refresh token
	if journaled && !r.rotationDue(prev, plan) && (op == opCreate || !argumentsChanged(plan, prior)) {
		tflog.Info(ctx, "adopted bipsync refresh chain from the journal", map[string]any{"id": plan.ID.ValueString(), "generation": prev.Generation})
		r.recordToModel(prev, plan)
		j.Generation = max(j.Generation, prev.Generation)
		return true
	}
	next, ok := r.exchange(ctx, op, prev, plan, j, diags)
	if !ok {
		return false
	}
	if r.journalOn() {
		// The new head exists only in this answer now, so it is journaled even when Terraform cancels the apply (a
		// stopped runner is what the journal is for), within the budget the token source gives its own saves.
		jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokensource.DefaultSaveBudget)
		defer cancel()
		if prev.Generation == 0 {
			// The first exchange of a seed: state holds no head of this chain yet.
			r.writeJournal(jctx, r.seedJournalKey(prev.RefreshToken), prev.RefreshToken, next, diags)
		}
		next.Generation = max(j.Generation, prev.Generation) + 1
		r.writeJournal(jctx, r.grantJournalKey(plan.ID.ValueString()), j.Secret, next, diags)
		j.Generation = next.Generation
	}
	return true
}

// rotationDue tells whether rec's access token is within the plan's rotation window.
func (r *refreshGrantResource) rotationDue(rec *tokenstore.Record, plan *refreshGrantModel) bool {
	rotateBefore, diags := plan.RotateBefore.ValueGoDuration()
	if diags.HasError() || rec.AccessToken == "" {
		return true
	}
	return !r.data.now().Add(rotateBefore).Before(rec.AccessTokenExpiresAt)
}

// argumentsChanged tells whether the configuration changed any argument, which always rotates the chain.
func argumentsChanged(plan, state *refreshGrantModel) bool {
	return !plan.Scopes.Equal(state.Scopes) || !plan.Keepers.Equal(state.Keepers) || !plan.RotateBefore.Equal(state.RotateBefore) ||
		!plan.RefreshTokenWOVersion.Equal(state.RefreshTokenWOVersion) || !plan.SeedRefreshToken.Equal(state.SeedRefreshToken)
}

// Read trusts state: Bipsync has no endpoint that checks a refresh token without consuming it.
func (r *refreshGrantResource) Read(_ context.Context, _ resource.ReadRequest, _ *resource.ReadResponse) {
}

func (r *refreshGrantResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state refreshGrantModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	prev := &tokenstore.Record{RefreshToken: state.RefreshToken.ValueString()}
	if !state.Scopes.IsNull() {
		resp.Diagnostics.Append(state.Scopes.ElementsAs(ctx, &prev.Scopes, false)...)
	}
	ahead, j := r.journalAhead(ctx, req.Private, &state)
	switch {
	case seedChanged(&plan, &state):
		prev = r.seedStart(ctx, r.seedFromConfig(ctx, req.Config, &plan, &resp.Diagnostics))
	case ahead != nil:
		recoveryWarning(ahead, &resp.Diagnostics)
		prev = ahead
	}
	if j == nil {
		j = newJournalData() // a grant created before journals, or a provider without a store
	}
	if resp.Diagnostics.HasError() {
		return
	}
	plan.ID = state.ID
	// Without a new head the prior state stays: it still holds the chain head if nothing was consumed.
	if r.rotate(ctx, opUpdate, prev, &plan, &state, j, &resp.Diagnostics) {
		writeJournalData(ctx, resp.Private, j, &resp.Diagnostics)
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	}
}

// Delete forgets the chain: Bipsync has no revocation endpoint. The refresh token in state stays valid at Bipsync
// until it expires, but no copy of it remains once state forgets it.
func (r *refreshGrantResource) Delete(_ context.Context, _ resource.DeleteRequest, _ *resource.DeleteResponse) {
}

// grantOp names the lifecycle method an exchange runs in. It decides how an answer that rotated the chain without a
// usable access token is reported (see exchange).
type grantOp int

const (
	// opCreate: the exchange of a new grant's seed.
	opCreate grantOp = iota
	// opUpdate: a planned rotation, or the exchange of a new seed for an existing grant.
	opUpdate
)

// exchange runs the one exchange path and writes the result into m. It runs to completion (bounded) even if the
// apply is cancelled: once Bipsync answers, the old head is revoked and the answer is the only chain there is. It
// reports whether m holds a new chain head that must be written to state, which is also the case when Bipsync
// rotated without a usable access token. Then an update fails but keeps the head; a create only warns, because a
// failed create is tainted, and replacing it would exchange the spent seed again and lose the chain.
func (r *refreshGrantResource) exchange(ctx context.Context, op grantOp, prev *tokenstore.Record, m *refreshGrantModel, j *grantJournal, diags *diag.Diagnostics) (*tokenstore.Record, bool) {
	ctx = maskSecrets(ctx, prev.RefreshToken, r.data.clientSecret)
	if err := r.journalDeath(ctx, prev, m.ID.ValueString(), j); err != nil {
		addTokenError(diags, err, r.data.failureContext(reseedGrant))
		return nil, false
	}
	var scopes []string
	if !m.Scopes.IsNull() {
		diags.Append(m.Scopes.ElementsAs(ctx, &scopes, false)...)
	}
	bctx, cancel := r.data.source.DetachExchange(ctx)
	defer cancel()
	next, err := r.data.source.Exchange(bctx, prev, scopes)
	if next == nil {
		addTokenError(diags, r.recordGrantDeath(ctx, prev, m.ID.ValueString(), j, err), r.data.failureContext(reseedGrant))
		return nil, false
	}
	if err != nil {
		detail := "Bipsync exchanged the refresh token, so the old one is revoked, but its answer had no usable access " +
			"token. The new refresh token is kept in state with an expired access_token, so the next apply rotates the " +
			"chain from it; run it."
		if op == opUpdate {
			diags.AddError(summaryIncomplete, detail+facts(err))
		} else {
			diags.AddWarning(summaryIncomplete, detail+" Resources in this run that use access_token got an empty value."+facts(err))
		}
	}
	tflog.Info(ctx, "rotated bipsync refresh chain", map[string]any{"id": m.ID.ValueString(), "access_token_received": err == nil})
	r.recordToModel(next, m)
	return next, true
}

// seedFromConfig returns the seed refresh token: refresh_token_wo is only in the configuration (write-only values
// are null in plan and state), seed_refresh_token is in the plan.
func (r *refreshGrantResource) seedFromConfig(ctx context.Context, config tfsdk.Config, plan *refreshGrantModel, diags *diag.Diagnostics) string {
	var wo types.String
	diags.Append(config.GetAttribute(ctx, path.Root("refresh_token_wo"), &wo)...)
	seed := wo.ValueString()
	if wo.IsNull() {
		seed = plan.SeedRefreshToken.ValueString()
	}
	if seed == "" && !diags.HasError() {
		diags.AddAttributeError(path.Root("refresh_token_wo"), summaryMissingRefreshToken,
			"Set refresh_token_wo (with refresh_token_wo_version) or seed_refresh_token to a refresh token from an "+
				"authorization (`terraform-provider-bipsync authorize` gets one). An empty value cannot seed a chain.")
	}
	return seed
}

// seedChanged tells whether the configuration re-seeds the chain: a new refresh_token_wo_version, or a new
// seed_refresh_token. Removing either is not a re-seed: the chain in state goes on.
func seedChanged(plan, state *refreshGrantModel) bool {
	return (!plan.RefreshTokenWOVersion.IsNull() && !plan.RefreshTokenWOVersion.Equal(state.RefreshTokenWOVersion)) ||
		(!plan.SeedRefreshToken.IsNull() && !plan.SeedRefreshToken.Equal(state.SeedRefreshToken))
}

// requireSeed fails a plan that needs a seed and has none, before anything is exchanged.
func requireSeed(ctx context.Context, config tfsdk.Config, plan *refreshGrantModel, what string, diags *diag.Diagnostics) {
	var wo types.String
	diags.Append(config.GetAttribute(ctx, path.Root("refresh_token_wo"), &wo)...)
	if wo.IsUnknown() || plan.SeedRefreshToken.IsUnknown() || wo.ValueString() != "" || plan.SeedRefreshToken.ValueString() != "" {
		return // a seed, or one known only at apply
	}
	diags.AddAttributeError(path.Root("refresh_token_wo"), summaryMissingRefreshToken,
		what+" needs a seed: set refresh_token_wo (with refresh_token_wo_version) or seed_refresh_token to a refresh token "+
			"from an authorization (`terraform-provider-bipsync authorize` gets one). Once the grant exists, later runs may "+
			"leave the seed unset: the chain lives in "+
			"state.")
}

// checkChainLife fails a plan once the chain is past its lifetime (an exchange can only fail), and warns within
// expiryWarningWindow of it.
func checkChainLife(state *refreshGrantModel, now time.Time, diags *diag.Diagnostics) {
	deadline, ds := state.RefreshTokenExpiresAt.ValueRFC3339Time()
	if ds.HasError() || deadline.IsZero() {
		return
	}
	date := deadline.UTC().Format(time.RFC3339)
	switch {
	case !now.Before(deadline):
		diags.AddAttributeError(path.Root("refresh_token"), summaryReauth,
			"The refresh chain in state expired at "+date+": Bipsync keeps a refresh token for one month after issuing it "+
				"(refresh_token_lifetime), and this grant was not rotated within that time, so any exchange would fail.\n\n"+
				"The refresh chain cannot be used again; a person must authorize anew:\n"+
				authorizeAnew("", "every scope this configuration asks for", reseedGrant))
	case now.Add(expiryWarningWindow).After(deadline):
		when := "when its access token has less than rotate_before left"
		if at, ds := state.ExpiresAt.ValueRFC3339Time(); !ds.HasError() && !at.IsZero() {
			when += " (the access token in state expires at " + at.UTC().Format(time.RFC3339) + ")"
		}
		diags.AddAttributeWarning(path.Root("refresh_token"), summaryChainExpiringSoon,
			"The refresh chain in state expires at "+date+" unless it is rotated before then. An apply rotates it only "+
				when+", or when keepers or scopes change. To rotate it now, change a value in keepers and apply. If it is "+
				"not rotated by "+date+", the chain dies and a person must authorize anew.")
	}
}

// checkScopeWidening fails a plan that asks a chain for a scope it no longer holds: the exchange would fail with
// invalid_scope, and only a new authorization (a new seed) can widen a chain.
func checkScopeWidening(ctx context.Context, plan, state *refreshGrantModel, diags *diag.Diagnostics) {
	if plan.Scopes.IsNull() || plan.Scopes.IsUnknown() || state.Scopes.IsNull() {
		return // unset keeps the chain's scopes; an unset state means the original consent, which the provider cannot see
	}
	var want, have []string
	diags.Append(plan.Scopes.ElementsAs(ctx, &want, false)...)
	diags.Append(state.Scopes.ElementsAs(ctx, &have, false)...)
	var missing []string
	for _, s := range want {
		if !slices.Contains(have, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return // narrowing, or the same scopes: checkGrantNarrowing
	}
	slices.Sort(missing)
	diags.AddAttributeError(path.Root("scopes"), summaryReauth,
		fmt.Sprintf("The chain in state holds scopes [%s] and cannot widen to [%s]: an exchange narrows a chain for good, "+
			"and Bipsync would answer invalid_scope.\n\nTo widen it, a person must authorize anew:\n%s",
			strings.Join(have, " "), strings.Join(missing, " "),
			authorizeAnew("", "["+strings.Join(want, " ")+"]", reseedGrant)))
}
