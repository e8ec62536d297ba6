// Package bipsync is the HTTP client for the Bipsync OAuth token endpoint.
//
// A refresh exchange revokes the refresh token it consumes and the access token issued with it, so the client never
// replays a request that may have reached the server: it retries only when the request surely did not (dial or TLS
// handshake failures before the body was written) or when the server asked for a retry (429, 503). Every other failure
// is returned as an *Error whose predicates tell the caller what happened and what a human has to do.
//
// The package knows nothing of Terraform; it returns typed errors and lets the caller log and word them.
package bipsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
)

// TokenPath is the path of the token endpoint below the API base URL.
const TokenPath = "/v1/oauth/token"

// Operation names carried by Error.Op.
const (
	OpRefresh           = "refresh"
	OpClientCredentials = "client_credentials"
)

// Defaults applied by New to zero (or negative) Config fields.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxAttempts  = 4
	DefaultMaxRetryWait = 30 * time.Second
)

// maxBody caps what is read of any answer: a token answer is well under 4 KiB, and an unbounded read of a broken or
// hostile endpoint would hold the exchange (and the chain lock of the caller) hostage.
const maxBody = 1 << 20

// Encoding selects how the token request body is encoded.
type Encoding int

// Request body encodings. Bipsync documents both; league reads JSON only behind a JSON-decoding front end, so form is
// the default.
const (
	EncodingForm Encoding = iota
	EncodingJSON
)

// String returns "form" or "json".
func (e Encoding) String() string {
	switch e {
	case EncodingForm:
		return "form"
	case EncodingJSON:
		return "json"
	default:
		return fmt.Sprintf("Encoding(%d)", int(e))
	}
}

// Config configures a Client. Zero values take the documented defaults.
type Config struct {
	// BaseURL is the API base, e.g. "https://acme-api.bipsync.com" or "http://127.0.0.1:4321". The provider
	// validates it (https except for loopback); New only rejects what cannot be used safely.
	BaseURL string
	// ClientID is the OAuth client id. Required.
	ClientID string
	// ClientSecret is the secret of a confidential client; empty for a public client (no client_secret sent).
	ClientSecret string
	// Encoding of the request body: form (default) or JSON.
	Encoding Encoding
	// Timeout bounds one HTTP attempt (connect, send and receive); default 30s.
	Timeout time.Duration
	// MaxAttempts bounds the attempts for retryable failures, the first included; default 4.
	MaxAttempts int
	// MaxRetryWait bounds the total time spent waiting between attempts; default 30s.
	MaxRetryWait time.Duration
	// HTTPClient is optional (transport reuse, tests). Redirects are never followed whatever its CheckRedirect says.
	HTTPClient *http.Client
	// Now is the clock for token expiry and HTTP-date Retry-After values; default time.Now.
	Now func() time.Time
	// Sleep waits between attempts and must return early with the context's error; default: a timer and ctx.
	Sleep func(ctx context.Context, d time.Duration) error
	// UserAgent is sent as User-Agent when non-empty.
	UserAgent string
}

// String describes the configuration with the client secret redacted.
func (c Config) String() string {
	return fmt.Sprintf("bipsync.Config{BaseURL:%q ClientID:%q ClientSecret:%s Encoding:%s Timeout:%s MaxAttempts:%d MaxRetryWait:%s UserAgent:%q}",
		redactURL(c.BaseURL), c.ClientID, redactedOrEmpty(c.ClientSecret), c.Encoding, c.Timeout, c.MaxAttempts, c.MaxRetryWait, c.UserAgent)
}

// GoString is String, so that %#v cannot print the secret either.
func (c Config) GoString() string { return c.String() }

// redactURL hides a password in a URL that New would refuse anyway: String may run on an unchecked Config.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") {
			return "<invalid URL>"
		}
		return raw
	}
	return u.Redacted()
}

func redactedOrEmpty(s string) string {
	if s == "" {
		return "<empty>"
	}
	return "<redacted>"
}

// Client requests tokens from one Bipsync token endpoint. It is safe for concurrent use.
type Client struct {
	cfg      Config
	tokenURL string
	http     *http.Client
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
}

// New returns a Client for cfg. It fails on a BaseURL that cannot be used (unparsable, not http or https, no host,
// or carrying user information, a query or a fragment) and on an empty ClientID.
func New(cfg Config) (*Client, error) {
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("bipsync: %w", err)
	}
	if strings.TrimSpace(cfg.ClientID) == "" {
		return nil, errors.New("bipsync: client id is empty")
	}
	if cfg.Encoding != EncodingForm && cfg.Encoding != EncodingJSON {
		return nil, fmt.Errorf("bipsync: unknown request encoding %d", int(cfg.Encoding))
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MaxRetryWait <= 0 {
		cfg.MaxRetryWait = DefaultMaxRetryWait
	}
	c := &Client{cfg: cfg, tokenURL: base + TokenPath, now: cfg.Now, sleep: cfg.Sleep}
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = sleepContext
	}
	// A copy, so the caller's client keeps its own redirect policy. Following a redirect would resend the refresh
	// token and the client secret to wherever the answer points.
	hc := http.Client{}
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = &hc
	return c, nil
}

func parseBaseURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		// url.Error quotes the input, which is ours and secret-free once user information is rejected below; the
		// parse error of a URL with a password would quote the password, so say less.
		return "", errors.New("base URL is not a valid URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("base URL scheme %q is not http or https", u.Scheme)
	case u.Host == "":
		return "", errors.New("base URL has no host")
	case u.User != nil:
		return "", errors.New("base URL carries user information; credentials belong in the client id and secret")
	case u.RawQuery != "" || u.ForceQuery:
		return "", errors.New("base URL has a query string")
	case u.Fragment != "":
		return "", errors.New("base URL has a fragment")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// WorstCase returns the longest Refresh or ClientCredentials can take: every attempt at its timeout, and the most
// waiting between attempts. A caller that must see an exchange through to its answer gives it this long.
func (c *Client) WorstCase() time.Duration {
	return time.Duration(c.cfg.MaxAttempts)*c.cfg.Timeout + c.cfg.MaxRetryWait
}

// TokenURL returns the token endpoint: BaseURL + TokenPath.
func (c *Client) TokenURL() string { return c.tokenURL }

// ClientID returns the configured client id.
func (c *Client) ClientID() string { return c.cfg.ClientID }

// String describes the client with the secret redacted.
func (c *Client) String() string {
	if c == nil {
		return "bipsync.Client(nil)"
	}
	return fmt.Sprintf("bipsync.Client{TokenURL:%q ClientID:%q ClientSecret:%s Encoding:%s}",
		c.tokenURL, c.cfg.ClientID, redactedOrEmpty(c.cfg.ClientSecret), c.cfg.Encoding)
}

// GoString is String, so that %#v cannot print the secret either.
func (c *Client) GoString() string { return c.String() }

// Refresh exchanges refreshToken for a new access token and a new refresh token. A success revokes refreshToken and
// the access token issued with it: the caller must save the returned refresh token before anything else. scopes may
// be empty (the original scopes are kept); a subset narrows the new refresh token for good.
//
// A failure is an *Error. It is never retried once the request may have reached the server: see IsOutcomeUnknown.
func (c *Client) Refresh(ctx context.Context, refreshToken string, scopes []string) (*Token, error) {
	if refreshToken == "" {
		return nil, &Error{Op: OpRefresh, Err: errors.New("refresh token is empty"), class: classInput}
	}
	p := params{grantType: "refresh_token", refreshToken: refreshToken}
	return c.exchange(ctx, OpRefresh, p, scopes)
}

// ClientCredentials asks for an access token with the client credentials grant (confidential clients only). The
// answer carries no refresh token.
func (c *Client) ClientCredentials(ctx context.Context, scopes []string) (*Token, error) {
	return c.exchange(ctx, OpClientCredentials, params{grantType: "client_credentials"}, scopes)
}

type params struct {
	grantType    string
	refreshToken string
}

// jsonBody fixes the field order of a JSON request body.
type jsonBody struct {
	GrantType    string `json:"grant_type"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

func (c *Client) body(p params, scope string) ([]byte, string, error) {
	if c.cfg.Encoding == EncodingJSON {
		b, err := json.Marshal(jsonBody{
			GrantType:    p.grantType,
			ClientID:     c.cfg.ClientID,
			ClientSecret: c.cfg.ClientSecret,
			RefreshToken: p.refreshToken,
			Scope:        scope,
		})
		return b, "application/json", err
	}
	v := url.Values{}
	v.Set("grant_type", p.grantType)
	v.Set("client_id", c.cfg.ClientID)
	if c.cfg.ClientSecret != "" {
		v.Set("client_secret", c.cfg.ClientSecret)
	}
	if p.refreshToken != "" {
		v.Set("refresh_token", p.refreshToken)
	}
	if scope != "" {
		v.Set("scope", scope)
	}
	return []byte(v.Encode()), "application/x-www-form-urlencoded", nil
}

// joinScopes joins scopes with single spaces, the only separator league splits on; a scope that is empty or holds
// whitespace would silently turn into other scopes, so it is refused.
func joinScopes(scopes []string) (string, error) {
	for _, s := range scopes {
		if s == "" || strings.IndexFunc(s, unicode.IsSpace) >= 0 {
			return "", fmt.Errorf("scope %q is empty or contains whitespace", s)
		}
	}
	return strings.Join(scopes, " "), nil
}

func (c *Client) exchange(ctx context.Context, op string, p params, scopes []string) (*Token, error) {
	sc := newScrubber(c.cfg.ClientSecret, p.refreshToken)
	scope, err := joinScopes(scopes)
	if err != nil {
		return nil, &Error{Op: op, Err: err, class: classInput}
	}
	body, contentType, err := c.body(p, scope)
	if err != nil {
		return nil, &Error{Op: op, Err: fmt.Errorf("encode request: %w", err), class: classInput}
	}

	if err := ctx.Err(); err != nil {
		return nil, &Error{Op: op, Err: err, class: classCanceled}
	}
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		tok, e, retry := c.attempt(ctx, op, body, contentType, sc)
		if e == nil {
			return tok, nil
		}
		e.Attempts = attempt
		if !retry || attempt >= c.cfg.MaxAttempts {
			return nil, e
		}
		wait := e.RetryAfter
		if !e.retryAfterGiven {
			wait = backoff(attempt)
		}
		if waited+wait > c.cfg.MaxRetryWait {
			return nil, e
		}
		waited += wait
		if err := c.sleep(ctx, wait); err != nil {
			if e.Err == nil {
				e.Err = err
			} else {
				e.Err = fmt.Errorf("%w; retry abandoned: %w", e.Err, err)
			}
			return nil, e
		}
	}
}

// attempt makes one HTTP request. It reports whether the failure may be retried: only when the request surely did
// not reach the server, or the server asked for a retry.
func (c *Client) attempt(ctx context.Context, op string, body []byte, contentType string, sc scrubber) (*Token, *Error, bool) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	// wrote tells whether the request may have reached the server. GetConn starts every transport-level try; the
	// transport itself only retries a POST when nothing was written, so resetting there is safe.
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{
		GetConn:      func(string) { wrote.Store(false) },
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(actx, trace), http.MethodPost, c.tokenURL, bytes.NewReader(body))
	if err != nil {
		return nil, &Error{Op: op, Err: sc.err(err), class: classInput}, false
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	if c.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", c.cfg.UserAgent)
	}

	resp, err := c.http.Do(req)
	if err != nil {
		// After a failed Do the transport's write loop has finished, so wrote is final.
		e := &Error{Op: op, Sent: wrote.Load(), Err: sc.err(err)}
		switch {
		case e.Sent:
			e.class = classUnknown
			return nil, e, false
		case isCertificateError(err):
			e.class = classCertificate
			return nil, e, false
		case ctx.Err() != nil:
			// The caller gave up (the per-attempt timeout is actx, not ctx): nothing was sent, and there is no
			// one left to retry for.
			e.class = classCanceled
			return nil, e, false
		case isHostNotFound(err):
			// A name that does not resolve now will not resolve in a second either: a mistyped tenant or base URL,
			// not a passing fault. Nothing was sent.
			e.class = classHostNotFound
			return nil, e, false
		default:
			e.class = classNotSent
			return nil, e, true
		}
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	received := c.now()
	tooLarge := len(data) > maxBody

	status := resp.StatusCode
	switch {
	case status >= 200 && status < 300:
		e := &Error{Op: op, StatusCode: status, Sent: true, class: classUnknown}
		switch {
		case readErr != nil:
			e.Err = sc.err(fmt.Errorf("read token response: %w", readErr))
			return nil, e, false
		case tooLarge:
			e.Err = errTooLarge
			return nil, e, false
		}
		tr, err := decodeTokenResponse(data, op == OpRefresh)
		if err != nil {
			e.Err = err
			if rt := refreshTokenOf(data); op == OpRefresh && rt != "" {
				e.newHead = &rescued{token: rt}
			}
			return nil, e, false
		}
		tok := &Token{
			AccessToken:  tr.AccessToken,
			TokenType:    tr.TokenType,
			RefreshToken: tr.RefreshToken,
			ExpiresIn:    tr.ExpiresIn,
			Scope:        tr.Scope,
			ReceivedAt:   received,
			Expiry:       received.Add(time.Duration(tr.ExpiresIn) * time.Second),
		}
		if op != OpRefresh {
			// A client credentials token starts no chain; a refresh token here would be one nobody keeps alive.
			tok.RefreshToken = ""
		}
		return tok, nil, false
	case status >= 300 && status < 400:
		e := &Error{Op: op, StatusCode: status, Sent: true, class: classUnknown}
		e.Err = sc.err(redirectError(resp.Header.Get("Location")))
		return nil, e, false
	}

	e := &Error{Op: op, StatusCode: status, Sent: true}
	switch {
	case readErr != nil:
		e.Err = sc.err(fmt.Errorf("read error response: %w", readErr))
	case tooLarge:
		e.Err = errTooLarge
	default:
		f := decodeErrorResponse(data)
		e.Code, e.Description, e.Hint, e.Message = sc.field(f.Code), sc.field(f.Description), sc.field(f.Hint), sc.field(f.Message)
	}
	switch {
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		e.class = classRetryLater
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), received); ok {
			e.RetryAfter, e.retryAfterGiven = d, true
		}
		return nil, e, true
	case status >= 500:
		e.class = classUnknown
	default:
		e.class = classAnswered
	}
	return nil, e, false
}

var errTooLarge = errors.New("response larger than 1 MiB")

// redirectError names where the server pointed (scheme, host and path only: a query could carry anything), because a
// redirect usually means a wrong base URL, such as http instead of https.
func redirectError(location string) error {
	if location == "" {
		return errors.New("redirect not followed")
	}
	u, err := url.Parse(location)
	if err != nil {
		return errors.New("redirect not followed")
	}
	return fmt.Errorf("redirect to %s not followed", (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String())
}
