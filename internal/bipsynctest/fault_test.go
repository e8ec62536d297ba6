package bipsynctest_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// TestFaults_answeredInstead: faults that answer in place of the exchange consume nothing, and the next
// request gets the real answer.
func TestFaults_answeredInstead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		fault  bipsynctest.Fault
		status int
		check  func(t *testing.T, r response)
	}{
		{name: "status with league body and Retry-After",
			fault:  bipsynctest.Fault{Kind: bipsynctest.FaultStatus, Status: 503, Header: http.Header{"Retry-After": {"7"}}},
			status: 503,
			check: func(t *testing.T, r response) {
				if want := `{"error":"service_unavailable","error_description":"Service Unavailable"}`; r.body != want {
					t.Errorf("body: got %s; want %s", r.body, want)
				}
				if got := r.header.Get("Retry-After"); got != "7" {
					t.Errorf("Retry-After: got %q; want 7", got)
				}
				if got := r.header.Get("Content-Type"); got != "application/json" {
					t.Errorf("Content-Type: got %q; want application/json", got)
				}
			}},
		{name: "status 500 defaults to league's server_error",
			fault:  bipsynctest.Fault{Kind: bipsynctest.FaultStatus},
			status: 500,
			check: func(t *testing.T, r response) {
				want := `{"error":"server_error","error_description":"The authorization server encountered an unexpected condition which prevented it from fulfilling the request: An unexpected error has occurred"}`
				if r.body != want {
					t.Errorf("body: got %s; want %s", r.body, want)
				}
			}},
		{name: "status with literal body",
			fault: bipsynctest.Fault{Kind: bipsynctest.FaultStatus, Status: 200,
				Body: `{"token_type":"Bearer","expires_in":"3600","access_token":"x","refresh_token":"y"}`},
			status: 200,
			check: func(t *testing.T, r response) {
				if !strings.Contains(r.body, `"expires_in":"3600"`) {
					t.Errorf("body: got %s; want the literal body", r.body)
				}
			}},
		{name: "HTML 200",
			fault:  bipsynctest.Fault{Kind: bipsynctest.FaultNonJSON200},
			status: 200,
			check: func(t *testing.T, r response) {
				if !strings.HasPrefix(r.body, "<!DOCTYPE html>") || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
					t.Errorf("got %s %q; want an HTML page", r.header.Get("Content-Type"), r.body)
				}
			}},
		{name: "huge body",
			fault:  bipsynctest.Fault{Kind: bipsynctest.FaultHugeBody},
			status: 200,
			check: func(t *testing.T, r response) {
				if len(r.body) <= 1<<20 || !strings.HasPrefix(r.body, `{"token_type":"Bearer","expires_in":3600,"access_token":"`) || !json.Valid([]byte(r.body)) {
					t.Errorf("got %d bytes starting %.60q; want valid token-shaped JSON over 1 MiB", len(r.body), r.body)
				}
			}},
		{name: "redirect",
			fault:  bipsynctest.Fault{Kind: bipsynctest.FaultRedirect, Location: "https://elsewhere.invalid/token"},
			status: 307,
			check: func(t *testing.T, r response) {
				if got := r.header.Get("Location"); got != "https://elsewhere.invalid/token" {
					t.Errorf("Location: got %q; want the injected one", got)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, bipsynctest.Options{})
			f.srv.InjectFault(tt.fault)
			r := f.do(reqSpec{body: refreshForm("rt")})
			if r.status != tt.status {
				t.Errorf("status: got %d; want %d", r.status, tt.status)
			}
			tt.check(t, r)
			if s := f.srv.Stats(); s.FaultsInjected != 1 || s.RefreshExchanges != 0 || s.Errors != 0 {
				t.Errorf("stats: got %+v; want 1 fault, no exchange, no error", s)
			}
			log := f.srv.Requests()
			if last := log[len(log)-1]; last.Fault != tt.fault.Kind.String() || last.Status != tt.status {
				t.Errorf("log: got fault %q status %d; want %q %d", last.Fault, last.Status, tt.fault.Kind, tt.status)
			}
			f.refresh("rt", "") // nothing was consumed, and the fault is used up
		})
	}
}

// TestFaults_noAnswer: the client gets no response; whether the chain rotated depends on the fault.
func TestFaults_noAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fault   bipsynctest.Fault
		timeout time.Duration
		rotated bool
	}{
		{name: "close before processing", fault: bipsynctest.Fault{Kind: bipsynctest.FaultCloseBeforeProcessing}},
		{name: "drop after processing", fault: bipsynctest.Fault{Kind: bipsynctest.FaultDropAfterProcessing}, rotated: true},
		{name: "delay beyond the client timeout", fault: bipsynctest.Fault{Kind: bipsynctest.FaultDelay, Delay: time.Minute},
			timeout: 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, bipsynctest.Options{})
			f.srv.InjectFault(tt.fault)
			client := *f.client
			if tt.timeout > 0 {
				client.Timeout = tt.timeout
			}
			resp, err := client.Do(f.request(reqSpec{body: refreshForm("rt")}))
			if err == nil {
				resp.Body.Close()
				t.Fatalf("got %s; want no response", resp.Status)
			}
			if got := f.srv.RefreshTokenLive(f.tok["rt"]); got == tt.rotated {
				t.Errorf("old refresh token live: got %v; want %v", got, !tt.rotated)
			}
			wantExchanges := 0
			if tt.rotated {
				wantExchanges = 1
			}
			if got := f.srv.Stats().RefreshExchanges; got != wantExchanges {
				t.Errorf("RefreshExchanges: got %d; want %d", got, wantExchanges)
			}
			// The fault is used up: the next request is answered.
			r := f.do(reqSpec{body: refreshForm("rt")})
			switch {
			case tt.rotated && r.body != eRT("Token has been revoked"):
				t.Errorf("retry with the consumed token: got %d %s; want %s", r.status, r.body, eRT("Token has been revoked"))
			case !tt.rotated && !successRT.MatchString(r.body):
				t.Errorf("retry with the untouched token: got %d %s; want S-RT", r.status, r.body)
			}
		})
	}
}

// TestFaults_delayThenProcess: a delay shorter than the client's patience only slows the answer.
func TestFaults_delayThenProcess(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultDelay, Delay: 20 * time.Millisecond})
	f.refresh("rt", "")
	if s := f.srv.Stats(); s.RefreshExchanges != 1 || s.FaultsInjected != 1 {
		t.Errorf("stats: got %+v; want one exchange and one fault", s)
	}
}

// TestFaults_missingAccessToken: the exchange rotates the chain, but the answer carries no tokens.
func TestFaults_missingAccessToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultMissingAccessToken200})
	r := f.do(reqSpec{body: refreshForm("rt")})
	if r.status != 200 || r.body != `{"token_type":"Bearer","expires_in":3600}` {
		t.Errorf("got %d %s; want 200 without tokens", r.status, r.body)
	}
	checkSuccessHeaders(t, r.header)
	if f.srv.RefreshTokenLive(f.tok["rt"]) || f.srv.Stats().RefreshExchanges != 1 {
		t.Error("the exchange did not rotate the chain")
	}

	// A request that fails is answered with its error.
	f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultMissingAccessToken200})
	if r := f.do(reqSpec{body: refreshForm("rt")}); r.body != eRT("Token has been revoked") {
		t.Errorf("failing request: got %s; want %s", r.body, eRT("Token has been revoked"))
	}
}

// TestFaults_queue: faults are consumed one per token request, in order; the protected endpoint takes none.
func TestFaults_queue(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	f.srv.InjectFaults(2, bipsynctest.Fault{Kind: bipsynctest.FaultStatus, Status: 429})
	f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultStatus, Status: 503})
	f.me("whatever.x.y")
	var got []int
	for range 4 {
		got = append(got, f.do(reqSpec{body: refreshForm("rtRead")}).status)
	}
	if want := []int{429, 429, 503, 200}; !slices.Equal(got, want) {
		t.Errorf("statuses: got %v; want %v", got, want)
	}
}

// TestFaults_redirectDefaultsToTokenEndpoint: a client that follows the redirect makes a real exchange.
func TestFaults_redirectDefaultsToTokenEndpoint(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultRedirect})
	following := &http.Client{Transport: f.client.Transport, Timeout: 10 * time.Second}
	resp, err := following.Do(f.request(reqSpec{body: refreshForm("rt")}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s := f.srv.Stats(); resp.StatusCode != 200 || s.RefreshExchanges != 1 || s.TokenRequests != 2 {
		t.Errorf("got %d with %+v; want the followed redirect to exchange once", resp.StatusCode, s)
	}
}

// TestServer_startTLS: a client trusting only the system roots fails the handshake before sending anything.
func TestServer_startTLS(t *testing.T) {
	t.Parallel()
	srv := bipsynctest.NewServer(bipsynctest.Options{})
	srv.AddClient("c", "s")
	url := srv.StartTLS()
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("URL: got %s; want https on 127.0.0.1", url)
	}
	body := "grant_type=client_credentials&client_id=c&client_secret=s"
	post := func(c *http.Client) (*http.Response, error) {
		return c.Post(url+bipsynctest.TokenPath, "application/x-www-form-urlencoded", strings.NewReader(body))
	}
	untrusting := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	if resp, err := post(untrusting); err == nil {
		resp.Body.Close()
		t.Fatalf("got %s; want a certificate error", resp.Status)
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("error: got %v; want a certificate error", err)
	}
	if n := srv.Stats().TokenRequests; n != 0 {
		t.Errorf("TokenRequests after a failed handshake: got %d; want 0", n)
	}

	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	resp, err := post(trusting)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !successCC.Match(b) {
		t.Errorf("trusting client: got %d %s; want 200 S-CC", resp.StatusCode, b)
	}
}
