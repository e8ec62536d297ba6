// Package settings holds the configuration rules that the provider and the provider binary's subcommands share: the
// BIPSYNC_* environment variable names, the checks of a tenant slug, a base URL, a client ID and a scope, the parsing
// of a token store command from the environment, and the "flag, else environment" resolution a command line needs.
//
// It uses the standard library only, so a subcommand can apply exactly the rules the provider applies without
// linking the Terraform plugin framework. The provider wraps these checks in its schema validators (configuration
// values) and applies them again in Configure (environment values, which no validator sees).
package settings

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Environment variables the provider configuration and the subcommands fall back to.
const (
	EnvClient               = "BIPSYNC_CLIENT"
	EnvBaseURL              = "BIPSYNC_BASE_URL"
	EnvClientID             = "BIPSYNC_CLIENT_ID"
	EnvClientSecret         = "BIPSYNC_CLIENT_SECRET"
	EnvRequestTimeout       = "BIPSYNC_REQUEST_TIMEOUT"
	EnvRequestEncoding      = "BIPSYNC_REQUEST_ENCODING"
	EnvRefreshTokenLifetime = "BIPSYNC_REFRESH_TOKEN_LIFETIME"
	EnvTokenStore           = "BIPSYNC_TOKEN_STORE"
	EnvTokenStorePath       = "BIPSYNC_TOKEN_STORE_PATH"
	EnvTokenStoreCommand    = "BIPSYNC_TOKEN_STORE_COMMAND"
	EnvTokenStoreProtocol   = "BIPSYNC_TOKEN_STORE_COMMAND_PROTOCOL"
	EnvTokenStoreAdoptWait  = "BIPSYNC_TOKEN_STORE_ADOPT_WAIT"
	EnvTokenStoreConnStr    = "BIPSYNC_TOKEN_STORE_CONN_STR"
	EnvTokenStoreSchemaName = "BIPSYNC_TOKEN_STORE_SCHEMA_NAME"
	EnvRefreshToken         = "BIPSYNC_REFRESH_TOKEN"

	// EnvRedirectURI and EnvAuthorizeURL are read by the authorize subcommand's -pkce mode only: the redirect URI
	// registered with the application, and the address of Bipsync's authorize page.
	EnvRedirectURI  = "BIPSYNC_REDIRECT_URI"
	EnvAuthorizeURL = "BIPSYNC_AUTHORIZE_URL"
)

// Defaults and bounds of the configuration.
const (
	DefaultRequestTimeout = 30 * time.Second
	MaxRequestTimeout     = 10 * time.Minute
	MaxAdoptWait          = 30 * time.Minute
	MinRefreshLifetime    = time.Hour
	MaxRefreshLifetime    = 366 * 24 * time.Hour
)

// A Bipsync tenant slug becomes the first label of https://{client}-api.bipsync.com, so it must be a DNS label that
// still fits once "-api" is appended.
var tenantPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,57}[a-z0-9])?$`)

// scopePattern is one OAuth scope token (RFC 6749 §3.3: printable ASCII but space, quote and backslash).
var scopePattern = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)

// ValidateTenant checks a tenant slug.
func ValidateTenant(s string) error {
	if !tenantPattern.MatchString(s) {
		return fmt.Errorf("%q is not a Bipsync tenant slug: use the lower-case name in https://{client}-api.bipsync.com "+
			"(letters, digits and inner hyphens, at most 59 characters), or set base_url instead", s)
	}
	return nil
}

// BaseURLFromTenant returns the API base URL of a tenant.
func BaseURLFromTenant(tenant string) string {
	return "https://" + tenant + "-api.bipsync.com"
}

// NormalizeBaseURL checks a base URL and returns it without a trailing slash. https is required except for loopback
// hosts (local fakes and proxies), because the token request carries the refresh token and the client secret.
func NormalizeBaseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Hostname() == "" {
		// The value is not repeated: a URL that does not parse may still carry a password.
		return "", errors.New("the value is not an absolute URL: use a form like https://acme-api.bipsync.com")
	}
	if strings.Contains(u.Host, "%") {
		return "", errors.New("the host has an IPv6 zone or a percent-escape: give a host name or an address without one")
	}
	switch {
	case u.User != nil:
		return "", errors.New("the URL carries user information (user:password@): remove it and set client_id and client_secret instead")
	case u.RawQuery != "" || u.ForceQuery:
		return "", errors.New("the URL has a query string: remove it")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "", errors.New("the URL has a fragment (#...): remove it")
	case u.Scheme == "https":
	case u.Scheme == "http":
		if !IsLoopbackHost(u.Hostname()) {
			return "", fmt.Errorf("plain http is only allowed for loopback hosts; use https://%s", u.Host)
		}
	default:
		return "", fmt.Errorf("scheme %q is not supported: use https", u.Scheme)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", errors.New("the port is not between 1 and 65535")
		}
	}
	out := strings.TrimRight(u.String(), "/")
	// url.URL.String re-escapes what it prints; what is accepted must parse again to the same value.
	if again, err := url.Parse(out); err != nil || strings.TrimRight(again.String(), "/") != out {
		return "", errors.New("the URL does not keep its form when parsed again: use a form like https://acme-api.bipsync.com")
	}
	return out, nil
}

// IsLoopbackHost tells whether host is localhost or a loopback address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ValidateClientID checks an OAuth client ID.
func ValidateClientID(s string) error {
	if s == "" {
		return errors.New("client_id is empty")
	}
	if strings.TrimSpace(s) != s || strings.ContainsAny(s, " \t\r\n") {
		return errors.New("client_id contains white space: copy it again from the Bipsync application settings")
	}
	return nil
}

// ParseDurationIn parses a Go duration and checks that it lies in [lo, hi].
func ParseDurationIn(s string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: use a Go duration such as \"30s\", \"5m\" or \"1h30m\"", s)
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("%s is out of range: use a value from %s to %s", d, lo, hi)
	}
	return d, nil
}

// ValidateNonNegativeDuration checks a Go duration that may be zero but not negative.
func ValidateNonNegativeDuration(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration: use a Go duration such as \"15m\"", s)
	}
	if d < 0 {
		return fmt.Errorf("%s is negative", d)
	}
	return nil
}

// ValidateScope checks one OAuth scope.
func ValidateScope(s string) error {
	if !scopePattern.MatchString(s) {
		return fmt.Errorf("%q is not a single OAuth scope: give each scope as its own list element, without spaces, "+
			"quotes or backslashes", s)
	}
	return nil
}

// ParseCommandEnv reads a token store command from the environment: a JSON array of strings, or words separated by
// white space.
func ParseCommandEnv(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		var argv []string
		if err := json.Unmarshal([]byte(s), &argv); err != nil {
			return nil, fmt.Errorf("%s is not a JSON array of strings: %w", EnvTokenStoreCommand, err)
		}
		if slices.Contains(argv, "") {
			return nil, fmt.Errorf("%s has an empty element: give the program and each argument as a non-empty string", EnvTokenStoreCommand)
		}
		return argv, nil
	}
	return strings.Fields(s), nil
}

// Lookup returns a non-empty environment variable. An empty variable counts as unset, as it does for the provider's
// arguments.
func Lookup(name string) (string, bool) {
	v, ok := os.LookupEnv(name)
	return v, ok && v != ""
}
