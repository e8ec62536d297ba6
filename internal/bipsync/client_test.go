package bipsync

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		baseURL  string
		clientID string
		wantURL  string
		wantErr  string
	}{
		{name: "tenant", baseURL: "https://acme-api.bipsync.com", clientID: "c", wantURL: "https://acme-api.bipsync.com/v1/oauth/token"},
		{name: "trailing slash", baseURL: "https://acme-api.bipsync.com/", clientID: "c", wantURL: "https://acme-api.bipsync.com/v1/oauth/token"},
		{name: "loopback with port", baseURL: "http://127.0.0.1:4321", clientID: "c", wantURL: "http://127.0.0.1:4321/v1/oauth/token"},
		{name: "path prefix", baseURL: "https://proxy.example/bipsync/", clientID: "c", wantURL: "https://proxy.example/bipsync/v1/oauth/token"},
		{name: "empty client id", baseURL: "https://acme-api.bipsync.com", clientID: " ", wantErr: "client id is empty"},
		{name: "unparsable", baseURL: "https://acme-api.bipsync.com:port", clientID: "c", wantErr: "not a valid URL"},
		{name: "relative", baseURL: "acme-api.bipsync.com", clientID: "c", wantErr: "scheme"},
		{name: "other scheme", baseURL: "ftp://acme-api.bipsync.com", clientID: "c", wantErr: "scheme"},
		{name: "no host", baseURL: "https://", clientID: "c", wantErr: "no host"},
		{name: "user info", baseURL: "https://u:hunter2@acme-api.bipsync.com", clientID: "c", wantErr: "user information"},
		{name: "query", baseURL: "https://acme-api.bipsync.com?x=1", clientID: "c", wantErr: "query"},
		{name: "fragment", baseURL: "https://acme-api.bipsync.com#x", clientID: "c", wantErr: "fragment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(Config{BaseURL: tt.baseURL, ClientID: tt.clientID})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New(%q): got error %v; want one containing %q", tt.baseURL, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("New error %q contains the URL password; want it left out", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q): got error %v; want nil", tt.baseURL, err)
			}
			if got := c.TokenURL(); got != tt.wantURL {
				t.Errorf("TokenURL: got %q; want %q", got, tt.wantURL)
			}
			if got := c.ClientID(); got != tt.clientID {
				t.Errorf("ClientID: got %q; want %q", got, tt.clientID)
			}
		})
	}
}

func TestNew_defaults(t *testing.T) {
	t.Parallel()
	c, err := New(Config{BaseURL: "http://127.0.0.1:1", ClientID: "c", MaxAttempts: -1, Timeout: -1})
	if err != nil {
		t.Fatalf("New: got error %v; want nil", err)
	}
	if c.cfg.Timeout != DefaultTimeout || c.cfg.MaxAttempts != DefaultMaxAttempts || c.cfg.MaxRetryWait != DefaultMaxRetryWait {
		t.Errorf("defaults: got timeout %s, attempts %d, retry wait %s; want %s, %d, %s", c.cfg.Timeout, c.cfg.MaxAttempts,
			c.cfg.MaxRetryWait, DefaultTimeout, DefaultMaxAttempts, DefaultMaxRetryWait)
	}
	if c.now == nil || c.sleep == nil {
		t.Errorf("defaults: got nil clock or sleep; want time.Now and a context-aware sleep")
	}
}

func TestNew_neverFollowsRedirects(t *testing.T) {
	t.Parallel()
	followed := false
	given := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { followed = true; return nil }}
	c, err := New(Config{BaseURL: "http://127.0.0.1:1", ClientID: "c", HTTPClient: given})
	if err != nil {
		t.Fatalf("New: got error %v; want nil", err)
	}
	if c.http == given {
		t.Fatalf("New: got the caller's *http.Client; want a copy")
	}
	if err := c.http.CheckRedirect(nil, nil); !errors.Is(err, http.ErrUseLastResponse) {
		t.Errorf("CheckRedirect: got %v; want http.ErrUseLastResponse", err)
	}
	if err := given.CheckRedirect(nil, nil); err != nil || !followed {
		t.Errorf("the caller's CheckRedirect: got error %v, called %t; want nil, true (left untouched)", err, followed)
	}
}

// capturedRequest is what an inline handler saw.
type capturedRequest struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   string
}

func captureServer(t *testing.T, status int, body string) (*httptest.Server, func() []capturedRequest) {
	t.Helper()
	var mu sync.Mutex
	var seen []capturedRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, capturedRequest{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(b)})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []capturedRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]capturedRequest(nil), seen...)
	}
}

func TestClient_requestEncoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		encoding    Encoding
		secret      string
		cc          bool
		scopes      []string
		contentType string
		want        map[string]string
	}{
		{
			name: "form refresh confidential with scopes", encoding: EncodingForm, secret: testClientSecret,
			scopes: []string{"read", "write"}, contentType: "application/x-www-form-urlencoded",
			want: map[string]string{"grant_type": "refresh_token", "client_id": testClientID, "client_secret": testClientSecret,
				"refresh_token": testRefreshToken, "scope": "read write"},
		},
		{
			name: "form refresh public without scopes", encoding: EncodingForm, contentType: "application/x-www-form-urlencoded",
			want: map[string]string{"grant_type": "refresh_token", "client_id": testClientID, "refresh_token": testRefreshToken},
		},
		{
			name: "json refresh confidential", encoding: EncodingJSON, secret: testClientSecret, scopes: []string{"rest_api:read"},
			contentType: "application/json",
			want: map[string]string{"grant_type": "refresh_token", "client_id": testClientID, "client_secret": testClientSecret,
				"refresh_token": testRefreshToken, "scope": "rest_api:read"},
		},
		{
			name: "json refresh public", encoding: EncodingJSON, contentType: "application/json",
			want: map[string]string{"grant_type": "refresh_token", "client_id": testClientID, "refresh_token": testRefreshToken},
		},
		{
			name: "form client credentials", encoding: EncodingForm, secret: testClientSecret, cc: true,
			scopes: []string{"read", "team_abc"}, contentType: "application/x-www-form-urlencoded",
			want: map[string]string{"grant_type": "client_credentials", "client_id": testClientID, "client_secret": testClientSecret,
				"scope": "read team_abc"},
		},
		{
			name: "json client credentials", encoding: EncodingJSON, secret: testClientSecret, cc: true, contentType: "application/json",
			want: map[string]string{"grant_type": "client_credentials", "client_id": testClientID, "client_secret": testClientSecret},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, seen := captureServer(t, 200, tokenBody("Bearer", "3600", !tt.cc))
			c, _ := newTestClient(t, srv.URL, func(cfg *Config) {
				cfg.Encoding = tt.encoding
				cfg.ClientSecret = tt.secret
				cfg.UserAgent = "terraform-provider-bipsync/test"
			})
			var err error
			if tt.cc {
				_, err = c.ClientCredentials(context.Background(), tt.scopes)
			} else {
				_, err = c.Refresh(context.Background(), testRefreshToken, tt.scopes)
			}
			if err != nil {
				t.Fatalf("got error %v; want nil", err)
			}
			reqs := seen()
			if len(reqs) != 1 {
				t.Fatalf("requests: got %d; want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || r.Path != TokenPath || r.RawQuery != "" {
				t.Errorf("request line: got %s %s?%s; want POST %s with no query", r.Method, r.Path, r.RawQuery, TokenPath)
			}
			if got := r.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type: got %q; want %q", got, tt.contentType)
			}
			if got := r.Header.Get("Accept"); got != "application/json" {
				t.Errorf("Accept: got %q; want application/json", got)
			}
			if got := r.Header.Get("User-Agent"); got != "terraform-provider-bipsync/test" {
				t.Errorf("User-Agent: got %q; want terraform-provider-bipsync/test", got)
			}
			if got, ok := r.Header["Authorization"]; ok {
				t.Errorf("Authorization header: got %q; want none (credentials go in the body)", got)
			}
			got := map[string]string{}
			if tt.encoding == EncodingJSON {
				if err := json.Unmarshal([]byte(r.Body), &got); err != nil {
					t.Fatalf("JSON body %q: %v", r.Body, err)
				}
			} else {
				v, err := url.ParseQuery(r.Body)
				if err != nil {
					t.Fatalf("form body %q: %v", r.Body, err)
				}
				for k, vs := range v {
					if len(vs) != 1 {
						t.Errorf("form field %s: got %d values; want 1", k, len(vs))
					}
					got[k] = vs[0]
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("body fields: got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestClient_Refresh_invalidInput(t *testing.T) {
	t.Parallel()
	srv, count := serveAnswers(t, answer{status: 200, body: tokenBody("Bearer", "3600", true)})
	c, _ := newTestClient(t, srv.URL, nil)
	tests := []struct {
		name   string
		token  string
		scopes []string
	}{
		{name: "empty refresh token", token: ""},
		{name: "empty scope", token: testRefreshToken, scopes: []string{"read", ""}},
		{name: "scope with space", token: testRefreshToken, scopes: []string{"read write"}},
		{name: "scope with tab", token: testRefreshToken, scopes: []string{"read\twrite"}},
	}
	for _, tt := range tests {
		_, err := c.Refresh(context.Background(), tt.token, tt.scopes)
		if err == nil {
			t.Errorf("%s: got nil error; want one", tt.name)
			continue
		}
		if got := predicatesOf(err); got != (predicates{}) {
			t.Errorf("%s: predicates: got %+v; want none", tt.name, got)
		}
		if e := mustError(t, err); e.Sent || e.Attempts != 0 {
			t.Errorf("%s: got Sent=%t Attempts=%d; want false, 0", tt.name, e.Sent, e.Attempts)
		}
	}
	if n := count(); n != 0 {
		t.Errorf("requests: got %d; want 0", n)
	}
}

func TestClient_Refresh_canceledBeforeStart(t *testing.T) {
	t.Parallel()
	srv, count := serveAnswers(t, answer{status: 200, body: tokenBody("Bearer", "3600", true)})
	c, _ := newTestClient(t, srv.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Refresh(ctx, testRefreshToken, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v; want context.Canceled", err)
	}
	if got := predicatesOf(err); got != (predicates{}) {
		t.Errorf("predicates: got %+v; want none", got)
	}
	if n := count(); n != 0 {
		t.Errorf("requests: got %d; want 0", n)
	}
}

// TestClient_answers walks malformed and unusual answers that the fake server does not produce.
func TestClient_answers(t *testing.T) {
	t.Parallel()
	unknown := predicates{Unknown: true}
	tests := []struct {
		name       string
		cc         bool
		answers    []answer
		wantErr    error // sentinel in the chain, when an error is expected
		wantPred   predicates
		wantStatus int
		wantFields oauthFields
		wantIn     int64
		wantType   string
		wantText   string // substring of err.Error()
	}{
		{name: "expires_in as string", answers: []answer{{status: 200, body: tokenBody("Bearer", `"3600"`, true)}}, wantIn: 3600, wantType: "Bearer"},
		{name: "expires_in as padded string", answers: []answer{{status: 200, body: tokenBody("bearer", `" 3599 "`, true)}}, wantIn: 3599, wantType: "bearer"},
		{name: "expires_in fractional", answers: []answer{{status: 200, body: tokenBody("BEARER", `3600.9`, true)}}, wantIn: 3600, wantType: "BEARER"},
		{name: "expires_in exponent", answers: []answer{{status: 200, body: tokenBody("Bearer", `3.6e3`, true)}}, wantIn: 3600, wantType: "Bearer"},
		{name: "201 is a success too", answers: []answer{{status: 201, body: tokenBody("Bearer", `60`, true)}}, wantIn: 60, wantType: "Bearer"},
		{name: "client credentials without refresh token", cc: true, answers: []answer{{status: 200, body: tokenBody("Bearer", "3600", false)}}, wantIn: 3600, wantType: "Bearer"},
		{name: "expires_in abc", answers: []answer{{status: 200, body: tokenBody("Bearer", `"abc"`, true)}}, wantErr: errBadExpiresIn, wantPred: unknown, wantStatus: 200},
		{name: "expires_in Inf string", answers: []answer{{status: 200, body: tokenBody("Bearer", `"Inf"`, true)}}, wantErr: errBadExpiresIn, wantPred: unknown, wantStatus: 200},
		{name: "expires_in boolean", answers: []answer{{status: 200, body: tokenBody("Bearer", `true`, true)}}, wantErr: errBadExpiresIn, wantPred: unknown, wantStatus: 200},
		{name: "expires_in huge", answers: []answer{{status: 200, body: tokenBody("Bearer", `1e300`, true)}}, wantErr: errBadExpiresIn, wantPred: unknown, wantStatus: 200},
		{name: "expires_in negative", answers: []answer{{status: 200, body: tokenBody("Bearer", `-5`, true)}}, wantErr: errNonPositiveExpires, wantPred: unknown, wantStatus: 200},
		{name: "expires_in zero", answers: []answer{{status: 200, body: tokenBody("Bearer", `0`, true)}}, wantErr: errNonPositiveExpires, wantPred: unknown, wantStatus: 200},
		{name: "expires_in null", answers: []answer{{status: 200, body: tokenBody("Bearer", `null`, true)}}, wantErr: errMissingExpiresIn, wantPred: unknown, wantStatus: 200},
		{name: "expires_in missing", answers: []answer{{status: 200, body: `{"token_type":"Bearer","access_token":"` + testAccessToken + `","refresh_token":"` + testNewRefresh + `"}`}}, wantErr: errMissingExpiresIn, wantPred: unknown, wantStatus: 200},
		{name: "token_type mac", answers: []answer{{status: 200, body: tokenBody("mac", "3600", true)}}, wantErr: errBadTokenType, wantPred: unknown, wantStatus: 200},
		{name: "token_type missing", answers: []answer{{status: 200, body: `{"expires_in":3600,"access_token":"` + testAccessToken + `","refresh_token":"` + testNewRefresh + `"}`}}, wantErr: errBadTokenType, wantPred: unknown, wantStatus: 200},
		{name: "access_token not a string", answers: []answer{{status: 200, body: `{"token_type":"Bearer","expires_in":3600,"access_token":42,"refresh_token":"` + testNewRefresh + `"}`}}, wantErr: errMissingAccessToken, wantPred: unknown, wantStatus: 200},
		{name: "access_token empty", answers: []answer{{status: 200, body: `{"token_type":"Bearer","expires_in":3600,"access_token":"","refresh_token":"` + testNewRefresh + `"}`}}, wantErr: errMissingAccessToken, wantPred: unknown, wantStatus: 200},
		{name: "refresh_token missing on refresh", answers: []answer{{status: 200, body: tokenBody("Bearer", "3600", false)}}, wantErr: errMissingRefreshToken, wantPred: unknown, wantStatus: 200},
		{name: "refresh_token null on refresh", answers: []answer{{status: 200, body: `{"token_type":"Bearer","expires_in":3600,"access_token":"` + testAccessToken + `","refresh_token":null}`}}, wantErr: errMissingRefreshToken, wantPred: unknown, wantStatus: 200},
		{name: "top-level array", answers: []answer{{status: 200, body: `[` + tokenBody("Bearer", "3600", true) + `]`}}, wantErr: errNotJSONObject, wantPred: unknown, wantStatus: 200},
		{name: "JSON null", answers: []answer{{status: 200, body: `null`}}, wantErr: errNotJSONObject, wantPred: unknown, wantStatus: 200},
		{name: "truncated JSON", answers: []answer{{status: 200, body: tokenBody("Bearer", "3600", true)[:90]}}, wantErr: errNotJSONObject, wantPred: unknown, wantStatus: 200},
		{
			name:       "league 8 dead refresh token",
			answers:    []answer{{status: 401, body: `{"error":"invalid_request","error_description":"The refresh token is invalid.","hint":"Token has expired","message":"The refresh token is invalid."}`}},
			wantPred:   predicates{Reauth: true, Cause: CauseExpired},
			wantStatus: 401,
			wantFields: oauthFields{Code: "invalid_request", Description: "The refresh token is invalid.", Hint: "Token has expired", Message: "The refresh token is invalid."},
			wantText:   "bipsync: refresh: HTTP 401: invalid_request: The refresh token is invalid. (hint: Token has expired)",
		},
		{
			name:       "league 8 dead refresh token without hint",
			answers:    []answer{{status: 401, body: `{"error":"invalid_request","error_description":"The refresh token is invalid.","message":"The refresh token is invalid."}`}},
			wantPred:   predicates{Reauth: true, Cause: CauseInvalid},
			wantStatus: 401,
			wantFields: oauthFields{Code: "invalid_request", Description: "The refresh token is invalid.", Message: "The refresh token is invalid."},
		},
		{
			name:       "league 8 message differing from description is shown",
			answers:    []answer{{status: 400, body: `{"error":"invalid_request","error_description":"Bad.","message":"Other."}`}},
			wantPred:   predicates{},
			wantStatus: 400,
			wantFields: oauthFields{Code: "invalid_request", Description: "Bad.", Message: "Other."},
			wantText:   "HTTP 400: invalid_request: Bad. (message: Other.)",
		},
		{
			name:       "invalid_scope hint is kept escaped",
			answers:    []answer{{status: 400, body: "{\"error\":\"invalid_scope\",\"error_description\":\"The requested scope is invalid, unknown, or malformed\",\"hint\":\"Check the `&lt;x&gt;&amp;&quot;` scope\"}"}},
			wantPred:   predicates{Reauth: true, Cause: CauseScope},
			wantStatus: 400,
			wantFields: oauthFields{Code: "invalid_scope", Description: "The requested scope is invalid, unknown, or malformed", Hint: "Check the `&lt;x&gt;&amp;&quot;` scope"},
		},
		{
			name:       "invalid_scope on client credentials is not reauthorization",
			cc:         true,
			answers:    []answer{{status: 400, body: "{\"error\":\"invalid_scope\",\"error_description\":\"The requested scope is invalid, unknown, or malformed\",\"hint\":\"Check the `team_zzz` scope\"}"}},
			wantPred:   predicates{},
			wantStatus: 400,
			wantFields: oauthFields{Code: "invalid_scope", Description: "The requested scope is invalid, unknown, or malformed", Hint: "Check the `team_zzz` scope"},
		},
		{
			name:       "non-JSON error body keeps only the status",
			answers:    []answer{{status: 403, header: map[string]string{"Content-Type": "text/html"}, body: "<html>IP " + testRefreshToken + " not allowed</html>"}},
			wantPred:   predicates{},
			wantStatus: 403,
			wantText:   "bipsync: refresh: HTTP 403",
		},
		{
			name:       "error fields of other types are ignored",
			answers:    []answer{{status: 400, body: `{"error":{"code":1},"error_description":7,"hint":null}`}},
			wantPred:   predicates{},
			wantStatus: 400,
		},
		{
			name:       "huge error body keeps only the status",
			answers:    []answer{{status: 400, body: `{"error":"invalid_grant","hint":"` + strings.Repeat("x", maxBody) + `"}`}},
			wantPred:   predicates{},
			wantStatus: 400,
		},
		{
			name:       "500 server_error",
			answers:    []answer{{status: 500, body: `{"error":"server_error","error_description":"The authorization server encountered an unexpected condition which prevented it from fulfilling the request: db"}`}},
			wantPred:   unknown,
			wantStatus: 500,
			wantFields: oauthFields{Code: "server_error", Description: "The authorization server encountered an unexpected condition which prevented it from fulfilling the request: db"},
		},
		{
			name:       "redirect names its target without the query",
			answers:    []answer{{status: 308, header: map[string]string{"Location": "https://elsewhere.example/v1/oauth/token?refresh_token=" + testRefreshToken}}},
			wantPred:   unknown,
			wantStatus: 308,
			wantText:   "redirect to https://elsewhere.example/v1/oauth/token not followed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, count := serveAnswers(t, tt.answers...)
			c, sleeps := newTestClient(t, srv.URL, nil)
			var tok *Token
			var err error
			if tt.cc {
				tok, err = c.ClientCredentials(context.Background(), nil)
			} else {
				tok, err = c.Refresh(context.Background(), testRefreshToken, nil)
			}
			if n := count(); n != 1 {
				t.Errorf("requests: got %d; want 1 (no retry)", n)
			}
			if w := sleeps.Waits(); len(w) != 0 {
				t.Errorf("waits: got %v; want none", w)
			}
			assertNoSecrets(t, err, testClientSecret, testRefreshToken, testAccessToken, testNewRefresh)
			if tt.wantType != "" {
				if err != nil {
					t.Fatalf("got error %v; want a token", err)
				}
				if tok.ExpiresIn != tt.wantIn || tok.TokenType != tt.wantType || tok.AccessToken != testAccessToken {
					t.Errorf("token: got expires_in %d type %q; want %d %q", tok.ExpiresIn, tok.TokenType, tt.wantIn, tt.wantType)
				}
				if want := testStart.Add(time.Duration(tt.wantIn) * time.Second); !tok.Expiry.Equal(want) || !tok.ReceivedAt.Equal(testStart) {
					t.Errorf("token times: got received %s expiry %s; want %s, %s", tok.ReceivedAt, tok.Expiry, testStart, want)
				}
				wantRefresh := testNewRefresh
				if tt.cc {
					wantRefresh = ""
				}
				if tok.RefreshToken != wantRefresh {
					t.Errorf("refresh token: got %d chars; want %d", len(tok.RefreshToken), len(wantRefresh))
				}
				return
			}
			if err == nil {
				t.Fatalf("got token %v; want an error", tok)
			}
			if tok != nil {
				t.Errorf("got token %v with the error; want nil", tok)
			}
			e := mustError(t, err)
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("cause: got %v; want %v", e.Err, tt.wantErr)
			}
			if got := predicatesOf(err); got != tt.wantPred {
				t.Errorf("predicates: got %+v; want %+v", got, tt.wantPred)
			}
			got := oauthFields{Code: e.Code, Description: e.Description, Hint: e.Hint, Message: e.Message}
			if e.StatusCode != tt.wantStatus || got != tt.wantFields {
				t.Errorf("status and fields: got %d %+v; want %d %+v", e.StatusCode, got, tt.wantStatus, tt.wantFields)
			}
			if !e.Sent || e.Attempts != 1 {
				t.Errorf("got Sent=%t Attempts=%d; want true, 1", e.Sent, e.Attempts)
			}
			if tt.wantText != "" && !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("Error(): got %q; want it to contain %q", err.Error(), tt.wantText)
			}
		})
	}
}

func TestClient_Refresh_scopeHintUnescaped(t *testing.T) {
	t.Parallel()
	srv, _ := serveAnswers(t, answer{status: 400, body: "{\"error\":\"invalid_scope\",\"error_description\":\"The requested scope is invalid, unknown, or malformed\",\"hint\":\"Check the `&lt;x&gt;&amp;&quot;` scope\"}"})
	c, _ := newTestClient(t, srv.URL, nil)
	_, err := c.Refresh(context.Background(), testRefreshToken, []string{`<x>&"`})
	e := mustError(t, err)
	if got := ScopeFromHint(e.Hint); got != `<x>&"` {
		t.Errorf("ScopeFromHint(%q): got %q; want %q", e.Hint, got, `<x>&"`)
	}
}

func TestScopeFromHint(t *testing.T) {
	t.Parallel()
	tests := []struct{ hint, want string }{
		{"Check the `team_abc` scope", "team_abc"},
		{"Check the `admin` scope", "admin"},
		{"Check the `&lt;x&gt;&amp;&quot;` scope", `<x>&"`},
		{"Check the `read\twrite` scope", "read\twrite"},
		{"Check the `` scope", ""},
		{"Check the `a` b` scope", "a` b"},
		{"Check the `client_id` parameter", ""},
		{"Token has been revoked", ""},
		{"Check the ` scope", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := ScopeFromHint(tt.hint); got != tt.want {
			t.Errorf("ScopeFromHint(%q): got %q; want %q", tt.hint, got, tt.want)
		}
	}
}

func TestClient_Refresh_secretsEchoedByServerAreScrubbed(t *testing.T) {
	t.Parallel()
	body, _ := json.Marshal(map[string]string{
		"error":             "invalid_grant",
		"error_description": "token " + testRefreshToken + " for secret " + url.QueryEscape(testClientSecret),
		"hint":              "got refresh_token=" + url.QueryEscape(testRefreshToken),
		"message":           "secret " + testClientSecret,
	})
	srv, _ := serveAnswers(t, answer{status: 400, body: string(body)})
	c, _ := newTestClient(t, srv.URL, nil)
	_, err := c.Refresh(context.Background(), testRefreshToken, nil)
	e := mustError(t, err)
	assertNoSecrets(t, err, testRefreshToken, testClientSecret, url.QueryEscape(testClientSecret))
	if !strings.Contains(e.Description, "<redacted>") || !strings.Contains(e.Message, "<redacted>") {
		t.Errorf("fields: got description %q message %q; want the secrets replaced by <redacted>", e.Description, e.Message)
	}
	if got := ReauthorizationCause(err); got != CauseInvalid {
		t.Errorf("cause: got %q; want %q", got, CauseInvalid)
	}
}
