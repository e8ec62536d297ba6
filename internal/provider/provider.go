// Package provider is the Terraform framework layer of the Bipsync provider: schemas, model conversion and
// diagnostics. Token logic lives in internal/tokensource, HTTP in internal/bipsync.
package provider

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/provideraddr"
	"github.com/bipsync/terraform-provider-bipsync/internal/settings"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

var (
	_ provider.Provider                       = (*bipsyncProvider)(nil)
	_ provider.ProviderWithEphemeralResources = (*bipsyncProvider)(nil)
	_ provider.ProviderWithValidateConfig     = (*bipsyncProvider)(nil)
)

// Options change what the provider depends on; tests use them to share a fake clock and HTTP client.
type Options struct {
	// Now is the provider's clock (default time.Now).
	Now func() time.Time
	// HTTPClient is used for token requests (default: a new client; redirects are never followed).
	HTTPClient *http.Client
	// Sleep waits between retries (default: a timer honouring the context).
	Sleep func(ctx context.Context, d time.Duration) error
}

// New returns the provider factory for providerserver.
func New(version string) func() provider.Provider {
	return NewWithOptions(version, Options{})
}

// NewWithOptions returns a provider factory with injected dependencies.
func NewWithOptions(version string, opts Options) func() provider.Provider {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return func() provider.Provider {
		return &bipsyncProvider{version: version, opts: opts}
	}
}

type bipsyncProvider struct {
	version string
	opts    Options
}

// providerData is what Configure resolves once and hands to every resource, ephemeral resource and data source.
type providerData struct {
	client       *bipsync.Client
	source       *tokensource.Source
	store        tokenstore.Store
	now          func() time.Time
	clientSecret string // for log masking and the client_credentials check; empty for public clients
	encoding     bipsync.Encoding
}

// failureContext is what a token error's diagnostic needs of this provider configuration.
func (d *providerData) failureContext(steps reseedSteps) failureContext {
	return failureContext{clientID: d.client.ClientID(), steps: steps, encoding: d.encoding, noSecret: d.clientSecret == ""}
}

type providerModel struct {
	Client               types.String         `tfsdk:"client"`
	BaseURL              types.String         `tfsdk:"base_url"`
	ClientID             types.String         `tfsdk:"client_id"`
	ClientSecret         types.String         `tfsdk:"client_secret"`
	RequestTimeout       timetypes.GoDuration `tfsdk:"request_timeout"`
	RequestEncoding      types.String         `tfsdk:"request_encoding"`
	RefreshTokenLifetime timetypes.GoDuration `tfsdk:"refresh_token_lifetime"`
	TokenStore           *tokenStoreModel     `tfsdk:"token_store"`
}

type tokenStoreModel struct {
	Backend         types.String         `tfsdk:"backend"`
	Path            types.String         `tfsdk:"path"`
	Command         types.List           `tfsdk:"command"`
	CommandProtocol types.String         `tfsdk:"command_protocol"`
	AdoptWait       timetypes.GoDuration `tfsdk:"adopt_wait"`
	ConnStr         types.String         `tfsdk:"conn_str"`
	SchemaName      types.String         `tfsdk:"schema_name"`
	Bucket          types.String         `tfsdk:"bucket"`
	KeyPrefix       types.String         `tfsdk:"key_prefix"`
	Region          types.String         `tfsdk:"region"`
	Endpoints       types.Object         `tfsdk:"endpoints"`
	UsePathStyle    types.Bool           `tfsdk:"use_path_style"`
	Profile         types.String         `tfsdk:"profile"`
}

func (p *bipsyncProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = provideraddr.Name
	resp.Version = p.version
}

func (p *bipsyncProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The Bipsync provider turns a Bipsync OAuth refresh token (or client credentials) into short-lived " +
			"access tokens for the rest of a configuration, and keeps the rotating refresh chain alive: every refresh exchange " +
			"revokes the refresh token it consumed, so the provider saves the new one before anything uses it.",
		Attributes: map[string]schema.Attribute{
			"client": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Bipsync tenant slug: the API lives at `https://{client}-api.bipsync.com`. Conflicts with " +
					"`base_url`; one of the two is required. Falls back to the `BIPSYNC_CLIENT` environment variable.",
				Validators: []validator.String{
					stringvalidator.ConflictsWith(path.MatchRoot("base_url")),
					checkString("a Bipsync tenant slug", settings.ValidateTenant),
				},
			},
			"base_url": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Base URL of the Bipsync API, for a sandbox, a proxy or a local test server, for example " +
					"`https://acme-api.bipsync.com`. The token endpoint is `{base_url}/v1/oauth/token`. Must be `https` unless the " +
					"host is a loopback address; user information, an IPv6 zone, a query or a fragment are refused. " +
					"Conflicts with `client`. Falls back to the `BIPSYNC_BASE_URL` environment variable.",
				Validators: []validator.String{
					checkString("an https URL", func(s string) error { _, err := settings.NormalizeBaseURL(s); return err }),
				},
			},
			"client_id": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Client ID of the Bipsync OAuth application. Required; falls back to the `BIPSYNC_CLIENT_ID` " +
					"environment variable.",
				Validators: []validator.String{checkString("a client ID", settings.ValidateClientID)},
			},
			"client_secret": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				MarkdownDescription: "Client secret of a confidential Bipsync OAuth application. Leave it unset for a public " +
					"application. Required for the `client_credentials` grant. Falls back to the `BIPSYNC_CLIENT_SECRET` " +
					"environment variable. It is sent only in the body of token requests, never logged.",
			},
			"request_timeout": schema.StringAttribute{
				Optional:   true,
				CustomType: timetypes.GoDurationType{},
				MarkdownDescription: "Time limit of one HTTP attempt at the token endpoint, as a Go duration. Defaults to `30s`; " +
					"at most `10m`. Safe retries (a refused connection, or a `429`/`503` answer) are bounded in count (4 attempts) " +
					"and in total waiting (30s). Falls back to the `BIPSYNC_REQUEST_TIMEOUT` environment variable.",
			},
			"request_encoding": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "How token requests encode their body: `form` (`application/x-www-form-urlencoded`, the " +
					"default) or `json`. Bipsync documents both. Falls back to the `BIPSYNC_REQUEST_ENCODING` environment variable.",
				Validators: []validator.String{stringvalidator.OneOf("form", "json")},
			},
			"refresh_token_lifetime": schema.StringAttribute{
				Optional:   true,
				CustomType: timetypes.GoDurationType{},
				MarkdownDescription: "How long Bipsync keeps a refresh token alive after issuing it, as a Go duration. Defaults to " +
					"`720h` (30 days: Bipsync documents one month). Used to report `refresh_token_expires_at` and, for " +
					"`bipsync_refresh_grant`, to fail at plan time once the chain is past it and warn within 7 days of it. " +
					"Falls back to the `BIPSYNC_REFRESH_TOKEN_LIFETIME` environment variable.",
			},
		},
		Blocks: map[string]schema.Block{
			"token_store": schema.SingleNestedBlock{
				MarkdownDescription: "Where `bipsync_access_token` keeps refresh chains between runs (the rotated refresh token, " +
					"and the current access token so that a plan and an apply share one exchange). Records are encrypted with a " +
					"key derived from the seed refresh token. `bipsync_refresh_grant` does not use it: its chain lives in state.",
				Attributes: map[string]schema.Attribute{
					"backend": schema.StringAttribute{
						Optional: true,
						MarkdownDescription: "`file` (default): one encrypted file per chain under `path`, with an OS file lock. " +
							"`command`: an external program keeps the records (for CI secret managers). `postgres`: a table in a " +
							"PostgreSQL database (`conn_str`, `schema_name`), with a lock per chain in the database, for runners on " +
							"several machines. `s3`: one object per chain in an S3 bucket (`bucket`, `key_prefix`, `region`, " +
							"`endpoints`, `use_path_style`, `profile`, as for Terraform's `s3` state backend), written with S3's " +
							"conditional writes, for runners on several machines. `none`: keep nothing; " +
							"then `bipsync_access_token` accepts only the `client_credentials` grant, because a refresh exchange " +
							"with nowhere to keep the new refresh token would kill the chain. Falls back to the " +
							"`BIPSYNC_TOKEN_STORE` environment variable.",
						Validators: []validator.String{stringvalidator.OneOf(tokenstore.Backends...)},
					},
					"path": schema.StringAttribute{
						Optional: true,
						MarkdownDescription: "Directory of the `file` backend. Defaults to `terraform-provider-bipsync/chains` " +
							"under the user cache directory (`$XDG_CACHE_HOME` or `~/.cache` on Linux). Created with mode 0700; " +
							"records are 0600. Falls back to the `BIPSYNC_TOKEN_STORE_PATH` environment variable.",
						Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
					},
					"command": schema.ListAttribute{
						Optional:    true,
						ElementType: types.StringType,
						MarkdownDescription: "Program and fixed arguments of the `command` backend, run without a shell as " +
							"`command... get KEY` (prints the record, or nothing when there is none) and `command... put KEY` " +
							"(reads the record on stdin). Records are encrypted before the program sees them. Falls back to the " +
							"`BIPSYNC_TOKEN_STORE_COMMAND` environment variable (a JSON array, or words separated by spaces).",
						Validators: []validator.List{
							listvalidator.SizeAtLeast(1),
							listvalidator.ValueStringsAre(stringvalidator.LengthAtLeast(1)),
						},
					},
					"command_protocol": schema.StringAttribute{
						Optional: true,
						MarkdownDescription: "What the `command` backend's program can do. `1` (the default): `get` and `put` " +
							"only; the provider reads the entry before it writes, which keeps a stale record from replacing a " +
							"newer one unless a runner on another machine writes in between. `2`: `put` is a conditional write " +
							"with the secret manager's own check (it writes only when the entry still holds the revision in " +
							"`BIPSYNC_STORE_REPLACES`, and exits with status 75 otherwise), so runners on many machines can " +
							"share one entry safely, and hand-outs record their promises in it. Falls back to the " +
							"`BIPSYNC_TOKEN_STORE_COMMAND_PROTOCOL` environment variable.",
						Validators: []validator.String{stringvalidator.OneOf("1", "2")},
					},
					"adopt_wait": schema.StringAttribute{
						Optional:   true,
						CustomType: timetypes.GoDurationType{},
						MarkdownDescription: "How long a run whose exchange Bipsync refused as already used waits for another " +
							"runner's newer record to appear in the token store before it reports a dead chain, as a Go " +
							"duration. Used with the `command` and `s3` backends, whose lock covers one machine only (the `file` and " +
							"`postgres` backends re-read the store once: every user of them waits on their lock). Defaults to " +
							"three times `request_timeout` (`90s`); at least `request_timeout` (the other runner's exchange " +
							"alone may take that long) and at most `30m`. Falls back to the `BIPSYNC_TOKEN_STORE_ADOPT_WAIT` " +
							"environment variable.",
					},
					"conn_str": schema.StringAttribute{
						Optional:  true,
						Sensitive: true,
						MarkdownDescription: "Connection string of the `postgres` backend, as for Terraform's `pg` state backend: " +
							"key=value pairs (`host=db.internal user=runner dbname=terraform sslmode=verify-full`) or a URL " +
							"(`postgres://runner@db.internal/terraform?sslmode=verify-full`). What it leaves out, or all of it when " +
							"unset, comes from the standard `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE` " +
							"(and the other `PG*`) environment variables and `~/.pgpass`, as `psql` reads them. Prefer those for the " +
							"password. Each connection attempt times out after `connect_timeout` (10 seconds by default). Falls " +
							"back to the `BIPSYNC_TOKEN_STORE_CONN_STR` environment variable.",
					},
					"schema_name": schema.StringAttribute{
						Optional: true,
						MarkdownDescription: "Schema of the `postgres` backend's table (`chains`). Defaults to " +
							"`" + tokenstore.DefaultPostgresSchema + "`. Created with the table when missing. Falls back to the " +
							"`BIPSYNC_TOKEN_STORE_SCHEMA_NAME` environment variable.",
						Validators: []validator.String{checkString("a PostgreSQL schema name", tokenstore.CheckPostgresSchemaName)},
					},
					"bucket":         s3BucketAttribute(),
					"key_prefix":     s3KeyPrefixAttribute(),
					"region":         s3RegionAttribute(),
					"endpoints":      s3EndpointsAttribute(),
					"use_path_style": s3UsePathStyleAttribute(),
					"profile":        s3ProfileAttribute(),
				},
			},
		},
	}
}

// ValidateConfig refuses, at validate time, settings that are each valid but cannot hold together. Configure checks the
// same rules again once environment fallbacks are known.
func (p *bipsyncProvider) ValidateConfig(ctx context.Context, req provider.ValidateConfigRequest, resp *provider.ValidateConfigResponse) {
	var m providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || m.TokenStore == nil || m.TokenStore.AdoptWait.IsNull() || m.TokenStore.AdoptWait.IsUnknown() ||
		m.RequestTimeout.IsUnknown() {
		return
	}
	wait, diags := m.TokenStore.AdoptWait.ValueGoDuration()
	resp.Diagnostics.Append(diags...)
	timeout := settings.DefaultRequestTimeout
	if !m.RequestTimeout.IsNull() {
		t, diags := m.RequestTimeout.ValueGoDuration()
		resp.Diagnostics.Append(diags...)
		timeout = t
	}
	if resp.Diagnostics.HasError() || wait >= timeout {
		return
	}
	resp.Diagnostics.AddAttributeError(storeAttr("adopt_wait"), summaryInvalidStoreSetting,
		fmt.Sprintf("token_store.adopt_wait (%s) is shorter than request_timeout (%s): another runner's exchange alone may take "+
			"request_timeout, so this run could report a dead chain while the other still waits for its answer. Set "+
			"adopt_wait to at least %s (the default is three times request_timeout).", wait, timeout, timeout))
}

func (p *bipsyncProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var m providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	cfg := resolveConfig(&m, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx = maskSecrets(ctx, cfg.clientSecret)

	client, err := bipsync.New(bipsync.Config{
		BaseURL:      cfg.baseURL,
		ClientID:     cfg.clientID,
		ClientSecret: cfg.clientSecret,
		Encoding:     cfg.encoding,
		Timeout:      cfg.requestTimeout,
		HTTPClient:   p.opts.HTTPClient,
		Now:          p.opts.Now,
		Sleep:        p.opts.Sleep,
		UserAgent:    "terraform-provider-bipsync/" + p.version,
	})
	if err != nil {
		resp.Diagnostics.AddError(summaryInvalidProviderSettings,
			"The token client could not be created from the provider configuration. This is a bug in the provider if the "+
				"configuration validated: please report it.\n\nCause: "+err.Error())
		return
	}
	store, err := openStore(cfg)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("token_store"), summaryInvalidStore,
			"The token store could not be opened. Fix the token_store block (or the BIPSYNC_TOKEN_STORE* environment "+
				"variables) and run again.\n\nCause: "+err.Error())
		return
	}
	source, err := tokensource.New(tokensource.Options{
		Client:               client,
		Store:                store,
		ClientSecret:         cfg.clientSecret,
		Now:                  p.opts.Now,
		RefreshTokenLifetime: cfg.refreshTokenLifetime,
		AdoptWait:            cfg.adoptWait,
		Sleep:                p.opts.Sleep,
	})
	if err != nil {
		resp.Diagnostics.AddError(summaryInvalidProviderSettings, "This is a bug in the provider: "+err.Error())
		return
	}
	tflog.Debug(ctx, "configured bipsync provider", map[string]any{
		"token_url":   client.TokenURL(),
		"client_id":   cfg.clientID,
		"token_store": store.Describe(),
	})
	data := &providerData{
		client:       client,
		source:       source,
		store:        store,
		now:          p.opts.Now,
		clientSecret: cfg.clientSecret,
		encoding:     cfg.encoding,
	}
	resp.ResourceData = data
	resp.EphemeralResourceData = data
	resp.DataSourceData = data
}

func openStore(cfg resolvedConfig) (tokenstore.Store, error) {
	return tokenstore.New(tokenstore.Config{Backend: cfg.storeBackend, Path: cfg.storePath, Command: cfg.storeCommand,
		Protocol: cfg.storeProtocol, ConnStr: cfg.storeConnStr, SchemaName: cfg.storeSchemaName, S3: cfg.storeS3})
}

func (p *bipsyncProvider) Resources(_ context.Context) []func() resource.Resource {
	return []func() resource.Resource{NewRefreshGrantResource}
}

func (p *bipsyncProvider) EphemeralResources(_ context.Context) []func() ephemeral.EphemeralResource {
	return []func() ephemeral.EphemeralResource{NewAccessTokenEphemeralResource}
}

func (p *bipsyncProvider) DataSources(_ context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{NewAccessTokenDataSource}
}
