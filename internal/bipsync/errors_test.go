package bipsync

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestPredicates_fromFields covers Errors built from exported fields alone, as callers' tests build them.
func TestPredicates_fromFields(t *testing.T) {
	t.Parallel()
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	tests := []struct {
		name string
		err  error
		want predicates
	}{
		{name: "nil", err: nil, want: predicates{}},
		{name: "foreign error", err: errors.New("boom"), want: predicates{}},
		{name: "revoked", err: &Error{Op: OpRefresh, StatusCode: 400, Code: "invalid_grant", Hint: "Token has been revoked"}, want: predicates{Reauth: true, Cause: CauseRevoked}},
		{name: "expired", err: &Error{Op: OpRefresh, StatusCode: 400, Code: "invalid_grant", Hint: "Token has expired"}, want: predicates{Reauth: true, Cause: CauseExpired}},
		{name: "not linked", err: &Error{Op: OpRefresh, StatusCode: 400, Code: "invalid_grant", Hint: "Token is not linked to client"}, want: predicates{Reauth: true, Cause: CauseNotLinked}},
		{name: "undecryptable", err: &Error{Op: OpRefresh, StatusCode: 400, Code: "invalid_grant", Hint: "Cannot decrypt the refresh token"}, want: predicates{Reauth: true, Cause: CauseUndecryptable}},
		{name: "hint case and period", err: &Error{Op: OpRefresh, StatusCode: 400, Code: "invalid_grant", Hint: " token has EXPIRED. "}, want: predicates{Reauth: true, Cause: CauseExpired}},
		{name: "invalid_grant other hint", err: &Error{Op: OpRefresh, StatusCode: 400, Code: "invalid_grant", Hint: "Something new"}, want: predicates{Reauth: true, Cause: CauseInvalid}},
		{name: "invalid_grant no hint", err: &Error{Op: OpRefresh, StatusCode: 400, Code: "invalid_grant"}, want: predicates{Reauth: true, Cause: CauseInvalid}},
		{name: "scope on refresh", err: &Error{Op: OpRefresh, StatusCode: 400, Code: "invalid_scope", Hint: "Check the `x` scope"}, want: predicates{Reauth: true, Cause: CauseScope}},
		{name: "scope on client credentials", err: &Error{Op: OpClientCredentials, StatusCode: 400, Code: "invalid_scope"}, want: predicates{}},
		{name: "league 8", err: &Error{Op: OpRefresh, StatusCode: 401, Code: "invalid_request", Description: "The refresh token is invalid.", Hint: "Token has been revoked"}, want: predicates{Reauth: true, Cause: CauseRevoked}},
		{name: "league 9 invalid_request", err: &Error{Op: OpRefresh, StatusCode: 400, Code: "invalid_request", Description: "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.", Hint: "Check the `refresh_token` parameter"}, want: predicates{}},
		{name: "401 invalid_request other description", err: &Error{Op: OpRefresh, StatusCode: 401, Code: "invalid_request", Description: "Something else"}, want: predicates{}},
		{name: "invalid_client 401", err: &Error{Op: OpRefresh, StatusCode: 401, Code: "invalid_client"}, want: predicates{Client: true}},
		{name: "invalid_client 400", err: &Error{Op: OpClientCredentials, StatusCode: 400, Code: "invalid_client"}, want: predicates{Client: true}},
		{name: "wrapped", err: fmt.Errorf("exchange: %w", &Error{Op: OpRefresh, StatusCode: 400, Code: "invalid_grant", Hint: "Token has been revoked"}), want: predicates{Reauth: true, Cause: CauseRevoked}},
		{name: "500", err: &Error{Op: OpRefresh, StatusCode: 500, Sent: true}, want: predicates{Unknown: true}},
		{name: "500 invalid_grant is not reauthorization", err: &Error{Op: OpRefresh, StatusCode: 500, Code: "invalid_grant", Sent: true}, want: predicates{Unknown: true}},
		{name: "502", err: &Error{Op: OpRefresh, StatusCode: 502, Sent: true}, want: predicates{Unknown: true}},
		{name: "504", err: &Error{Op: OpRefresh, StatusCode: 504, Sent: true}, want: predicates{Unknown: true}},
		{name: "307", err: &Error{Op: OpRefresh, StatusCode: 307, Sent: true}, want: predicates{Unknown: true}},
		{name: "200 invalid", err: &Error{Op: OpRefresh, StatusCode: 200, Sent: true, Err: errMissingAccessToken}, want: predicates{Unknown: true}},
		{name: "503", err: &Error{Op: OpRefresh, StatusCode: 503, Sent: true}, want: predicates{Retryable: true}},
		{name: "429", err: &Error{Op: OpRefresh, StatusCode: 429, Sent: true}, want: predicates{Retryable: true}},
		{name: "403", err: &Error{Op: OpRefresh, StatusCode: 403, Sent: true}, want: predicates{}},
		{name: "timeout after sending", err: &Error{Op: OpRefresh, Sent: true, Err: context.DeadlineExceeded}, want: predicates{Unknown: true}},
		{name: "dial failure", err: &Error{Op: OpRefresh, Err: dial}, want: predicates{Retryable: true}},
		{name: "certificate", err: &Error{Op: OpRefresh, Err: x509.UnknownAuthorityError{}}, want: predicates{}},
		{name: "canceled before sending", err: &Error{Op: OpRefresh, Err: context.Canceled}, want: predicates{}},
		{name: "no cause", err: &Error{Op: OpRefresh}, want: predicates{}},
	}
	for _, tt := range tests {
		if got := predicatesOf(tt.err); got != tt.want {
			t.Errorf("%s: got %+v; want %+v", tt.name, got, tt.want)
		}
	}
	if !IsCertificateError(&Error{Err: fmt.Errorf("tls: %w", x509.HostnameError{})}) {
		t.Errorf("IsCertificateError(HostnameError): got false; want true")
	}
}

func TestError_Error(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{
			name: "league 9 revoked",
			err:  &Error{Op: OpRefresh, StatusCode: 400, Code: "invalid_grant", Description: "The refresh token is invalid.", Hint: "Token has been revoked", Attempts: 1, Sent: true},
			want: "bipsync: refresh: HTTP 400: invalid_grant: The refresh token is invalid. (hint: Token has been revoked)",
		},
		{
			name: "status only after retries",
			err:  &Error{Op: OpClientCredentials, StatusCode: 503, Attempts: 4, Sent: true, RetryAfter: time.Minute},
			want: "bipsync: client_credentials: HTTP 503 (after 4 attempts; server asks to retry after 1m0s)",
		},
		{
			name: "no answer after sending",
			err:  &Error{Op: OpRefresh, Sent: true, Err: context.DeadlineExceeded, Attempts: 1},
			want: "bipsync: refresh: request sent, no answer: context deadline exceeded",
		},
		{
			name: "invalid answer",
			err:  &Error{Op: OpRefresh, StatusCode: 200, Sent: true, Err: errMissingRefreshToken, Attempts: 1},
			want: "bipsync: refresh: HTTP 200: invalid token response: refresh_token missing or not a non-empty string",
		},
		{
			name: "no op",
			err:  &Error{Err: errors.New("x")},
			want: "bipsync: token request: x",
		},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%s: got %q; want %q", tt.name, got, tt.want)
		}
	}
}

func TestStringers_redact(t *testing.T) {
	t.Parallel()
	tok := Token{AccessToken: testAccessToken, TokenType: "Bearer", RefreshToken: testNewRefresh, ExpiresIn: 3600,
		ReceivedAt: testStart, Expiry: testStart.Add(time.Hour)}
	cfg := Config{BaseURL: "http://127.0.0.1:1", ClientID: testClientID, ClientSecret: testClientSecret}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	scrubbed := newScrubber(testClientSecret, testRefreshToken).err(fmt.Errorf("dial %s with %s: %w", testRefreshToken, testClientSecret, context.DeadlineExceeded))
	e := &Error{Op: OpRefresh, StatusCode: 0, Sent: true, Err: scrubbed}
	values := map[string]any{
		"token": tok, "*token": &tok, "config": cfg, "*config": &cfg, "client": c, "error": e,
		"token in struct": struct{ T Token }{tok}, "token in slice": []*Token{&tok},
	}
	secrets := []string{testAccessToken, testNewRefresh, testClientSecret, testRefreshToken}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			out := fmt.Sprintf(verb, v)
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("%s with %s: got %q; want no secret", name, verb, out)
				}
			}
		}
	}
	if got, want := tok.String(), "bipsync.Token{type=Bearer expires=2026-11-25T13:00:00Z access=<redacted> refresh=<redacted>}"; got != want {
		t.Errorf("Token.String: got %q; want %q", got, want)
	}
	if got := (Token{TokenType: "mac", AccessToken: "x"}).String(); !strings.Contains(got, "type=<other>") || !strings.Contains(got, "refresh=<empty>") {
		t.Errorf("Token.String of an odd token: got %q; want type=<other> and refresh=<empty>", got)
	}
	if got := cfg.String(); !strings.Contains(got, "ClientSecret:<redacted>") || !strings.Contains(got, testClientID) {
		t.Errorf("Config.String: got %q; want the client id and ClientSecret:<redacted>", got)
	}
	if got := (Config{BaseURL: "https://u:hunter2@acme-api.bipsync.com"}).String(); strings.Contains(got, "hunter2") {
		t.Errorf("Config.String with a URL password: got %q; want the password hidden", got)
	}
	if got := (Config{}).GoString(); !strings.Contains(got, "ClientSecret:<empty>") {
		t.Errorf("Config.GoString of a public client: got %q; want ClientSecret:<empty>", got)
	}
	if !errors.Is(e, context.DeadlineExceeded) {
		t.Errorf("scrubbed cause: got errors.Is(DeadlineExceeded) false; want true")
	}
	var nilTok *Token
	if got := fmt.Sprintf("%v", nilTok); got != "<nil>" {
		t.Errorf("nil *Token: got %q; want <nil>", got)
	}
}

func TestScrubber(t *testing.T) {
	t.Parallel()
	sc := newScrubber("s3cr3t/+&", "", "tok")
	tests := []struct{ in, want string }{
		{"plain s3cr3t/+& here", "plain <redacted> here"},
		{"form s3cr3t%2F%2B%26 here", "form <redacted> here"},
		{"path s3cr3t%2F+&", "path <redacted>"},
		{"tok and tokens", "<redacted> and <redacted>ens"},
		{"nothing", "nothing"},
	}
	for _, tt := range tests {
		if got := sc.text(tt.in); got != tt.want {
			t.Errorf("text(%q): got %q; want %q", tt.in, got, tt.want)
		}
	}
	// A secret that a replacement can form anew: nothing of the text is kept.
	edge := newScrubber("x<r")
	if got := edge.text("xx<r"); strings.Contains(got, "x<r") {
		t.Errorf("text with an edge-forming secret: got %q; want the secret gone", got)
	}
	long := strings.Repeat("é", maxField) + "tok"
	if got := sc.field(long); len(got) > maxField+len("…") || strings.Contains(got, "tok") {
		t.Errorf("field of %d bytes: got %d bytes; want at most %d and no secret", len(long), len(got), maxField+len("…"))
	}
	// A secret cut by the length bound must not leave its prefix behind.
	cut := strings.Repeat("a", maxField-2) + "s3cr3t/+&"
	if got := sc.field(cut); strings.Contains(got, "s3c") {
		t.Errorf("field with a secret at the cut: got tail %q; want it redacted before cutting", got[len(got)-20:])
	}
	if err := sc.err(nil); err != nil {
		t.Errorf("err(nil): got %v; want nil", err)
	}
	orig := errors.New("no secret")
	// Identity, not errors.Is: an error without a secret must come back as is, not wrapped.
	if got := sc.err(orig); got != orig { //nolint:errorlint // identity is the assertion
		t.Errorf("err without secret: got %v; want the same error value", got)
	}
}
