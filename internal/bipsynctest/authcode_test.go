package bipsynctest_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

const (
	redirectConf = "http://127.0.0.1:43123/callback"
	// verifier is 43 characters of RFC 7636's alphabet; its S256 challenge is computed here, not by the fake.
	verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

var eGrantHint = func(hint string) string {
	return `{"error":"invalid_grant","error_description":"The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.","hint":"` + hint + `"}`
}

func s256(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorize follows the authorize page with query and returns the status, the Location and the body.
func (f *fixture) authorize(query string) response {
	f.t.Helper()
	return f.do(reqSpec{method: http.MethodGet, path: bipsynctest.AuthorizePath, query: query})
}

func authorizeQuery(client, redirect, scope, state, challenge, method string) string {
	v := []string{"response_type=code", "client_id=" + url.QueryEscape(client)}
	if redirect != "" {
		v = append(v, "redirect_uri="+url.QueryEscape(redirect))
	}
	if scope != "" {
		v = append(v, "scope="+url.QueryEscape(scope))
	}
	if state != "" {
		v = append(v, "state="+url.QueryEscape(state))
	}
	if challenge != "" {
		v = append(v, "code_challenge="+challenge)
	}
	if method != "" {
		v = append(v, "code_challenge_method="+method)
	}
	return strings.Join(v, "&")
}

var codeRedirect = regexp.MustCompile(`^http://127\.0\.0\.1:(\d+)/callback\?code=(def50200[0-9a-f]+)&state=st%7Ea%2Fb$`)

// code runs the authorize page for cli-conf with an S256 challenge and returns the code from the redirect.
func (f *fixture) code(redirect string) string {
	f.t.Helper()
	r := f.authorize(authorizeQuery("cli-conf", redirect, "read write", "st~a/b", s256(verifier), "S256"))
	m := codeRedirect.FindStringSubmatch(r.header.Get("Location"))
	if r.status != http.StatusFound || m == nil {
		f.t.Fatalf("authorize: got %d Location %q %s; want 302 to the redirect URI with code and state", r.status,
			r.header.Get("Location"), r.body)
	}
	return m[2]
}

func exchangeForm(client, code, redirect, verifier string) string {
	v := "grant_type=authorization_code&" + client + "&code=" + code
	if redirect != "" {
		v += "&redirect_uri=" + url.QueryEscape(redirect)
	}
	if verifier != "" {
		v += "&code_verifier=" + verifier
	}
	return v
}

const conf = "client_id=cli-conf&client_secret=sec-conf"

func TestAuthCode_approvedWithS256(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	f.srv.RegisterRedirectURI("cli-conf", redirectConf)
	code := f.code(redirectConf)

	r := f.do(reqSpec{body: exchangeForm(conf, code, redirectConf, verifier)})
	m := successRT.FindStringSubmatch(r.body)
	if r.status != 200 || m == nil {
		t.Fatalf("exchange: got %d %s; want 200 with a refresh token", r.status, r.body)
	}
	checkSuccessHeaders(t, r.header)
	if got := jwtScopes(t, m[1]); !slices.Equal(got, []string{"read", "write"}) {
		t.Errorf("scopes: got %q; want [read write]", got)
	}
	expectError(t, "the same code again", f.do(reqSpec{body: exchangeForm(conf, code, redirectConf, verifier)}), 400,
		eGrantHint("Authorization code has been revoked"))
	f.tok["ac"] = m[2]
	if r := f.do(reqSpec{body: refreshForm("ac")}); r.status != 200 {
		t.Errorf("refresh of the code's refresh token: got %d %s; want 200", r.status, r.body)
	}
	if st := f.srv.Stats(); st.AuthorizationCodes != 1 || st.AuthorizationCodeTokens != 1 {
		t.Errorf("stats: got %+v; want 1 code issued and 1 exchanged", st)
	}
	for _, e := range f.srv.Requests() {
		if strings.Contains(e.Code+e.CodeVerifier, code) || strings.Contains(e.Code+e.CodeVerifier, verifier) {
			t.Errorf("request log holds the code or the verifier: %+v", e)
		}
	}
	if seen := f.srv.SeenSecrets(); !slices.Contains(seen, code) || !slices.Contains(seen, verifier) {
		t.Error("SeenSecrets does not hold the code and the verifier")
	}
}

// TestAuthCode_loopbackPort checks league's RFC 8252 rule: the port of a loopback redirect URI is not compared, and the
// redirect goes where the request said.
func TestAuthCode_loopbackPort(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	f.srv.RegisterRedirectURI("cli-conf", redirectConf)
	other := "http://127.0.0.1:5555/callback"
	r := f.authorize(authorizeQuery("cli-conf", other, "read", "st~a/b", s256(verifier), "S256"))
	if m := codeRedirect.FindStringSubmatch(r.header.Get("Location")); r.status != 302 || m == nil || m[1] != "5555" {
		t.Fatalf("authorize on another loopback port: got %d %q; want 302 to port 5555", r.status, r.header.Get("Location"))
	}
	// Without a redirect_uri, the one registered URI is used.
	if code := f.code(""); code == "" {
		t.Fatal("no code")
	}
}

func TestAuthCode_authorizeErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	f.srv.RegisterRedirectURI("cli-conf", redirectConf)
	f.srv.RegisterRedirectURI("cli-pub", "http://127.0.0.1:43124/callback")
	f.srv.RegisterRedirectURI("cli-pub", "http://[::1]:43124/callback")
	challenge := s256(verifier)
	for _, tc := range []struct {
		name, query string
		status      int
		body        string
	}{
		{"no response_type", "client_id=cli-conf", 400, eUGT},
		{"no client_id", "response_type=code", 400, eUGT},
		{"unknown client", authorizeQuery("cli-nope", redirectConf, "read", "s", challenge, "S256"), 401, eCLI},
		{"unregistered redirect URI", authorizeQuery("cli-conf", "https://evil.example/callback", "read", "s", challenge, "S256"), 401, eCLI},
		{"another path on loopback", authorizeQuery("cli-conf", "http://127.0.0.1:43123/other", "read", "s", challenge, "S256"), 401, eCLI},
		{"localhost is not loopback to league", authorizeQuery("cli-conf", "http://localhost:43123/callback", "read", "s", challenge, "S256"), 401, eCLI},
		{"no redirect URI, two registered", authorizeQuery("cli-pub", "", "read", "s", challenge, "S256"), 401, eCLI},
		{"public client without a challenge", authorizeQuery("cli-pub", "http://127.0.0.1:43124/callback", "read", "s", "", ""), 400,
			eREQHint("Code challenge must be provided for public clients")},
		{"unknown method", authorizeQuery("cli-conf", redirectConf, "read", "s", challenge, "S512"), 400,
			eREQHint("Code challenge method must be one of `S256`, `plain`")},
		{"short challenge", authorizeQuery("cli-conf", redirectConf, "read", "s", "abc", "S256"), 400,
			eREQHint("Code challenge must follow the specifications of RFC-7636.")},
	} {
		r := f.authorize(tc.query)
		if r.status != tc.status || r.body != tc.body || r.header.Get("Location") != "" {
			t.Errorf("%s: got %d %s (Location %q); want %d %s", tc.name, r.status, r.body, r.header.Get("Location"), tc.status, tc.body)
		}
	}

	// An unknown scope and a denial are told to the client through the redirect, with the state.
	r := f.authorize(authorizeQuery("cli-conf", redirectConf, "read admin", "st", challenge, "S256"))
	want := redirectConf + "?state=st&error=invalid_scope&error_description=The+requested+scope+is+invalid%2C+unknown%2C+or+malformed" +
		"&hint=Check+the+%60admin%60+scope"
	if r.status != 302 || r.header.Get("Location") != want {
		t.Errorf("unknown scope: got %d %q; want 302 %q", r.status, r.header.Get("Location"), want)
	}
	f.srv.DenyAuthorizations(true)
	r = f.authorize(authorizeQuery("cli-conf", redirectConf, "read", "st", challenge, "S256"))
	want = redirectConf + "?state=st&error=access_denied&error_description=The+resource+owner+or+authorization+server+denied+the+request." +
		"&hint=The+user+denied+the+request"
	if r.status != 302 || r.header.Get("Location") != want {
		t.Errorf("denied: got %d %q; want 302 %q", r.status, r.header.Get("Location"), want)
	}
	if st := f.srv.Stats(); st.AuthorizationCodes != 0 {
		t.Errorf("codes issued: got %d; want 0", st.AuthorizationCodes)
	}
}

func TestAuthCode_exchangeErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	f.srv.RegisterRedirectURI("cli-conf", redirectConf)
	f.srv.RegisterRedirectURI("cli-conf2", redirectConf)
	for _, tc := range []struct {
		name string
		body func(code string) string
		want string
	}{
		{"wrong verifier", func(c string) string {
			return exchangeForm(conf, c, redirectConf, strings.Repeat("x", 43))
		}, eGrantHint("Failed to verify `code_verifier`.")},
		{"no verifier", func(c string) string { return exchangeForm(conf, c, redirectConf, "") }, eREQ("code_verifier")},
		{"malformed verifier", func(c string) string { return exchangeForm(conf, c, redirectConf, "short") },
			eREQHint("Code Verifier must follow the specifications of RFC-7636.")},
		{"no redirect_uri", func(c string) string { return exchangeForm(conf, c, "", verifier) }, eREQ("redirect_uri")},
		{"other redirect_uri", func(c string) string {
			return exchangeForm(conf, c, "http://127.0.0.1:5555/callback", verifier)
		}, eREQHint("Invalid redirect URI")},
		{"other client", func(c string) string {
			return exchangeForm("client_id=cli-conf2&client_secret=sec-conf2", c, redirectConf, verifier)
		}, eREQHint("Authorization code was not issued to this client")},
		{"unknown code", func(string) string { return exchangeForm(conf, "def50200abcd", redirectConf, verifier) },
			eREQHint("Issue decrypting the authorization code")},
		{"no code", func(string) string { return "grant_type=authorization_code&" + conf }, eREQ("code")},
	} {
		code := f.code(redirectConf)
		expectError(t, tc.name, f.do(reqSpec{body: tc.body(code)}), 400, tc.want)
		// A refused exchange does not use the code up.
		if r := f.do(reqSpec{body: exchangeForm(conf, code, redirectConf, verifier)}); r.status != 200 {
			t.Errorf("%s: the right exchange afterwards got %d %s; want 200", tc.name, r.status, r.body)
		}
	}

	code := f.code(redirectConf)
	f.clock.Advance(bipsynctest.DefaultAuthCodeTTL + time.Second)
	expectError(t, "expired code", f.do(reqSpec{body: exchangeForm(conf, code, redirectConf, verifier)}), 400,
		eGrantHint("Authorization code has expired"))

	// A confidential client may skip PKCE; a verifier without a challenge is then a downgrade attempt.
	r := f.authorize(authorizeQuery("cli-conf", redirectConf, "read", "st~a/b", "", ""))
	m := codeRedirect.FindStringSubmatch(r.header.Get("Location"))
	if m == nil {
		t.Fatalf("authorize without PKCE: got %d %q", r.status, r.header.Get("Location"))
	}
	expectError(t, "verifier without a challenge", f.do(reqSpec{body: exchangeForm(conf, m[2], redirectConf, verifier)}), 400,
		eREQHint("code_verifier received when no code_challenge is present"))
}
