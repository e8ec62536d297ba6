package bipsynctest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// TestReplay_reuseRevokesFamily: under replay detection, the reuse of a rotated refresh token is refused as revoked
// and revokes the whole family: the live head descended from it is then refused too, and the family's live access token
// is refused at the protected endpoint. Other chains, of the same client too, are untouched.
func TestReplay_reuseRevokesFamily(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{ReplayDetection: true})
	rt0 := f.tok["rt"]
	_, rt1 := f.refresh("rt", "")
	f.tok["rt1"] = rt1
	at2, rt2 := f.refresh("rt1", "")
	f.tok["rt2"] = rt2
	if n := f.srv.LiveRefreshTokens(rt0); n != 1 {
		t.Fatalf("before the reuse: %d live refresh tokens in the family; want 1", n)
	}

	if r := f.do(reqSpec{body: refreshForm("rt")}); r.status != http.StatusBadRequest || r.body != eRT("Token has been revoked") {
		t.Fatalf("reuse of the rotated seed: got %d %s; want 400 revoked", r.status, r.body)
	}
	if r := f.do(reqSpec{body: refreshForm("rt2")}); r.status != http.StatusBadRequest || r.body != eRT("Token has been revoked") {
		t.Errorf("the family's head after the reuse: got %d %s; want 400 revoked", r.status, r.body)
	}
	if r := f.me(at2); r.status != http.StatusUnauthorized || r.body != eAD("Access token has been revoked") {
		t.Errorf("the family's access token after the reuse: got %d %s; want 401 revoked", r.status, r.body)
	}
	for _, rt := range []string{rt0, rt1, rt2} {
		if n := f.srv.LiveRefreshTokens(rt); n != 0 {
			t.Errorf("after the reuse: %d live refresh tokens in the family; want 0", n)
		}
	}

	// Another chain of the same client goes on.
	f.refresh("rtRead", "")

	s := f.srv.Stats()
	// rt2's refusal is a reuse of a token that was never rotated: it revokes nothing more and is no replay.
	if s.RefreshAttempts != 5 || s.RefreshExchanges != 3 || s.RefreshRefused != 2 || s.RefreshRevoked != 2 || s.RefreshReplays != 1 {
		t.Errorf("stats: got %+v; want 5 attempts, 3 exchanges, 2 refused, 2 revoked, 1 replay", s)
	}
}

// TestReplay_offByDefault: without replay detection (league 9.4.1), the reuse of a rotated refresh token is refused the
// same way but the family lives on: its head and access token stay live.
func TestReplay_offByDefault(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	at1, rt1 := f.refresh("rt", "")
	if r := f.do(reqSpec{body: refreshForm("rt")}); r.status != http.StatusBadRequest || r.body != eRT("Token has been revoked") {
		t.Fatalf("reuse of the rotated seed: got %d %s; want 400 revoked", r.status, r.body)
	}
	if !f.srv.RefreshTokenLive(rt1) || f.srv.LiveRefreshTokens(rt1) != 1 {
		t.Error("without replay detection, a reuse revoked the family's head")
	}
	if r := f.me(at1); r.status != http.StatusOK {
		t.Errorf("the family's access token after the reuse: got %d %s; want 200", r.status, r.body)
	}
	if s := f.srv.Stats(); s.RefreshReplays != 0 || s.RefreshRevoked != 1 || s.RefreshRefused != 1 || s.RefreshAttempts != 2 {
		t.Errorf("stats: got %+v; want 2 attempts, 1 refused as revoked, no replay", s)
	}
}

// TestReplay_simultaneousExchanges: under replay detection, simultaneous exchanges of one head give one success and
// refusals, and the refusals revoke the family: the winner's new pair is dead before anyone uses it.
func TestReplay_simultaneousExchanges(t *testing.T) {
	t.Parallel()
	const n = 4
	f := newFixture(t, bipsynctest.Options{ReplayDetection: true})
	checkOneWinnerFamilyDead(t, f, f.exchangeAtOnce("rt", n))
	if s := f.srv.Stats(); s.RefreshExchanges != 1 || s.RefreshReplays != n-1 || s.RefreshForked != 0 {
		t.Errorf("stats: got %+v; want 1 exchange, %d replays, no fork", s, n-1)
	}
}

// TestReplay_withRevokePause: with a revoke pause as well, simultaneous exchanges all pass their checks, but only the
// first to rotate succeeds: the others find the token rotated when their pause ends, which is a reuse, and the family
// is revoked. The chain never forks.
func TestReplay_withRevokePause(t *testing.T) {
	t.Parallel()
	const n = 3
	f := newFixture(t, bipsynctest.Options{ReplayDetection: true, RevokePause: 300 * time.Millisecond})
	checkOneWinnerFamilyDead(t, f, f.exchangeAtOnce("rt", n))
	if s := f.srv.Stats(); s.RefreshExchanges != 1 || s.RefreshForked != 0 || s.RefreshReplays != n-1 || s.RefreshRefused != n-1 {
		t.Errorf("stats: got %+v; want 1 exchange, no fork, %d replays refused", s, n-1)
	}
}

// checkOneWinnerFamilyDead checks answers to simultaneous exchanges of the fixture's rt under replay detection.
func checkOneWinnerFamilyDead(t *testing.T, f *fixture, got []response) {
	t.Helper()
	var at, rt string
	refused := 0
	for i, r := range got {
		if m := successRT.FindStringSubmatch(r.body); r.status == http.StatusOK && m != nil {
			at, rt = m[1], m[2]
			continue
		}
		if r.status != http.StatusBadRequest || r.body != eRT("Token has been revoked") {
			t.Errorf("exchange %d: got %d %s; want 200 S-RT or 400 revoked", i, r.status, r.body)
		}
		refused++
	}
	if rt == "" || refused != len(got)-1 {
		t.Fatalf("%d of %d exchanges refused, a winner: %t; want exactly one winner", refused, len(got), rt != "")
	}
	if f.srv.RefreshTokenLive(rt) || f.srv.LiveRefreshTokens(rt) != 0 {
		t.Error("the winner's refresh token is live; want the family revoked by the reuses")
	}
	if r := f.me(at); r.status != http.StatusUnauthorized || r.body != eAD("Access token has been revoked") {
		t.Errorf("the winner's access token: got %d %s; want 401 revoked", r.status, r.body)
	}
}

// TestReplay_setAtRunTime: SetReplayDetection switches the mode for later exchanges; a reuse before it revoked nothing.
func TestReplay_setAtRunTime(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	_, rt1 := f.refresh("rt", "")
	f.do(reqSpec{body: refreshForm("rt")})
	if f.srv.LiveRefreshTokens(rt1) != 1 {
		t.Fatal("a reuse with replay detection off revoked the family")
	}
	f.srv.SetReplayDetection(true)
	f.do(reqSpec{body: refreshForm("rt")})
	if f.srv.LiveRefreshTokens(rt1) != 0 {
		t.Error("a reuse after SetReplayDetection(true) left the family live")
	}
}

// TestReplay_expiredRevokesNothing: league checks expiry before revocation, so the reuse of a rotated token that has
// expired is "Token has expired" and no replay: the family lives on.
func TestReplay_expiredRevokesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{ReplayDetection: true, RefreshTokenTTL: time.Hour})
	_, rt1 := f.refresh("rt", "")
	f.clock.Advance(50 * time.Minute)
	f.tok["rt1"] = rt1
	_, rt2 := f.refresh("rt1", "")    // a fresh hour for the head
	f.clock.Advance(30 * time.Minute) // the seed, rotated, is past its hour now
	if r := f.do(reqSpec{body: refreshForm("rt")}); r.status != http.StatusBadRequest || r.body != eRT("Token has expired") {
		t.Fatalf("reuse of the expired seed: got %d %s; want 400 expired", r.status, r.body)
	}
	if !f.srv.RefreshTokenLive(rt2) {
		t.Error("the reuse of an expired token revoked the family")
	}
	if s := f.srv.Stats(); s.RefreshExpired != 1 || s.RefreshReplays != 0 || s.RefreshRefused != 1 {
		t.Errorf("stats: got %+v; want 1 refused as expired, no replay", s)
	}
}

// TestStats_refusedByReason: every refresh request counts as an attempt, and each refusal counts under its reason.
func TestStats_refusedByReason(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{RefreshTokenTTL: time.Hour})
	f.tok["garbage"] = "def50200abc"
	f.do(reqSpec{body: refreshForm("garbage")})                        // cannot decrypt
	f.do(reqSpec{body: refreshForm("rtConf2")})                        // not linked to client
	f.do(reqSpec{body: refreshForm("rt") + "&scope=read+team_abc"})    // scope beyond the grant
	f.do(reqSpec{body: "grant_type=refresh_token&client_id=cli-conf"}) // secret missing
	f.refresh("rt", "")
	f.do(reqSpec{body: refreshForm("rt")}) // revoked
	f.clock.Advance(2 * time.Hour)
	f.do(reqSpec{body: refreshForm("rtRead")}) // expired
	f.do(reqSpec{body: "grant_type=client_credentials&client_id=cli-conf&client_secret=sec-conf"})
	s := f.srv.Stats()
	want := bipsynctest.Stats{TokenRequests: 8, RefreshAttempts: 7, RefreshExchanges: 1, ClientCredentials: 1, Errors: 6,
		RefreshRefused: 6, RefreshInvalid: 2, RefreshRevoked: 1, RefreshExpired: 1}
	if s != want {
		t.Errorf("stats: got %+v; want %+v", s, want)
	}
}

// TestStats_liveRefreshTokensOfAFork: a forked family holds one live refresh token per fork.
func TestStats_liveRefreshTokensOfAFork(t *testing.T) {
	t.Parallel()
	const n = 3
	f := newFixture(t, bipsynctest.Options{RevokePause: 300 * time.Millisecond})
	rt0 := f.tok["rt"]
	f.exchangeAtOnce("rt", n)
	if got := f.srv.LiveRefreshTokens(rt0); got != n {
		t.Errorf("after %d simultaneous exchanges in fork mode: %d live refresh tokens in the family; want %d", n, got, n)
	}
	if got := f.srv.LiveRefreshTokens("def50200unknown"); got != 0 {
		t.Errorf("a token the server never issued: %d live refresh tokens; want 0", got)
	}
}

// TestServer_adminReplayDetection: POST /_fake/replay-detection switches replay detection on and off for a fake in
// another process.
func TestServer_adminReplayDetection(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{Admin: true})
	post := func(query string) response {
		return f.do(reqSpec{path: bipsynctest.AdminPrefix + "replay-detection", query: query, ct: "application/x-www-form-urlencoded"})
	}
	for _, bad := range []string{"on=maybe", ""} {
		if r := post(bad); r.status != http.StatusBadRequest {
			t.Errorf("replay-detection?%s: got %d %s; want 400", bad, r.status, r.body)
		}
	}
	if r := post("on=true"); r.status != http.StatusOK || r.body != "{\"replay_detection\":true}\n" {
		t.Fatalf("replay-detection?on=true: got %d %q; want 200 {\"replay_detection\":true}", r.status, r.body)
	}
	_, rt1 := f.refresh("rt", "")
	f.do(reqSpec{body: refreshForm("rt")})
	if f.srv.LiveRefreshTokens(rt1) != 0 {
		t.Error("with replay detection on: a reuse left the chain live")
	}

	if r := post("on=false"); r.status != http.StatusOK || r.body != "{\"replay_detection\":false}\n" {
		t.Fatalf("replay-detection?on=false: got %d %q; want 200 {\"replay_detection\":false}", r.status, r.body)
	}
	_, rt2 := f.refresh("rtRead", "")
	f.do(reqSpec{body: refreshForm("rtRead")})
	if f.srv.LiveRefreshTokens(rt2) != 1 {
		t.Error("with replay detection off: a reuse revoked the chain")
	}
}
