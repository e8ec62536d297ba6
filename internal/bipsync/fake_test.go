package bipsync

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

const (
	otherClientID     = "cli-conf2"
	otherClientSecret = "sec-conf2-5d8e0b3c"
	publicClientID    = "cli-pub"
)

var consented = []string{"read", "write"}

// fixture is one fake Bipsync server with a confidential, a second confidential and a public client.
type fixture struct {
	srv   *bipsynctest.Server
	clock *bipsynctest.Clock
	url   string
}

func newFixture(t *testing.T, opts bipsynctest.Options, useTLS bool) *fixture {
	t.Helper()
	clock := bipsynctest.NewClock(testStart)
	opts.Clock = clock
	srv := bipsynctest.NewServer(opts)
	srv.AddClient(testClientID, testClientSecret)
	srv.AddClient(otherClientID, otherClientSecret)
	srv.AddPublicClient(publicClientID)
	f := &fixture{srv: srv, clock: clock}
	if useTLS {
		f.url = srv.StartTLS()
	} else {
		f.url = srv.Start()
	}
	t.Cleanup(srv.Close)
	return f
}

// client returns a token client of the fixture on its clock, with a recording sleep.
func (f *fixture) client(t *testing.T, mod func(*Config)) (*Client, *sleepRecorder) {
	t.Helper()
	return newTestClient(t, f.url, func(cfg *Config) {
		cfg.Now = f.clock.Now
		if mod != nil {
			mod(cfg)
		}
	})
}

func statusFault(status int, retryAfter string) bipsynctest.Fault {
	f := bipsynctest.Fault{Kind: bipsynctest.FaultStatus, Status: status}
	if retryAfter != "" {
		f.Header = http.Header{"Retry-After": {retryAfter}}
	}
	return f
}

func seedChain(t *testing.T, f *fixture) string {
	return f.srv.IssueRefreshToken(testClientID, consented)
}

// TestClient_againstFake walks every error class against the fake Bipsync server: predicates, status and OAuth
// fields, attempts, what the server saw, and that no secret reaches the error.
func TestClient_againstFake(t *testing.T) {
	t.Parallel()
	publicClient := func(cfg *Config) { cfg.ClientID, cfg.ClientSecret = publicClientID, "" }
	tests := []struct {
		name       string
		opts       bipsynctest.Options
		tls        bool
		closedPort bool
		cc         bool
		scopes     []string
		client     func(*Config)
		// setup prepares the server (chain, faults, clock) and returns the refresh token to present.
		setup func(t *testing.T, f *fixture) string

		wantType      string // success: the token_type answered
		wantPred      predicates
		wantCert      bool
		wantStatus    int
		wantCode      string
		wantHint      string
		wantScope     string // ScopeFromHint
		wantCause     error  // in the chain
		wantSent      bool
		wantAttempts  int
		wantRequests  int // token requests the server saw
		wantExchanges int // refresh exchanges the server completed
		wantWaits     []time.Duration
		wantOldLive   bool // the presented refresh token can still be exchanged afterwards
	}{
		{name: "success Bearer form", setup: seedChain, wantType: "Bearer", wantAttempts: 1, wantRequests: 1, wantExchanges: 1},
		{name: "success bearer form", opts: bipsynctest.Options{TokenType: "bearer"}, setup: seedChain, wantType: "bearer", wantRequests: 1, wantExchanges: 1},
		{name: "success Bearer JSON", client: func(c *Config) { c.Encoding = EncodingJSON }, setup: seedChain, wantType: "Bearer", wantRequests: 1, wantExchanges: 1},
		{name: "success bearer JSON", opts: bipsynctest.Options{TokenType: "bearer"}, client: func(c *Config) { c.Encoding = EncodingJSON }, setup: seedChain, wantType: "bearer", wantRequests: 1, wantExchanges: 1},
		{name: "success with a subset scope", scopes: []string{"read"}, setup: seedChain, wantType: "Bearer", wantRequests: 1, wantExchanges: 1},
		{
			name: "revoked by reuse",
			setup: func(t *testing.T, f *fixture) string {
				rt := seedChain(t, f)
				c, _ := f.client(t, nil)
				if _, err := c.Refresh(context.Background(), rt, nil); err != nil {
					t.Fatalf("first exchange: %v", err)
				}
				return rt
			},
			wantPred: predicates{Reauth: true, Cause: CauseRevoked}, wantStatus: 400, wantCode: "invalid_grant", wantHint: "Token has been revoked",
			wantSent: true, wantAttempts: 1, wantRequests: 1,
		},
		{
			name: "revoked by the user",
			setup: func(t *testing.T, f *fixture) string {
				rt := seedChain(t, f)
				f.srv.RevokeChain(rt)
				return rt
			},
			wantPred: predicates{Reauth: true, Cause: CauseRevoked}, wantStatus: 400, wantCode: "invalid_grant", wantHint: "Token has been revoked",
			wantSent: true, wantAttempts: 1, wantRequests: 1,
		},
		{
			name: "expired after 31 days",
			setup: func(t *testing.T, f *fixture) string {
				rt := seedChain(t, f)
				f.clock.Advance(31 * 24 * time.Hour)
				return rt
			},
			wantPred: predicates{Reauth: true, Cause: CauseExpired}, wantStatus: 400, wantCode: "invalid_grant", wantHint: "Token has expired",
			wantSent: true, wantAttempts: 1, wantRequests: 1,
		},
		{
			name: "expired and revoked reads expired",
			setup: func(t *testing.T, f *fixture) string {
				rt := seedChain(t, f)
				f.srv.RevokeChain(rt)
				f.clock.Advance(31 * 24 * time.Hour)
				return rt
			},
			wantPred: predicates{Reauth: true, Cause: CauseExpired}, wantStatus: 400, wantCode: "invalid_grant", wantHint: "Token has expired",
			wantSent: true, wantAttempts: 1, wantRequests: 1,
		},
		{
			name:     "not linked to client",
			setup:    func(t *testing.T, f *fixture) string { return f.srv.IssueRefreshToken(otherClientID, consented) },
			wantPred: predicates{Reauth: true, Cause: CauseNotLinked}, wantStatus: 400, wantCode: "invalid_grant", wantHint: "Token is not linked to client",
			wantSent: true, wantAttempts: 1, wantRequests: 1, wantOldLive: true,
		},
		{
			name:     "garbage",
			setup:    func(t *testing.T, f *fixture) string { return "garbage-refresh-token-0123456789" },
			wantPred: predicates{Reauth: true, Cause: CauseUndecryptable}, wantStatus: 400, wantCode: "invalid_grant", wantHint: "Cannot decrypt the refresh token",
			wantSent: true, wantAttempts: 1, wantRequests: 1,
		},
		{
			name: "scope beyond consent", scopes: []string{"read", "write", "team_abc"}, setup: seedChain,
			wantPred: predicates{Reauth: true, Cause: CauseScope}, wantStatus: 400, wantCode: "invalid_scope", wantHint: "Check the `team_abc` scope",
			wantScope: "team_abc", wantSent: true, wantAttempts: 1, wantRequests: 1, wantOldLive: true,
		},
		{
			name: "unknown scope", scopes: []string{"read", "admin"}, setup: seedChain,
			wantPred: predicates{Reauth: true, Cause: CauseScope}, wantStatus: 400, wantCode: "invalid_scope", wantHint: "Check the `admin` scope",
			wantScope: "admin", wantSent: true, wantAttempts: 1, wantRequests: 1, wantOldLive: true,
		},
		{
			name: "wrong secret", client: func(c *Config) { c.ClientSecret = "wrong-secret-0123456789" }, setup: seedChain,
			wantPred: predicates{Client: true}, wantStatus: 401, wantCode: "invalid_client",
			wantSent: true, wantAttempts: 1, wantRequests: 1, wantOldLive: true,
		},
		{
			name: "unknown client", client: func(c *Config) { c.ClientID = "cli-nope" }, setup: seedChain,
			wantPred: predicates{Client: true}, wantStatus: 401, wantCode: "invalid_client",
			wantSent: true, wantAttempts: 1, wantRequests: 1, wantOldLive: true,
		},
		{
			name: "missing secret", client: func(c *Config) { c.ClientSecret = "" }, setup: seedChain,
			wantPred: predicates{}, wantStatus: 400, wantCode: "invalid_request", wantHint: "Check the `client_secret` parameter",
			wantSent: true, wantAttempts: 1, wantRequests: 1, wantOldLive: true,
		},
		{
			name: "JSON body to a form-only server", opts: bipsynctest.Options{RejectJSON: true}, client: func(c *Config) { c.Encoding = EncodingJSON },
			setup:    seedChain,
			wantPred: predicates{}, wantStatus: 400, wantCode: "unsupported_grant_type", wantHint: "Check that all required parameters have been provided",
			wantSent: true, wantAttempts: 1, wantRequests: 1, wantOldLive: true,
		},
		{
			name: "public client refresh", client: publicClient,
			setup:    func(t *testing.T, f *fixture) string { return f.srv.IssueRefreshToken(publicClientID, consented) },
			wantType: "Bearer", wantRequests: 1, wantExchanges: 1,
		},
		{name: "client credentials success", cc: true, scopes: []string{"read", "team_abc"}, wantType: "Bearer", wantRequests: 1},
		{name: "client credentials success JSON", cc: true, client: func(c *Config) { c.Encoding = EncodingJSON }, wantType: "Bearer", wantRequests: 1},
		{
			name: "client credentials public client", cc: true, client: publicClient,
			wantPred: predicates{Client: true}, wantStatus: 401, wantCode: "invalid_client", wantSent: true, wantAttempts: 1, wantRequests: 1,
		},
		{
			name: "client credentials unknown scope is not reauthorization", cc: true, scopes: []string{"team_zzz"},
			wantPred: predicates{}, wantStatus: 400, wantCode: "invalid_scope", wantHint: "Check the `team_zzz` scope", wantScope: "team_zzz",
			wantSent: true, wantAttempts: 1, wantRequests: 1,
		},
		{
			name: "429 with Retry-After then success",
			setup: func(t *testing.T, f *fixture) string {
				f.srv.InjectFault(statusFault(429, "3"))
				return seedChain(t, f)
			},
			wantType: "Bearer", wantRequests: 2, wantExchanges: 1, wantWaits: []time.Duration{3 * time.Second},
		},
		{
			name: "429 without Retry-After then success",
			setup: func(t *testing.T, f *fixture) string {
				f.srv.InjectFault(statusFault(429, ""))
				return seedChain(t, f)
			},
			wantType: "Bearer", wantRequests: 2, wantExchanges: 1, wantWaits: []time.Duration{time.Second},
		},
		{
			name: "503 twice then success",
			setup: func(t *testing.T, f *fixture) string {
				f.srv.InjectFaults(2, statusFault(503, ""))
				return seedChain(t, f)
			},
			wantType: "Bearer", wantRequests: 3, wantExchanges: 1, wantWaits: []time.Duration{time.Second, 2 * time.Second},
		},
		{
			name: "503 forever is bounded",
			setup: func(t *testing.T, f *fixture) string {
				f.srv.InjectFaults(100, statusFault(503, ""))
				return seedChain(t, f)
			},
			wantPred: predicates{Retryable: true}, wantStatus: 503, wantCode: "service_unavailable",
			wantSent: true, wantAttempts: 4, wantRequests: 4, wantWaits: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, wantOldLive: true,
		},
		{
			name: "500",
			setup: func(t *testing.T, f *fixture) string {
				f.srv.InjectFault(statusFault(500, ""))
				return seedChain(t, f)
			},
			wantPred: predicates{Unknown: true}, wantStatus: 500, wantCode: "server_error", wantSent: true, wantAttempts: 1, wantRequests: 1, wantOldLive: true,
		},
		{
			name: "502",
			setup: func(t *testing.T, f *fixture) string {
				f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultStatus, Status: 502, Body: "<html>bad gateway</html>"})
				return seedChain(t, f)
			},
			wantPred: predicates{Unknown: true}, wantStatus: 502, wantSent: true, wantAttempts: 1, wantRequests: 1, wantOldLive: true,
		},
		{
			name:   "timeout",
			client: func(c *Config) { c.Timeout = 150 * time.Millisecond },
			setup: func(t *testing.T, f *fixture) string {
				f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultDelay, Delay: 3 * time.Second})
				return seedChain(t, f)
			},
			wantPred: predicates{Unknown: true}, wantCause: context.DeadlineExceeded, wantSent: true, wantAttempts: 1, wantRequests: 1, wantOldLive: true,
		},
		{
			name: "close before processing",
			setup: func(t *testing.T, f *fixture) string {
				f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultCloseBeforeProcessing})
				return seedChain(t, f)
			},
			wantPred: predicates{Unknown: true}, wantSent: true, wantAttempts: 1, wantRequests: 1, wantOldLive: true,
		},
		{
			name: "drop after processing",
			setup: func(t *testing.T, f *fixture) string {
				f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultDropAfterProcessing})
				return seedChain(t, f)
			},
			wantPred: predicates{Unknown: true}, wantSent: true, wantAttempts: 1, wantRequests: 1, wantExchanges: 1,
		},
		{
			name: "non-JSON 200",
			setup: func(t *testing.T, f *fixture) string {
				f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultNonJSON200})
				return seedChain(t, f)
			},
			wantPred: predicates{Unknown: true}, wantStatus: 200, wantCause: errNotJSONObject, wantSent: true, wantAttempts: 1, wantRequests: 1, wantOldLive: true,
		},
		{
			name: "missing access_token 200",
			setup: func(t *testing.T, f *fixture) string {
				f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultMissingAccessToken200})
				return seedChain(t, f)
			},
			wantPred: predicates{Unknown: true}, wantStatus: 200, wantCause: errMissingAccessToken, wantSent: true, wantAttempts: 1, wantRequests: 1, wantExchanges: 1,
		},
		{
			name: "huge body",
			setup: func(t *testing.T, f *fixture) string {
				f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultHugeBody})
				return seedChain(t, f)
			},
			wantPred: predicates{Unknown: true}, wantStatus: 200, wantCause: errTooLarge, wantSent: true, wantAttempts: 1, wantRequests: 1, wantOldLive: true,
		},
		{
			name: "redirect is not followed",
			setup: func(t *testing.T, f *fixture) string {
				f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultRedirect})
				return seedChain(t, f)
			},
			wantPred: predicates{Unknown: true}, wantStatus: 307, wantSent: true, wantAttempts: 1, wantRequests: 1, wantOldLive: true,
		},
		{
			name: "dial refused", closedPort: true, setup: seedChain,
			wantPred: predicates{Retryable: true}, wantAttempts: 4, wantRequests: 0,
			wantWaits: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, wantOldLive: true,
		},
		{
			name: "TLS certificate unknown", tls: true, setup: seedChain,
			wantPred: predicates{}, wantCert: true, wantAttempts: 1, wantRequests: 0, wantOldLive: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tt.opts, tt.tls)
			var rt string
			if tt.setup != nil {
				rt = tt.setup(t, f)
			}
			f.srv.ResetStats()
			base := f.url
			if tt.closedPort {
				base = closedPortURL(t)
			}
			c, sleeps := newTestClient(t, base, func(cfg *Config) {
				cfg.Now = f.clock.Now
				if tt.client != nil {
					tt.client(cfg)
				}
			})
			if tt.tls {
				// The default client trusts only the system roots, which do not hold the fake's certificate.
				c.http = &http.Client{CheckRedirect: c.http.CheckRedirect}
			}

			var tok *Token
			var err error
			if tt.cc {
				tok, err = c.ClientCredentials(context.Background(), tt.scopes)
			} else {
				tok, err = c.Refresh(context.Background(), rt, tt.scopes)
			}

			stats := f.srv.Stats()
			if stats.TokenRequests != tt.wantRequests {
				t.Errorf("token requests seen: got %d; want %d", stats.TokenRequests, tt.wantRequests)
			}
			if stats.RefreshExchanges != tt.wantExchanges {
				t.Errorf("refresh exchanges: got %d; want %d", stats.RefreshExchanges, tt.wantExchanges)
			}
			if got := sleeps.Waits(); !reflect.DeepEqual(got, tt.wantWaits) && (len(got) != 0 || len(tt.wantWaits) != 0) {
				t.Errorf("waits: got %v; want %v", got, tt.wantWaits)
			}
			secrets := append(f.srv.SeenSecrets(), rt, testClientSecret, otherClientSecret)
			if len(f.srv.SeenSecrets()) == 0 {
				t.Errorf("SeenSecrets: got none; want the seeded tokens at least")
			}
			assertNoSecrets(t, err, secrets...)

			if tt.wantType != "" {
				if err != nil {
					t.Fatalf("got error %v; want a token", err)
				}
				checkFakeToken(t, f, tok, tt.wantType, tt.cc, rt)
				return
			}
			if err == nil {
				t.Fatalf("got token %v; want an error", tok)
			}
			t.Logf("error: %v", err)
			e := mustError(t, err)
			if got := predicatesOf(err); got != tt.wantPred {
				t.Errorf("predicates: got %+v; want %+v", got, tt.wantPred)
			}
			if got := IsCertificateError(err); got != tt.wantCert {
				t.Errorf("IsCertificateError: got %t; want %t", got, tt.wantCert)
			}
			if e.StatusCode != tt.wantStatus || e.Code != tt.wantCode || e.Hint != tt.wantHint {
				t.Errorf("answer: got %d %q %q; want %d %q %q", e.StatusCode, e.Code, e.Hint, tt.wantStatus, tt.wantCode, tt.wantHint)
			}
			if got := ScopeFromHint(e.Hint); got != tt.wantScope {
				t.Errorf("ScopeFromHint(%q): got %q; want %q", e.Hint, got, tt.wantScope)
			}
			if tt.wantCause != nil && !errors.Is(err, tt.wantCause) {
				t.Errorf("cause: got %v; want %v in the chain", e.Err, tt.wantCause)
			}
			if e.Sent != tt.wantSent || e.Attempts != tt.wantAttempts {
				t.Errorf("got Sent=%t Attempts=%d; want %t, %d", e.Sent, e.Attempts, tt.wantSent, tt.wantAttempts)
			}
			if e.Op != map[bool]string{true: OpClientCredentials, false: OpRefresh}[tt.cc] {
				t.Errorf("Op: got %q; want the grant of the call", e.Op)
			}
			if !tt.cc {
				if got := f.srv.RefreshTokenLive(rt); got != tt.wantOldLive {
					t.Errorf("presented refresh token live afterwards: got %t; want %t", got, tt.wantOldLive)
				}
			}
		})
	}
}

// checkFakeToken checks a success against what the server now holds.
func checkFakeToken(t *testing.T, f *fixture, tok *Token, wantType string, cc bool, presented string) {
	t.Helper()
	now := f.clock.Now()
	if tok.TokenType != wantType || tok.ExpiresIn != 3600 {
		t.Errorf("token: got type %q expires_in %d; want %q, 3600", tok.TokenType, tok.ExpiresIn, wantType)
	}
	if !tok.ReceivedAt.Equal(now) || !tok.Expiry.Equal(now.Add(time.Hour)) {
		t.Errorf("token times: got received %s expiry %s; want %s, %s", tok.ReceivedAt, tok.Expiry, now, now.Add(time.Hour))
	}
	if !f.srv.AccessTokenLive(tok.AccessToken) {
		t.Errorf("the new access token is not live at the server; want live")
	}
	if cc {
		if tok.RefreshToken != "" {
			t.Errorf("client credentials: got a refresh token; want none")
		}
		if got := f.srv.Stats().ClientCredentials; got != 1 {
			t.Errorf("client credentials grants: got %d; want 1", got)
		}
		return
	}
	if !f.srv.RefreshTokenLive(tok.RefreshToken) {
		t.Errorf("the new refresh token is not live at the server; want live")
	}
	if f.srv.RefreshTokenLive(presented) {
		t.Errorf("the presented refresh token is still live after a rotation; want revoked")
	}
}
