package bipsync

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

var tokenDecodeErrors = []error{
	errNotJSONObject, errMissingAccessToken, errBadTokenType, errMissingExpiresIn, errBadExpiresIn,
	errNonPositiveExpires, errMissingRefreshToken,
}

// looseTokens returns the access and refresh token strings of a body, as far as it is JSON at all.
func looseTokens(data []byte) []string {
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	var out []string
	for _, k := range []string{"access_token", "refresh_token"} {
		if s, ok := m[k].(string); ok && s != "" {
			out = append(out, s)
		}
	}
	return out
}

func FuzzDecodeTokenResponse(f *testing.F) {
	f.Add([]byte(tokenBody("Bearer", "3600", true)), true)
	f.Add([]byte(tokenBody("bearer", `"3600"`, false)), false)
	f.Add([]byte(tokenBody("mac", "3600", true)), true)
	f.Add([]byte(`{"token_type":"Bearer","expires_in":-1,"access_token":"a"}`), false)
	f.Add([]byte(`<html>`), true)
	f.Fuzz(func(t *testing.T, data []byte, requireRefresh bool) {
		tr, err := decodeTokenResponse(data, requireRefresh)
		if err != nil {
			// Only the fixed texts: nothing of the body can reach an error.
			known := false
			for _, k := range tokenDecodeErrors {
				// Identity, not errors.Is: a fixed error wrapped with more text could carry part of the body.
				known = known || err == k //nolint:errorlint // identity is the assertion
			}
			if !known {
				t.Fatalf("error %q is not one of the fixed decoding errors", err)
			}
			e := &Error{Op: OpRefresh, StatusCode: 200, Sent: true, Err: err}
			for _, s := range looseTokens(data) {
				// Words of the fixed text itself ("access_token") are no leak.
				if len(s) >= 12 && tokenLike.MatchString(s) && !strings.Contains(err.Error(), s) && strings.Contains(e.Error(), s) {
					t.Fatalf("Error() %q contains a token from the body", e.Error())
				}
			}
			if (tr != tokenResponse{}) {
				t.Fatalf("got %+v with error %v; want the zero value", tr, err)
			}
			return
		}
		if tr.AccessToken == "" || !strings.EqualFold(tr.TokenType, "bearer") || tr.ExpiresIn <= 0 || tr.ExpiresIn > maxExpiresIn {
			t.Fatalf("accepted an invalid answer: type %q expires_in %d access %d chars", tr.TokenType, tr.ExpiresIn, len(tr.AccessToken))
		}
		if requireRefresh && tr.RefreshToken == "" {
			t.Fatalf("accepted a refresh answer without a refresh token")
		}
		tok := Token{AccessToken: tr.AccessToken, TokenType: tr.TokenType, RefreshToken: tr.RefreshToken, ExpiresIn: tr.ExpiresIn}
		out := tok.String() + tok.GoString()
		// The same token without its secrets prints only the fixed text, which a token may happen to match
		// ("1-01T00:00:00Z" is part of the zero expiry's text).
		bare := tok
		bare.AccessToken, bare.RefreshToken = "\x01", "\x01"
		outBare := bare.String() + bare.GoString()
		for _, s := range []string{tr.AccessToken, tr.RefreshToken} {
			// Short values can occur in the fixed text ("e", "Bearer"); real tokens are hundreds of characters.
			if len(s) >= 12 && strings.Count(out, s) > strings.Count(outBare, s) {
				t.Fatalf("Token.String() %q contains a token", out)
			}
		}
	})
}

// tokenLike matches secrets shaped like real ones; shorter or punctuated strings can occur in the fixed framing of
// Error() by chance.
var tokenLike = regexp.MustCompile(`^[A-Za-z0-9_-]{8,}$`)

func FuzzDecodeErrorResponse(f *testing.F) {
	f.Add([]byte(`{"error":"invalid_grant","error_description":"The refresh token is invalid.","hint":"Token has been revoked"}`), "def50200abcdef0123")
	f.Add([]byte(`{"error":"invalid_request","error_description":"The refresh token is invalid.","hint":"Token has expired","message":"The refresh token is invalid."}`), "")
	f.Add([]byte("{\"error\":\"invalid_scope\",\"hint\":\"Check the `&lt;x&gt;` scope\"}"), "sec-conf")
	f.Add([]byte(`{"error":"invalid_grant","hint":"echo def50200abcdef0123 def50200abcdef01"}`), "def50200abcdef0123")
	f.Add([]byte(`<html>500</html>`), "x")
	f.Fuzz(func(t *testing.T, data []byte, secret string) {
		fields := decodeErrorResponse(data)
		if !json.Valid(data) {
			if (fields != oauthFields{}) {
				t.Fatalf("fields from a body that is not JSON: got %+v; want none", fields)
			}
		} else {
			var m map[string]any
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.UseNumber()
			if dec.Decode(&m) == nil {
				if s, ok := m["error"].(string); ok && s != fields.Code {
					t.Fatalf("Code: got %q; want %q", fields.Code, s)
				}
			}
		}
		sc := newScrubber(secret)
		e := &Error{Op: OpRefresh, StatusCode: 400, Sent: true, Attempts: 1,
			Code: sc.field(fields.Code), Description: sc.field(fields.Description), Hint: sc.field(fields.Hint), Message: sc.field(fields.Message)}
		for _, v := range []string{e.Code, e.Description, e.Hint, e.Message} {
			if !utf8.ValidString(v) || len(v) > maxField+len("…") {
				t.Fatalf("field of %d bytes, valid UTF-8 %t; want at most %d bytes of valid UTF-8", len(v), utf8.ValidString(v), maxField)
			}
			// A cut field ends in "…", which the body did not send: a secret such as "a…" is no leak there.
			if secret != "" && !strings.Contains(redacted, secret) && strings.Contains(strings.TrimSuffix(v, "…"), secret) {
				t.Fatalf("field %q holds the secret %q", v, secret)
			}
		}
		if tokenLike.MatchString(secret) && !strings.Contains(redacted, secret) && strings.Contains(e.Error(), secret) {
			t.Fatalf("Error() %q holds the secret %q", e.Error(), secret)
		}
		_ = ReauthorizationCause(e)
		_ = ScopeFromHint(e.Hint)
	})
}
