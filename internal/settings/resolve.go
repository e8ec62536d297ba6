package settings

import (
	"errors"
	"fmt"
)

// Resolve returns a command-line setting: the flag's value when it is not empty, else the environment variable's.
// source says where the value came from, in words for messages ("the --client-id flag", "the BIPSYNC_CLIENT_ID
// environment variable"); it is empty when neither is set. An empty value counts as unset either way, as it does for
// the provider's arguments.
func Resolve(flagName, flagValue, env string) (value, source string) {
	if flagValue != "" {
		return flagValue, "the --" + flagName + " flag"
	}
	if v, ok := Lookup(env); ok {
		return v, "the " + env + " environment variable"
	}
	return "", ""
}

// ErrNoEndpoint says that neither a tenant nor a base URL was given.
var ErrNoEndpoint = errors.New("no Bipsync endpoint is set")

// ResolveEndpoint returns the API base URL from a tenant slug or a base URL, each with the source it came from (see
// Resolve). Exactly one of the two must be set; the error names the source of a value that breaks a rule, and is
// ErrNoEndpoint when neither is set.
func ResolveEndpoint(tenant, tenantSource, baseURL, baseSource string) (string, error) {
	switch {
	case tenant != "" && baseURL != "":
		return "", fmt.Errorf("both a tenant (from %s) and a base URL (from %s) are set: set only one, the tenant for "+
			"https://{client}-api.bipsync.com or the base URL for any other endpoint", tenantSource, baseSource)
	case tenant != "":
		if err := ValidateTenant(tenant); err != nil {
			return "", fmt.Errorf("the tenant from %s is not valid: %w", tenantSource, err)
		}
		return BaseURLFromTenant(tenant), nil
	case baseURL != "":
		u, err := NormalizeBaseURL(baseURL)
		if err != nil {
			return "", fmt.Errorf("the base URL from %s is not valid: %w", baseSource, err)
		}
		return u, nil
	}
	return "", ErrNoEndpoint
}
