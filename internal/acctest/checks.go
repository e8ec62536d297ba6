// Package acctest is the one home of the checks the provider's acceptance tests share, in the shape of
// terraform-plugin-testing's knownvalue and statecheck packages: value checks that ask the fake Bipsync server about a
// token found in state (live, revoked, which scopes), a capture that keeps a value for a later step, a state check
// that no secret is in the state, the same state checks run on an engine's `show -json` output (the one way tests
// read state), and a ledger of the refresh exchanges each test step caused. Tests only: it imports bipsynctest.
package acctest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// Capture is a value check of a string that keeps the value in *dst for later steps. It never fails.
func Capture(dst *string) knownvalue.Check {
	return knownvalue.StringFunc(func(v string) error {
		*dst = v
		return nil
	})
}

// LiveAccessToken checks that a value is an access token the fake's protected endpoint accepts now.
func LiveAccessToken(s *bipsynctest.Server) knownvalue.Check {
	return knownvalue.StringFunc(func(v string) error {
		if !s.AccessTokenLive(v) {
			return errors.New("the access token is not live at the fake's protected endpoint")
		}
		return nil
	})
}

// RevokedAccessToken checks that a value is an access token the fake no longer accepts: an exchange revokes the
// access token handed out before it.
func RevokedAccessToken(s *bipsynctest.Server) knownvalue.Check {
	return knownvalue.StringFunc(func(v string) error {
		if v == "" {
			return errors.New("the access token is empty")
		}
		if s.AccessTokenLive(v) {
			return errors.New("the access token is still live at the fake; an exchange revokes the one before it")
		}
		return nil
	})
}

// ReplacesAccessToken checks that a value is another access token than *prev (captured by an earlier step), and
// that the fake no longer accepts *prev: a rotation revokes the pair before it.
func ReplacesAccessToken(s *bipsynctest.Server, prev *string) knownvalue.Check {
	return knownvalue.StringFunc(func(v string) error {
		switch {
		case *prev == "":
			return errors.New("no previous access token was captured")
		case v == *prev:
			return errors.New("the access token is the previous one; want a new one")
		case s.AccessTokenLive(*prev):
			return errors.New("the previous access token is still live at the fake; a rotation revokes it")
		}
		return nil
	})
}

// LiveRefreshToken checks that a value is the head of a live chain at the fake.
func LiveRefreshToken(s *bipsynctest.Server) knownvalue.Check {
	return knownvalue.StringFunc(func(v string) error {
		if !s.RefreshTokenLive(v) {
			return errors.New("the refresh token is not live at the fake")
		}
		return nil
	})
}

// AccessTokenScopes checks the scopes the fake's protected endpoint (GET /v1/me) sees on an access token.
func AccessTokenScopes(s *bipsynctest.Server, want ...string) knownvalue.Check {
	want = slices.Sorted(slices.Values(want))
	return knownvalue.StringFunc(func(v string) error {
		got, err := meScopes(s.URL(), v)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("access token scopes: got %v; want %v", got, want)
		}
		return nil
	})
}

// meScopes asks the protected endpoint at baseURL which scopes an access token carries.
func meScopes(baseURL, accessToken string) ([]string, error) {
	req, err := http.NewRequest(http.MethodGet, baseURL+"/v1/me", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/v1/me: got status %d; want 200", resp.StatusCode)
	}
	var me struct {
		Scopes []string `json:"scopes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&me); err != nil {
		return nil, err
	}
	slices.Sort(me.Scopes)
	return me.Scopes, nil
}

// RFC3339 checks a time attribute as the provider stores times: RFC 3339, UTC, whole seconds.
func RFC3339(t time.Time) knownvalue.Check {
	return knownvalue.StringExact(t.UTC().Format(time.RFC3339))
}

// ExpectNoSecrets is a state check that none of secrets appears anywhere in the state JSON as the engine shows it
// (values, sensitive or not, included). An empty secret fails the check: it would prove nothing.
func ExpectNoSecrets(secrets ...string) statecheck.StateCheck {
	return noSecrets(secrets)
}

type noSecrets []string

func (c noSecrets) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	b, err := json.Marshal(req.State)
	if err != nil {
		resp.Error = err
		return
	}
	for i, s := range c {
		if s == "" || strings.Contains(string(b), s) {
			resp.Error = fmt.Errorf("state JSON holds secret #%d (or the secret is empty)", i)
			return
		}
	}
}

// CheckShowJSON runs state checks on the output of an engine's `show -json` of a state, for tests that drive the
// engine themselves: they read state with the same checks terraform-plugin-testing steps use.
func CheckShowJSON(showJSON []byte, checks ...statecheck.StateCheck) error {
	var st tfjson.State
	if err := json.Unmarshal(showJSON, &st); err != nil {
		return fmt.Errorf("decoding show -json: %w", err)
	}
	var errs []error
	for _, c := range checks {
		var resp statecheck.CheckStateResponse
		c.CheckState(context.Background(), statecheck.CheckStateRequest{State: &st}, &resp)
		errs = append(errs, resp.Error)
	}
	return errors.Join(errs...)
}
