package bipsynctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	// TokenPath is the token endpoint.
	TokenPath = "/v1/oauth/token"
	// ProtectedPath is the protected endpoint that accepts only live access tokens.
	ProtectedPath = "/v1/me"
	// AdminPrefix holds the demo-only admin endpoints (Options.Admin).
	AdminPrefix = "/_fake/"

	// SeedUserID is the user that seeded chains act for (the JWT sub claim).
	SeedUserID = "1"

	maxLoggedRequests = 10000
)

// DefaultScopes are the scopes a server knows when Options.Scopes is nil.
var DefaultScopes = []string{"read", "write", "team_abc", "rest_api:read", "rest_api:write"}

// Options configure a Server. The zero value is a league-like server on the wall clock.
type Options struct {
	// Now is the server's clock; default Clock.Now when Clock is set, else time.Now.
	Now func() time.Time
	// Clock, when set, is the server's clock unless Now is set too; the admin endpoint /_fake/advance moves it.
	Clock *Clock
	// AccessTokenTTL is the access token life; default 1h (expires_in 3600).
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the refresh token life, renewed on every rotation; default 30×24h.
	RefreshTokenTTL time.Duration
	// TokenType is the token_type answered: "Bearer" (league, default) or "bearer" (Bipsync's docs).
	TokenType string
	// Scopes are the scopes the server knows; default DefaultScopes.
	Scopes []string
	// RejectJSON makes JSON bodies arrive empty, as with plain PHP form parsing (league case 2: 400
	// unsupported_grant_type). By default a JSON-decoding front end is modelled and JSON is accepted.
	RejectJSON bool
	// Admin mounts the demo-only endpoints under /_fake/ (seed, revoke-all, advance, stats, reset-stats,
	// revoke-pause, device/approve).
	Admin bool
	// RevokePause makes every refresh exchange wait this long (real time) between its checks and the revocation of
	// the token it consumes, without holding the server's lock, as league/oauth2-server does (it checks, then revokes,
	// with no lock): two simultaneous exchanges of one refresh token then both succeed, and the chain forks into two
	// live heads with two live access tokens. Zero (the default) checks, revokes and issues in one step, so exactly
	// one of them succeeds. SetRevokePause and POST /_fake/revoke-pause change it later.
	RevokePause time.Duration
	// ReplayDetection makes the server treat the reuse of a rotated refresh token as RFC 9700 section 4.14.2 recommends:
	// it revokes the whole family (every refresh and access token descended from the same authorization, forks
	// included) and answers the reuse with league's invalid_grant "Token has been revoked". Off (the default), league
	// refuses the reuse and leaves the family alone. With a revoke pause too, an exchange that passed its checks but
	// finds, after the pause, that another exchange rotated its token meanwhile is a reuse as well: the family is
	// revoked and that exchange refused, so the chain never forks. SetReplayDetection changes it later.
	ReplayDetection bool
	// Latency delays every request to the token, device and protected endpoints by this long (real time) before the server
	// looks at it, as the round trip to a distant server would; a request whose client gives up meanwhile is dropped
	// unprocessed.
	Latency time.Duration

	// DeviceCodeTTL is how long a device code lives; default DefaultDeviceCodeTTL (60 s).
	DeviceCodeTTL time.Duration
	// DeviceInterval is league's retry interval: a poll sooner than this after the previous one gets slow_down.
	// Whole seconds; default DefaultDeviceInterval (5 s).
	DeviceInterval time.Duration
	// DeviceIntervalVisible adds "interval" to the device authorization answer. Bipsync hides it, so clients
	// use RFC 8628's default of 5 s.
	DeviceIntervalVisible bool
	// StrictDevicePolling holds clients to RFC 8628 §3.5: after a slow_down, the interval the server enforces
	// grows by 5 s for every later poll. League keeps its interval fixed, so this is off by default.
	StrictDevicePolling bool
	// VerificationURI is the verification_uri of device authorization answers; default the fake's own
	// DeviceVerificationPath on the host the request came to.
	VerificationURI string
	// AuthCodeTTL is how long an authorization code lives; default DefaultAuthCodeTTL (10 min).
	AuthCodeTTL time.Duration
}

// Stats counts what the server did. The fields are plain counters; take a snapshot with Server.Stats.
type Stats struct {
	TokenRequests     int `json:"token_requests"`     // every request to the token endpoint that reached the handler
	RefreshExchanges  int `json:"refresh_exchanges"`  // successful refresh exchanges (each rotated a chain)
	ClientCredentials int `json:"client_credentials"` // successful client_credentials grants
	Errors            int `json:"errors"`             // OAuth error answers of the token endpoint
	FaultsInjected    int `json:"faults_injected"`    // faults consumed by token requests
	ProtectedOK       int `json:"protected_ok"`       // 200s from the protected endpoint
	ProtectedDenied   int `json:"protected_denied"`   // 401s from the protected endpoint
	// RefreshRevoked counts refresh exchanges refused because the refresh token was revoked ("Token has been
	// revoked"): a runner that lost a race for a chain's head, or a replay of a spent token.
	RefreshRevoked int `json:"refresh_revoked"`
	// RefreshForked counts successful refresh exchanges of a token that an earlier exchange had rotated already
	// (possible only with a revoke pause): each one left one more live head of a chain.
	RefreshForked int `json:"refresh_forked"`
	// RefreshAttempts counts every request to the token endpoint with grant_type refresh_token, whatever its answer
	// (a fault's included): each one sent a refresh token to the server.
	RefreshAttempts int `json:"refresh_attempts"`
	// RefreshRefused counts refresh attempts the server answered with an OAuth error, for any reason; a fault's answer
	// is not one. RefreshRevoked, RefreshExpired and RefreshInvalid count the invalid_grant reasons among them.
	RefreshRefused int `json:"refresh_refused"`
	// RefreshExpired counts refresh attempts refused as "Token has expired".
	RefreshExpired int `json:"refresh_expired"`
	// RefreshInvalid counts refresh attempts refused as "Cannot decrypt the refresh token" or "Token is not linked to
	// client": a token the server never issued, or another client's.
	RefreshInvalid int `json:"refresh_invalid"`
	// RefreshReplays counts reuses of a rotated refresh token under replay detection (Options.ReplayDetection): each
	// one was refused as revoked (so RefreshRevoked counts it too) and revoked its whole family.
	RefreshReplays int `json:"refresh_replays"`

	DeviceAuthorizations    int `json:"device_authorizations"`     // device codes issued
	DeviceTokens            int `json:"device_tokens"`             // successful device code polls (each seeded a chain)
	AuthorizationCodes      int `json:"authorization_codes"`       // authorization codes issued by the authorize page
	AuthorizationCodeTokens int `json:"authorization_code_tokens"` // successful code exchanges (each seeded a chain)
}

// LoggedRequest is one request to the token or protected endpoint. Secret values appear only as short tags
// ("rt#3" is the third refresh token the server saw) that say which value was sent without revealing it.
type LoggedRequest struct {
	Time          time.Time
	Method        string
	Path          string
	ContentType   string
	GrantType     string
	ClientID      string // the effective client id (body, else HTTP Basic), trimmed
	Scope         string
	RefreshToken  string // tag of the refresh_token sent, e.g. "rt#3"
	ClientSecret  string // tag of the client_secret sent (body, else HTTP Basic), e.g. "cs#1"
	Authorization string // scheme and tag of the Authorization header, e.g. "Bearer at#2"
	DeviceCode    string // tag of the device_code sent, e.g. "dc#1"
	Code          string // tag of the authorization code sent, e.g. "ac#1"
	CodeVerifier  string // tag of the code_verifier sent, e.g. "cv#1"
	Status        int    // status answered; 0 when the connection closed without an answer
	Error         string // OAuth error code decided, if any (even when a fault then dropped the answer)
	Hint          string
	Fault         string // the fault that shaped this answer, if any
}

type client struct {
	id           string
	secret       string
	confidential bool
}

// Server is a fake Bipsync token server. It is safe for concurrent use.
type Server struct {
	opts    Options
	now     func() time.Time
	handler http.Handler

	mu       sync.Mutex
	clients  map[string]client
	refresh  map[string]*refreshRecord
	access   map[string]*accessRecord
	chains   int
	faults   []Fault
	stats    Stats
	log      []LoggedRequest
	secrets  []string
	tags     map[string]string
	tagCount map[string]int
	// revokePause is Options.RevokePause, changed by SetRevokePause.
	revokePause time.Duration
	// replayDetection is Options.ReplayDetection, changed by SetReplayDetection.
	replayDetection bool

	devices       map[string]*deviceRecord // by device code
	userCodes     map[string]string        // user code to device code
	deviceOrder   []string                 // device codes, oldest first
	authCodes     map[string]*authCodeRecord
	redirectURIs  map[string][]string // by client id
	denyAuthorize bool

	httpServer *http.Server
	url        string
	cert       *x509.Certificate
}

// NewServer returns a server that is not listening yet: use Handler, or Start / StartTLS.
func NewServer(opts Options) *Server {
	s := &Server{
		opts:     opts,
		clients:  make(map[string]client),
		refresh:  make(map[string]*refreshRecord),
		access:   make(map[string]*accessRecord),
		tags:     make(map[string]string),
		tagCount: make(map[string]int),

		devices:      make(map[string]*deviceRecord),
		userCodes:    make(map[string]string),
		authCodes:    make(map[string]*authCodeRecord),
		redirectURIs: make(map[string][]string),
	}
	s.revokePause = opts.RevokePause
	s.replayDetection = opts.ReplayDetection
	switch {
	case opts.Now != nil:
		s.now = opts.Now
	case opts.Clock != nil:
		s.now = opts.Clock.Now
	default:
		s.now = time.Now
	}
	if s.opts.AccessTokenTTL <= 0 {
		s.opts.AccessTokenTTL = time.Hour
	}
	if s.opts.RefreshTokenTTL <= 0 {
		s.opts.RefreshTokenTTL = 30 * 24 * time.Hour
	}
	if s.opts.TokenType == "" {
		s.opts.TokenType = "Bearer"
	}
	if s.opts.Scopes == nil {
		s.opts.Scopes = DefaultScopes
	}
	s.opts.Scopes = append([]string(nil), s.opts.Scopes...)
	if s.opts.DeviceCodeTTL <= 0 {
		s.opts.DeviceCodeTTL = DefaultDeviceCodeTTL
	}
	if s.opts.DeviceInterval < time.Second {
		s.opts.DeviceInterval = DefaultDeviceInterval
	}
	if s.opts.AuthCodeTTL <= 0 {
		s.opts.AuthCodeTTL = DefaultAuthCodeTTL
	}

	mux := http.NewServeMux()
	mux.Handle(TokenPath, withLatency(http.HandlerFunc(s.serveToken), opts.Latency))
	mux.Handle(ProtectedPath, withLatency(http.HandlerFunc(s.serveProtected), opts.Latency))
	mux.Handle(DevicePath, withLatency(http.HandlerFunc(s.serveDevice), opts.Latency))
	mux.HandleFunc(DeviceVerificationPath, s.serveVerificationPage)
	mux.HandleFunc("GET "+AuthorizePath, s.serveAuthorize)
	if opts.Admin {
		s.mountAdmin(mux)
	}
	s.handler = mux
	return s
}

// Handler returns the server's HTTP handler, for use with httptest or a listener of the caller's choosing.
// The connection-closing faults need an HTTP/1 connection that can be hijacked.
func (s *Server) Handler() http.Handler {
	return s.handler
}

// Start listens on 127.0.0.1 on a free port and returns the base URL ("http://127.0.0.1:port"). It panics
// when it cannot listen, as httptest does.
func (s *Server) Start() string {
	u, err := s.StartAddr("127.0.0.1:0")
	if err != nil {
		panic("bipsynctest: " + err.Error())
	}
	return u
}

// StartAddr listens on addr (plain HTTP) and returns the base URL.
func (s *Server) StartAddr(addr string) (string, error) {
	return s.serve(addr, nil)
}

// StartTLS listens with a fresh self-signed certificate on 127.0.0.1 and returns the https base URL. A
// client that trusts only the system roots fails the handshake: the "TLS failure" fault. Certificate returns
// the certificate for tests that want to trust it.
func (s *Server) StartTLS() string {
	cert, leaf, err := selfSignedCertificate()
	if err != nil {
		panic("bipsynctest: " + err.Error())
	}
	u, err := s.serve("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		panic("bipsynctest: " + err.Error())
	}
	s.mu.Lock()
	s.cert = leaf
	s.mu.Unlock()
	return u
}

func (s *Server) serve(addr string, tlsConfig *tls.Config) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpServer != nil {
		return "", errors.New("server already started")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	scheme := "http"
	if tlsConfig != nil {
		l = tls.NewListener(l, tlsConfig)
		scheme = "https"
	}
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		// Failed handshakes and aborted connections are the point of some tests, not news.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	s.httpServer = hs
	s.url = scheme + "://" + l.Addr().String()
	go func() { _ = hs.Serve(l) }()
	return s.url, nil
}

// Close stops listening and closes every connection. It is safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	hs := s.httpServer
	s.mu.Unlock()
	if hs != nil {
		_ = hs.Close()
	}
}

// URL returns the base URL once started, else "".
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Certificate returns the self-signed certificate after StartTLS, else nil.
func (s *Server) Certificate() *x509.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cert
}

// AddClient registers (or replaces) a confidential client.
func (s *Server) AddClient(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = client{id: id, secret: secret, confidential: true}
	s.tagLocked("cs", secret)
	s.rememberSecretLocked(secret)
}

// AddPublicClient registers (or replaces) a public client, which has no secret.
func (s *Server) AddPublicClient(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = client{id: id}
}

// IssueRefreshToken seeds a chain as if the authorization code grant had run with the user's consent to
// scopes, and returns its refresh token.
func (s *Server) IssueRefreshToken(clientID string, scopes []string) string {
	_, rt := s.IssueTokenPair(clientID, scopes)
	return rt
}

// IssueTokenPair seeds a chain like IssueRefreshToken and also returns the access token issued with it,
// which the chain's first exchange revokes.
func (s *Server) IssueTokenPair(clientID string, scopes []string) (accessToken, refreshToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chains++
	return s.issuePairLocked(clientID, SeedUserID, dedupe(scopes), s.chains, s.now())
}

// RevokeChain revokes every refresh and access token of the chain the given refresh token belongs to, as
// when the user withdraws consent. Exchanging any of them then gives invalid_grant "Token has been revoked".
func (s *Server) RevokeChain(refreshToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec := s.refresh[refreshToken]; rec != nil {
		s.revokeFamilyLocked(rec.chain)
	}
}

// revokeFamilyLocked revokes every refresh and access token of the chain (the family of one authorization).
func (s *Server) revokeFamilyLocked(chain int) {
	for _, r := range s.refresh {
		if r.chain == chain {
			r.revoked = true
		}
	}
	for _, a := range s.access {
		if a.chain == chain {
			a.revoked = true
		}
	}
}

// LiveRefreshTokens counts the refresh tokens of the family that refreshToken belongs to (the chain seeded by one
// authorization, forks included) that could be exchanged now, whether refreshToken itself is live or not. A healthy
// chain has exactly one; a forked chain more; a dead chain (revoked as a family, or expired) none. It is 0 for a token
// the server never issued.
func (s *Server) LiveRefreshTokens(refreshToken string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.refresh[refreshToken]
	if rec == nil {
		return 0
	}
	now, n := s.now(), 0
	for _, r := range s.refresh {
		if r.chain == rec.chain && r.liveAt(now) {
			n++
		}
	}
	return n
}

// RevokeAll revokes every refresh and access token the server has issued.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.refresh {
		r.revoked = true
	}
	for _, a := range s.access {
		a.revoked = true
	}
}

// AccessTokenLive reports whether the protected endpoint would accept the access token now.
func (s *Server) AccessTokenLive(accessToken string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.access[accessToken]
	return a != nil && !a.revoked && a.validAt(s.now())
}

// RefreshTokenLive reports whether the refresh token could be exchanged now (known, unexpired, unrevoked).
func (s *Server) RefreshTokenLive(refreshToken string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.refresh[refreshToken]
	return r != nil && r.liveAt(s.now())
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// SetRevokePause changes Options.RevokePause for the exchanges that reach their checks from now on.
func (s *Server) SetRevokePause(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokePause = max(d, 0)
}

// SetReplayDetection changes Options.ReplayDetection for the exchanges that reach their checks from now on.
func (s *Server) SetReplayDetection(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replayDetection = on
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{}
}

// Requests returns the request log, oldest first, with secrets replaced by tags. The log keeps at least the
// most recent 5000 requests.
func (s *Server) Requests() []LoggedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]LoggedRequest(nil), s.log...)
}

// SeenSecrets returns every token the server issued and every client secret it was given, in the order it
// first saw them, so secret-hygiene tests can search logs and output for each one.
func (s *Server) SeenSecrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.secrets...)
}

// issuePairLocked issues an access token and the refresh token that carries its id, both fresh from now.
func (s *Server) issuePairLocked(clientID, userID string, scopes []string, chain int, now time.Time) (accessToken, refreshToken string) {
	accessToken, jti := s.issueAccessLocked(clientID, userID, scopes, chain, now)
	expireTime := now.Add(s.opts.RefreshTokenTTL).Unix()
	refreshToken = newRefreshTokenString(clientID, jti, scopes, userID, expireTime)
	s.refresh[refreshToken] = &refreshRecord{
		clientID:    clientID,
		userID:      userID,
		scopes:      scopes,
		expireTime:  expireTime,
		accessToken: accessToken,
		chain:       chain,
	}
	s.tagLocked("rt", refreshToken)
	s.rememberSecretLocked(refreshToken)
	return accessToken, refreshToken
}

func (s *Server) issueAccessLocked(clientID, subject string, scopes []string, chain int, now time.Time) (token, jti string) {
	issuedAt := now.Truncate(time.Microsecond)
	expiresAt := issuedAt.Add(s.opts.AccessTokenTTL)
	token, jti = newAccessTokenString(clientID, subject, scopes, issuedAt, expiresAt)
	s.access[token] = &accessRecord{
		clientID:  clientID,
		scopes:    scopes,
		issuedAt:  issuedAt,
		expiresAt: expiresAt,
		chain:     chain,
	}
	s.tagLocked("at", token)
	s.rememberSecretLocked(token)
	return token, jti
}

// tagLocked names a secret value by kind and the order in which the server first saw it.
func (s *Server) tagLocked(kind, value string) string {
	if value == "" {
		return ""
	}
	key := kind + "\x00" + value
	if t, ok := s.tags[key]; ok {
		return t
	}
	s.tagCount[kind]++
	t := fmt.Sprintf("%s#%d", kind, s.tagCount[kind])
	s.tags[key] = t
	return t
}

// authorizationTagLocked shows the scheme of an Authorization header and a tag for its credentials.
func (s *Server) authorizationTagLocked(h http.Header) string {
	vals := h.Values("Authorization")
	if len(vals) == 0 || vals[0] == "" {
		return ""
	}
	scheme, cred, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
	switch strings.ToLower(scheme) {
	case "bearer":
		return "Bearer " + s.tagLocked("at", strings.TrimSpace(cred))
	case "basic":
		return "Basic " + s.tagLocked("basic", strings.TrimSpace(cred))
	}
	return s.tagLocked("auth", vals[0])
}

func (s *Server) rememberSecretLocked(v string) {
	if v != "" {
		s.secrets = append(s.secrets, v)
	}
}

// recordLocked appends to the log. A full log drops its older half at once, so long runs (benchmarks) pay
// an amortised constant per request rather than a copy of the whole log.
func (s *Server) recordLocked(e LoggedRequest) {
	if len(s.log) >= maxLoggedRequests {
		s.log = s.log[:copy(s.log, s.log[len(s.log)-maxLoggedRequests/2:])]
	}
	s.log = append(s.log, e)
}

func (s *Server) knowsScope(scope string) bool {
	for _, known := range s.opts.Scopes {
		if known == scope {
			return true
		}
	}
	return false
}

func selfSignedCertificate() (tls.Certificate, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("generate key: %w", err)
	}
	serial := new(big.Int).SetBytes(randomBytes(16))
	// TLS checks validity against the wall clock, not the server's fake clock.
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "bipsync-fake"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("parse certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, nil
}
