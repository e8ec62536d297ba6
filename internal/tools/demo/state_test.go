package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

func TestTallyRequests(t *testing.T) {
	t.Parallel()
	exchange := func(scope string) bipsynctest.LoggedRequest {
		return bipsynctest.LoggedRequest{Path: bipsynctest.TokenPath, GrantType: "refresh_token", Scope: scope, Status: http.StatusOK}
	}
	refused := func(scope string) bipsynctest.LoggedRequest {
		return bipsynctest.LoggedRequest{Path: bipsynctest.TokenPath, GrantType: "refresh_token", Scope: scope,
			Status: http.StatusBadRequest, Error: "invalid_grant"}
	}
	tests := []struct {
		name string
		reqs []bipsynctest.LoggedRequest
		want tally
	}{
		{"none", nil, tally{}},
		{"one each", []bipsynctest.LoggedRequest{exchange("rest_api:read"), exchange("")}, tally{grant: 1, ephemeral: 1}},
		{"refused", []bipsynctest.LoggedRequest{refused("rest_api:read"), refused("")}, tally{grantRejected: 1, ephemeralRejected: 1}},
		{"other scopes", []bipsynctest.LoggedRequest{exchange("rest_api:read rest_api:write")}, tally{other: 1}},
		{"not a refresh", []bipsynctest.LoggedRequest{
			{Path: bipsynctest.TokenPath, GrantType: "client_credentials", Status: http.StatusOK},
			{Path: bipsynctest.ProtectedPath, Status: http.StatusOK},
		}, tally{}},
		{"dropped answer", []bipsynctest.LoggedRequest{{Path: bipsynctest.TokenPath, GrantType: "refresh_token", Scope: "rest_api:read"}},
			tally{grantRejected: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tallyRequests(tt.reqs); got != tt.want {
				t.Errorf("got %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestSameScopes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		param string
		want  []string
		same  bool
	}{
		{"", nil, true},
		{"read", []string{"read"}, true},
		{"write read", []string{"read", "write"}, true},
		{"read", nil, false},
		{"", []string{"read"}, false},
		{"read write", []string{"read"}, false},
	}
	for _, tt := range tests {
		if got := sameScopes(tt.param, tt.want); got != tt.same {
			t.Errorf("sameScopes(%q, %q): got %t; want %t", tt.param, tt.want, got, tt.same)
		}
	}
}

func TestParseGrantState(t *testing.T) {
	t.Parallel()
	const doc = `{"format_version":"1.0","values":{"root_module":{"resources":[
		{"address":"terraform_data.x","values":{"id":"1"}},
		{"address":"bipsync_refresh_grant.main","values":{"refresh_token":"rt-secret","rotated_at":"2026-01-02T03:04:05Z",
		 "expires_at":"2026-01-02T03:04:45Z","refresh_token_expires_at":"2026-02-01T03:04:05Z"}}]}}}`
	got, err := parseGrantState([]byte(doc), grantAddress)
	if err != nil {
		t.Fatal(err)
	}
	want := grantState{
		RefreshToken:          "rt-secret",
		RotatedAt:             time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		ExpiresAt:             time.Date(2026, 1, 2, 3, 4, 45, 0, time.UTC),
		RefreshTokenExpiresAt: time.Date(2026, 2, 1, 3, 4, 5, 0, time.UTC),
	}
	if got.RefreshToken != want.RefreshToken || !got.RotatedAt.Equal(want.RotatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
		!got.RefreshTokenExpiresAt.Equal(want.RefreshTokenExpiresAt) {
		t.Errorf("got %+v; want %+v", got, want)
	}

	for name, bad := range map[string]string{
		"no state":     `{"format_version":"1.0"}`,
		"no grant":     `{"values":{"root_module":{"resources":[{"address":"terraform_data.x","values":{}}]}}}`,
		"bad time":     `{"values":{"root_module":{"resources":[{"address":"bipsync_refresh_grant.main","values":{"refresh_token":"rt-secret","rotated_at":"soon"}}]}}}`,
		"no head":      `{"values":{"root_module":{"resources":[{"address":"bipsync_refresh_grant.main","values":{"rotated_at":"2026-01-02T03:04:05Z","expires_at":"2026-01-02T03:04:05Z","refresh_token_expires_at":"2026-01-02T03:04:05Z"}}]}}}`,
		"not json":     `rt-secret`,
		"wrong shapes": `{"values":{"root_module":{"resources":{"refresh_token":"rt-secret"}}}}`,
	} {
		_, err := parseGrantState([]byte(bad), grantAddress)
		if err == nil {
			t.Errorf("%s: got no error; want one", name)
			continue
		}
		if strings.Contains(err.Error(), "rt-secret") {
			t.Errorf("%s: the error quotes the refresh token: %v", name, err)
		}
	}
}

func TestParsePlanActions(t *testing.T) {
	t.Parallel()
	const doc = `{"resource_changes":[
		{"address":"bipsync_refresh_grant.main","change":{"actions":["no-op"]}},
		{"address":"terraform_data.a","change":{"actions":["delete","create"]}},
		{"address":"terraform_data.b","change":{"actions":["update"]}}]}`
	got, err := parsePlanActions([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"bipsync_refresh_grant.main": "no-op", "terraform_data.a": "replace", "terraform_data.b": "update"}
	if len(got) != len(want) {
		t.Errorf("got %v; want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q; want %q", k, got[k], v)
		}
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	a, b := fingerprint("token-a"), fingerprint("token-b")
	if !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(a) {
		t.Errorf("got %q; want 8 hex digits", a)
	}
	if a == b || a != fingerprint("token-a") {
		t.Errorf("got %q and %q; want one stable fingerprint per token", a, b)
	}
}

func TestSummaryTable(t *testing.T) {
	t.Parallel()
	lines := summaryTable([]step{
		{act: 1, name: "first apply", counts: tally{grant: 1, ephemeral: 1}, elapsed: 1500 * time.Millisecond},
		{act: 3, name: "wait", waited: true, elapsed: 20 * time.Second},
		{act: 4, name: "revoked", counts: tally{grantRejected: 1}},
		{act: 4, name: "re-seed", counts: tally{grant: 1}},
	}, 42*time.Second)
	text := strings.Join(lines, "\n")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^1 +first apply +1 +1 +2 +1\.5s$`),
		regexp.MustCompile(`(?m)^3 +wait +- +- +- +20\.0s$`),
		regexp.MustCompile(`(?m)^4 +revoked \[1 refused\] +0 +0 +0 +0\.0s$`),
		regexp.MustCompile(`(?m)^ +total +2 +1 +3 *$`),
		regexp.MustCompile(`(?m)^wall time 42\.0s`),
	} {
		if !want.MatchString(text) {
			t.Errorf("table:\n%s\nwant a line matching %s", text, want)
		}
	}
}
