package bipsynctest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// TestProtected_bearerValidation replays cases 50-52 and the other ways an access token is refused.
func TestProtected_bearerValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header func(live, rotated string) map[string]string
		setup  func(*fixture)
		status int
		body   string
	}{
		{name: "live token",
			header: func(live, _ string) map[string]string { return map[string]string{"Authorization": "Bearer " + live} },
			status: 200, body: `{"client_id":"cli-conf","scopes":["read","write"]}`},
		{name: "50 previous token after a refresh",
			header: func(_, rotated string) map[string]string {
				return map[string]string{"Authorization": "Bearer " + rotated}
			},
			status: 401, body: eAD("Access token has been revoked")},
		{name: "51 no Authorization header",
			header: func(string, string) map[string]string { return nil },
			status: 401, body: eAD(`Missing \"Authorization\" header`)},
		{name: "52 not a JWT",
			header: func(string, string) map[string]string {
				return map[string]string{"Authorization": "Bearer abc.def.ghi"}
			},
			status: 401, body: eAD("Error while decoding from JSON")},
		{name: "no dots",
			header: func(string, string) map[string]string { return map[string]string{"Authorization": "Bearer abc"} },
			status: 401, body: eAD("The JWT string must have two dots")},
		{name: "well-formed JWT this server never issued",
			header: func(string, string) map[string]string {
				return map[string]string{"Authorization": "Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"}
			},
			status: 401, body: eAD("Access token could not be verified")},
		{name: "expired token",
			header: func(live, _ string) map[string]string { return map[string]string{"Authorization": "Bearer " + live} },
			setup:  func(f *fixture) { f.clock.Advance(time.Hour) },
			status: 401, body: eAD("Access token could not be verified")},
		{name: "lower-case scheme is not stripped",
			header: func(live, _ string) map[string]string { return map[string]string{"Authorization": "bearer " + live} },
			status: 401, body: eAD("Error while decoding from Base64Url, invalid base64 characters detected")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, bipsynctest.Options{})
			// A seeded pair, then one rotation: "rotated" is the seed's access token, "live" the new one.
			rotated, seed := f.srv.IssueTokenPair("cli-conf", []string{"read", "write"})
			f.tok["seed"] = seed
			live, _ := f.refresh("seed", "")
			if tt.setup != nil {
				tt.setup(f)
			}
			before := f.srv.Stats()
			r := f.do(reqSpec{method: http.MethodGet, path: bipsynctest.ProtectedPath, header: tt.header(live, rotated)})
			if r.status != tt.status || r.body != tt.body {
				t.Errorf("got %d %s; want %d %s", r.status, r.body, tt.status, tt.body)
			}
			after := f.srv.Stats()
			if tt.status == 200 {
				if after.ProtectedOK != before.ProtectedOK+1 {
					t.Errorf("ProtectedOK: got %d; want %d", after.ProtectedOK, before.ProtectedOK+1)
				}
				checkHeaderNames(t, r.header, []string{"Content-Length", "Content-Type", "Date"})
				return
			}
			if after.ProtectedDenied != before.ProtectedDenied+1 {
				t.Errorf("ProtectedDenied: got %d; want %d", after.ProtectedDenied, before.ProtectedDenied+1)
			}
			checkErrorHeaders(t, r.header, "")
		})
	}
}
