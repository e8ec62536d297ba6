package bipsync

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Token is a successful answer of the token endpoint.
type Token struct {
	// AccessToken is the bearer token for API calls.
	AccessToken string
	// TokenType is as returned ("Bearer" from league, "bearer" in the Bipsync docs); other types are rejected.
	TokenType string
	// RefreshToken is the new head of the chain after a refresh; empty for client credentials.
	RefreshToken string
	// ExpiresIn is the access token lifetime in seconds, from a JSON number or a numeric string.
	ExpiresIn int64
	// Scope is the "scope" of the answer when the server sends one (league does not).
	Scope string
	// ReceivedAt is Now() when the answer arrived.
	ReceivedAt time.Time
	// Expiry is ReceivedAt + ExpiresIn.
	Expiry time.Time
}

// String describes the token with both tokens redacted. It has a value receiver so that a Token printed by value
// is redacted too.
func (t Token) String() string {
	typ := "<other>"
	if strings.EqualFold(t.TokenType, "bearer") {
		typ = t.TokenType
	}
	scope := ""
	if t.Scope != "" {
		scope = fmt.Sprintf(" scope=%q", t.Scope)
	}
	return fmt.Sprintf("bipsync.Token{type=%s expires=%s%s access=%s refresh=%s}",
		typ, t.Expiry.UTC().Format(time.RFC3339), scope, redactedOrEmpty(t.AccessToken), redactedOrEmpty(t.RefreshToken))
}

// GoString is String, so that %#v cannot print the tokens either.
func (t Token) GoString() string { return t.String() }

// tokenResponse is a decoded, validated success body.
type tokenResponse struct {
	AccessToken  string
	TokenType    string
	RefreshToken string
	ExpiresIn    int64
	Scope        string
}

// maxExpiresIn keeps Expiry computable (a time.Duration holds about 292 years); no real answer comes near it.
const maxExpiresIn = 100 * 366 * 24 * 3600

// Decoding failures of a 2xx body. Their text is fixed: it never quotes the body, which holds the tokens.
var (
	errNotJSONObject       = errors.New("invalid token response: not a JSON object")
	errMissingAccessToken  = errors.New("invalid token response: access_token missing or not a non-empty string")
	errBadTokenType        = errors.New("invalid token response: token_type missing or not Bearer")
	errMissingExpiresIn    = errors.New("invalid token response: expires_in missing")
	errBadExpiresIn        = errors.New("invalid token response: expires_in is not a number of seconds")
	errNonPositiveExpires  = errors.New("invalid token response: expires_in is not positive")
	errMissingRefreshToken = errors.New("invalid token response: refresh_token missing or not a non-empty string")
)

// decodeTokenResponse decodes and validates a 2xx body. requireRefresh is set for the refresh grant: an answer
// without a new refresh token there means the chain may have rotated with the new head lost.
func decodeTokenResponse(data []byte, requireRefresh bool) (tokenResponse, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return tokenResponse{}, errNotJSONObject
	}
	var tr tokenResponse
	var ok bool
	if tr.AccessToken, ok = jsonString(m["access_token"]); !ok || tr.AccessToken == "" {
		return tokenResponse{}, errMissingAccessToken
	}
	if tr.TokenType, ok = jsonString(m["token_type"]); !ok || !strings.EqualFold(tr.TokenType, "bearer") {
		return tokenResponse{}, errBadTokenType
	}
	n, err := parseExpiresIn(m["expires_in"])
	if err != nil {
		return tokenResponse{}, err
	}
	tr.ExpiresIn = n
	if raw, present := m["refresh_token"]; present && !isJSONNull(raw) {
		if tr.RefreshToken, ok = jsonString(raw); !ok {
			return tokenResponse{}, errMissingRefreshToken
		}
	}
	if requireRefresh && tr.RefreshToken == "" {
		return tokenResponse{}, errMissingRefreshToken
	}
	// scope is informational; a malformed one is ignored rather than failing an exchange that rotated the chain.
	tr.Scope, _ = jsonString(m["scope"])
	return tr, nil
}

// refreshTokenOf returns the refresh_token of a JSON object body, or "".
func refreshTokenOf(data []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	rt, _ := jsonString(m["refresh_token"])
	return rt
}

func isJSONNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// jsonString decodes raw as a JSON string; false when absent or another type.
func jsonString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// parseExpiresIn accepts a JSON number or a numeric string: the Bipsync docs show a number, and some OAuth servers
// send a string. Fractions are truncated.
func parseExpiresIn(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || isJSONNull(raw) {
		return 0, errMissingExpiresIn
	}
	s := string(raw)
	if raw[0] == '"' {
		var ok bool
		if s, ok = jsonString(raw); !ok {
			return 0, errBadExpiresIn
		}
		s = strings.TrimSpace(s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if !isDecimal(s) {
			return 0, errBadExpiresIn
		}
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) || f > maxExpiresIn+1 || f < -maxExpiresIn {
			return 0, errBadExpiresIn
		}
		n = int64(f)
	}
	switch {
	case n <= 0:
		return 0, errNonPositiveExpires
	case n > maxExpiresIn:
		return 0, errBadExpiresIn
	}
	return n, nil
}

// isDecimal limits float parsing to plain decimal notation (ParseFloat also takes "Inf", hex and underscores).
func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9', r == '.', r == 'e', r == 'E':
		case (r == '+' || r == '-') && (i == 0 || s[i-1] == 'e' || s[i-1] == 'E'):
		default:
			return false
		}
	}
	return true
}
