package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/settings"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// resolvedConfig is the provider configuration after environment fallbacks, defaults and validation.
type resolvedConfig struct {
	baseURL              string
	clientID             string
	clientSecret         string
	requestTimeout       time.Duration
	encoding             bipsync.Encoding
	refreshTokenLifetime time.Duration
	storeBackend         string
	storePath            string
	storeCommand         []string
	storeProtocol        int
	adoptWait            time.Duration
	storeConnStr         string
	storeSchemaName      string
	storeS3              tokenstore.S3Config
}

// setting is one provider argument: its value in the configuration, its environment fallback and where to report.
type setting struct {
	path  path.Path
	value types.String
	env   string
	// unknownSummary and invalidSummary are the diagnostic summaries of a value known only after apply and of a value
	// that fails its check (empty for a setting that is not checked).
	unknownSummary, invalidSummary string
}

// get returns the configured value or the environment fallback. An unknown value is an error: the provider cannot
// build its token client from a value only known after apply.
func (s setting) get(diags *diag.Diagnostics) (value, source string) {
	if s.value.IsUnknown() {
		diags.AddAttributeError(s.path, s.unknownSummary,
			fmt.Sprintf("The provider cannot be configured because %s is unknown until apply. Set it to a value known at plan "+
				"time, or leave it unset and use the %s environment variable.", s.path, s.env))
		return "", ""
	}
	if !s.value.IsNull() {
		return s.value.ValueString(), s.path.String()
	}
	if v, ok := settings.Lookup(s.env); ok {
		return v, "the " + s.env + " environment variable"
	}
	return "", ""
}

func (s setting) invalid(diags *diag.Diagnostics, source string, err error) {
	diags.AddAttributeError(s.path, s.invalidSummary,
		fmt.Sprintf("The value from %s is not valid: %v", source, err))
}

func durationSetting(p path.Path, v timetypes.GoDuration, env, unknownSummary, invalidSummary string) setting {
	s := types.StringNull()
	switch {
	case v.IsUnknown():
		s = types.StringUnknown()
	case !v.IsNull():
		s = types.StringValue(v.ValueString())
	}
	return setting{path: p, value: s, env: env, unknownSummary: unknownSummary, invalidSummary: invalidSummary}
}

// storeAttr is the path of an attribute of the token_store block.
func storeAttr(name string) path.Path { return path.Root("token_store").AtName(name) }

// resolveConfig applies environment fallbacks and defaults, and checks every value wherever it came from (schema
// validators only see the configuration, not the environment).
func resolveConfig(m *providerModel, diags *diag.Diagnostics) resolvedConfig {
	var cfg resolvedConfig

	tenantSet := setting{path.Root("client"), m.Client, settings.EnvClient, summaryUnknownTenant, summaryInvalidTenant}
	baseSet := setting{path.Root("base_url"), m.BaseURL, settings.EnvBaseURL, summaryUnknownBaseURL, summaryInvalidBaseURL}
	tenant, tenantSrc := tenantSet.get(diags)
	base, baseSrc := baseSet.get(diags)
	switch {
	case tenant != "" && base != "":
		diags.AddAttributeError(path.Root("client"), summaryConflictingEndpoint,
			fmt.Sprintf("Both a tenant (from %s) and a base URL (from %s) are set. Set only one: client for "+
				"https://{client}-api.bipsync.com, or base_url for any other endpoint.", tenantSrc, baseSrc))
	case tenant != "":
		if err := settings.ValidateTenant(tenant); err != nil {
			tenantSet.invalid(diags, tenantSrc, err)
		}
		cfg.baseURL = settings.BaseURLFromTenant(tenant)
	case base != "":
		u, err := settings.NormalizeBaseURL(base)
		if err != nil {
			baseSet.invalid(diags, baseSrc, err)
		}
		cfg.baseURL = u
	case !diags.HasError():
		diags.AddAttributeError(path.Root("client"), summaryMissingEndpoint,
			"Set client to the Bipsync tenant slug (the API is https://{client}-api.bipsync.com), or base_url for a sandbox, "+
				"proxy or test server, in the provider block or with the BIPSYNC_CLIENT or BIPSYNC_BASE_URL environment variable.")
	}

	idSet := setting{path.Root("client_id"), m.ClientID, settings.EnvClientID, summaryUnknownClientID, summaryInvalidClientID}
	id, idSrc := idSet.get(diags)
	if id == "" && idSrc == "" {
		diags.AddAttributeError(path.Root("client_id"), summaryMissingClientID,
			"Set client_id in the provider block or the BIPSYNC_CLIENT_ID environment variable to the client ID of the "+
				"Bipsync OAuth application.")
	} else if err := settings.ValidateClientID(id); err != nil {
		idSet.invalid(diags, idSrc, err)
	}
	cfg.clientID = id

	cfg.clientSecret, _ = setting{path.Root("client_secret"), m.ClientSecret, settings.EnvClientSecret, summaryUnknownClientSecret, ""}.get(diags)

	cfg.requestTimeout = resolveDuration(diags, durationSetting(path.Root("request_timeout"), m.RequestTimeout, settings.EnvRequestTimeout,
		summaryUnknownRequestTimeout, summaryInvalidRequestTimeout),
		settings.DefaultRequestTimeout, time.Second, settings.MaxRequestTimeout)
	cfg.refreshTokenLifetime = resolveDuration(diags,
		durationSetting(path.Root("refresh_token_lifetime"), m.RefreshTokenLifetime, settings.EnvRefreshTokenLifetime,
			summaryUnknownRefreshLifetime, summaryInvalidRefreshLifetime),
		tokensource.DefaultRefreshTokenLifetime, settings.MinRefreshLifetime, settings.MaxRefreshLifetime)

	encSet := setting{path.Root("request_encoding"), m.RequestEncoding, settings.EnvRequestEncoding,
		summaryUnknownRequestEncoding, summaryInvalidRequestEncoding}
	switch enc, src := encSet.get(diags); enc {
	case "", "form":
		cfg.encoding = bipsync.EncodingForm
	case "json":
		cfg.encoding = bipsync.EncodingJSON
	default:
		encSet.invalid(diags, src, fmt.Errorf("%q is not form or json", enc))
	}

	resolveStore(m.TokenStore, diags, &cfg)
	return cfg
}

func resolveDuration(diags *diag.Diagnostics, s setting, def, lo, hi time.Duration) time.Duration {
	v, src := s.get(diags)
	if v == "" {
		return def
	}
	d, err := settings.ParseDurationIn(v, lo, hi)
	if err != nil {
		s.invalid(diags, src, err)
		return def
	}
	return d
}

func resolveStore(m *tokenStoreModel, diags *diag.Diagnostics, cfg *resolvedConfig) {
	if m == nil {
		m = &tokenStoreModel{Backend: types.StringNull(), Path: types.StringNull(), Command: types.ListNull(types.StringType),
			CommandProtocol: types.StringNull(), AdoptWait: timetypes.NewGoDurationNull(),
			ConnStr: types.StringNull(), SchemaName: types.StringNull()}
	}
	protoSet := setting{storeAttr("command_protocol"), m.CommandProtocol, settings.EnvTokenStoreProtocol,
		summaryUnknownStoreSetting, summaryInvalidStoreSetting}
	switch proto, src := protoSet.get(diags); proto {
	case "", "1":
		cfg.storeProtocol = tokenstore.ProtocolGetPut
	case "2":
		cfg.storeProtocol = tokenstore.ProtocolConditional
	default:
		protoSet.invalid(diags, src, fmt.Errorf("%q is not 1 (get/put) or 2 (conditional put)", proto))
	}

	// A wait shorter than one attempt at the token endpoint cannot hold: the other runner's exchange alone may take
	// that long, and this run would report a dead chain while the other still waits for its answer.
	waitSet := durationSetting(storeAttr("adopt_wait"), m.AdoptWait, settings.EnvTokenStoreAdoptWait, summaryUnknownStoreSetting,
		summaryInvalidStoreSetting)
	cfg.adoptWait = resolveDuration(diags, waitSet, 3*cfg.requestTimeout, max(cfg.requestTimeout, time.Second), settings.MaxAdoptWait)
	backendSet := setting{storeAttr("backend"), m.Backend, settings.EnvTokenStore,
		summaryUnknownStoreSetting, summaryInvalidStoreSetting}
	backend, backendSrc := backendSet.get(diags)
	if err := tokenstore.CheckBackend(backend); err != nil {
		backendSet.invalid(diags, backendSrc, err)
		return
	}
	if backend == "" {
		backend = "file"
	}
	cfg.storeBackend = backend

	pathSet := setting{storeAttr("path"), m.Path, settings.EnvTokenStorePath,
		summaryUnknownStoreSetting, summaryInvalidStoreSetting}
	cfg.storePath, _ = pathSet.get(diags)

	cmdPath := storeAttr("command")
	switch {
	case m.Command.IsUnknown():
		diags.AddAttributeError(cmdPath, summaryUnknownStoreSetting,
			"token_store.command is unknown until apply. Set it to a value known at plan time, or use the "+
				settings.EnvTokenStoreCommand+" environment variable.")
	case !m.Command.IsNull():
		diags.Append(m.Command.ElementsAs(context.Background(), &cfg.storeCommand, false)...)
	default:
		if v, ok := settings.Lookup(settings.EnvTokenStoreCommand); ok {
			argv, err := settings.ParseCommandEnv(v)
			if err != nil {
				diags.AddAttributeError(cmdPath, summaryInvalidStoreSetting, err.Error())
			}
			cfg.storeCommand = argv
		}
	}
	if backend == "command" && len(cfg.storeCommand) == 0 && !diags.HasError() {
		diags.AddAttributeError(cmdPath, summaryMissingStoreCommand,
			"The command backend needs token_store.command (or the "+settings.EnvTokenStoreCommand+" environment variable): the "+
				"program that keeps records, run as `command... get KEY` and `command... put KEY`.")
	}
	resolvePostgres(m, backend, diags, cfg)
	resolveS3(m, backend, diags, cfg)
}

// resolvePostgres reads the postgres backend's settings. They are checked whatever the backend, since a value in the
// block is a mistake unless the backend is postgres: most likely a forgotten backend = "postgres", which would leave
// the chains in a local file on a runner that may be thrown away.
func resolvePostgres(m *tokenStoreModel, backend string, diags *diag.Diagnostics, cfg *resolvedConfig) {
	connSet := setting{storeAttr("conn_str"), m.ConnStr, settings.EnvTokenStoreConnStr,
		summaryUnknownStoreSetting, summaryInvalidStoreSetting}
	schemaSet := setting{storeAttr("schema_name"), m.SchemaName, settings.EnvTokenStoreSchemaName,
		summaryUnknownStoreSetting, summaryInvalidStoreSetting}
	if m.Backend.IsUnknown() {
		return // reported with the backend
	}
	if backend != "postgres" {
		for _, s := range []setting{connSet, schemaSet} {
			if !s.value.IsNull() && !s.value.IsUnknown() {
				diags.AddAttributeError(s.path, summaryStoreSettingUnused,
					fmt.Sprintf("%s is set, but the token store backend is %s, which does not use it. Set backend = \"postgres\" "+
						"to keep the chains in PostgreSQL, or remove %s.", s.path, backend, s.path))
			}
		}
		return
	}
	connStr, connSrc := connSet.get(diags)
	if connSrc == "" {
		connSrc = "the PG* environment variables (token_store.conn_str and " + settings.EnvTokenStoreConnStr + " are unset)"
	}
	// The error never quotes the connection string: it may hold a password.
	if err := tokenstore.CheckPostgresConnStr(connStr); err != nil {
		connSet.invalid(diags, connSrc, err)
	}
	schema, schemaSrc := schemaSet.get(diags)
	if schemaSrc != "" {
		if err := tokenstore.CheckPostgresSchemaName(schema); err != nil {
			schemaSet.invalid(diags, schemaSrc, err)
		}
	}
	cfg.storeConnStr, cfg.storeSchemaName = connStr, schema
}

// checkString adapts a plain check function to a schema validator, so a rule is written once and applies to both
// configuration values (at validate time) and environment values (at configure time).
func checkString(description string, check func(string) error) validator.String {
	return stringCheck{description: description, check: check}
}

type stringCheck struct {
	description string
	check       func(string) error
}

func (v stringCheck) Description(_ context.Context) string { return "value must be " + v.description }

func (v stringCheck) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v stringCheck) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, summaryInvalidAttribute,
			fmt.Sprintf("%s must be %s: %v", req.Path, v.description, err))
	}
}
