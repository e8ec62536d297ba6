package bipsynctest

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
)

// bearerPrefix is the pattern league's BearerTokenValidator strips before parsing the JWT. It is
// case-sensitive: "bearer x" is parsed as the JWT "bearer x" and fails.
var bearerPrefix = regexp.MustCompile(`^\s*Bearer\s`)

// serveProtected is GET /v1/me, a resource behind league's BearerTokenValidator. It answers 200 with the
// token's client and scopes for a live access token and 401 access_denied otherwise.
func (s *Server) serveProtected(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, phpPostMaxSize))

	s.mu.Lock()
	entry := LoggedRequest{
		Time:          s.now(),
		Method:        r.Method,
		Path:          r.URL.Path,
		ContentType:   r.Header.Get("Content-Type"),
		Authorization: s.authorizationTagLocked(r.Header),
	}
	a, err := s.authorizeLocked(r.Header)
	var body string
	if err != nil {
		s.stats.ProtectedDenied++
		entry.Status, entry.Error, entry.Hint = err.status, err.code, err.hint
	} else {
		s.stats.ProtectedOK++
		entry.Status, entry.ClientID = http.StatusOK, a.clientID
		body = `{"client_id":` + phpJSONString(a.clientID) + `,"scopes":` + phpJSONStrings(a.scopes) + `}`
	}
	s.recordLocked(entry)
	s.mu.Unlock()

	if err != nil {
		err.write(w)
		return
	}
	h := w.Header()
	h["Content-type"] = []string{"application/json"}
	h["Content-Type"] = nil
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, body)
}

// authorizeLocked follows BearerTokenValidator::validateAuthorization: header present, JWT parse (with
// lcobucci/jwt's error texts), validity in time and signature (one hint for both), then revocation.
func (s *Server) authorizeLocked(h http.Header) (*accessRecord, *oauthError) {
	vals := h.Values("Authorization")
	if len(vals) == 0 {
		return nil, errAccessDenied(`Missing "Authorization" header`)
	}
	jwt := phpTrim(bearerPrefix.ReplaceAllString(vals[0], ""))
	if hint := jwtParseError(jwt); hint != "" {
		return nil, errAccessDenied(hint)
	}
	a := s.access[jwt]
	if a == nil || !a.validAt(s.now()) {
		// A well-formed JWT that this server did not sign fails the signature constraint; an expired one
		// fails the time constraint. league reports both the same way.
		return nil, errAccessDenied("Access token could not be verified")
	}
	if a.revoked {
		return nil, errAccessDenied("Access token has been revoked")
	}
	return a, nil
}

// jwtParseError returns the message lcobucci/jwt's parser throws for a string that is not a JWT, or "" when
// the string parses. Only "Error while decoding from JSON" was recorded against league; the other texts
// come from lcobucci/jwt's source.
func jwtParseError(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return "The JWT string must have two dots"
	}
	for i, part := range parts {
		decoded, err := base64.RawURLEncoding.DecodeString(part)
		if err != nil {
			return "Error while decoding from Base64Url, invalid base64 characters detected"
		}
		if i == 2 {
			break
		}
		var v any
		if err := json.Unmarshal(decoded, &v); err != nil {
			return "Error while decoding from JSON"
		}
		switch v.(type) {
		case map[string]any, []any: // both decode to a PHP array
		default:
			return [...]string{"headers", "claims"}[i] + " must be an array"
		}
	}
	return ""
}
