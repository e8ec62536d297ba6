package bipsynctest

import (
	"io"
	"net/http"
	"strconv"
	"strings"
)

// oauthError is one league OAuthServerException: status, error, error_description, an optional hint, and for
// invalid_client the WWW-Authenticate challenge.
type oauthError struct {
	status      int
	code        string
	description string
	hint        string
	hasHint     bool
	wwwAuth     string
}

const descInvalidRequest = "The request is missing a required parameter, includes an invalid parameter value, " +
	"includes a parameter more than once, or is otherwise malformed."

func errUnsupportedGrantType() *oauthError {
	return &oauthError{
		status:      http.StatusBadRequest,
		code:        "unsupported_grant_type",
		description: "The authorization grant type is not supported by the authorization server.",
		hint:        "Check that all required parameters have been provided",
		hasHint:     true,
	}
}

func errInvalidRequest(param string) *oauthError {
	return &oauthError{
		status:      http.StatusBadRequest,
		code:        "invalid_request",
		description: descInvalidRequest,
		hint:        "Check the `" + param + "` parameter",
		hasHint:     true,
	}
}

// errInvalidClient adds the challenge league adds when the request carried a non-empty Authorization header:
// Bearer when that header starts with "Bearer" (case-sensitive), Basic otherwise.
func errInvalidClient(h http.Header) *oauthError {
	e := &oauthError{status: http.StatusUnauthorized, code: "invalid_client", description: "Client authentication failed"}
	if v := h.Values("Authorization"); len(v) > 0 && v[0] != "" {
		scheme := "Basic"
		if strings.HasPrefix(v[0], "Bearer") {
			scheme = "Bearer"
		}
		e.wwwAuth = scheme + ` realm="OAuth"`
	}
	return e
}

func errInvalidRefreshToken(hint string) *oauthError {
	return &oauthError{
		status:      http.StatusBadRequest,
		code:        "invalid_grant",
		description: "The refresh token is invalid.",
		hint:        hint,
		hasHint:     true,
	}
}

func errInvalidScope(scope string) *oauthError {
	return &oauthError{
		status:      http.StatusBadRequest,
		code:        "invalid_scope",
		description: "The requested scope is invalid, unknown, or malformed",
		hint:        "Check the `" + phpHTMLSpecialChars(scope) + "` scope",
		hasHint:     true,
	}
}

func errAccessDenied(hint string) *oauthError {
	return &oauthError{
		status:      http.StatusUnauthorized,
		code:        "access_denied",
		description: "The resource owner or authorization server denied the request.",
		hint:        hint,
		hasHint:     true,
	}
}

// errAccessDeniedNoHint is accessDenied() without a hint, as a device poll after a denial gets it.
func errAccessDeniedNoHint() *oauthError {
	return &oauthError{
		status:      http.StatusUnauthorized,
		code:        "access_denied",
		description: "The resource owner or authorization server denied the request.",
	}
}

// errInvalidRequestHint is invalidRequest($parameter, $hint): the hint replaces the "Check the ..." text.
func errInvalidRequestHint(_, hint string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_request", description: descInvalidRequest, hint: hint, hasHint: true}
}

const descInvalidGrant = "The provided authorization grant (e.g., authorization code, resource owner credentials) or " +
	"refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, " +
	"or was issued to another client."

// errInvalidGrant is invalidGrant($hint); league sends the hint even when it is empty.
func errInvalidGrant(hint string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_grant", description: descInvalidGrant, hint: hint, hasHint: true}
}

func errAuthorizationPending() *oauthError {
	return &oauthError{
		status: http.StatusBadRequest,
		code:   "authorization_pending",
		description: "The authorization request is still pending as the end user hasn't yet completed the user " +
			"interaction steps. The client SHOULD repeat the Access Token Request to the token endpoint",
		hasHint: true,
	}
}

func errSlowDown() *oauthError {
	return &oauthError{
		status: http.StatusBadRequest,
		code:   "slow_down",
		description: "The authorization request is still pending and polling should continue, but the interval MUST be " +
			"increased by 5 seconds for this and all subsequent requests.",
		hasHint: true,
	}
}

func errExpiredToken(hint string) *oauthError {
	return &oauthError{
		status:      http.StatusBadRequest,
		code:        "expired_token",
		description: "The `device_code` has expired and the device authorization session has concluded.",
		hint:        hint,
		hasHint:     true,
	}
}

func errServerError(hint string) *oauthError {
	return &oauthError{
		status: http.StatusInternalServerError,
		code:   "server_error",
		description: "The authorization server encountered an unexpected condition which prevented it from " +
			"fulfilling the request: " + hint,
	}
}

// body is the compact json_encode output, keys in league's order, no trailing newline.
func (e *oauthError) body() string {
	var b strings.Builder
	b.WriteString(`{"error":`)
	b.WriteString(phpJSONString(e.code))
	b.WriteString(`,"error_description":`)
	b.WriteString(phpJSONString(e.description))
	if e.hasHint {
		b.WriteString(`,"hint":`)
		b.WriteString(phpJSONString(e.hint))
	}
	b.WriteByte('}')
	return b.String()
}

func (e *oauthError) write(w http.ResponseWriter) {
	setLeagueErrorHeaders(w.Header())
	if e.wwwAuth != "" {
		w.Header()["WWW-Authenticate"] = []string{e.wwwAuth}
	}
	w.WriteHeader(e.status)
	_, _ = io.WriteString(w, e.body())
}

// setLeagueErrorHeaders sets the one header league sets on errors, spelled as league spells it. The nil
// canonical entry stops net/http from sniffing a second Content-Type.
func setLeagueErrorHeaders(h http.Header) {
	h["Content-type"] = []string{"application/json"}
	h["Content-Type"] = nil
}

// writeTokenJSON answers 200 with league's BearerTokenResponse headers, names lower-case as league sets them.
func writeTokenJSON(w http.ResponseWriter, body string) {
	h := w.Header()
	h["pragma"] = []string{"no-cache"}
	h["cache-control"] = []string{"no-store"}
	h["content-type"] = []string{"application/json; charset=UTF-8"}
	h["Content-Type"] = nil
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, body)
}

// tokenBody is S-RT (with a refresh token) or S-CC (without), keys in league's order.
func tokenBody(tokenType string, expiresIn int64, accessToken, refreshToken string) string {
	var b strings.Builder
	b.WriteString(`{"token_type":`)
	b.WriteString(phpJSONString(tokenType))
	b.WriteString(`,"expires_in":`)
	b.WriteString(strconv.FormatInt(expiresIn, 10))
	if accessToken != "" {
		b.WriteString(`,"access_token":`)
		b.WriteString(phpJSONString(accessToken))
	}
	if refreshToken != "" {
		b.WriteString(`,"refresh_token":`)
		b.WriteString(phpJSONString(refreshToken))
	}
	b.WriteByte('}')
	return b.String()
}
