package provider

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/echoprovider"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// The fault matrix walks every misbehaviour of the token endpoint the fake can produce, for both consumers of a
// chain: the ephemeral bipsync_access_token (chain in the token store) and bipsync_refresh_grant (chain in state). Each
// fault is one test case through the engine, met at the chain's first exchange (of the seed); the rows marked "at
// rotation" meet it at the second, to show that the head kept in the store or in state survives a failed rotation.
// The faulted run must end with the right diagnostic (or retry and succeed where that is safe), and the next run shows
// whether the chain survived. The request log proves that no refresh token the server consumed was sent again by the
// provider on its own.

// faultCase is one row of the matrix.
type faultCase struct {
	name string
	// inject queues the fault at the fake; it runs just before the faulted run.
	inject func(w *faultWorld)
	// refused points the faulted run at a loopback port where nothing listens.
	refused bool
	// tls serves the fake over https; the provider trusts its certificate in every run but the faulted one.
	tls bool
	// extra are provider block lines for every run.
	extra []string
	// want matches the faulted run's error; nil means the run retries and succeeds.
	want *regexp.Regexp
	// requests is how many token requests the faulted run makes at the fake.
	requests int
	// consumed tells that the fake rotated the chain although no usable answer reached the provider.
	consumed bool
	// lostBecause says, for a consumed chain, why the provider cannot have the new head.
	lostBecause string
	// rotation meets the fault at the chain's second exchange, after a first one succeeded: the head the store or the
	// state holds must survive a failed rotation. Other rows meet it at the first exchange, of the seed.
	rotation bool
	// dies tells that the answer says the chain is spent (revoked or expired): the ephemeral token's store records the
	// chain as dead, and the next run fails at once without asking Bipsync, as for a chain truly refused.
	dies bool
}

// faultResult is what one test case observed, for the table.
type faultResult struct {
	outcome string
	chain   string
	failed  bool
}

// League 9.4.1 error bodies, as internal/bipsynctest's package documentation lists them, and league 8's form of a
// refused refresh token (401 invalid_request with a "message" key).
const (
	bodyRevoked     = `{"error":"invalid_grant","error_description":"The refresh token is invalid.","hint":"Token has been revoked"}`
	bodyExpired     = `{"error":"invalid_grant","error_description":"The refresh token is invalid.","hint":"Token has expired"}`
	bodyNotLinked   = `{"error":"invalid_grant","error_description":"The refresh token is invalid.","hint":"Token is not linked to client"}`
	bodyUndecrypt   = `{"error":"invalid_grant","error_description":"The refresh token is invalid.","hint":"Cannot decrypt the refresh token"}`
	bodyScope       = "{\"error\":\"invalid_scope\",\"error_description\":\"The requested scope is invalid, unknown, or malformed\",\"hint\":\"Check the `write` scope\"}"
	bodyClient      = `{"error":"invalid_client","error_description":"Client authentication failed"}`
	bodyUGT         = `{"error":"unsupported_grant_type","error_description":"The authorization grant type is not supported by the authorization server.","hint":"Check that all required parameters have been provided"}`
	bodyReqRT       = "{\"error\":\"invalid_request\",\"error_description\":\"The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.\",\"hint\":\"Check the `refresh_token` parameter\"}"
	bodyReqSecret   = "{\"error\":\"invalid_request\",\"error_description\":\"The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.\",\"hint\":\"Check the `client_secret` parameter\"}"
	bodyServerError = `{"error":"server_error","error_description":"The authorization server encountered an unexpected condition which prevented it from fulfilling the request: database unavailable"}`
	bodyLeague8     = `{"error":"invalid_request","error_description":"The refresh token is invalid.","hint":"Token has been revoked","message":"The refresh token is invalid."}`
)

func faultCases() []faultCase {
	status := func(n, code int, header http.Header) func(*faultWorld) {
		return func(w *faultWorld) {
			w.f.server.InjectFaults(n, bipsynctest.Fault{Kind: bipsynctest.FaultStatus, Status: code, Header: header})
		}
	}
	league := func(code int, body string) func(*faultWorld) {
		return func(w *faultWorld) {
			w.f.server.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultStatus, Status: code, Body: body})
		}
	}
	kind := func(k bipsynctest.FaultKind) func(*faultWorld) {
		return func(w *faultWorld) { w.f.server.InjectFault(bipsynctest.Fault{Kind: k}) }
	}
	retryAfter := http.Header{"Retry-After": {"1"}}
	return []faultCase{
		{name: "dial refused", refused: true, want: summaryWith(summaryUnavailable, "Attempts: 4")},
		{name: "TLS: self-signed certificate", tls: true, want: words(summaryCertificate)},
		{name: "429 with Retry-After, 3 times", inject: status(3, 429, retryAfter), requests: 4},
		{name: "429 without Retry-After, 3 times", inject: status(3, 429, nil), requests: 4},
		{name: "503, 3 times", inject: status(3, 503, nil), requests: 4},
		{name: "503 with Retry-After, every attempt", inject: status(4, 503, retryAfter), requests: 4,
			want: summaryWith(summaryUnavailable, "HTTP status: 503", "Attempts: 4")},
		{name: "502", inject: status(1, 502, nil), requests: 1, want: summaryWith(summaryOutcomeUnknown, "HTTP status: 502")},
		{name: "500 (league server_error)", inject: league(500, bodyServerError), requests: 1,
			want: summaryWith(summaryOutcomeUnknown, "HTTP status: 500", "OAuth error: server_error")},
		{
			name:  "slow answer past request_timeout",
			extra: []string{`  request_timeout = "1s"`},
			inject: func(w *faultWorld) {
				w.f.server.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultDelay, Delay: 2 * time.Second})
			},
			requests: 1,
			want:     summaryWith(summaryOutcomeUnknown, "Cause: Post", "context deadline exceeded"),
		},
		{name: "connection dropped before processing", inject: kind(bipsynctest.FaultCloseBeforeProcessing), requests: 1,
			want: summaryWith(summaryOutcomeUnknown, "Cause: Post", "EOF")},
		{
			name: "exchange processed, answer dropped", inject: kind(bipsynctest.FaultDropAfterProcessing), requests: 1,
			want: summaryWith(summaryOutcomeUnknown, "Cause: Post", "EOF"), consumed: true,
			lostBecause: "server rotated, answer never arrived",
		},
		{name: "200 with a non-JSON body", inject: kind(bipsynctest.FaultNonJSON200), requests: 1,
			want: summaryWith(summaryOutcomeUnknown, "HTTP status: 200", "not a JSON object")},
		{
			name: "200 without access_token", inject: kind(bipsynctest.FaultMissingAccessToken200), requests: 1,
			want: summaryWith(summaryOutcomeUnknown, "HTTP status: 200", "access_token missing"), consumed: true,
			lostBecause: "server rotated, answer carried no tokens",
		},
		{name: "200 with a body over 1 MiB", inject: kind(bipsynctest.FaultHugeBody), requests: 1,
			want: summaryWith(summaryOutcomeUnknown, "HTTP status: 200", "larger than 1 MiB")},
		{
			name: "307 redirect to another host",
			inject: func(w *faultWorld) {
				w.f.server.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultRedirect, Location: w.trap.URL + bipsynctest.TokenPath})
			},
			requests: 1,
			want:     summaryWith(summaryOutcomeUnknown, "HTTP status: 307", "Cause: redirect to", "not followed"),
		},
		{name: "league invalid_grant: Token has been revoked", inject: league(400, bodyRevoked), requests: 1, dies: true,
			want: summaryWith(summaryReauth, "has been revoked", "Hint: Token has been revoked")},
		{name: "league invalid_grant: Token has expired", inject: league(400, bodyExpired), requests: 1, dies: true,
			want: summaryWith(summaryReauth, "past its lifetime", "Hint: Token has expired")},
		{name: "league invalid_grant: Token is not linked to client", inject: league(400, bodyNotLinked), requests: 1,
			want: summaryWith(summaryReauth, "issued to another OAuth application")},
		{name: "league invalid_grant: Cannot decrypt the refresh token", inject: league(400, bodyUndecrypt), requests: 1,
			want: summaryWith(summaryReauth, "not a refresh token this Bipsync tenant issued")},
		{name: "league invalid_scope", inject: league(400, bodyScope), requests: 1,
			want: summaryWith(summaryScopeNotGranted, "Bipsync refused the scope write", "nothing was consumed")},
		{name: "league invalid_client (401)", inject: league(401, bodyClient), requests: 1,
			want: summaryWith(summaryInvalidClient, "HTTP status: 401")},
		{name: "league invalid_request: refresh_token", inject: league(400, bodyReqRT), requests: 1,
			want: summaryWith(summaryRejected, "OAuth error: invalid_request", "refresh_token")},
		{name: "league invalid_request: client_secret", inject: league(400, bodyReqSecret), requests: 1,
			want: summaryWith(summaryRejected, "OAuth error: invalid_request", "client_secret")},
		{name: "league unsupported_grant_type", inject: league(400, bodyUGT), requests: 1,
			want: summaryWith(summaryRejected, "OAuth error: unsupported_grant_type")},
		{name: "league 8: 401 invalid_request, refresh token invalid", inject: league(401, bodyLeague8), requests: 1, dies: true,
			want: summaryWith(summaryReauth, "has been revoked")},
		{name: "at rotation: connection dropped before processing", inject: kind(bipsynctest.FaultCloseBeforeProcessing),
			requests: 1, rotation: true, want: summaryWith(summaryOutcomeUnknown, "Cause: Post", "EOF")},
		{
			name: "at rotation: exchange processed, answer dropped", inject: kind(bipsynctest.FaultDropAfterProcessing),
			requests: 1, rotation: true, want: summaryWith(summaryOutcomeUnknown, "Cause: Post", "EOF"), consumed: true,
			lostBecause: "server rotated, answer never arrived",
		},
	}
}

// faultWorld is one test case's fake server and clock, and a host that must never see a request.
type faultWorld struct {
	f    *fixture
	trap *httptest.Server
	hits atomic.Int64
}

// newFaultWorld is newFixture, over https when useTLS is set, plus a trap host for redirects.
func newFaultWorld(t *testing.T, useTLS bool) *faultWorld {
	t.Helper()
	w := &faultWorld{f: startFixture(t, useTLS)}
	w.trap = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		w.hits.Add(1)
		rw.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(w.trap.Close)
	return w
}

// factories serves the provider; with trust, its HTTP client trusts the fake's self-signed certificate (what the
// Untrusted Bipsync TLS Certificate diagnostic tells the user to arrange).
func (w *faultWorld) factories(trust bool) map[string]func() (tfprotov6.ProviderServer, error) {
	opts := w.f.options()
	if cert := w.f.server.Certificate(); trust && cert != nil {
		pool := x509.NewCertPool()
		pool.AddCert(cert)
		opts.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	return map[string]func() (tfprotov6.ProviderServer, error){
		"bipsync": providerserver.NewProtocol6WithError(NewWithOptions("test", opts)()),
		"echo":    echoprovider.NewProviderServer(),
	}
}

func (w *faultWorld) providerBlock(baseURL string, extra []string) string {
	if baseURL == "" {
		baseURL = w.f.baseURL
	}
	return fmt.Sprintf(`
provider "bipsync" {
  base_url      = %q
  client_id     = %q
  client_secret = %q
  token_store {
    path = %q
  }
%s
}
`, baseURL, testClientID, testClientSecret, w.f.storeDir, strings.Join(extra, "\n"))
}

// faultBaseURL is the base URL of the faulted run: a closed loopback port for a refused dial, else the fake's.
func (w *faultWorld) faultBaseURL(t *testing.T, fc faultCase) string {
	t.Helper()
	if !fc.refused {
		return ""
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// arm queues the case's fault, if any.
func (w *faultWorld) arm(fc faultCase) {
	if fc.inject != nil {
		fc.inject(w)
	}
}

func faultEphemeralConfig(block string) string {
	return block + `
variable "seed" {
  type      = string
  sensitive = true
}

ephemeral "bipsync_access_token" "t" {
  refresh_token = var.seed
}

provider "echo" {
  data = ephemeral.bipsync_access_token.t
}

resource "echo" "t" {}
`
}

func faultGrantConfig(block string) string {
	return block + `
variable "seed" {
  type      = string
  sensitive = true
  ephemeral = true
}

resource "bipsync_refresh_grant" "g" {
  refresh_token_wo         = var.seed
  refresh_token_wo_version = 1
}
`
}
