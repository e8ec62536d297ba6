package bipsynctest

import (
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The device authorization grant (RFC 8628) as league/oauth2-server 9.4.1's DeviceCodeGrant runs it, with the
// statuses, headers and bodies recorded from a real 9.4.1 server:
//
//   - POST /v1/oauth/device takes client_id (body, else HTTP Basic user) and scope. It checks neither a secret nor a
//     grant: an unknown client is 401 invalid_client, an unknown scope 400 invalid_scope. The answer carries
//     device_code (80 hex characters), user_code (8 letters of BCDFGHJKLMNPQRSTVWXZ), verification_uri, expires_in
//     and verification_uri_complete, in that order, and interval only when the server is set to show it.
//   - Polling is POST /v1/oauth/token with grant_type=urn:ietf:params:oauth:grant-type:device_code, client_id,
//     device_code (and client_secret for a confidential client). League checks, in order: the client, device_code
//     present, known (else invalid_grant), not expired (else expired_token), not revoked (else invalid_request
//     "Device code has been revoked"), issued to this client. Then, while the person has not acted: slow_down when
//     the last poll was less than the interval ago (whole seconds), else authorization_pending; either way the poll
//     is remembered. A denial is 401 access_denied. An approval gets an ordinary token answer with a refresh token,
//     and revokes the device code.
//   - League's interval stays the same after a slow_down; the client is the one that must add 5 s (RFC 8628 §3.5).
//     Options.StrictDevicePolling makes the fake hold clients to that rule.

const (
	// DevicePath is the device authorization endpoint.
	DevicePath = "/v1/oauth/device"
	// DeviceVerificationPath is the fake's verification page, where a person types the user code. Bipsync's own is
	// https://{client}.bipsync.com/oauth/device.
	DeviceVerificationPath = "/oauth/device"
	// DeviceCodeGrantType is the grant_type of a device code poll.
	DeviceCodeGrantType = "urn:ietf:params:oauth:grant-type:device_code"

	// DefaultDeviceCodeTTL is how long a device code lives (Bipsync documents 60 s).
	DefaultDeviceCodeTTL = 60 * time.Second
	// DefaultDeviceInterval is league's retry interval between polls.
	DefaultDeviceInterval = 5 * time.Second

	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLength   = 8
)

// deviceRecord is one device code: league's DeviceCodeEntity plus its revoked flag.
type deviceRecord struct {
	clientID  string
	userCode  string
	scopes    []string
	expiresAt int64 // Unix seconds
	interval  int64 // seconds; grows by 5 after each slow_down under StrictDevicePolling
	polledAt  int64 // Unix seconds of the last poll; 0 when never polled
	decided   bool  // the person approved or denied
	approved  bool
	revoked   bool
}

// ErrUnknownUserCode is returned by ApproveDevice and DenyDevice for a user code the server never issued.
var ErrUnknownUserCode = errors.New("bipsynctest: unknown user code")

// ErrDeviceCodeUsed is returned by ApproveDevice and DenyDevice once the device code has been exchanged.
var ErrDeviceCodeUsed = errors.New("bipsynctest: the device code has already been exchanged")

// ApproveDevice plays the person who opens the verification page, types userCode and approves: the next poll gets
// tokens for SeedUserID with the scopes the device asked for.
func (s *Server) ApproveDevice(userCode string) error { return s.decideDevice(userCode, true) }

// DenyDevice plays the person who denies the request: the next poll gets 401 access_denied.
func (s *Server) DenyDevice(userCode string) error { return s.decideDevice(userCode, false) }

func (s *Server) decideDevice(userCode string, approve bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[s.userCodes[strings.ToUpper(strings.TrimSpace(userCode))]]
	switch {
	case d == nil:
		return ErrUnknownUserCode
	case d.revoked:
		return ErrDeviceCodeUsed
	}
	d.decided, d.approved = true, approve
	return nil
}

// PendingUserCodes returns the user codes of device codes that are neither decided nor expired, oldest first, so
// that a test or the demo can play the person without reading the client's output.
func (s *Server) PendingUserCodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().Unix()
	var out []string
	for _, dc := range s.deviceOrder {
		if d := s.devices[dc]; !d.decided && !d.revoked && now <= d.expiresAt {
			out = append(out, d.userCode)
		}
	}
	return out
}

// serveDevice is POST /v1/oauth/device, league's respondToDeviceAuthorizationRequest.
func (s *Server) serveDevice(w http.ResponseWriter, r *http.Request) {
	p := readParams(r, !s.opts.RejectJSON)

	s.mu.Lock()
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
	body, oerr := s.deviceAuthorizationLocked(p, r)
	entry.Status = http.StatusOK
	if oerr != nil {
		entry.Status, entry.Error, entry.Hint = oerr.status, oerr.code, oerr.hint
		s.stats.Errors++
	} else {
		s.stats.DeviceAuthorizations++
	}
	s.recordLocked(entry)
	s.mu.Unlock()

	if oerr != nil {
		oerr.write(w)
		return
	}
	writeTokenJSON(w, body)
}

func (s *Server) deviceAuthorizationLocked(p params, r *http.Request) (string, *oauthError) {
	user, _ := basicAuth(r.Header)
	id, oerr := p.get("client_id", user)
	if oerr != nil {
		return "", oerr
	}
	if id == "" {
		return "", errInvalidRequest("client_id")
	}
	if _, ok := s.clients[id]; !ok {
		return "", errInvalidClient(r.Header)
	}
	requested, oerr := p.get("scope", "")
	if oerr != nil {
		return "", oerr
	}
	scopes, oerr := s.validateScopesLocked(requested)
	if oerr != nil {
		return "", oerr
	}

	now := s.now()
	code := leagueIdentifier()
	userCode := s.newUserCodeLocked()
	d := &deviceRecord{
		clientID:  id,
		userCode:  userCode,
		scopes:    dedupe(scopes),
		expiresAt: now.Add(s.opts.DeviceCodeTTL).Unix(),
		interval:  int64(s.opts.DeviceInterval / time.Second),
	}
	s.devices[code] = d
	s.userCodes[userCode] = code
	s.deviceOrder = append(s.deviceOrder, code)
	s.tagLocked("dc", code)
	s.rememberSecretLocked(code)

	verification := s.verificationURI(r)
	var b strings.Builder
	b.WriteString(`{"device_code":`)
	b.WriteString(phpJSONString(code))
	b.WriteString(`,"user_code":`)
	b.WriteString(phpJSONString(userCode))
	b.WriteString(`,"verification_uri":`)
	b.WriteString(phpJSONString(verification))
	b.WriteString(`,"expires_in":`)
	b.WriteString(strconv.FormatInt(d.expiresAt-now.Unix(), 10))
	b.WriteString(`,"verification_uri_complete":`)
	b.WriteString(phpJSONString(verification + "?user_code=" + userCode))
	if s.opts.DeviceIntervalVisible {
		b.WriteString(`,"interval":`)
		b.WriteString(strconv.FormatInt(d.interval, 10))
	}
	b.WriteByte('}')
	return b.String(), nil
}

// verificationURI is Options.VerificationURI, else the fake's own verification page on the host the request came to.
func (s *Server) verificationURI(r *http.Request) string {
	if s.opts.VerificationURI != "" {
		return s.opts.VerificationURI
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + DeviceVerificationPath
}

// newUserCodeLocked draws league's generateUserCode until the code is not in use.
func (s *Server) newUserCodeLocked() string {
	for {
		b := randomBytes(userCodeLength)
		code := make([]byte, userCodeLength)
		for i, v := range b {
			code[i] = userCodeAlphabet[int(v)%len(userCodeAlphabet)]
		}
		if _, taken := s.userCodes[string(code)]; !taken {
			return string(code)
		}
	}
}

// deviceGrantLocked is DeviceCodeGrant::respondToAccessTokenRequest.
func (s *Server) deviceGrantLocked(p params, h http.Header, now time.Time) tokenAnswer {
	c, code, oerr := s.clientAndRequiredLocked(p, h, "device_code")
	if oerr != nil {
		return tokenAnswer{err: oerr}
	}
	d := s.devices[code]
	switch {
	case d == nil:
		return tokenAnswer{err: errInvalidGrant("")}
	case now.Unix() > d.expiresAt:
		return tokenAnswer{err: errExpiredToken("device_code")}
	case d.revoked:
		return tokenAnswer{err: errInvalidRequestHint("device_code", "Device code has been revoked")}
	case d.clientID != c.id:
		return tokenAnswer{err: errInvalidRequestHint("device_code", "Device code was not issued to this client")}
	}
	if !d.decided {
		tooSoon := d.polledAt != 0 && d.polledAt+d.interval > now.Unix()
		d.polledAt = now.Unix()
		if tooSoon {
			if s.opts.StrictDevicePolling {
				d.interval += 5
			}
			return tokenAnswer{err: errSlowDown()}
		}
		return tokenAnswer{err: errAuthorizationPending()}
	}
	if !d.approved {
		return tokenAnswer{err: errAccessDeniedNoHint()}
	}
	s.chains++
	at, rt := s.issuePairLocked(c.id, SeedUserID, d.scopes, s.chains, now)
	d.revoked = true
	s.stats.DeviceTokens++
	return tokenAnswer{accessToken: at, refreshToken: rt, expiresIn: s.expiresInLocked(at, now)}
}

// serveVerificationPage is the fake's stand-in for Bipsync's verification page: a form where a person types the user
// code and approves or denies. GET shows the form (prefilled from ?user_code=), POST decides. The signed-in person is
// always SeedUserID.
func (s *Server) serveVerificationPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodGet:
		userCode := r.URL.Query().Get("user_code")
		_, _ = fmt.Fprintf(w, verificationForm, DeviceVerificationPath, html.EscapeString(userCode))
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, "<p>Bad form.</p>\n")
			return
		}
		approve := r.PostForm.Get("decision") == "approve"
		if err := s.decideDevice(r.PostForm.Get("user_code"), approve); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, "<p>%s</p>\n", html.EscapeString(strings.TrimPrefix(err.Error(), "bipsynctest: ")))
			return
		}
		if approve {
			_, _ = io.WriteString(w, "<p>Approved. You can close this tab and return to your terminal.</p>\n")
		} else {
			_, _ = io.WriteString(w, "<p>Denied. You can close this tab.</p>\n")
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

const verificationForm = `<!DOCTYPE html>
<html><head><title>Connect a device</title></head>
<body>
<form method="post" action="%s">
<p><label>Code <input name="user_code" value="%s" autocomplete="off"></label></p>
<p><button name="decision" value="approve">Approve</button> <button name="decision" value="deny">Deny</button></p>
</form>
</body></html>
`
