package bipsynctest_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// TestRefresh_rotationRevokesPreviousPair: an exchange revokes the consumed refresh token and the access
// token issued with it (case 50), and nothing else.
func TestRefresh_rotationRevokesPreviousPair(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	at0, rt0 := f.srv.IssueTokenPair("cli-conf", []string{"read", "write"})
	otherAT, _ := f.srv.IssueTokenPair("cli-conf", []string{"read"})
	f.tok["rt0"] = rt0

	at1, rt1 := f.refresh("rt0", "")
	f.tok["rt1"] = rt1

	if r := f.me(at0); r.status != 401 || r.body != eAD("Access token has been revoked") {
		t.Errorf("old access token: got %d %s; want 401 %s", r.status, r.body, eAD("Access token has been revoked"))
	}
	if r := f.me(at1); r.status != 200 || r.body != `{"client_id":"cli-conf","scopes":["read","write"]}` {
		t.Errorf("new access token: got %d %s; want 200 with client and scopes", r.status, r.body)
	}
	if r := f.me(otherAT); r.status != 200 {
		t.Errorf("another chain's access token: got %d %s; want 200 (untouched)", r.status, r.body)
	}
	if r := f.do(reqSpec{body: refreshForm("rt0")}); r.status != 400 || r.body != eRT("Token has been revoked") {
		t.Errorf("old refresh token: got %d %s; want 400 %s", r.status, r.body, eRT("Token has been revoked"))
	}
	for name, tc := range map[string]struct {
		live bool
		got  bool
	}{
		"old refresh token": {false, f.srv.RefreshTokenLive(rt0)},
		"new refresh token": {true, f.srv.RefreshTokenLive(rt1)},
		"old access token":  {false, f.srv.AccessTokenLive(at0)},
		"new access token":  {true, f.srv.AccessTokenLive(at1)},
	} {
		if tc.got != tc.live {
			t.Errorf("%s live: got %v; want %v", name, tc.got, tc.live)
		}
	}
	// The rotated token keeps the chain going.
	if _, rt2 := f.refresh("rt1", ""); rt2 == rt1 {
		t.Error("second rotation returned the same refresh token")
	}
	if got := f.srv.Stats().RefreshExchanges; got != 2 {
		t.Errorf("RefreshExchanges: got %d; want 2", got)
	}
}

// TestRefresh_expiryOnFakeClock: a refresh token lives 30 days to the second, a rotated one gets a fresh
// 30 days, and expiry is reported before revocation.
func TestRefresh_expiryOnFakeClock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		advance time.Duration
		status  int
		body    string
	}{
		{name: "last second of the month", advance: 30 * 24 * time.Hour, status: 200},
		{name: "one second later", advance: 30*24*time.Hour + time.Second, status: 400, body: eRT("Token has expired")},
		{name: "31 days", advance: 31 * 24 * time.Hour, status: 400, body: eRT("Token has expired")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, bipsynctest.Options{})
			f.clock.Advance(tt.advance)
			r := f.do(reqSpec{body: refreshForm("rt")})
			if r.status != tt.status || (tt.body != "" && r.body != tt.body) {
				t.Errorf("got %d %s; want %d %s", r.status, r.body, tt.status, tt.body)
			}
			if got := f.srv.RefreshTokenLive(f.tok["rt"]); got != false {
				t.Errorf("RefreshTokenLive after the attempt: got %v; want false (consumed or expired)", got)
			}
		})
	}

	t.Run("rotation renews the month", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, bipsynctest.Options{})
		f.clock.Advance(20 * 24 * time.Hour)
		_, rt1 := f.refresh("rt", "")
		f.tok["rt1"] = rt1
		f.clock.Advance(20 * 24 * time.Hour) // 40 days after the seed, 20 after the rotation
		if !f.srv.RefreshTokenLive(rt1) {
			t.Fatal("rotated token expired with the seed's month; want a fresh month")
		}
		if f.srv.RefreshTokenLive(f.tok["rtRead"]) {
			t.Error("unrotated seed still live after 40 days")
		}
		f.refresh("rt1", "")
	})

	t.Run("expired and revoked chain says expired", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, bipsynctest.Options{})
		f.srv.RevokeChain(f.tok["rt"])
		if r := f.do(reqSpec{body: refreshForm("rt")}); r.body != eRT("Token has been revoked") {
			t.Errorf("revoked: got %s; want %s", r.body, eRT("Token has been revoked"))
		}
		f.clock.Advance(month)
		if r := f.do(reqSpec{body: refreshForm("rt")}); r.body != eRT("Token has expired") {
			t.Errorf("revoked and expired: got %s; want %s", r.body, eRT("Token has expired"))
		}
	})
}

// TestRefresh_scopeNarrowing: a subset narrows the new refresh token too (case 36), so the chain cannot
// widen again.
func TestRefresh_scopeNarrowing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	at1, rt1 := f.refresh("rt", "&scope=read")
	f.tok["rt1"] = rt1
	if r := f.me(at1); r.body != `{"client_id":"cli-conf","scopes":["read"]}` {
		t.Errorf("narrowed access token: got %s; want scopes [read]", r.body)
	}
	if r := f.do(reqSpec{body: refreshForm("rt1") + "&scope=read+write"}); r.status != 400 || r.body != eSCOPE("write") {
		t.Errorf("widening the narrowed chain: got %d %s; want 400 %s", r.status, r.body, eSCOPE("write"))
	}
	// The failed request consumed nothing: the narrowed chain still rotates, keeping [read].
	at2, _ := f.refresh("rt1", "")
	if got := jwtScopes(t, at2); len(got) != 1 || got[0] != "read" {
		t.Errorf("scopes after narrowing: got %q; want [read]", got)
	}
}

// TestRefresh_concurrentExchangesOfOneToken: exactly one of N simultaneous exchanges succeeds.
func TestRefresh_concurrentExchangesOfOneToken(t *testing.T) {
	t.Parallel()
	const n = 16
	f := newFixture(t, bipsynctest.Options{})
	var (
		wg    sync.WaitGroup
		ready = make(chan struct{})
		got   = make([]response, n)
	)
	for i := range n {
		req := f.request(reqSpec{body: refreshForm("rt")})
		wg.Go(func() {
			<-ready
			resp, err := f.client.Do(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			got[i] = response{status: resp.StatusCode, body: string(b)}
		})
	}
	close(ready)
	wg.Wait()
	ok, revoked := 0, 0
	for _, r := range got {
		switch {
		case r.status == 200 && successRT.MatchString(r.body):
			ok++
		case r.status == 400 && r.body == eRT("Token has been revoked"):
			revoked++
		default:
			t.Errorf("unexpected answer %d %s", r.status, r.body)
		}
	}
	if ok != 1 || revoked != n-1 {
		t.Errorf("got %d successes and %d revoked; want 1 and %d", ok, revoked, n-1)
	}
	if s := f.srv.Stats(); s.RefreshExchanges != 1 || s.TokenRequests != n || s.RefreshRevoked != n-1 || s.RefreshForked != 0 {
		t.Errorf("stats: got %+v; want 1 exchange of %d requests, %d refused as revoked, none forked", s, n, n-1)
	}
}

// TestTokenEndpoint_options: token_type casing, TTLs and the scopes the server knows.
func TestTokenEndpoint_options(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts bipsynctest.Options
		body string
		want *regexp.Regexp
	}{
		{name: "league Bearer by default", body: refreshForm("rt"),
			want: regexp.MustCompile(`^\{"token_type":"Bearer","expires_in":3600,"access_token":"eyJ[^"]+","refresh_token":"def50200[0-9a-f]+"\}$`)},
		{name: "lower-case bearer as Bipsync documents", opts: bipsynctest.Options{TokenType: "bearer"}, body: refreshForm("rt"),
			want: regexp.MustCompile(`^\{"token_type":"bearer","expires_in":3600,"access_token":"eyJ[^"]+","refresh_token":"def50200[0-9a-f]+"\}$`)},
		{name: "access TTL", opts: bipsynctest.Options{AccessTokenTTL: 90 * time.Second}, body: refreshForm("rt"),
			want: regexp.MustCompile(`^\{"token_type":"Bearer","expires_in":90,"access_token":"eyJ[^"]+","refresh_token":"def50200[0-9a-f]+"\}$`)},
		{name: "server scopes", opts: bipsynctest.Options{Scopes: []string{"read", "write", "rest_api:read"}},
			body: "grant_type=client_credentials&client_id=cli-conf&client_secret=sec-conf&scope=rest_api:read+team_abc",
			want: regexp.MustCompile("^" + regexp.QuoteMeta(eSCOPE("team_abc")) + "$")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tt.opts)
			if r := f.do(reqSpec{body: tt.body}); !tt.want.MatchString(r.body) {
				t.Errorf("got %d %s; want %s", r.status, r.body, tt.want)
			}
		})
	}

	t.Run("default scopes", func(t *testing.T) {
		t.Parallel()
		srv := bipsynctest.NewServer(bipsynctest.Options{})
		srv.AddClient("c", "s")
		f := &fixture{t: t, srv: srv, url: srv.Start(), client: http.DefaultClient}
		t.Cleanup(srv.Close)
		r := f.do(reqSpec{body: "grant_type=client_credentials&client_id=c&client_secret=s&scope=read+write+team_abc+rest_api:read+rest_api:write"})
		if r.status != 200 {
			t.Errorf("got %d %s; want 200 for every default scope", r.status, r.body)
		}
	})

	t.Run("refresh TTL", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, bipsynctest.Options{RefreshTokenTTL: time.Hour})
		f.clock.Advance(time.Hour + time.Second)
		if r := f.do(reqSpec{body: refreshForm("rt")}); r.body != eRT("Token has expired") {
			t.Errorf("got %s; want %s", r.body, eRT("Token has expired"))
		}
	})
}

// TestTokenEndpoint_tokenShapes: refresh tokens look like league's defuse ciphertexts and access tokens
// like league's JWTs, with expiry from the server's clock.
func TestTokenEndpoint_tokenShapes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	f.clock.Set(start.Add(700 * time.Millisecond))
	at, rt := f.refresh("rt", "")
	if !regexp.MustCompile(`^def50200[0-9a-f]{600,}$`).MatchString(rt) || len(rt)%2 != 0 {
		t.Errorf("refresh token: got %d characters %.20s…; want def50200 and at least 600 hex digits", len(rt), rt)
	}
	if rt == f.tok["rt"] {
		t.Error("rotation returned the consumed refresh token")
	}
	header, err := base64.RawURLEncoding.DecodeString(strings.Split(at, ".")[0])
	if err != nil || string(header) != `{"typ":"JWT","alg":"RS256"}` {
		t.Errorf("JWT header: got %s (%v); want league's", header, err)
	}
	raw, claims := jwtClaims(t, at)
	if !claimsShape.MatchString(raw) {
		t.Errorf("claims: got %s; want league's keys in league's order", raw)
	}
	sec := start.Unix()
	if want := fmt.Sprintf(`"iat":%d.7,"nbf":%d.7,"exp":%d.7,`, sec, sec, sec+3600); !strings.Contains(raw, want) {
		t.Errorf("claims: got %s; want %s (microseconds from the fake clock, one hour of life)", raw, want)
	}
	if claims["aud"] != "cli-conf" {
		t.Errorf("aud: got %v; want cli-conf", claims["aud"])
	}
	f.clock.Advance(time.Hour - time.Nanosecond)
	if !f.srv.AccessTokenLive(at) {
		t.Error("access token dead before its hour is up")
	}
	f.clock.Advance(time.Nanosecond)
	if f.srv.AccessTokenLive(at) {
		t.Error("access token live after its hour")
	}
}

// TestTokenEndpoint_wireBytes reads the raw response to check header names as league spells them and the
// absence of a trailing newline, which net/http's client would hide.
func TestTokenEndpoint_wireBytes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	tests := []struct {
		name     string
		body     string
		want     []string
		mustMiss []string
		last     string
	}{
		{name: "success", body: refreshForm("rt"),
			want:     []string{"HTTP/1.1 200 OK\r\n", "\r\npragma: no-cache\r\n", "\r\ncache-control: no-store\r\n", "\r\ncontent-type: application/json; charset=UTF-8\r\n"},
			mustMiss: []string{"Content-Type:", "Content-type:"},
			last:     `"}`},
		{name: "error", body: "grant_type=nope",
			want:     []string{"HTTP/1.1 400 Bad Request\r\n", "\r\nContent-type: application/json\r\n"},
			mustMiss: []string{"Content-Type:", "content-type:", "ache-control", "ragma"},
			last:     `provided"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw := rawExchange(t, f.url, f.expand(tt.body))
			head, body, _ := strings.Cut(raw, "\r\n\r\n")
			for _, w := range tt.want {
				if !strings.Contains(head+"\r\n", w) {
					t.Errorf("response head lacks %q:\n%s", w, head)
				}
			}
			for _, m := range tt.mustMiss {
				if strings.Contains(head, m) {
					t.Errorf("response head has %q:\n%s", m, head)
				}
			}
			if !strings.HasSuffix(body, tt.last) {
				t.Errorf("body ends %q; want it to end %q with no newline", body[max(0, len(body)-12):], tt.last)
			}
		})
	}
}

// rawExchange sends one form POST over a fresh TCP connection and returns the raw response.
func rawExchange(t *testing.T, baseURL, form string) string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: fake\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
		"Content-Length: %d\r\nConnection: close\r\n\r\n%s", bipsynctest.TokenPath, len(form), form)
	b, err := io.ReadAll(bufio.NewReader(conn))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestServer_revocation: RevokeChain reaches every token of the chain, RevokeAll every token.
func TestServer_revocation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	_, rt0 := f.srv.IssueTokenPair("cli-conf", []string{"read"})
	f.tok["rt0"] = rt0
	at1, rt1 := f.refresh("rt0", "")
	cc := successCC.FindStringSubmatch(f.do(reqSpec{body: "grant_type=client_credentials&client_id=cli-conf&client_secret=sec-conf"}).body)
	if cc == nil {
		t.Fatal("client_credentials failed")
	}

	f.srv.RevokeChain(rt0) // an old token of the chain names the whole chain
	f.tok["rt1"] = rt1
	if r := f.do(reqSpec{body: refreshForm("rt1")}); r.body != eRT("Token has been revoked") {
		t.Errorf("head of a revoked chain: got %s; want %s", r.body, eRT("Token has been revoked"))
	}
	if r := f.me(at1); r.body != eAD("Access token has been revoked") {
		t.Errorf("access token of a revoked chain: got %s; want revoked", r.body)
	}
	if !f.srv.RefreshTokenLive(f.tok["rtRead"]) || !f.srv.AccessTokenLive(cc[1]) {
		t.Error("RevokeChain reached tokens outside the chain")
	}

	f.srv.RevokeAll()
	for name, tok := range f.tok {
		if f.srv.RefreshTokenLive(tok) {
			t.Errorf("refresh token %s live after RevokeAll", name)
		}
	}
	if r := f.me(cc[1]); r.body != eAD("Access token has been revoked") {
		t.Errorf("client_credentials token after RevokeAll: got %s; want revoked", r.body)
	}
}
