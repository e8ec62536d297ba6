package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/settings"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// maxSecretFile bounds what is read of a client secret file or of a seed on standard input: both are a few hundred
// bytes, and a wrong file must not exhaust memory.
const maxSecretFile = 64 << 10

// clientFlags are the settings that name the Bipsync application: the same sources as the provider's block.
type clientFlags struct {
	client, baseURL, clientID, clientSecretFile string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.client, "client", "", "Bipsync tenant `slug`: the API is https://{client}-api.bipsync.com (default $"+settings.EnvClient+")")
	fs.StringVar(&c.baseURL, "base-url", "", "API base `URL` for a sandbox, proxy or test server, instead of -client (default $"+settings.EnvBaseURL+")")
	fs.StringVar(&c.clientID, "client-id", "", "client `ID` of the Bipsync OAuth application (default $"+settings.EnvClientID+")")
	fs.StringVar(&c.clientSecretFile, "client-secret-file", "", "`file` holding the client secret of a confidential application "+
		"(default $"+settings.EnvClientSecret+"; there is no flag for the secret itself: command lines are not private)")
}

// client is the resolved application.
type client struct {
	baseURL      string
	clientID     string
	clientSecret string
}

func (c *clientFlags) resolve() (client, error) {
	tenant, tenantSrc := settings.Resolve("client", c.client, settings.EnvClient)
	base, baseSrc := settings.Resolve("base-url", c.baseURL, settings.EnvBaseURL)
	u, err := settings.ResolveEndpoint(tenant, tenantSrc, base, baseSrc)
	if errors.Is(err, settings.ErrNoEndpoint) {
		return client{}, usagef("no Bipsync endpoint: give -client (the tenant slug of https://{client}-api.bipsync.com) "+
			"or -base-url, or set %s or %s", settings.EnvClient, settings.EnvBaseURL)
	}
	if err != nil {
		return client{}, usagef("%v", err)
	}
	id, idSrc := settings.Resolve("client-id", c.clientID, settings.EnvClientID)
	if id == "" {
		return client{}, usagef("no client ID: give -client-id or set %s to the client ID of the Bipsync OAuth application",
			settings.EnvClientID)
	}
	if err := settings.ValidateClientID(id); err != nil {
		return client{}, usagef("the client ID from %s is not valid: %v", idSrc, err)
	}
	secret, _ := settings.Lookup(settings.EnvClientSecret)
	if c.clientSecretFile != "" {
		b, err := readSmallFile(c.clientSecretFile)
		if err != nil {
			return client{}, usagef("-client-secret-file: %v", err)
		}
		secret = strings.TrimSpace(string(b))
		if secret == "" {
			return client{}, usagef("-client-secret-file: %s is empty", c.clientSecretFile)
		}
	}
	return client{baseURL: u, clientID: id, clientSecret: secret}, nil
}

// readSmallFile reads a file of at most maxSecretFile bytes. Its errors name the file, never its content.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readSmall(f, path)
}

// readSmall reads at most maxSecretFile bytes from r, named what in errors.
func readSmall(r io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("%s is larger than %d bytes: it is not a token or a secret", what, maxSecretFile)
	}
	return b, nil
}

// tokenClient returns the project's token client for c, on the commands' HTTP client and clock.
func (e *env) tokenClient(c client) (*bipsync.Client, error) {
	return bipsync.New(bipsync.Config{
		BaseURL:      c.baseURL,
		ClientID:     c.clientID,
		ClientSecret: c.clientSecret,
		HTTPClient:   e.opts.HTTPClient,
		Now:          e.opts.Now,
		UserAgent:    Program + "/" + e.opts.Version,
	})
}

// storeFlags name a token store: the same sources as the provider's token_store block.
type storeFlags struct {
	backend, path, command, protocol, adoptWait, connStr, schemaName string

	// s3 are the s3 backend's flags.
	s3 s3Flags
}

// storeSettings are the resolved store flags.
type storeSettings struct {
	cfg tokenstore.Config
	// adoptWait is the token source's AdoptWait; zero for its default.
	adoptWait time.Duration
}

func (s *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.backend, "token-store", "", "token store `backend`: file, command, postgres, s3 or none (default $"+settings.EnvTokenStore+", else file)")
	fs.StringVar(&s.path, "token-store-path", "", "`directory` of the file backend (default $"+settings.EnvTokenStorePath+
		", else terraform-provider-bipsync/chains in the user cache directory)")
	fs.StringVar(&s.command, "token-store-command", "", "`program` and fixed arguments of the command backend, as a JSON array or "+
		"words separated by spaces (default $"+settings.EnvTokenStoreCommand+")")
	fs.StringVar(&s.protocol, "token-store-command-protocol", "", "`level` of the command helper's protocol: 1 (get/put) or 2 "+
		"(conditional put) (default $"+settings.EnvTokenStoreProtocol+", else 1)")
	fs.StringVar(&s.adoptWait, "token-store-adopt-wait", "", "how long a refused exchange waits for another runner's record, as a "+
		"Go `duration` (default $"+settings.EnvTokenStoreAdoptWait+", else 90s)")
	fs.StringVar(&s.connStr, "token-store-conn-str", "", "libpq `connection string` of the postgres backend, key=value pairs or a "+
		"URL (default $"+settings.EnvTokenStoreConnStr+", else the PG* variables); give the password in PGPASSWORD or "+
		"~/.pgpass, not here, where other users of the machine can read it")
	fs.StringVar(&s.schemaName, "token-store-schema-name", "", "`schema` of the postgres backend's table (default $"+
		settings.EnvTokenStoreSchemaName+", else "+tokenstore.DefaultPostgresSchema+")")
	s.s3.register(fs)
}

// storeFlagGiven tells whether any flag of storeFlags was given: every one of them is named token-store*.
func storeFlagGiven(fs *flag.FlagSet) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || strings.HasPrefix(f.Name, "token-store") })
	return given
}

func (s *storeFlags) resolve() (storeSettings, error) {
	backend, backendSrc := settings.Resolve("token-store", s.backend, settings.EnvTokenStore)
	if err := tokenstore.CheckBackend(backend); err != nil {
		return storeSettings{}, usagef("the token store backend from %s: %v", backendSrc, err)
	}
	path, _ := settings.Resolve("token-store-path", s.path, settings.EnvTokenStorePath)
	out := storeSettings{cfg: tokenstore.Config{Backend: backend, Path: path}}
	if raw, src := settings.Resolve("token-store-command", s.command, settings.EnvTokenStoreCommand); raw != "" {
		argv, err := settings.ParseCommandEnv(raw)
		if err != nil {
			return storeSettings{}, usagef("the token store command from %s: %v", src, err)
		}
		out.cfg.Command = argv
	}
	if backend == "postgres" {
		connStr, src := settings.Resolve("token-store-conn-str", s.connStr, settings.EnvTokenStoreConnStr)
		if src == "" {
			src = "the PG* environment variables"
		}
		// The error never quotes the connection string: it may hold a password.
		if err := tokenstore.CheckPostgresConnStr(connStr); err != nil {
			return storeSettings{}, usagef("the postgres connection string from %s: %v", src, err)
		}
		schema, src := settings.Resolve("token-store-schema-name", s.schemaName, settings.EnvTokenStoreSchemaName)
		if src != "" {
			if err := tokenstore.CheckPostgresSchemaName(schema); err != nil {
				return storeSettings{}, usagef("the postgres schema name from %s: %v", src, err)
			}
		}
		out.cfg.ConnStr, out.cfg.SchemaName = connStr, schema
	}
	if backend == "s3" {
		c, err := s.s3.resolve()
		if err != nil {
			return storeSettings{}, err
		}
		out.cfg.S3 = c
	}
	if backend == "command" && len(out.cfg.Command) == 0 {
		return storeSettings{}, usagef("the command backend needs -token-store-command or %s: the program that keeps "+
			"records, run as `command... get KEY` and `command... put KEY`", settings.EnvTokenStoreCommand)
	}
	switch proto, src := settings.Resolve("token-store-command-protocol", s.protocol, settings.EnvTokenStoreProtocol); proto {
	case "", "1":
		out.cfg.Protocol = tokenstore.ProtocolGetPut
	case "2":
		out.cfg.Protocol = tokenstore.ProtocolConditional
	default:
		return storeSettings{}, usagef("the command helper protocol %q from %s is not 1 (get/put) or 2 (conditional put)", proto, src)
	}
	if raw, src := settings.Resolve("token-store-adopt-wait", s.adoptWait, settings.EnvTokenStoreAdoptWait); raw != "" {
		// Not shorter than one attempt at the token endpoint, as the provider requires: another runner's exchange alone
		// may take that long.
		d, err := settings.ParseDurationIn(raw, settings.DefaultRequestTimeout, settings.MaxAdoptWait)
		if err != nil {
			return storeSettings{}, usagef("the adopt wait from %s: %v", src, err)
		}
		out.adoptWait = d
	}
	return out, nil
}

// lifetimeFlag is the refresh token lifetime, as the provider's refresh_token_lifetime.
type lifetimeFlag struct{ value string }

func (l *lifetimeFlag) register(fs *flag.FlagSet) {
	fs.StringVar(&l.value, "refresh-token-lifetime", "", "how long Bipsync keeps a refresh token alive, as a Go `duration` "+
		"(default $"+settings.EnvRefreshTokenLifetime+", else 720h)")
}

func (l *lifetimeFlag) resolve() (time.Duration, error) {
	v, src := settings.Resolve("refresh-token-lifetime", l.value, settings.EnvRefreshTokenLifetime)
	if v == "" {
		return tokensource.DefaultRefreshTokenLifetime, nil
	}
	d, err := settings.ParseDurationIn(v, settings.MinRefreshLifetime, settings.MaxRefreshLifetime)
	if err != nil {
		return 0, usagef("the refresh token lifetime from %s: %v", src, err)
	}
	return d, nil
}

// openSource opens the store ss names and returns a token source over it, with the provider's rules.
func (e *env) openSource(c client, ss storeSettings, lifetime time.Duration) (*tokensource.Source, tokenstore.Store, error) {
	st, err := tokenstore.New(ss.cfg)
	if err != nil {
		return nil, nil, usagef("the token store could not be opened: %v", err)
	}
	tc, err := e.tokenClient(c)
	if err != nil {
		return nil, nil, fmt.Errorf("token client: %w (a bug: the settings were checked)", err)
	}
	src, err := tokensource.New(tokensource.Options{
		Client:               tc,
		Store:                st,
		ClientSecret:         c.clientSecret,
		Now:                  e.opts.Now,
		RefreshTokenLifetime: lifetime,
		AdoptWait:            ss.adoptWait,
	})
	if err != nil {
		return nil, nil, err
	}
	return src, st, nil
}
