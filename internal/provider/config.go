package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Environment variables the provider configuration falls back to.
const (
	envClient               = "BIPSYNC_CLIENT"
	envBaseURL              = "BIPSYNC_BASE_URL"
	envClientID             = "BIPSYNC_CLIENT_ID"
	envClientSecret         = "BIPSYNC_CLIENT_SECRET"
	envRequestTimeout       = "BIPSYNC_REQUEST_TIMEOUT"
	envRequestEncoding      = "BIPSYNC_REQUEST_ENCODING"
	envRefreshTokenLifetime = "BIPSYNC_REFRESH_TOKEN_LIFETIME"
	envTokenStore           = "BIPSYNC_TOKEN_STORE"
	envTokenStorePath       = "BIPSYNC_TOKEN_STORE_PATH"
	envTokenStoreCommand    = "BIPSYNC_TOKEN_STORE_COMMAND"
	envTokenStoreProtocol   = "BIPSYNC_TOKEN_STORE_COMMAND_PROTOCOL"
	envTokenStoreAdoptWait  = "BIPSYNC_TOKEN_STORE_ADOPT_WAIT"
	envRefreshToken         = "BIPSYNC_REFRESH_TOKEN"
)

// Defaults of the provider configuration.
const (
	defaultRequestTimeout = 30 * time.Second
	maxRequestTimeout     = 10 * time.Minute
	maxAdoptWait          = 30 * time.Minute
	minRefreshLifetime    = time.Hour
	maxRefreshLifetime    = 366 * 24 * time.Hour
)

// A Bipsync tenant slug becomes the first label of https://{client}-api.bipsync.com, so it must be a DNS label that
// still fits once "-api" is appended.
var tenantPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,57}[a-z0-9])?$`)

// scopePattern is one OAuth scope token (RFC 6749 §3.3: printable ASCII but space, quote and backslash).
var scopePattern = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)

func validateTenant(s string) error {
	if !tenantPattern.MatchString(s) {
		return fmt.Errorf("%q is not a Bipsync tenant slug: use the lower-case name in https://{client}-api.bipsync.com "+
			"(letters, digits and inner hyphens, at most 59 characters), or set base_url instead", s)
	}
	return nil
}

// baseURLFromTenant returns the API base URL of a tenant.
func baseURLFromTenant(tenant string) string {
	return "https://" + tenant + "-api.bipsync.com"
}

// normalizeBaseURL checks a base URL and returns it without a trailing slash. https is required except for loopback
// hosts (local fakes and proxies), because the token request carries the refresh token and the client secret.
func normalizeBaseURL(s string) (string, error) {
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
		if !isLoopbackHost(u.Hostname()) {
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

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validateClientID(s string) error {
	if s == "" {
		return errors.New("client_id is empty")
	}
	if strings.TrimSpace(s) != s || strings.ContainsAny(s, " \t\r\n") {
		return errors.New("client_id contains white space: copy it again from the Bipsync application settings")
	}
	return nil
}

func parseDurationIn(s string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: use a Go duration such as \"30s\", \"5m\" or \"1h30m\"", s)
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("%s is out of range: use a value from %s to %s", d, lo, hi)
	}
	return d, nil
}

// validateNonNegativeDuration checks a Go duration that may be zero but not negative.
func validateNonNegativeDuration(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration: use a Go duration such as \"15m\"", s)
	}
	if d < 0 {
		return fmt.Errorf("%s is negative", d)
	}
	return nil
}

func validateScope(s string) error {
	if !scopePattern.MatchString(s) {
		return fmt.Errorf("%q is not a single OAuth scope: give each scope as its own list element, without spaces, "+
			"quotes or backslashes", s)
	}
	return nil
}

// parseCommandEnv reads a token store command from the environment: a JSON array of strings, or words separated by
// white space.
func parseCommandEnv(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		var argv []string
		if err := json.Unmarshal([]byte(s), &argv); err != nil {
			return nil, fmt.Errorf("%s is not a JSON array of strings: %w", envTokenStoreCommand, err)
		}
		if slices.Contains(argv, "") {
			return nil, fmt.Errorf("%s has an empty element: give the program and each argument as a non-empty string", envTokenStoreCommand)
		}
		return argv, nil
	}
	return strings.Fields(s), nil
}
