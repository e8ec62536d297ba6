package bipsynctest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The authorization code grant with PKCE, as league/oauth2-server 9.x's AuthCodeGrant runs it. Bipsync's authorize
// page belongs to its web app and its address is not documented, so the fake serves one at AuthorizePath. The person
// signed in there is always SeedUserID; whether they approve is Server.DenyAuthorizations.
//
// GET AuthorizePath follows validateAuthorizationRequest: response_type=code and client_id (else
// unsupported_grant_type), a known client (else 401 invalid_client), a registered redirect_uri (exact, except that
// the port of an http://127.0.0.1 or http://[::1] URI is ignored, as league's RedirectUriValidator does after RFC 8252;
// else 401 invalid_client), known scopes (else a redirect with invalid_scope), and a code challenge (S256 or plain,
// 43 to 128 characters of [A-Za-z0-9-._~]; required from public clients). An approval redirects to the redirect URI
// with code and state; a denial with error=access_denied and state.
//
// The token endpoint's grant_type=authorization_code follows respondToAccessTokenRequest: the client, code present
// and issued by this server, unexpired, unused, issued to this client, the same redirect_uri, then the code_verifier
// against the challenge. A code is single-use.

// AuthorizePath is the fake's authorize page.
const AuthorizePath = "/oauth/authorize"

// DefaultAuthCodeTTL is how long an authorization code lives (league's examples use ten minutes).
const DefaultAuthCodeTTL = 10 * time.Minute

// pkcePattern is RFC 7636's syntax of a code verifier and a code challenge, as league checks it.
var pkcePattern = regexp.MustCompile(`^[A-Za-z0-9\-._~]{43,128}$`)

// authCodeRecord is what league encrypts into an authorization code, plus the repository's revoked flag.
type authCodeRecord struct {
	clientID      string
	redirectURI   string // as given in the authorize request; empty when it had none
	scopes        []string
	userID        string
	expireTime    int64 // Unix seconds
	challenge     string
	challengeMeth string
	revoked       bool
}

// RegisterRedirectURI adds a redirect URI to a client's registration, as an administrator does in Bipsync's setup.
func (s *Server) RegisterRedirectURI(clientID, uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redirectURIs[clientID] = append(s.redirectURIs[clientID], uri)
}

// DenyAuthorizations makes the person on the authorize page deny (true) or approve (false, the default) every
// request that reaches the consent step.
func (s *Server) DenyAuthorizations(deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denyAuthorize = deny
}

// serveAuthorize is the authorize page. It answers a redirect (302) or, for a request that cannot be trusted with a
// redirect, league's JSON error.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := parseForm(r.URL.RawQuery)
	s.mu.Lock()
	entry := LoggedRequest{
		Time:     s.now(),
		Method:   r.Method,
		Path:     r.URL.Path,
		ClientID: q.raw("client_id"),
		Scope:    q.raw("scope"),
	}
	location, oerr := s.authorizeRequestLocked(q, r.Header)
	switch {
	case oerr != nil:
		entry.Status, entry.Error, entry.Hint = oerr.status, oerr.code, oerr.hint
	default:
		entry.Status = http.StatusFound
	}
	s.recordLocked(entry)
	s.mu.Unlock()

	if oerr != nil {
		oerr.write(w)
		return
	}
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusFound)
}

// query returns a query parameter as league's getQueryStringParameter does: untrimmed, and ok false when absent.
func (p params) query(name string) (string, bool, *oauthError) {
	v, ok := p[name]
	if !ok {
		return "", false, nil
	}
	if v.nonScalar {
		return "", false, errInvalidRequest(name)
	}
	return v.value, true, nil
}

func (s *Server) authorizeRequestLocked(q params, h http.Header) (string, *oauthError) {
	if q.raw("response_type") != "code" {
		return "", errUnsupportedGrantType()
	}
	id, ok, oerr := q.query("client_id")
	if oerr != nil {
		return "", oerr
	}
	if !ok {
		return "", errUnsupportedGrantType()
	}
	c, known := s.clients[id]
	if !known {
		return "", errInvalidClient(h)
	}
	registered := s.redirectURIs[c.id]
	redirect, hasRedirect, oerr := q.query("redirect_uri")
	if oerr != nil {
		return "", oerr
	}
	switch {
	case hasRedirect && !redirectURIAllowed(redirect, registered):
		return "", errInvalidClient(h)
	case !hasRedirect && len(registered) != 1:
		return "", errInvalidClient(h)
	}
	final := redirect
	if !hasRedirect {
		final = registered[0]
	}
	state, hasState, oerr := q.query("state")
	if oerr != nil {
		return "", oerr
	}
	stateParams := [][2]string{}
	if hasState {
		stateParams = append(stateParams, [2]string{"state", state})
	}

	requested, _, oerr := q.query("scope")
	if oerr != nil {
		return "", oerr
	}
	var scopes []string
	for scope := range strings.SplitSeq(strings.TrimSpace(requested), " ") {
		if scope == "" {
			continue
		}
		if !s.knowsScope(scope) {
			return errorRedirect(makeRedirectURI(final, stateParams), errInvalidScope(scope)), nil
		}
		scopes = append(scopes, scope)
	}

	challenge, hasChallenge, oerr := q.query("code_challenge")
	if oerr != nil {
		return "", oerr
	}
	method := ""
	switch {
	case hasChallenge:
		m, hasMethod, oerr := q.query("code_challenge_method")
		if oerr != nil {
			return "", oerr
		}
		method = "plain"
		if hasMethod {
			method = m
		}
		if method != "S256" && method != "plain" {
			return "", errInvalidRequestHint("code_challenge_method", "Code challenge method must be one of `S256`, `plain`")
		}
		if !pkcePattern.MatchString(challenge) {
			return "", errInvalidRequestHint("code_challenge", "Code challenge must follow the specifications of RFC-7636.")
		}
	case !c.confidential:
		return "", errInvalidRequestHint("code_challenge", "Code challenge must be provided for public clients")
	}

	if s.denyAuthorize {
		return errorRedirect(makeRedirectURI(final, stateParams), errAccessDenied("The user denied the request")), nil
	}
	code := "def50200" + hex.EncodeToString(randomBytes(160))
	s.authCodes[code] = &authCodeRecord{
		clientID:      c.id,
		redirectURI:   redirect,
		scopes:        dedupe(scopes),
		userID:        SeedUserID,
		expireTime:    s.now().Add(s.opts.AuthCodeTTL).Unix(),
		challenge:     challenge,
		challengeMeth: method,
	}
	s.tagLocked("ac", code)
	s.rememberSecretLocked(code)
	s.stats.AuthorizationCodes++
	return makeRedirectURI(final, append([][2]string{{"code", code}}, stateParams...)), nil
}

// redirectURIAllowed is league's RedirectUriValidator: an exact match, except that an http loopback URI
// (127.0.0.1 or [::1]) matches a registered one that differs only in its port.
func redirectURIAllowed(uri string, registered []string) bool {
	if !isLoopbackRedirect(uri) {
		return slices.Contains(registered, uri)
	}
	want := withoutPort(uri)
	for _, r := range registered {
		if isLoopbackRedirect(r) && withoutPort(r) == want {
			return true
		}
	}
	return false
}

func isLoopbackRedirect(uri string) bool {
	u, err := url.Parse(uri)
	return err == nil && u.Scheme == "http" && (u.Host == "127.0.0.1" || strings.HasPrefix(u.Host, "127.0.0.1:") ||
		u.Host == "[::1]" || strings.HasPrefix(u.Host, "[::1]:"))
}

func withoutPort(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return uri
	}
	u.Host = u.Hostname()
	if strings.Contains(u.Host, ":") {
		u.Host = "[" + u.Host + "]"
	}
	return u.String()
}

// makeRedirectURI is league's makeRedirectUri: "?" or "&", then http_build_query of params.
func makeRedirectURI(uri string, params [][2]string) string {
	if strings.Contains(uri, "?") {
		uri += "&"
	} else {
		uri += "?"
	}
	return uri + phpBuildQuery(params)
}

// errorRedirect is OAuthServerException::generateHttpResponse for an exception that carries a redirect URI: it appends
// its parameters as makeRedirectURI does.
func errorRedirect(uri string, e *oauthError) string {
	params := [][2]string{{"error", e.code}, {"error_description", e.description}}
	if e.hasHint {
		params = append(params, [2]string{"hint", e.hint})
	}
	return makeRedirectURI(uri, params)
}

// phpBuildQuery is http_build_query with PHP_QUERY_RFC1738: urlencode of keys and values, joined by "&".
func phpBuildQuery(params [][2]string) string {
	parts := make([]string, len(params))
	for i, kv := range params {
		parts[i] = phpURLEncode(kv[0]) + "=" + phpURLEncode(kv[1])
	}
	return strings.Join(parts, "&")
}

// phpURLEncode is urlencode: every byte but letters, digits and "-_." percent-encoded, a space as "+".
func phpURLEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// authorizationCodeGrantLocked is AuthCodeGrant::respondToAccessTokenRequest.
func (s *Server) authorizationCodeGrantLocked(p params, h http.Header, now time.Time) tokenAnswer {
	c, code, oerr := s.clientAndRequiredLocked(p, h, "code")
	if oerr != nil {
		return tokenAnswer{err: oerr}
	}
	a := s.authCodes[code]
	switch {
	case a == nil:
		return tokenAnswer{err: errInvalidRequestHint("code", "Issue decrypting the authorization code")}
	case now.Unix() > a.expireTime:
		return tokenAnswer{err: errInvalidGrant("Authorization code has expired")}
	case a.revoked:
		return tokenAnswer{err: errInvalidGrant("Authorization code has been revoked")}
	case a.clientID != c.id:
		return tokenAnswer{err: errInvalidRequestHint("code", "Authorization code was not issued to this client")}
	}
	redirect, oerr := p.get("redirect_uri", "")
	if oerr != nil {
		return tokenAnswer{err: oerr}
	}
	switch {
	case a.redirectURI != "" && redirect == "":
		return tokenAnswer{err: errInvalidRequest("redirect_uri")}
	case redirect != "" && redirect != a.redirectURI:
		return tokenAnswer{err: errInvalidRequestHint("redirect_uri", "Invalid redirect URI")}
	}
	verifier, oerr := p.get("code_verifier", "")
	if oerr != nil {
		return tokenAnswer{err: oerr}
	}
	s.rememberSecretLocked(verifier)
	switch {
	case a.challenge == "" && verifier != "":
		return tokenAnswer{err: errInvalidRequestHint("code_challenge", "code_verifier received when no code_challenge is present")}
	case a.challenge != "" && verifier == "":
		return tokenAnswer{err: errInvalidRequest("code_verifier")}
	case a.challenge != "" && !pkcePattern.MatchString(verifier):
		return tokenAnswer{err: errInvalidRequestHint("code_verifier", "Code Verifier must follow the specifications of RFC-7636.")}
	case a.challenge != "" && !verifierMatches(verifier, a.challenge, a.challengeMeth):
		return tokenAnswer{err: errInvalidGrant("Failed to verify `code_verifier`.")}
	}
	s.chains++
	at, rt := s.issuePairLocked(c.id, a.userID, a.scopes, s.chains, now)
	a.revoked = true
	s.stats.AuthorizationCodeTokens++
	return tokenAnswer{accessToken: at, refreshToken: rt, expiresIn: s.expiresInLocked(at, now)}
}

// verifierMatches is league's S256Verifier and PlainVerifier, with hash_equals' constant-time comparison.
func verifierMatches(verifier, challenge, method string) bool {
	want := verifier
	if method == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}
