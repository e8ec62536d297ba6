package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// tally counts the refresh requests of the demo's two chains.
type tally struct {
	grant, ephemeral                 int // exchanges answered with new tokens
	grantRejected, ephemeralRejected int // exchanges answered with an OAuth error
	other                            int // refresh requests that belong to neither chain
}

func (t tally) String() string {
	s := fmt.Sprintf("%d exchanges on the grant chain and %d on the ephemeral chain", t.grant, t.ephemeral)
	if t.grantRejected+t.ephemeralRejected > 0 {
		s += fmt.Sprintf(", %d refused on the grant chain and %d on the ephemeral chain", t.grantRejected, t.ephemeralRejected)
	}
	if t.other > 0 {
		s += fmt.Sprintf(", %d refresh requests for neither chain", t.other)
	}
	return s
}

func (t *tally) add(u tally) {
	t.grant += u.grant
	t.ephemeral += u.ephemeral
	t.grantRejected += u.grantRejected
	t.ephemeralRejected += u.ephemeralRejected
	t.other += u.other
}

// tallyRequests counts the refresh requests in a slice of the fake's log.
// The chains are told apart by the scopes they ask for.
func tallyRequests(reqs []bipsynctest.LoggedRequest) tally {
	var t tally
	for _, r := range reqs {
		if r.Path != bipsynctest.TokenPath || r.GrantType != "refresh_token" {
			continue
		}
		ok := isExchange(r)
		switch {
		case sameScopes(r.Scope, grantScopes) && ok:
			t.grant++
		case sameScopes(r.Scope, grantScopes):
			t.grantRejected++
		case sameScopes(r.Scope, ephemeralScopes) && ok:
			t.ephemeral++
		case sameScopes(r.Scope, ephemeralScopes):
			t.ephemeralRejected++
		default:
			t.other++
		}
	}
	return t
}

// isExchange reports whether r is a refresh request the fake answered with
// new tokens.
func isExchange(r bipsynctest.LoggedRequest) bool {
	return r.Path == bipsynctest.TokenPath && r.GrantType == "refresh_token" && r.Status == http.StatusOK && r.Error == ""
}

// sameScopes compares a space-separated scope parameter with a set.
func sameScopes(param string, want []string) bool {
	got := strings.Fields(param)
	slices.Sort(got)
	w := slices.Clone(want)
	slices.Sort(w)
	return slices.Equal(got, w)
}

// grantState is what the demo reads of the grant in state.
type grantState struct {
	RefreshToken          string
	RotatedAt             time.Time
	ExpiresAt             time.Time
	RefreshTokenExpiresAt time.Time
}

// grantState reads the grant from `show -json`. The output holds sensitive
// values in clear, so it is parsed and dropped, never printed.
func (d *demo) grantState(ctx context.Context) (grantState, error) {
	out, err := d.eng.capture(ctx, d.vars, "show", "-json")
	if err != nil {
		return grantState{}, err
	}
	return parseGrantState(out, grantAddress)
}

func parseGrantState(data []byte, address string) (grantState, error) {
	var doc struct {
		Values struct {
			RootModule struct {
				Resources []struct {
					Address string `json:"address"`
					Values  struct {
						RefreshToken          string `json:"refresh_token"`
						RotatedAt             string `json:"rotated_at"`
						ExpiresAt             string `json:"expires_at"`
						RefreshTokenExpiresAt string `json:"refresh_token_expires_at"`
					} `json:"values"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		// The decoder's error quotes no input, only offsets and types.
		return grantState{}, fmt.Errorf("read show -json: %w", err)
	}
	for _, r := range doc.Values.RootModule.Resources {
		if r.Address != address {
			continue
		}
		var s grantState
		s.RefreshToken = r.Values.RefreshToken
		for _, f := range []struct {
			name string
			in   string
			out  *time.Time
		}{
			{"rotated_at", r.Values.RotatedAt, &s.RotatedAt},
			{"expires_at", r.Values.ExpiresAt, &s.ExpiresAt},
			{"refresh_token_expires_at", r.Values.RefreshTokenExpiresAt, &s.RefreshTokenExpiresAt},
		} {
			t, err := time.Parse(time.RFC3339, f.in)
			if err != nil {
				return grantState{}, fmt.Errorf("read show -json: %s of %s: %w", f.name, address, err)
			}
			*f.out = t
		}
		if s.RefreshToken == "" {
			return grantState{}, fmt.Errorf("read show -json: %s has no refresh_token", address)
		}
		return s, nil
	}
	return grantState{}, fmt.Errorf("read show -json: no %s in state", address)
}

// planActions returns the planned action of each resource in a saved plan:
// "no-op", "create", "update", "delete", or "replace".
func (d *demo) planActions(ctx context.Context, plan string) (map[string]string, error) {
	out, err := d.eng.capture(ctx, d.vars, "show", "-json", plan)
	if err != nil {
		return nil, err
	}
	return parsePlanActions(out)
}

func parsePlanActions(data []byte) (map[string]string, error) {
	var doc struct {
		ResourceChanges []struct {
			Address string `json:"address"`
			Change  struct {
				Actions []string `json:"actions"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("read show -json of the plan: %w", err)
	}
	out := make(map[string]string, len(doc.ResourceChanges))
	for _, rc := range doc.ResourceChanges {
		a := strings.Join(rc.Change.Actions, ",")
		if len(rc.Change.Actions) == 2 {
			a = "replace"
		}
		out[rc.Address] = a
	}
	return out, nil
}

// fingerprint names a token without revealing it: the first 8 hex digits of
// its SHA-256.
func fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:4])
}
