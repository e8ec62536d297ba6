package bipsynctest_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

const month = 31 * 24 * time.Hour

// consume rotates the fixture token once, so that it is the consumed (revoked) one.
func consume(name string) func(*fixture) {
	return func(f *fixture) { f.refresh(name, "") }
}

// TestTokenEndpoint_leagueCases replays every applicable numbered case of the package documentation ("The cases").
func TestTokenEndpoint_leagueCases(t *testing.T) {
	t.Parallel()
	type want struct {
		status  int
		body    string   // exact error body; empty for a success
		cc      bool     // success without refresh token (S-CC)
		scopes  []string // success: JWT scopes
		sub     string   // success: JWT sub
		wwwAuth string
	}
	rtOK := want{status: 200, scopes: []string{"read", "write"}, sub: bipsynctest.SeedUserID}
	ccOK := func(scopes ...string) want {
		return want{status: 200, cc: true, scopes: append([]string{}, scopes...), sub: "cli-conf"}
	}
	bad := func(status int, body string) want { return want{status: status, body: body} }
	const conf = "client_id=cli-conf&client_secret=sec-conf"
	tests := []struct {
		name  string
		opts  bipsynctest.Options
		setup func(*fixture)
		req   reqSpec
		want  want
	}{
		{name: "01 form body", req: reqSpec{body: refreshForm("rt")}, want: rtOK},
		{name: "02 JSON body, JSON rejected", opts: bipsynctest.Options{RejectJSON: true},
			req:  reqSpec{json: true, body: `{"grant_type":"refresh_token","client_id":"cli-conf","client_secret":"sec-conf","refresh_token":"{rt}"}`},
			want: bad(400, eUGT)},
		{name: "03 JSON body", req: reqSpec{json: true, body: `{"grant_type":"refresh_token","client_id":"cli-conf","client_secret":"sec-conf","refresh_token":"{rt}"}`},
			want: rtOK},
		{name: "04 multipart", req: reqSpec{multipart: [][2]string{
			{"grant_type", "refresh_token"}, {"client_id", "cli-conf"}, {"client_secret", "sec-conf"}, {"refresh_token", "{rt}"}}},
			want: rtOK},
		{name: "05 form with charset", req: reqSpec{ct: "application/x-www-form-urlencoded; charset=UTF-8", body: refreshForm("rt")},
			want: rtOK},
		{name: "06 reuse of a consumed token", setup: consume("rt"), req: reqSpec{body: refreshForm("rt")},
			want: bad(400, eRT("Token has been revoked"))},
		{name: "07 cli-conf token presented by public client",
			req:  reqSpec{body: "grant_type=refresh_token&client_id=cli-pub&refresh_token={rt}"},
			want: bad(400, eRT("Token is not linked to client"))},
		{name: "07 cli-conf token presented by cli-conf2",
			req:  reqSpec{body: "grant_type=refresh_token&client_id=cli-conf2&client_secret=sec-conf2&refresh_token={rt}"},
			want: bad(400, eRT("Token is not linked to client"))},
		{name: "07 public client token presented by cli-conf", req: reqSpec{body: refreshForm("rtPub")},
			want: bad(400, eRT("Token is not linked to client"))},
		{name: "08 garbage", req: reqSpec{body: conf + "&grant_type=refresh_token&refresh_token=garbage"},
			want: bad(400, eRT("Cannot decrypt the refresh token"))},
		{name: "08 def50200 prefix only", req: reqSpec{body: conf + "&grant_type=refresh_token&refresh_token=def50200abcdef"},
			want: bad(400, eRT("Cannot decrypt the refresh token"))},
		{name: "08 one hex digit changed",
			setup: func(f *fixture) {
				rt := []byte(f.tok["rt"])
				rt[100] = map[bool]byte{true: 'b', false: 'a'}[rt[100] == 'a']
				f.tok["rtMut"] = string(rt)
			},
			req:  reqSpec{body: refreshForm("rtMut")},
			want: bad(400, eRT("Cannot decrypt the refresh token"))},
		{name: "09 expired", setup: func(f *fixture) { f.clock.Advance(month) }, req: reqSpec{body: refreshForm("rt")},
			want: bad(400, eRT("Token has expired"))},
		{name: "10 expired and revoked",
			setup: func(f *fixture) { consume("rt")(f); f.clock.Advance(month) },
			req:   reqSpec{body: refreshForm("rt")},
			want:  bad(400, eRT("Token has expired"))},
		{name: "11 wrong secret in body",
			req:  reqSpec{body: "grant_type=refresh_token&client_id=cli-conf&client_secret=nope&refresh_token={rt}"},
			want: bad(401, eCLI)},
		{name: "12 wrong secret via Basic",
			req:  reqSpec{body: "grant_type=refresh_token&refresh_token={rt}", basic: []string{"cli-conf", "nope"}},
			want: want{status: 401, body: eCLI, wwwAuth: `Basic realm="OAuth"`}},
		{name: "13 wrong secret in body with a Bearer header",
			req: reqSpec{body: "grant_type=refresh_token&client_id=cli-conf&client_secret=nope&refresh_token={rt}",
				header: map[string]string{"Authorization": "Bearer xyz"}},
			want: want{status: 401, body: eCLI, wwwAuth: `Bearer realm="OAuth"`}},
		{name: "14 right secret in body, wrong in Basic",
			req:  reqSpec{body: refreshForm("rt"), basic: []string{"cli-conf", "nope"}},
			want: rtOK},
		{name: "15 wrong secret in body, right in Basic",
			req: reqSpec{body: "grant_type=refresh_token&client_id=cli-conf&client_secret=nope&refresh_token={rt}",
				basic: []string{"cli-conf", "sec-conf"}},
			want: want{status: 401, body: eCLI, wwwAuth: `Basic realm="OAuth"`}},
		{name: "16 unknown client", req: reqSpec{body: "grant_type=refresh_token&client_id=cli-nope&client_secret=x&refresh_token={rt}"},
			want: bad(401, eCLI)},
		{name: "17 confidential client without secret", req: reqSpec{body: "grant_type=refresh_token&client_id=cli-conf&refresh_token={rt}"},
			want: bad(400, eREQ("client_secret"))},
		{name: "17 confidential client with empty secret",
			req:  reqSpec{body: "grant_type=refresh_token&client_id=cli-conf&client_secret=&refresh_token={rt}"},
			want: bad(400, eREQ("client_secret"))},
		{name: "18 client_id missing", req: reqSpec{body: "grant_type=refresh_token&client_secret=sec-conf&refresh_token={rt}"},
			want: bad(400, eREQ("client_id"))},
		{name: "18 client_id only whitespace",
			req:  reqSpec{body: "grant_type=refresh_token&client_id=%20&client_secret=sec-conf&refresh_token={rt}"},
			want: bad(400, eREQ("client_id"))},
		{name: "19 padded client_id",
			req:  reqSpec{body: "grant_type=refresh_token&client_id=%20cli-conf%20&client_secret=sec-conf&refresh_token={rt}"},
			want: rtOK},
		{name: "20 client_id twice, last wins",
			req:  reqSpec{body: "grant_type=refresh_token&client_id=cli-nope&client_id=cli-conf&client_secret=sec-conf&refresh_token={rt}"},
			want: rtOK},
		{name: "21 client via Basic only",
			req:  reqSpec{body: "grant_type=refresh_token&refresh_token={rt}", basic: []string{"cli-conf", "sec-conf"}},
			want: rtOK},
		{name: "22 refresh_token missing", req: reqSpec{body: conf + "&grant_type=refresh_token"},
			want: bad(400, eREQ("refresh_token"))},
		{name: "23 refresh_token missing and wrong secret",
			req:  reqSpec{body: "grant_type=refresh_token&client_id=cli-conf&client_secret=nope"},
			want: bad(401, eCLI)},
		{name: "24 expired and wrong secret", setup: func(f *fixture) { f.clock.Advance(month) },
			req:  reqSpec{body: "grant_type=refresh_token&client_id=cli-conf&client_secret=nope&refresh_token={rt}"},
			want: bad(401, eCLI)},
		{name: "25 unknown grant type", req: reqSpec{body: conf + "&grant_type=foo_bar&refresh_token={rt}"},
			want: bad(400, eUGT)},
		{name: "25 password grant not enabled", req: reqSpec{body: conf + "&grant_type=password&username=u&password=p"},
			want: bad(400, eUGT)},
		{name: "26 unknown grant without client_id", req: reqSpec{body: "grant_type=foo_bar"},
			want: bad(400, eUGT)},
		{name: "26 unknown grant with wrong secret", req: reqSpec{body: "grant_type=foo_bar&client_id=cli-conf&client_secret=nope"},
			want: bad(400, eUGT)},
		{name: "27 grant_type missing", req: reqSpec{body: conf + "&refresh_token={rt}"},
			want: bad(400, eUGT)},
		{name: "27 empty body", req: reqSpec{ct: "application/x-www-form-urlencoded"},
			want: bad(400, eUGT)},
		{name: "28 GET with query parameters", req: reqSpec{method: http.MethodGet, query: refreshForm("rt")},
			want: bad(400, eUGT)},
		{name: "29 scope beyond the grant", req: reqSpec{body: refreshForm("rt") + "&scope=read+write+team_abc"},
			want: bad(400, eSCOPE("team_abc"))},
		{name: "30 scope unknown to the server", req: reqSpec{body: refreshForm("rt") + "&scope=read+admin"},
			want: bad(400, eSCOPE("admin"))},
		{name: "31 unknown reported before not granted", req: reqSpec{body: refreshForm("rtRead") + "&scope=write+admin"},
			want: bad(400, eSCOPE("admin"))},
		{name: "32 scope HTML-escaped", req: reqSpec{body: refreshForm("rt") + "&scope=%3Cx%3E%26%22"},
			want: bad(400, eSCOPE(`&lt;x&gt;&amp;&quot;`))},
		{name: "33 tab does not separate scopes", req: reqSpec{body: refreshForm("rt") + "&scope=read%09write"},
			want: bad(400, eSCOPE(`read\twrite`))},
		{name: "34 scope omitted keeps the original scopes", req: reqSpec{body: refreshForm("rt")}, want: rtOK},
		{name: "35 empty scope is omitted", req: reqSpec{body: refreshForm("rt") + "&scope="}, want: rtOK},
		{name: "36 subset scope", req: reqSpec{body: refreshForm("rt") + "&scope=read"},
			want: want{status: 200, scopes: []string{"read"}, sub: bipsynctest.SeedUserID}},
		{name: "37 a failed scope request consumes nothing",
			setup: func(f *fixture) {
				if r := f.do(reqSpec{body: refreshForm("rt") + "&scope=read+admin"}); r.status != 400 {
					f.t.Fatalf("setup: got %d; want 400", r.status)
				}
			},
			req: reqSpec{body: refreshForm("rt")}, want: rtOK},
		{name: "38 public client with a bogus secret",
			req:  reqSpec{body: "grant_type=refresh_token&client_id=cli-pub&client_secret=bogus&refresh_token={rtPub}"},
			want: rtOK},
		{name: "39 client_credentials without scope", req: reqSpec{body: conf + "&grant_type=client_credentials"},
			want: ccOK()},
		{name: "40 client_credentials with team scope", req: reqSpec{body: conf + "&grant_type=client_credentials&scope=read+team_abc"},
			want: ccOK("read", "team_abc")},
		{name: "41 client_credentials without team scope", req: reqSpec{body: conf + "&grant_type=client_credentials&scope=read"},
			want: ccOK("read")},
		{name: "42 client_credentials with unknown scope", req: reqSpec{body: conf + "&grant_type=client_credentials&scope=team_zzz"},
			want: bad(400, eSCOPE("team_zzz"))},
		{name: "43 client_credentials for a public client", req: reqSpec{body: "grant_type=client_credentials&client_id=cli-pub"},
			want: bad(401, eCLI)},
		{name: "44 client_credentials with wrong secret",
			req:  reqSpec{body: "grant_type=client_credentials&client_id=cli-conf&client_secret=nope"},
			want: bad(401, eCLI)},
		{name: "45 client_credentials without secret", req: reqSpec{body: "grant_type=client_credentials&client_id=cli-conf"},
			want: bad(400, eREQ("client_secret"))},
		{name: "46 client_credentials JSON body",
			req:  reqSpec{json: true, body: `{"grant_type":"client_credentials","client_id":"cli-conf","client_secret":"sec-conf","scope":"read"}`},
			want: ccOK("read")},
		{name: "47 JSON scope array",
			req:  reqSpec{json: true, body: `{"grant_type":"refresh_token","client_id":"cli-conf","client_secret":"sec-conf","refresh_token":"{rt}","scope":["read"]}`},
			want: bad(400, eREQ("scope"))},
		{name: "47 JSON refresh_token object",
			req:  reqSpec{json: true, body: `{"grant_type":"refresh_token","client_id":"cli-conf","client_secret":"sec-conf","refresh_token":{"a":1}}`},
			want: bad(400, eREQ("refresh_token"))},
		{name: "47 JSON client_secret false",
			req:  reqSpec{json: true, body: `{"grant_type":"refresh_token","client_id":"cli-conf","client_secret":false,"refresh_token":"{rt}"}`},
			want: bad(400, eREQ("client_secret"))},
		{name: "48 JSON scope number",
			req:  reqSpec{json: true, body: `{"grant_type":"refresh_token","client_id":"cli-conf","client_secret":"sec-conf","refresh_token":"{rt}","scope":123}`},
			want: bad(400, eSCOPE("123"))},
		{name: "48 JSON scope null is omitted",
			req:  reqSpec{json: true, body: `{"grant_type":"refresh_token","client_id":"cli-conf","client_secret":"sec-conf","refresh_token":"{rt}","scope":null}`},
			want: rtOK},
		{name: "49 malformed JSON", req: reqSpec{json: true, body: `{"grant_type":"refresh_token",`},
			want: bad(400, eUGT)},
		{name: "49 top-level JSON array", req: reqSpec{json: true, body: `[{"grant_type":"refresh_token"}]`},
			want: bad(400, eUGT)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tt.opts)
			if tt.setup != nil {
				tt.setup(f)
			}
			before := f.srv.Stats()
			r := f.do(tt.req)
			if r.status != tt.want.status {
				t.Errorf("status: got %d; want %d (body %s)", r.status, tt.want.status, r.body)
			}
			after := f.srv.Stats()
			if tt.want.body != "" {
				if r.body != tt.want.body {
					t.Errorf("body:\ngot  %s\nwant %s", r.body, tt.want.body)
				}
				checkErrorHeaders(t, r.header, tt.want.wwwAuth)
				if after.Errors != before.Errors+1 || after.RefreshExchanges != before.RefreshExchanges {
					t.Errorf("stats: got %+v after %+v; want one more error and no exchange", after, before)
				}
				return
			}
			shape := successRT
			if tt.want.cc {
				shape = successCC
			}
			m := shape.FindStringSubmatch(r.body)
			if m == nil {
				t.Fatalf("body: got %s; want the recorded success shape", r.body)
			}
			checkSuccessHeaders(t, r.header)
			raw, claims := jwtClaims(t, m[1])
			if !claimsShape.MatchString(raw) {
				t.Errorf("claims: got %s; want league's keys in league's order", raw)
			}
			if got := jwtScopes(t, m[1]); !slices.Equal(got, tt.want.scopes) {
				t.Errorf("JWT scopes: got %q; want %q", got, tt.want.scopes)
			}
			if claims["sub"] != tt.want.sub {
				t.Errorf("JWT sub: got %v; want %q", claims["sub"], tt.want.sub)
			}
			if !f.srv.AccessTokenLive(m[1]) {
				t.Error("issued access token is not live")
			}
		})
	}
}
