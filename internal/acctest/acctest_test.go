package acctest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// These tests show that each check can fail: a check that always passes would make a broken provider look green.

func newServer(t *testing.T) *bipsynctest.Server {
	t.Helper()
	s := bipsynctest.NewServer(bipsynctest.Options{Now: bipsynctest.NewClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)).Now})
	s.AddClient("cli", "secret")
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func TestTokenChecks(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	access, refresh := s.IssueTokenPair("cli", []string{"write", "read"})
	if err := LiveAccessToken(s).CheckValue(access); err != nil {
		t.Errorf("LiveAccessToken of a live token: got %v; want nil", err)
	}
	if err := LiveRefreshToken(s).CheckValue(refresh); err != nil {
		t.Errorf("LiveRefreshToken of a live head: got %v; want nil", err)
	}
	if err := RevokedAccessToken(s).CheckValue(access); err == nil {
		t.Error("RevokedAccessToken of a live token: got nil; want an error")
	}
	if err := AccessTokenScopes(s, "read", "write").CheckValue(access); err != nil {
		t.Errorf("AccessTokenScopes with the token's scopes: got %v; want nil", err)
	}
	if err := AccessTokenScopes(s, "read").CheckValue(access); err == nil {
		t.Error("AccessTokenScopes with other scopes: got nil; want an error")
	}

	s.RevokeChain(refresh)
	for name, err := range map[string]error{
		"LiveAccessToken of a revoked token":     LiveAccessToken(s).CheckValue(access),
		"LiveRefreshToken of a revoked head":     LiveRefreshToken(s).CheckValue(refresh),
		"AccessTokenScopes of a revoked token":   AccessTokenScopes(s, "read", "write").CheckValue(access),
		"LiveAccessToken of a number":            LiveAccessToken(s).CheckValue(42),
		"RevokedAccessToken of an empty string":  RevokedAccessToken(s).CheckValue(""),
		"LiveAccessToken of an unknown token":    LiveAccessToken(s).CheckValue("eyJ.x.y"),
		"LiveRefreshToken of an unknown refresh": LiveRefreshToken(s).CheckValue("def50200ab"),
	} {
		if err == nil {
			t.Errorf("%s: got nil; want an error", name)
		}
	}
	if err := RevokedAccessToken(s).CheckValue(access); err != nil {
		t.Errorf("RevokedAccessToken of a revoked token: got %v; want nil", err)
	}
}

func TestReplacesAccessToken(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	first, firstRefresh := s.IssueTokenPair("cli", []string{"read"})
	second, _ := s.IssueTokenPair("cli", []string{"read"})
	var prev string
	if err := ReplacesAccessToken(s, &prev).CheckValue(second); err == nil {
		t.Error("nothing captured: got nil; want an error")
	}
	prev = first
	if err := ReplacesAccessToken(s, &prev).CheckValue(second); err == nil {
		t.Error("previous token still live: got nil; want an error")
	}
	s.RevokeChain(firstRefresh)
	if err := ReplacesAccessToken(s, &prev).CheckValue(first); err == nil {
		t.Error("the same token: got nil; want an error")
	}
	if err := ReplacesAccessToken(s, &prev).CheckValue(second); err != nil {
		t.Errorf("a new token, the previous revoked: got %v; want nil", err)
	}
}

func TestCaptureAndRFC3339(t *testing.T) {
	t.Parallel()
	var got string
	if err := Capture(&got).CheckValue("v"); err != nil || got != "v" {
		t.Errorf("Capture: got %q, %v; want \"v\", nil", got, err)
	}
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	if err := RFC3339(at).CheckValue("2026-11-25T09:00:00Z"); err != nil {
		t.Errorf("RFC3339 of the same instant in UTC: got %v; want nil", err)
	}
	if err := RFC3339(at).CheckValue("2026-11-25T10:00:00+01:00"); err == nil {
		t.Error("RFC3339 of a value not in UTC: got nil; want an error")
	}
}

// showJSON is `show -json` of a state holding one grant.
const showJSON = `{"format_version":"1.0","values":{"root_module":{"resources":[{"address":"bipsync_refresh_grant.g",
"mode":"managed","type":"bipsync_refresh_grant","name":"g","provider_name":"registry.opentofu.org/hashicorp/bipsync",
"schema_version":0,"values":{"access_token":"eyJ.a.b","refresh_token":"def50200cafe","refresh_token_wo":null},
"sensitive_values":{"access_token":true,"refresh_token":true}}]}}}`

func TestCheckShowJSON(t *testing.T) {
	t.Parallel()
	var head string
	err := CheckShowJSON([]byte(showJSON),
		statecheck.ExpectKnownValue("bipsync_refresh_grant.g", tfjsonpath.New("refresh_token"), Capture(&head)),
		statecheck.ExpectKnownValue("bipsync_refresh_grant.g", tfjsonpath.New("refresh_token_wo"), knownvalue.Null()),
		statecheck.ExpectSensitiveValue("bipsync_refresh_grant.g", tfjsonpath.New("access_token")),
		ExpectNoSecrets("def50200beef"),
	)
	if err != nil || head != "def50200cafe" {
		t.Errorf("checks that hold: got %v (head %q); want nil and the head", err, head)
	}
	err = CheckShowJSON([]byte(showJSON),
		statecheck.ExpectKnownValue("bipsync_refresh_grant.g", tfjsonpath.New("refresh_token_wo"), knownvalue.NotNull()),
		ExpectNoSecrets("def50200cafe"),
		ExpectNoSecrets(""),
	)
	if err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("three failing checks: got %v; want three errors", err)
	}
	if err := CheckShowJSON([]byte("not json")); err == nil {
		t.Error("output that is not JSON: got nil; want an error")
	}
}

type recorder struct{ errors []string }

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestLedger(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	exchange := func() {
		t.Helper()
		_, refresh := s.IssueTokenPair("cli", []string{"read"})
		if err := exchangeAt(s.URL(), refresh); err != nil {
			t.Fatal(err)
		}
	}
	var r recorder
	l := NewLedger(&r, s)
	exchange()
	l.Expect(1, "one exchange")()
	l.Expect(0, "nothing since")()
	exchange()
	exchange()
	l.Expect(1, "two exchanges")()
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], "two exchanges: got 2 refresh exchanges; want 1") {
		t.Errorf("ledger errors: got %q; want one for the step with two exchanges", r.errors)
	}
	exchange()
	l.Reset()
	l.Expect(0, "after a reset")()
	if len(r.errors) != 1 {
		t.Errorf("ledger errors after a reset: got %q; want no new one", r.errors[1:])
	}
}

// exchangeAt exchanges a refresh token of the client "cli" at the fake, as the provider would.
func exchangeAt(baseURL, refreshToken string) error {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "client_id": {"cli"},
		"client_secret": {"secret"}}
	resp, err := http.Post(baseURL+bipsynctest.TokenPath, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("exchange: got status %d; want 200", resp.StatusCode)
	}
	return nil
}
