package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/echoprovider"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

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
}

// faultWorld is one test case's fake server and clock, and a host that must never see a request.
type faultWorld struct {
	f    *fixture
	trap *httptest.Server
	hits atomic.Int64
}

const faultFollowUp = "the next run"

// League 9.4.1 error bodies (league-behaviour.md §2), and league 8's form of a refused refresh token.
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

// summaryWith matches a diagnostic summary followed, anywhere later, by each of the detail phrases.
func summaryWith(summary string, details ...string) *regexp.Regexp {
	parts := []string{words(summary).String()}
	for _, d := range details {
		parts = append(parts, words(d).String())
	}
	return regexp.MustCompile(`(?s)` + strings.Join(parts, `.*`))
}

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
		{name: "league invalid_grant: Token has been revoked", inject: league(400, bodyRevoked), requests: 1,
			want: summaryWith(summaryReauth, "has been revoked", "Hint: Token has been revoked")},
		{name: "league invalid_grant: Token has expired", inject: league(400, bodyExpired), requests: 1,
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
		{name: "league 8: 401 invalid_request, refresh token invalid", inject: league(401, bodyLeague8), requests: 1,
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

// faultResult is what one test case observed, for the table.
type faultResult struct {
	outcome string
	chain   string
	failed  bool
}

// newFaultWorld is newFixture, over https when useTLS is set, plus a trap host for redirects.
func newFaultWorld(t *testing.T, useTLS bool) *faultWorld {
	t.Helper()
	accPreCheck(t)
	clock := bipsynctest.NewClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	srv := bipsynctest.NewServer(bipsynctest.Options{Now: clock.Now})
	srv.AddClient(testClientID, testClientSecret)
	var url string
	if useTLS {
		url = srv.StartTLS()
	} else {
		url = srv.Start()
	}
	t.Cleanup(srv.Close)
	w := &faultWorld{f: &fixture{t: t, clock: clock, server: srv, baseURL: url, storeDir: t.TempDir()}}
	w.f.ledger = exchangeLedger{t: t, server: srv}
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
	opts := Options{Now: w.f.clock.Now, Sleep: func(context.Context, time.Duration) error { return nil }}
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

// requestMarks remembers where each step's token requests start in the fake's log.
type requestMarks struct {
	mu              sync.Mutex
	fault, followUp int
}

func (m *requestMarks) set(dst *int, f *fixture) {
	m.mu.Lock()
	defer m.mu.Unlock()
	*dst = len(f.server.Requests())
}

// refreshRequests returns the refresh-grant requests at the token endpoint, oldest first.
func refreshRequests(log []bipsynctest.LoggedRequest) []bipsynctest.LoggedRequest {
	var out []bipsynctest.LoggedRequest
	for _, r := range log {
		if r.Path == bipsynctest.TokenPath && r.GrantType == "refresh_token" {
			out = append(out, r)
		}
	}
	return out
}

// consumedBy tells whether the fake consumed the refresh token of r: it processed the request and issued a new pair,
// whether or not the answer reached the client.
func consumedBy(r bipsynctest.LoggedRequest) bool {
	if r.Error != "" {
		return false
	}
	switch r.Fault {
	case bipsynctest.FaultStatus.String(), bipsynctest.FaultCloseBeforeProcessing.String(), bipsynctest.FaultNonJSON200.String(),
		bipsynctest.FaultHugeBody.String(), bipsynctest.FaultRedirect.String():
		return false // answered in place of processing
	case bipsynctest.FaultDropAfterProcessing.String():
		return true // processed; the connection was closed instead of answering
	}
	return r.Status == http.StatusOK
}

// replays returns the log indexes (in the full log) of requests that presented a refresh token the fake had already
// consumed.
func replays(log []bipsynctest.LoggedRequest) []int {
	consumed := map[string]bool{}
	var out []int
	for i, r := range log {
		if r.Path != bipsynctest.TokenPath || r.GrantType != "refresh_token" || r.RefreshToken == "" {
			continue
		}
		if consumed[r.RefreshToken] {
			out = append(out, i)
		}
		if consumedBy(r) {
			consumed[r.RefreshToken] = true
		}
	}
	return out
}

// TestAccFaultMatrix runs every fault against the ephemeral resource and the grant, and logs the outcome table.
func TestAccFaultMatrix(t *testing.T) {
	t.Parallel()
	accPreCheck(t)
	cases := faultCases()
	var mu sync.Mutex
	results := map[string]*faultResult{}
	t.Run("faults", func(t *testing.T) {
		for _, fc := range cases {
			for _, kind := range []string{"ephemeral", "grant"} {
				t.Run(fc.name+"/"+kind, func(t *testing.T) {
					t.Parallel()
					res := &faultResult{outcome: describeOutcome(fc, fc.requests), chain: expectedChain(fc)}
					mu.Lock()
					results[fc.name+"/"+kind] = res
					mu.Unlock()
					// resource.UnitTest ends a failing test with t.FailNow: record the failure on the way out.
					defer func() { res.failed = t.Failed() }()
					if kind == "ephemeral" {
						runEphemeralFault(t, fc, res)
					} else {
						runGrantFault(t, fc, res)
					}
				})
			}
		}
	})

	var b strings.Builder
	b.WriteString("\n| fault | ephemeral outcome | grant outcome | chain intact |\n|---|---|---|---|\n")
	for _, fc := range cases {
		e, g := results[fc.name+"/ephemeral"], results[fc.name+"/grant"]
		if e == nil || g == nil {
			continue
		}
		chain := e.chain
		if g.chain != e.chain {
			chain = "ephemeral: " + e.chain + "; grant: " + g.chain
		}
		if e.failed || g.failed {
			chain += " (TEST FAILED)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", fc.name, e.outcome, g.outcome, chain)
	}
	t.Logf("fault matrix: %d faults × 2 consumers%s", len(cases), b.String())
}

// describeOutcome is the table's outcome cell.
func describeOutcome(fc faultCase, requests int) string {
	plural := func(n int) string {
		if n == 1 {
			return "1 request"
		}
		return fmt.Sprintf("%d requests", n)
	}
	if fc.want == nil {
		return "retried, succeeded (" + plural(requests) + ")"
	}
	summary := fc.want.String()
	for _, s := range []string{summaryUnavailable, summaryCertificate, summaryOutcomeUnknown, summaryReauth, summaryInvalidClient, summaryRejected} {
		if strings.Contains(summary, words(s).String()) {
			summary = s
			break
		}
	}
	if requests == 0 {
		return summary + " (nothing reached the server)"
	}
	return summary + " (" + plural(requests) + ")"
}

// expectedChain is the table's chain cell.
func expectedChain(fc faultCase) string {
	if fc.consumed {
		return "lost (" + fc.lostBecause + "): " + faultFollowUp + " says " + summaryReauth
	}
	return "intact: " + faultFollowUp + " succeeded"
}

// checkFaultLog asserts the request counts of the faulted step and that no consumed refresh token was sent again,
// except by the follow-up run of a chain the fault consumed (the honest "Token has been revoked").
func checkFaultLog(t *testing.T, fc faultCase, w *faultWorld, marks *requestMarks, res *faultResult) {
	t.Helper()
	log := w.f.server.Requests()
	marks.mu.Lock()
	from, to := marks.fault, marks.followUp
	marks.mu.Unlock()
	faulted := refreshRequests(log[from:to])
	res.outcome = describeOutcome(fc, len(faulted))
	if len(faulted) != fc.requests {
		t.Errorf("token requests in the faulted run: got %d; want %d", len(faulted), fc.requests)
	}
	again := replays(log)
	switch {
	case !fc.consumed && len(again) != 0:
		t.Errorf("refresh tokens sent again after the server consumed them: %d requests; want none", len(again))
	case fc.consumed && (len(again) != 1 || again[0] < to):
		t.Errorf("replays of the consumed refresh token: got log indexes %v (follow-up run starts at %d); want exactly one, "+
			"in the follow-up run", again, to)
	}
	if n := w.hits.Load(); n != 0 {
		t.Errorf("requests at the redirect target: got %d; want 0 (redirects are never followed)", n)
	}
}

// rotationDelay puts the first exchange's access token inside both consumers' renewal margin (min_validity and
// rotate_before, 15 minutes of a 1-hour token), so the next run exchanges the chain again.
const rotationDelay = 50 * time.Minute

// runEphemeralFault opens the ephemeral token in plan-only runs: a plan opens it (and exchanges) as an apply would,
// and without state there is nothing to destroy, which keeps the matrix fast.
func runEphemeralFault(t *testing.T, fc faultCase, res *faultResult) {
	w := newFaultWorld(t, fc.tls)
	f := w.f
	seed := f.seed()
	vars := config.Variables{"seed": config.StringVariable(seed)}
	good := faultEphemeralConfig(w.providerBlock("", fc.extra))
	var marks requestMarks
	var steps []resource.TestStep
	var firstHead string
	if fc.rotation {
		steps = append(steps, resource.TestStep{
			Config:                   good,
			ConfigVariables:          vars,
			ProtoV6ProviderFactories: w.factories(true),
			PlanOnly:                 true,
			ExpectNonEmptyPlan:       true,
		})
	}
	faulted := resource.TestStep{
		PreConfig: func() {
			if fc.rotation {
				f.ledger.expect(1, "first exchange")()
				firstHead = f.head(seed)
				f.clock.Advance(rotationDelay)
			}
			f.ledger.reset()
			marks.set(&marks.fault, f)
			w.arm(fc)
		},
		Config:                   faultEphemeralConfig(w.providerBlock(w.faultBaseURL(t, fc), fc.extra)),
		ConfigVariables:          vars,
		ProtoV6ProviderFactories: w.factories(false),
		PlanOnly:                 true,
		ExpectNonEmptyPlan:       true,
		ExpectError:              fc.want,
	}
	faultExchanges, followExchanges := 0, 1
	if fc.consumed || fc.want == nil {
		faultExchanges = 1
	}
	if fc.want == nil {
		followExchanges = 0 // the token the faulted run got is reused
	}
	followUp := resource.TestStep{
		PreConfig: func() {
			f.ledger.expect(faultExchanges, "faulted run")()
			if fc.rotation && fc.want != nil {
				// A failed exchange leaves the record alone: the store still holds the head it held before.
				if head := f.head(seed); head != firstHead {
					t.Error("chain head in the store after the failed rotation: changed; want the head from before")
				}
			}
			marks.set(&marks.followUp, f)
		},
		Config:                   good,
		ConfigVariables:          vars,
		ProtoV6ProviderFactories: w.factories(true),
		PlanOnly:                 true,
		ExpectNonEmptyPlan:       true,
	}
	if fc.consumed {
		followUp.ExpectError = summaryWith(summaryReauth, "Hint: Token has been revoked")
		followExchanges = 0
	}
	steps = append(steps, faulted, followUp)
	resource.UnitTest(t, resource.TestCase{Steps: steps})
	f.ledger.expect(followExchanges, faultFollowUp)()
	if !fc.consumed {
		// The chain goes on from the head the store holds.
		if head := f.head(seed); head == seed || head == firstHead || !f.server.RefreshTokenLive(head) {
			t.Error("chain head in the store after the next run: not a new head, or not live at the fake; want the live new head")
		}
	}
	checkFaultLog(t, fc, w, &marks, res)
}

// runGrantFault meets the fault when the grant is created (the seed's exchange), or for rotation rows when an apply
// rotates the chain kept in state.
func runGrantFault(t *testing.T, fc faultCase, res *faultResult) {
	w := newFaultWorld(t, fc.tls)
	f := w.f
	vars := config.Variables{"seed": config.StringVariable(f.seed())}
	good := faultGrantConfig(w.providerBlock("", fc.extra))
	var marks requestMarks
	liveAccess := statecheck.ExpectKnownValue(grantAddr, tfjsonpath.New("access_token"), f.liveAccessToken())
	liveHead := statecheck.ExpectKnownValue(grantAddr, tfjsonpath.New("refresh_token"), f.liveRefreshToken())

	var steps []resource.TestStep
	if fc.rotation {
		steps = append(steps, resource.TestStep{
			Config:                   good,
			ConfigVariables:          vars,
			ProtoV6ProviderFactories: w.factories(true),
		})
	}
	faulted := resource.TestStep{
		PreConfig: func() {
			if fc.rotation {
				f.ledger.expect(1, "create")()
				f.clock.Advance(rotationDelay)
			}
			f.ledger.reset()
			marks.set(&marks.fault, f)
			w.arm(fc)
		},
		Config:                   faultGrantConfig(w.providerBlock(w.faultBaseURL(t, fc), fc.extra)),
		ConfigVariables:          vars,
		ProtoV6ProviderFactories: w.factories(false),
		ExpectError:              fc.want,
	}
	faultExchanges, followExchanges := 0, 1
	if fc.consumed || fc.want == nil {
		faultExchanges = 1
	}
	followUp := resource.TestStep{
		PreConfig: func() {
			f.ledger.expect(faultExchanges, "faulted run")()
			marks.set(&marks.followUp, f)
		},
		Config:                   good,
		ConfigVariables:          vars,
		ProtoV6ProviderFactories: w.factories(true),
		// After a failed rotation the prior state, whose head is still live, is what this run rotates.
		ConfigStateChecks: []statecheck.StateCheck{liveAccess, liveHead},
	}
	switch {
	case fc.consumed:
		followUp.ConfigStateChecks = nil
		followUp.ExpectError = summaryWith(summaryReauth, "Hint: Token has been revoked")
		followExchanges = 0
	case fc.want == nil:
		faulted.ConfigStateChecks = []statecheck.StateCheck{liveAccess, liveHead}
		followExchanges = 0 // exchanged in the faulted run; nothing is due
	}
	steps = append(steps, faulted, followUp)
	resource.UnitTest(t, resource.TestCase{Steps: steps})
	f.ledger.expect(followExchanges, faultFollowUp)()
	checkFaultLog(t, fc, w, &marks, res)
}

// TestAccFaultMatrix_newHeadWithoutAccessToken: the server rotated the chain and answered 200 with the new refresh
// token but no access token (a broken front end could do that). The answer arrived and carried the chain's only live
// head, so invariant 1 says it must be saved; the run may still fail for want of an access token, but the next run
// must go on from the saved head.
func TestAccFaultMatrix_newHeadWithoutAccessToken(t *testing.T) {
	t.Parallel()
	w := newFaultWorld(t, false)
	f := w.f
	seed := f.seed()
	vars := config.Variables{"seed": config.StringVariable(seed)}
	cfg := faultEphemeralConfig(w.providerBlock("", nil))
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: w.factories(true),
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					// What the server did: consume the seed and issue a new head, which the answer carries alone.
					next := f.seed()
					f.server.RevokeChain(seed)
					f.server.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultStatus, Status: http.StatusOK,
						Header: http.Header{"Content-Type": {"application/json; charset=UTF-8"}},
						Body:   `{"token_type":"Bearer","expires_in":3600,"refresh_token":"` + next + `"}`})
				},
				Config:             cfg,
				ConfigVariables:    vars,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
				ExpectError:        words(summaryIncomplete),
			},
			{
				Config:             cfg,
				ConfigVariables:    vars,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}
