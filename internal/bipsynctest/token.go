package bipsynctest

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// tokenAnswer is the outcome of one token request: an OAuth error, the tokens issued, or a refresh exchange that
// passed its checks and has yet to revoke and issue (rotate).
type tokenAnswer struct {
	err          *oauthError
	accessToken  string
	refreshToken string // empty for client_credentials
	expiresIn    int64
	rotate       *rotation
}

// rotation is the second half of a refresh exchange, after every check passed: revoke the old pair, issue a new one.
type rotation struct {
	old      *refreshRecord
	clientID string
	scopes   []string
}

// serveToken is POST /v1/oauth/token. league has no method check: any other method arrives with an empty
// parsed body and gets unsupported_grant_type, as recorded (case 28).
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	p := readParams(r, !s.opts.RejectJSON)

	refresh := p.grantIs("refresh_token")
	s.mu.Lock()
	s.stats.TokenRequests++
	if refresh {
		s.stats.RefreshAttempts++
	}
	entry := s.logEntryLocked(r, p)
	fault, hasFault := s.nextFaultLocked()
	if hasFault {
		entry.Fault = fault.Kind.String()
	}
	if hasFault && fault.answersInstead() {
		entry.Status = fault.status()
		s.recordLocked(entry)
		s.mu.Unlock()
		fault.answer(w)
		return
	}
	s.mu.Unlock()

	if hasFault && fault.Kind == FaultDelay && !sleepContext(r.Context(), fault.Delay) {
		s.mu.Lock()
		s.recordLocked(entry)
		s.mu.Unlock()
		return
	}

	// By default one lock covers check, revoke and issue: two simultaneous exchanges of one refresh token give exactly
	// one success and one "Token has been revoked". With a revoke pause the lock is let go between the checks and the
	// revocation, as league (which has no lock there) does: an exchange of the same token that arrives meanwhile
	// passes the checks too, and both succeed.
	s.mu.Lock()
	ans := s.grantLocked(p, r.Header, s.now())
	if ans.rotate != nil {
		if pause := s.revokePause; pause > 0 {
			s.mu.Unlock()
			// Real time, and not cut short when the client leaves: a server that has checked a token goes on to
			// rotate it.
			time.Sleep(pause)
			s.mu.Lock()
		}
		ans = s.rotateLocked(ans.rotate, s.now())
	}
	dropAnswer := hasFault && fault.Kind == FaultDropAfterProcessing
	withoutTokens := hasFault && fault.Kind == FaultMissingAccessToken200 && ans.err == nil
	withoutRefresh := hasFault && fault.Kind == FaultNoRefreshToken200 && ans.err == nil
	entry.Status = http.StatusOK
	if ans.err != nil {
		entry.Status, entry.Error, entry.Hint = ans.err.status, ans.err.code, ans.err.hint
	}
	switch {
	case dropAnswer:
		entry.Status = 0
	case ans.err != nil:
		s.stats.Errors++
	}
	if refresh && ans.err != nil {
		s.stats.RefreshRefused++
	}
	s.recordLocked(entry)
	s.mu.Unlock()

	switch {
	case dropAnswer:
		abortConnection(w)
	case ans.err != nil:
		ans.err.write(w)
	case withoutTokens:
		writeTokenJSON(w, tokenBody(s.opts.TokenType, ans.expiresIn, "", ""))
	case withoutRefresh:
		writeTokenJSON(w, tokenBody(s.opts.TokenType, ans.expiresIn, ans.accessToken, ""))
	default:
		writeTokenJSON(w, tokenBody(s.opts.TokenType, ans.expiresIn, ans.accessToken, ans.refreshToken))
	}
}

// grantLocked dispatches on grant_type before looking at anything else, as league does (cases 25-27).
func (s *Server) grantLocked(p params, h http.Header, now time.Time) tokenAnswer {
	switch {
	case p.grantIs("refresh_token"):
		return s.refreshGrantLocked(p, h, now)
	case p.grantIs("client_credentials"):
		return s.clientCredentialsGrantLocked(p, h, now)
	case p.grantIs(DeviceCodeGrantType):
		return s.deviceGrantLocked(p, h, now)
	case p.grantIs("authorization_code"):
		return s.authorizationCodeGrantLocked(p, h, now)
	}
	return tokenAnswer{err: errUnsupportedGrantType()}
}

// refreshGrantLocked follows RefreshTokenGrant::respondToAccessTokenRequest in league 9.4.1: client, token
// present, "decrypt", client match, expiry (before revocation), revocation, scopes (unknown before not
// granted), then revoke the old access token, revoke the old refresh token, and issue a new pair.
func (s *Server) refreshGrantLocked(p params, h http.Header, now time.Time) tokenAnswer {
	c, token, err := s.clientAndRequiredLocked(p, h, "refresh_token")
	if err != nil {
		return tokenAnswer{err: err}
	}
	old := s.refresh[token]
	switch {
	case old == nil:
		s.stats.RefreshInvalid++
		return tokenAnswer{err: errInvalidRefreshToken("Cannot decrypt the refresh token")}
	case old.clientID != c.id:
		s.stats.RefreshInvalid++
		return tokenAnswer{err: errInvalidRefreshToken("Token is not linked to client")}
	case old.expireTime < now.Unix():
		s.stats.RefreshExpired++
		return tokenAnswer{err: errInvalidRefreshToken("Token has expired")}
	case old.revoked:
		return s.refuseRevokedLocked(old)
	}

	requested, err := p.get("scope", strings.Join(old.scopes, " "))
	if err != nil {
		return tokenAnswer{err: err}
	}
	scopes, err := s.validateScopesLocked(requested)
	if err != nil {
		return tokenAnswer{err: err}
	}
	for _, scope := range scopes {
		if !slices.Contains(old.scopes, scope) {
			return tokenAnswer{err: errInvalidScope(scope)}
		}
	}

	return tokenAnswer{rotate: &rotation{old: old, clientID: c.id, scopes: dedupe(scopes)}}
}

// rotateLocked revokes the old pair and issues a new one. An old token that another exchange rotated meanwhile (only
// possible with a revoke pause) is rotated again: the chain forks into two live heads.
func (s *Server) rotateLocked(x *rotation, now time.Time) tokenAnswer {
	old := x.old
	if old.rotations > 0 && s.replayDetection {
		// Another exchange rotated the token during this one's revoke pause: under replay detection that is a reuse.
		return s.refuseRevokedLocked(old)
	}
	if old.rotations > 0 {
		s.stats.RefreshForked++
	}
	old.rotations++
	if a := s.access[old.accessToken]; a != nil {
		a.revoked = true
	}
	old.revoked = true
	// The new refresh token carries the requested scopes, so asking for a subset narrows the chain for good.
	at, rt := s.issuePairLocked(x.clientID, old.userID, x.scopes, old.chain, now)
	s.stats.RefreshExchanges++
	return tokenAnswer{accessToken: at, refreshToken: rt, expiresIn: s.expiresInLocked(at, now)}
}

// refuseRevokedLocked answers an exchange of a revoked refresh token. Under replay detection, the reuse of a token that
// was rotated (not one revoked only with its family, by RevokeChain or an earlier replay) revokes its whole family
// first, as RFC 9700 section 4.14.2 recommends: the server cannot tell the rightful client from a thief, so it ends
// the chain for both. The answer is the same either way: league's "Token has been revoked".
func (s *Server) refuseRevokedLocked(old *refreshRecord) tokenAnswer {
	s.stats.RefreshRevoked++
	if s.replayDetection && old.rotations > 0 {
		s.stats.RefreshReplays++
		s.revokeFamilyLocked(old.chain)
	}
	return tokenAnswer{err: errInvalidRefreshToken("Token has been revoked")}
}

// clientCredentialsGrantLocked follows ClientCredentialsGrant in league 9.4.1: a public client is rejected
// before its secret is looked at, no scope is required, and no refresh token is issued.
func (s *Server) clientCredentialsGrantLocked(p params, h http.Header, now time.Time) tokenAnswer {
	id, _, err := clientCredentials(p, h)
	if err != nil {
		return tokenAnswer{err: err}
	}
	if c, ok := s.clients[id]; !ok || !c.confidential {
		return tokenAnswer{err: errInvalidClient(h)}
	}
	c, err := s.validateClientLocked(p, h)
	if err != nil {
		return tokenAnswer{err: err}
	}
	requested, err := p.get("scope", "")
	if err != nil {
		return tokenAnswer{err: err}
	}
	scopes, err := s.validateScopesLocked(requested)
	if err != nil {
		return tokenAnswer{err: err}
	}
	at, _ := s.issueAccessLocked(c.id, c.id, dedupe(scopes), 0, now)
	s.stats.ClientCredentials++
	return tokenAnswer{accessToken: at, expiresIn: s.expiresInLocked(at, now)}
}

// clientCredentials mirrors league's getClientCredentials: body parameters first, HTTP Basic as the
// fallback for a missing or blank one.
func clientCredentials(p params, h http.Header) (id, secret string, err *oauthError) {
	user, pass := basicAuth(h)
	id, err = p.get("client_id", user)
	if err != nil {
		return "", "", err
	}
	if id == "" {
		return "", "", errInvalidRequest("client_id")
	}
	secret, err = p.get("client_secret", pass)
	if err != nil {
		return "", "", err
	}
	return id, secret, nil
}

// validateClientLocked mirrors league's validateClient: an unknown client is invalid_client; a confidential
// one needs a secret (empty is invalid_request) that matches (else invalid_client). A public client's
// secret is never looked at (case 38).
func (s *Server) validateClientLocked(p params, h http.Header) (client, *oauthError) {
	id, secret, err := clientCredentials(p, h)
	if err != nil {
		return client{}, err
	}
	c, ok := s.clients[id]
	if !ok {
		return client{}, errInvalidClient(h)
	}
	if c.confidential {
		if secret == "" {
			return client{}, errInvalidRequest("client_secret")
		}
		if secret != c.secret {
			return client{}, errInvalidClient(h)
		}
	}
	return c, nil
}

// validateScopesLocked splits on single spaces only (a tab stays inside one scope) and rejects the first
// scope the server does not know.
func (s *Server) validateScopesLocked(requested string) ([]string, *oauthError) {
	var scopes []string
	for scope := range strings.SplitSeq(phpTrim(requested), " ") {
		if scope == "" {
			continue
		}
		if !s.knowsScope(scope) {
			return nil, errInvalidScope(scope)
		}
		scopes = append(scopes, scope)
	}
	return scopes, nil
}

// expiresInLocked is league's expires_in: expiry minus now, in whole seconds at response time.
func (s *Server) expiresInLocked(accessToken string, now time.Time) int64 {
	return s.access[accessToken].expiresAt.Unix() - now.Unix()
}

// logEntryLocked describes a token request for the log, with every secret replaced by its tag.
func (s *Server) logEntryLocked(r *http.Request, p params) LoggedRequest {
	user, pass := basicAuth(r.Header)
	clientID, _ := p.get("client_id", user)
	secret, _ := p.get("client_secret", pass)
	refreshToken, _ := p.get("refresh_token", "")
	deviceCode, _ := p.get("device_code", "")
	code, _ := p.get("code", "")
	verifier, _ := p.get("code_verifier", "")
	return LoggedRequest{
		Time:          s.now(),
		Method:        r.Method,
		Path:          r.URL.Path,
		ContentType:   r.Header.Get("Content-Type"),
		GrantType:     p.raw("grant_type"),
		ClientID:      clientID,
		Scope:         phpTrim(p.raw("scope")),
		RefreshToken:  s.tagLocked("rt", refreshToken),
		ClientSecret:  s.tagLocked("cs", secret),
		Authorization: s.authorizationTagLocked(r.Header),
		DeviceCode:    s.tagLocked("dc", deviceCode),
		Code:          s.tagLocked("ac", code),
		CodeVerifier:  s.tagLocked("cv", verifier),
	}
}

// clientAndRequiredLocked opens every grant that redeems something (a refresh token, a device code, an
// authorization code) the way league 9.4.1 does: the client first, then the parameter holding what is redeemed,
// which must be present and not empty (invalid_request naming it).
func (s *Server) clientAndRequiredLocked(p params, h http.Header, name string) (client, string, *oauthError) {
	c, err := s.validateClientLocked(p, h)
	if err != nil {
		return client{}, "", err
	}
	v, err := p.get(name, "")
	if err != nil {
		return client{}, "", err
	}
	if v == "" {
		return client{}, "", errInvalidRequest(name)
	}
	return c, v, nil
}
