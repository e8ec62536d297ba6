package bipsynctest_test

// Contract tests of the fake: plain net/http requests and the literal bytes recorded from league/oauth2-server
// 9.4.1 (the bodies and cases of the package documentation). They never use the fake's own encoders, so a broken
// fake cannot make them pass.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// Bodies recorded from league 9.4.1.
const (
	eUGT = `{"error":"unsupported_grant_type","error_description":"The authorization grant type is not supported by the authorization server.","hint":"Check that all required parameters have been provided"}`
	eCLI = `{"error":"invalid_client","error_description":"Client authentication failed"}`
)

func eREQ(param string) string {
	return `{"error":"invalid_request","error_description":"The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.","hint":"Check the ` + "`" + param + "`" + ` parameter"}`
}

func eRT(hint string) string {
	return `{"error":"invalid_grant","error_description":"The refresh token is invalid.","hint":"` + hint + `"}`
}

// eSCOPE takes the scope as it appears inside the JSON string (already HTML- and JSON-escaped).
func eSCOPE(scope string) string {
	return `{"error":"invalid_scope","error_description":"The requested scope is invalid, unknown, or malformed","hint":"Check the ` + "`" + scope + "`" + ` scope"}`
}

// eAD takes the hint as it appears inside the JSON string.
func eAD(hint string) string {
	return `{"error":"access_denied","error_description":"The resource owner or authorization server denied the request.","hint":"` + hint + `"}`
}

var (
	successRT = regexp.MustCompile(`^\{"token_type":"Bearer","expires_in":3600,"access_token":"(eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)","refresh_token":"(def50200[0-9a-f]+)"\}$`)
	successCC = regexp.MustCompile(`^\{"token_type":"Bearer","expires_in":3600,"access_token":"(eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)"\}$`)
	// League's claims in league's order; iat/nbf/exp may carry a microsecond fraction.
	claimsShape = regexp.MustCompile(`^\{"aud":"[^"]+","jti":"[0-9a-f]{80}","iat":[0-9]+(\.[0-9]+)?,"nbf":[0-9]+(\.[0-9]+)?,"exp":[0-9]+(\.[0-9]+)?,"sub":"[^"]+","scopes":\[("[^"]+"(,"[^"]+")*)?\]\}$`)
)

// start is 25 Nov 2026, the day league's behaviour was recorded.
var start = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fixture is a fake with the clients and scopes league's behaviour was recorded with (cli-conf, cli-conf2, cli-pub;
// read, write, team_abc), seeded chains, and a client that never follows redirects.
type fixture struct {
	t      *testing.T
	srv    *bipsynctest.Server
	clock  *bipsynctest.Clock
	url    string
	client *http.Client
	tok    map[string]string
}

// newFixture starts a fake. Seeded refresh tokens, by placeholder name:
// rt (cli-conf: read write), rtRead (cli-conf: read), rtPub (cli-pub: read write), rtConf2 (cli-conf2: read write).
func newFixture(t *testing.T, opts bipsynctest.Options) *fixture {
	t.Helper()
	clock := bipsynctest.NewClock(start)
	opts.Clock = clock
	if opts.Scopes == nil {
		opts.Scopes = []string{"read", "write", "team_abc"}
	}
	srv := bipsynctest.NewServer(opts)
	srv.AddClient("cli-conf", "sec-conf")
	srv.AddClient("cli-conf2", "sec-conf2")
	srv.AddPublicClient("cli-pub")
	url := srv.Start()
	transport := &http.Transport{}
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		srv.Close()
	})
	return &fixture{
		t:     t,
		srv:   srv,
		clock: clock,
		url:   url,
		client: &http.Client{
			Transport:     transport,
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		tok: map[string]string{
			"rt":      srv.IssueRefreshToken("cli-conf", []string{"read", "write"}),
			"rtRead":  srv.IssueRefreshToken("cli-conf", []string{"read"}),
			"rtPub":   srv.IssueRefreshToken("cli-pub", []string{"read", "write"}),
			"rtConf2": srv.IssueRefreshToken("cli-conf2", []string{"read", "write"}),
		},
	}
}

// reqSpec describes a request declaratively; {name} in body, query and header values is replaced by the
// fixture's token of that name.
type reqSpec struct {
	method    string // default POST
	path      string // default the token endpoint
	ct        string // Content-Type; default form for POST with a body
	body      string
	json      bool
	multipart [][2]string
	query     string
	basic     []string // user, password
	header    map[string]string
}

func (f *fixture) expand(s string) string {
	pairs := make([]string, 0, 2*len(f.tok))
	for k, v := range f.tok {
		pairs = append(pairs, "{"+k+"}", v)
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

func (f *fixture) request(spec reqSpec) *http.Request {
	f.t.Helper()
	method := spec.method
	if method == "" {
		method = http.MethodPost
	}
	path := spec.path
	if path == "" {
		path = bipsynctest.TokenPath
	}
	body, ct := f.expand(spec.body), spec.ct
	switch {
	case spec.multipart != nil:
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for _, kv := range spec.multipart {
			if err := mw.WriteField(kv[0], f.expand(kv[1])); err != nil {
				f.t.Fatal(err)
			}
		}
		if err := mw.Close(); err != nil {
			f.t.Fatal(err)
		}
		body, ct = buf.String(), mw.FormDataContentType()
	case spec.json && ct == "":
		ct = "application/json"
	case ct == "" && body != "":
		ct = "application/x-www-form-urlencoded"
	}
	u := f.url + path
	if spec.query != "" {
		u += "?" + f.expand(spec.query)
	}
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if spec.basic != nil {
		req.SetBasicAuth(spec.basic[0], f.expand(spec.basic[1]))
	}
	for k, v := range spec.header {
		req.Header.Set(k, f.expand(v))
	}
	return req
}

type response struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) do(spec reqSpec) response {
	f.t.Helper()
	return f.send(f.request(spec))
}

func (f *fixture) send(req *http.Request) response {
	f.t.Helper()
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// refreshForm is a valid refresh request body for cli-conf, with the token given by placeholder name.
func refreshForm(name string) string {
	return "grant_type=refresh_token&client_id=cli-conf&client_secret=sec-conf&refresh_token={" + name + "}"
}

// refresh exchanges a fixture token and returns the new pair; it fails the test unless the answer is 200.
func (f *fixture) refresh(name string, extra string) (accessToken, refreshToken string) {
	f.t.Helper()
	r := f.do(reqSpec{body: refreshForm(name) + extra})
	m := successRT.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		f.t.Fatalf("refresh %s: got %d %s; want 200 S-RT", name, r.status, r.body)
	}
	return m[1], m[2]
}

// me calls the protected endpoint with the access token.
func (f *fixture) me(accessToken string) response {
	f.t.Helper()
	return f.do(reqSpec{method: http.MethodGet, path: bipsynctest.ProtectedPath,
		header: map[string]string{"Authorization": "Bearer " + accessToken}})
}

// checkErrorHeaders asserts league's error headers: Content-type only, no caching headers, and the
// WWW-Authenticate challenge when one is expected.
func checkErrorHeaders(t *testing.T, h http.Header, wwwAuth string) {
	t.Helper()
	want := []string{"Content-Length", "Content-Type", "Date"}
	if wwwAuth != "" {
		want = append(want, "Www-Authenticate")
	}
	checkHeaderNames(t, h, want)
	if got := h.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type: got %q; want %q", got, "application/json")
	}
	if got := h.Get("WWW-Authenticate"); got != wwwAuth {
		t.Errorf("WWW-Authenticate: got %q; want %q", got, wwwAuth)
	}
}

// checkSuccessHeaders asserts league's BearerTokenResponse headers.
func checkSuccessHeaders(t *testing.T, h http.Header) {
	t.Helper()
	checkHeaderNames(t, h, []string{"Cache-Control", "Content-Length", "Content-Type", "Date", "Pragma"})
	for k, want := range map[string]string{
		"Pragma":        "no-cache",
		"Cache-Control": "no-store",
		"Content-Type":  "application/json; charset=UTF-8",
	} {
		if got := h.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("%s: got %q; want [%q]", k, got, want)
		}
	}
}

func checkHeaderNames(t *testing.T, h http.Header, want []string) {
	t.Helper()
	var got []string
	for k := range h {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("header names: got %v; want %v", got, want)
	}
}

// jwtClaims returns the raw claims JSON of a JWT-shaped token and its decoded form.
func jwtClaims(t *testing.T, token string) (string, map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d segments; want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("claims segment: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("claims JSON: %v", err)
	}
	return string(raw), claims
}

// jwtScopes returns the scopes claim as strings.
func jwtScopes(t *testing.T, token string) []string {
	t.Helper()
	_, claims := jwtClaims(t, token)
	list, ok := claims["scopes"].([]any)
	if !ok {
		t.Fatalf("scopes claim: got %T; want array", claims["scopes"])
	}
	out := make([]string, 0, len(list))
	for i, v := range list {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("scopes claim element %d: got %T; want string", i, v)
		}
		out = append(out, s)
	}
	return out
}
