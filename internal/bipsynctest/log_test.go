package bipsynctest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// TestServer_statsAndLog: every counter moves for its own reason, and the request log names secrets only by
// tag.
func TestServer_statsAndLog(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	at, _ := f.refresh("rt", "")           // an exchange
	f.do(reqSpec{body: refreshForm("rt")}) // an error: reuse, refused as revoked
	// Two client_credentials grants, the secret once from HTTP Basic and once from the body.
	f.do(reqSpec{body: "grant_type=client_credentials&client_id=cli-conf", basic: []string{"cli-conf", "sec-conf"}})
	f.do(reqSpec{body: "grant_type=client_credentials&client_id=cli-conf&client_secret=sec-conf"})
	f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultStatus, Status: 503})
	f.do(reqSpec{body: refreshForm("rtRead")}) // a fault
	f.me(at)                                   // protected OK
	f.me("garbage")                            // protected denied

	want := bipsynctest.Stats{TokenRequests: 5, RefreshExchanges: 1, ClientCredentials: 2, Errors: 1,
		FaultsInjected: 1, ProtectedOK: 1, ProtectedDenied: 1, RefreshRevoked: 1,
		// Three refresh requests were sent, the faulted one too; the server itself refused one.
		RefreshAttempts: 3, RefreshRefused: 1}
	if got := f.srv.Stats(); got != want {
		t.Errorf("stats:\ngot  %+v\nwant %+v", got, want)
	}

	log := f.srv.Requests()
	if len(log) != 7 {
		t.Fatalf("request log: got %d entries; want 7", len(log))
	}
	first := log[0]
	if first.Method != "POST" || first.Path != bipsynctest.TokenPath || first.GrantType != "refresh_token" ||
		first.ClientID != "cli-conf" || first.Status != 200 || !first.Time.Equal(start) ||
		first.ContentType != "application/x-www-form-urlencoded" {
		t.Errorf("first entry: got %+v; want the refresh exchange", first)
	}
	tag := regexp.MustCompile(`^(rt|cs)#[0-9]+$`)
	if !tag.MatchString(first.RefreshToken) || !tag.MatchString(first.ClientSecret) {
		t.Errorf("first entry tags: got %q and %q; want rt#N and cs#N", first.RefreshToken, first.ClientSecret)
	}
	if second := log[1]; second.RefreshToken != first.RefreshToken || second.Error != "invalid_grant" ||
		second.Hint != "Token has been revoked" || second.Status != 400 {
		t.Errorf("second entry: got %+v; want the reuse of %s answered invalid_grant", second, first.RefreshToken)
	}
	if third := log[2]; third.ClientSecret != first.ClientSecret || !strings.HasPrefix(third.Authorization, "Basic basic#") {
		t.Errorf("third entry: got secret %q auth %q; want %s from Basic and a Basic tag", third.ClientSecret, third.Authorization, first.ClientSecret)
	}
	if fault := log[4]; fault.Fault != "status" || fault.Status != 503 {
		t.Errorf("fault entry: got %+v; want fault status 503", fault)
	}
	if me := log[5]; me.Path != bipsynctest.ProtectedPath || me.Status != 200 || !strings.HasPrefix(me.Authorization, "Bearer at#") {
		t.Errorf("protected entry: got %+v; want 200 with a Bearer tag", me)
	}

	secrets := f.srv.SeenSecrets()
	for _, s := range []string{"sec-conf", "sec-conf2", f.tok["rt"], f.tok["rtPub"], at} {
		if !slices.Contains(secrets, s) {
			t.Errorf("SeenSecrets lacks a secret of length %d", len(s))
		}
	}
	dump := fmt.Sprintf("%+v %#v", log, log)
	for _, s := range secrets {
		if strings.Contains(dump, s) {
			t.Errorf("request log contains a secret of length %d", len(s))
		}
	}

	f.srv.ResetStats()
	if got := f.srv.Stats(); got != (bipsynctest.Stats{}) {
		t.Errorf("after ResetStats: got %+v; want zero", got)
	}
}

// TestServer_admin: the demo endpoints seed, report, revoke and move the clock, and exist only when asked for.
func TestServer_admin(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{Admin: true})
	post := func(path string) response {
		return f.do(reqSpec{path: path, ct: "application/x-www-form-urlencoded"})
	}

	r := post(bipsynctest.AdminPrefix + "seed?client_id=cli-conf&scope=read+write")
	var seeded struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal([]byte(r.body), &seeded); err != nil || !f.srv.RefreshTokenLive(seeded.RefreshToken) {
		t.Fatalf("seed: got %d %s; want a live refresh token", r.status, r.body)
	}
	f.tok["seeded"] = seeded.RefreshToken
	at, _ := f.refresh("seeded", "")
	if got := jwtScopes(t, at); !slices.Equal(got, []string{"read", "write"}) {
		t.Errorf("seeded scopes: got %q; want [read write]", got)
	}
	if r := post(bipsynctest.AdminPrefix + "seed?client_id=nobody"); r.status != 400 {
		t.Errorf("seed for an unknown client: got %d; want 400", r.status)
	}

	r = f.do(reqSpec{method: http.MethodGet, path: bipsynctest.AdminPrefix + "stats"})
	var stats bipsynctest.Stats
	if err := json.Unmarshal([]byte(r.body), &stats); err != nil || stats.RefreshExchanges != 1 || !strings.Contains(r.body, `"refresh_exchanges":1`) {
		t.Errorf("stats: got %s; want one exchange", r.body)
	}
	if r := post(bipsynctest.AdminPrefix + "reset-stats"); r.status != 204 || f.srv.Stats().RefreshExchanges != 0 {
		t.Errorf("reset-stats: got %d, stats %+v; want 204 and zero", r.status, f.srv.Stats())
	}

	if r := post(bipsynctest.AdminPrefix + "advance?d=90m"); r.status != 200 || !f.clock.Now().Equal(start.Add(90*time.Minute)) {
		t.Errorf("advance: got %d %s, clock %v; want the clock 90m on", r.status, r.body, f.clock.Now())
	}
	if r := post(bipsynctest.AdminPrefix + "advance?d=soon"); r.status != 400 {
		t.Errorf("advance with a bad duration: got %d; want 400", r.status)
	}

	if r := post(bipsynctest.AdminPrefix + "revoke-all"); r.status != 204 || f.srv.RefreshTokenLive(f.tok["rtRead"]) {
		t.Errorf("revoke-all: got %d; want 204 and every token revoked", r.status)
	}
	if r := f.do(reqSpec{method: http.MethodGet, path: bipsynctest.AdminPrefix + "revoke-all"}); r.status != 405 {
		t.Errorf("GET revoke-all: got %d; want 405", r.status)
	}
	if got := f.srv.Stats().TokenRequests; got != 0 {
		t.Errorf("TokenRequests since reset-stats: got %d; want 0 (admin calls are not token requests)", got)
	}

	t.Run("not mounted by default", func(t *testing.T) {
		t.Parallel()
		g := newFixture(t, bipsynctest.Options{})
		if r := g.do(reqSpec{path: bipsynctest.AdminPrefix + "seed?client_id=cli-conf", ct: "text/plain"}); r.status != 404 {
			t.Errorf("got %d; want 404", r.status)
		}
	})

	t.Run("advance needs a fake clock", func(t *testing.T) {
		t.Parallel()
		srv := bipsynctest.NewServer(bipsynctest.Options{Admin: true})
		g := &fixture{t: t, srv: srv, url: srv.Start(), client: http.DefaultClient}
		t.Cleanup(srv.Close)
		if r := g.do(reqSpec{path: bipsynctest.AdminPrefix + "advance?d=1h", ct: "text/plain"}); r.status != 409 {
			t.Errorf("got %d; want 409", r.status)
		}
	})
}
