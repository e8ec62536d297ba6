package bipsynctest_test

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// Bodies of the device authorization grant recorded from league 9.4.1.
const (
	ePending   = `{"error":"authorization_pending","error_description":"The authorization request is still pending as the end user hasn't yet completed the user interaction steps. The client SHOULD repeat the Access Token Request to the token endpoint","hint":""}`
	eSlowDown  = `{"error":"slow_down","error_description":"The authorization request is still pending and polling should continue, but the interval MUST be increased by 5 seconds for this and all subsequent requests.","hint":""}`
	eExpired   = `{"error":"expired_token","error_description":"The ` + "`device_code`" + ` has expired and the device authorization session has concluded.","hint":"device_code"}`
	eDenied    = `{"error":"access_denied","error_description":"The resource owner or authorization server denied the request."}`
	eGrantLong = `{"error":"invalid_grant","error_description":"The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.","hint":""}`
)

var eRevokedDC = eREQHint("Device code has been revoked")

// eREQHint is invalid_request with a hint of its own instead of "Check the ... parameter"; the hint is given as it
// appears inside the JSON string.
func eREQHint(hint string) string {
	return `{"error":"invalid_request","error_description":"The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.","hint":"` + hint + `"}`
}

// devicePart1 is the answer shape of Part 1 (cli-pub, interval hidden, verification URI http://127.0.0.1/oauth/device).
var devicePart1 = regexp.MustCompile(`^\{"device_code":"([0-9a-f]{80})","user_code":"([BCDFGHJKLMNPQRSTVWXZ]{8})",` +
	`"verification_uri":"http:\\/\\/127\.0\.0\.1\\/oauth\\/device","expires_in":60,` +
	`"verification_uri_complete":"http:\\/\\/127\.0\.0\.1\\/oauth\\/device\?user_code=([A-Z]{8})"\}$`)

// devicePart2 is the answer shape of Part 2 (interval visible, verification URI https://acme.bipsync.com/oauth/device).
var devicePart2 = regexp.MustCompile(`^\{"device_code":"([0-9a-f]{80})","user_code":"([BCDFGHJKLMNPQRSTVWXZ]{8})",` +
	`"verification_uri":"https:\\/\\/acme\.bipsync\.com\\/oauth\\/device","expires_in":60,` +
	`"verification_uri_complete":"https:\\/\\/acme\.bipsync\.com\\/oauth\\/device\?user_code=([A-Z]{8})","interval":5\}$`)

// authorizeDevice asks for a device code and returns the device code and the user code; the answer must match shape.
func (f *fixture) authorizeDevice(body string, shape *regexp.Regexp) (deviceCode, userCode string) {
	f.t.Helper()
	r := f.do(reqSpec{path: bipsynctest.DevicePath, body: body})
	m := shape.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		f.t.Fatalf("device authorization: got %d %s; want 200 of shape %s", r.status, r.body, shape)
	}
	checkSuccessHeaders(f.t, r.header)
	if m[3] != m[2] {
		f.t.Fatalf("verification_uri_complete carries user code %q; want %q", m[3], m[2])
	}
	return m[1], m[2]
}

// poll polls the token endpoint for a device code with the given client credentials (form fragment).
func (f *fixture) poll(client, deviceCode string) response {
	f.t.Helper()
	return f.do(reqSpec{body: "grant_type=" + url.QueryEscape(bipsynctest.DeviceCodeGrantType) + "&" + client +
		"&device_code=" + deviceCode})
}

// expectError checks an OAuth error answer: status, exact body and league's error headers.
func expectError(t *testing.T, step string, r response, status int, body string) {
	t.Helper()
	if r.status != status || r.body != body {
		t.Fatalf("%s: got %d %s; want %d %s", step, r.status, r.body, status, body)
	}
	checkErrorHeaders(t, r.header, "")
}

// TestDevice_recordedPublicClient replays Part 1 of the recording: a public client, the interval hidden.
func TestDevice_recordedPublicClient(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{VerificationURI: "http://127.0.0.1/oauth/device"})
	const client = "client_id=cli-pub"
	dc, uc := f.authorizeDevice(client+"&scope=read+write", devicePart1)

	expectError(t, "first poll", f.poll(client, dc), 400, ePending)
	expectError(t, "second poll at once", f.poll(client, dc), 400, eSlowDown)
	f.clock.Advance(6 * time.Second)
	expectError(t, "third poll after 6 s", f.poll(client, dc), 400, ePending)

	if got := f.srv.PendingUserCodes(); !slices.Equal(got, []string{uc}) {
		t.Fatalf("pending user codes: got %q; want [%q]", got, uc)
	}
	if err := f.srv.ApproveDevice(uc); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	r := f.poll(client, dc)
	m := successRT.FindStringSubmatch(r.body)
	if r.status != 200 || m == nil {
		t.Fatalf("poll right after approval: got %d %s; want 200 with a refresh token", r.status, r.body)
	}
	checkSuccessHeaders(t, r.header)
	if got := jwtScopes(t, m[1]); !slices.Equal(got, []string{"read", "write"}) {
		t.Errorf("access token scopes: got %q; want [read write]", got)
	}
	if _, claims := jwtClaims(t, m[1]); claims["sub"] != bipsynctest.SeedUserID || claims["aud"] != "cli-pub" {
		t.Errorf("access token claims: got sub %v aud %v; want the seed user and cli-pub", claims["sub"], claims["aud"])
	}
	expectError(t, "poll of the same code again", f.poll(client, dc), 400, eRevokedDC)
	if got := f.srv.PendingUserCodes(); len(got) != 0 {
		t.Errorf("pending user codes after the exchange: got %q; want none", got)
	}

	// The refresh token seeds a chain like any other: it rotates, and the access token works until then.
	if r := f.me(m[1]); r.status != 200 {
		t.Errorf("protected endpoint with the device flow's access token: got %d %s; want 200", r.status, r.body)
	}
	f.tok["dev"] = m[2]
	r = f.do(reqSpec{body: "grant_type=refresh_token&client_id=cli-pub&refresh_token={dev}"})
	if r.status != 200 || !successRT.MatchString(r.body) {
		t.Fatalf("refresh of the device flow's refresh token: got %d %s; want 200", r.status, r.body)
	}
	if r := f.me(m[1]); r.status != 401 {
		t.Errorf("protected endpoint with the revoked first access token: got %d; want 401", r.status)
	}
	st := f.srv.Stats()
	if st.DeviceAuthorizations != 1 || st.DeviceTokens != 1 || st.RefreshExchanges != 1 {
		t.Errorf("stats: got %+v; want 1 device authorization, 1 device token, 1 refresh exchange", st)
	}
}

// TestDevice_recordedConfidentialClient replays Part 2: a confidential client whose polls carry its secret, the
// interval visible, Bipsync's verification URI.
func TestDevice_recordedConfidentialClient(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{
		VerificationURI:       "https://acme.bipsync.com/oauth/device",
		DeviceIntervalVisible: true,
	})
	const client = "client_id=cli-conf&client_secret=sec-conf"
	// The device authorization request carries no secret: league does not check one there.
	dc, uc := f.authorizeDevice("client_id=cli-conf&scope=read+write", devicePart2)

	expectError(t, "poll without the secret", f.poll("client_id=cli-conf", dc), 400, eREQ("client_secret"))
	expectError(t, "first poll", f.poll(client, dc), 400, ePending)
	expectError(t, "second poll at once", f.poll(client, dc), 400, eSlowDown)
	f.clock.Advance(6 * time.Second)
	expectError(t, "third poll after 6 s", f.poll(client, dc), 400, ePending)
	if err := f.srv.ApproveDevice(strings.ToLower(uc)); err != nil {
		t.Fatalf("approve by the lower-case code: %v", err)
	}
	r := f.poll(client, dc)
	if r.status != 200 || !successRT.MatchString(r.body) {
		t.Fatalf("poll right after approval: got %d %s; want 200 with a refresh token", r.status, r.body)
	}
	expectError(t, "poll of the same code again", f.poll(client, dc), 400, eRevokedDC)
	if err := f.srv.ApproveDevice(uc); !errors.Is(err, bipsynctest.ErrDeviceCodeUsed) {
		t.Errorf("approve after the exchange: got %v; want ErrDeviceCodeUsed", err)
	}
}

func TestDevice_errors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{VerificationURI: "http://127.0.0.1/oauth/device"})
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"unknown client", "client_id=cli-nope&scope=read", 401, eCLI},
		{"no client_id", "scope=read", 400, eREQ("client_id")},
		{"unknown scope", "client_id=cli-pub&scope=read+admin", 400, eSCOPE("admin")},
	} {
		r := f.do(reqSpec{path: bipsynctest.DevicePath, body: tc.body})
		expectError(t, "device authorization, "+tc.name, r, tc.status, tc.want)
	}

	const pub = "client_id=cli-pub"
	r := f.do(reqSpec{body: "grant_type=" + url.QueryEscape(bipsynctest.DeviceCodeGrantType) + "&" + pub})
	expectError(t, "poll without device_code", r, 400, eREQ("device_code"))
	expectError(t, "poll of an unknown device code", f.poll(pub, strings.Repeat("ab", 40)), 400, eGrantLong)

	dcDenied, ucDenied := f.authorizeDevice(pub+"&scope=read", devicePart1)
	if err := f.srv.DenyDevice(ucDenied); err != nil {
		t.Fatal(err)
	}
	r = f.poll(pub, dcDenied)
	if r.status != 401 || r.body != eDenied {
		t.Fatalf("poll after denial: got %d %s; want 401 %s", r.status, r.body, eDenied)
	}

	dcOther, _ := f.authorizeDevice(pub+"&scope=read", devicePart1)
	expectError(t, "poll by another client", f.poll("client_id=cli-conf&client_secret=sec-conf", dcOther), 400,
		eREQHint("Device code was not issued to this client"))

	dcLate, ucLate := f.authorizeDevice(pub+"&scope=read", devicePart1)
	f.clock.Advance(60 * time.Second)
	expectError(t, "poll at the 60th second", f.poll(pub, dcLate), 400, ePending)
	f.clock.Advance(time.Second)
	expectError(t, "poll after expiry", f.poll(pub, dcLate), 400, eExpired)
	if got := f.srv.PendingUserCodes(); slices.Contains(got, ucLate) {
		t.Errorf("pending user codes: got %q; want the expired %q gone", got, ucLate)
	}
	// Expiry is checked before revocation: an approval now changes nothing.
	if err := f.srv.ApproveDevice(ucLate); err != nil {
		t.Fatal(err)
	}
	expectError(t, "poll after expiry and approval", f.poll(pub, dcLate), 400, eExpired)

	if err := f.srv.ApproveDevice("BBBBBBBB"); !errors.Is(err, bipsynctest.ErrUnknownUserCode) {
		t.Errorf("approve an unknown code: got %v; want ErrUnknownUserCode", err)
	}
	if st := f.srv.Stats(); st.DeviceTokens != 0 || st.DeviceAuthorizations != 3 {
		t.Errorf("stats: got %+v; want 3 device authorizations and no device token", st)
	}
}

// TestDevice_strictPolling holds a client to RFC 8628 §3.5, which league itself does not: after a slow_down the
// interval grows by 5 s for every later poll.
func TestDevice_strictPolling(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{StrictDevicePolling: true})
	const pub = "client_id=cli-pub"
	r := f.do(reqSpec{path: bipsynctest.DevicePath, body: pub})
	m := regexp.MustCompile(`"device_code":"([0-9a-f]{80})"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("device authorization: got %d %s", r.status, r.body)
	}
	dc := m[1]
	expectError(t, "first poll", f.poll(pub, dc), 400, ePending)
	expectError(t, "second poll at once", f.poll(pub, dc), 400, eSlowDown)
	f.clock.Advance(6 * time.Second) // league would answer pending; the interval is now 10 s
	expectError(t, "poll 6 s after a slow_down", f.poll(pub, dc), 400, eSlowDown)
	f.clock.Advance(14 * time.Second) // the interval is now 15 s
	expectError(t, "poll 14 s after a second slow_down", f.poll(pub, dc), 400, eSlowDown)
	f.clock.Advance(20 * time.Second)
	expectError(t, "poll 20 s later", f.poll(pub, dc), 400, ePending)
}

// TestDevice_defaultVerificationURIAndPages checks the fake's own verification page and the admin endpoint that the
// demo uses to play the person.
func TestDevice_defaultVerificationURIAndPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{Admin: true})
	r := f.do(reqSpec{path: bipsynctest.DevicePath, body: "client_id=cli-pub&scope=read"})
	host := strings.TrimPrefix(f.url, "http://")
	shape := regexp.MustCompile(`"user_code":"([A-Z]{8})","verification_uri":"http:\\/\\/` + regexp.QuoteMeta(host) +
		`\\/oauth\\/device","expires_in":60,`)
	m := shape.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("device authorization: got %d %s; want the fake's own verification page", r.status, r.body)
	}
	uc := m[1]

	page := f.do(reqSpec{method: http.MethodGet, path: bipsynctest.DeviceVerificationPath, query: "user_code=" + uc})
	if page.status != 200 || !strings.Contains(page.body, `value="`+uc+`"`) {
		t.Errorf("verification page: got %d %s; want a form holding the code", page.status, page.body)
	}
	r = f.do(reqSpec{path: bipsynctest.AdminPrefix + "device/approve", query: "user_code=" + uc + "&deny=1"})
	if r.status != http.StatusNoContent {
		t.Errorf("admin deny: got %d %s; want 204", r.status, r.body)
	}
	if got := f.srv.PendingUserCodes(); len(got) != 0 {
		t.Errorf("pending after the admin deny: got %q; want none", got)
	}
	r = f.do(reqSpec{path: bipsynctest.AdminPrefix + "device/approve", query: "user_code=XXXXXXXX"})
	if r.status != http.StatusNotFound {
		t.Errorf("admin approve of an unknown code: got %d %s; want 404", r.status, r.body)
	}

	// The form posts to the page itself.
	r2 := f.do(reqSpec{path: bipsynctest.DevicePath, body: "client_id=cli-pub"})
	uc2 := regexp.MustCompile(`"user_code":"([A-Z]{8})"`).FindStringSubmatch(r2.body)[1]
	post := f.do(reqSpec{path: bipsynctest.DeviceVerificationPath, body: "user_code=" + uc2 + "&decision=approve"})
	if post.status != 200 || !strings.Contains(post.body, "Approved") {
		t.Errorf("verification page approval: got %d %s", post.status, post.body)
	}
}

// TestDevice_faultsAndLog checks that faults reach the device endpoint, that a 200 without a refresh token still
// uses up the device code, and that the log names device codes by tag only.
func TestDevice_faultsAndLog(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{VerificationURI: "http://127.0.0.1/oauth/device"})
	f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultStatus, Status: 503})
	if r := f.do(reqSpec{path: bipsynctest.DevicePath, body: "client_id=cli-pub"}); r.status != 503 {
		t.Fatalf("device authorization with a 503 fault: got %d %s", r.status, r.body)
	}
	const pub = "client_id=cli-pub"
	dc, uc := f.authorizeDevice(pub+"&scope=read", devicePart1)
	if err := f.srv.ApproveDevice(uc); err != nil {
		t.Fatal(err)
	}
	f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultNoRefreshToken200})
	r := f.poll(pub, dc)
	if r.status != 200 || !successCC.MatchString(r.body) {
		t.Fatalf("approved poll with no-refresh-token-200: got %d %s; want 200 without a refresh token", r.status, r.body)
	}
	expectError(t, "poll again", f.poll(pub, dc), 400, eRevokedDC)

	if !slices.Contains(f.srv.SeenSecrets(), dc) {
		t.Error("SeenSecrets does not hold the device code")
	}
	var polls int
	for _, e := range f.srv.Requests() {
		if strings.Contains(e.DeviceCode, dc) || strings.Contains(e.ClientID+e.Scope+e.GrantType, dc) {
			t.Errorf("request log holds the device code: %+v", e)
		}
		if e.GrantType == bipsynctest.DeviceCodeGrantType {
			polls++
			if e.DeviceCode != "dc#1" {
				t.Errorf("logged device code: got %q; want the tag dc#1", e.DeviceCode)
			}
		}
	}
	if polls != 2 {
		t.Errorf("logged polls: got %d; want 2", polls)
	}
}
