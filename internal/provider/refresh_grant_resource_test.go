package provider

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestRefreshGrant_checkChainLife(t *testing.T) {
	t.Parallel()
	deadline := time.Date(2026, 12, 25, 9, 0, 0, 0, time.UTC)
	accessExpiry := time.Date(2026, 12, 19, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		expiresAt   timetypes.RFC3339
		now         time.Time
		wantWarning bool
		wantError   bool
	}{
		{"eight days left", timetypes.NewRFC3339TimeValue(deadline), deadline.Add(-8 * 24 * time.Hour), false, false},
		{"exactly seven days left", timetypes.NewRFC3339TimeValue(deadline), deadline.Add(-7 * 24 * time.Hour), false, false},
		{"just under seven days left", timetypes.NewRFC3339TimeValue(deadline), deadline.Add(-7*24*time.Hour + time.Second), true, false},
		{"one second left", timetypes.NewRFC3339TimeValue(deadline), deadline.Add(-time.Second), true, false},
		{"at the deadline", timetypes.NewRFC3339TimeValue(deadline), deadline, false, true},
		{"a day late", timetypes.NewRFC3339TimeValue(deadline), deadline.Add(24 * time.Hour), false, true},
		{"unknown", timetypes.NewRFC3339Unknown(), deadline, false, false},
		{"null", timetypes.NewRFC3339Null(), deadline, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var diags diag.Diagnostics
			checkChainLife(&refreshGrantModel{RefreshTokenExpiresAt: tc.expiresAt, ExpiresAt: timetypes.NewRFC3339TimeValue(accessExpiry)},
				tc.now, &diags)
			if got := diags.HasError(); got != tc.wantError {
				t.Errorf("error: got %t; want %t (%v)", got, tc.wantError, diags)
			}
			if got := diags.WarningsCount() > 0; got != tc.wantWarning {
				t.Errorf("warning: got %t; want %t (%v)", got, tc.wantWarning, diags)
			}
			for _, d := range diags {
				want := "Bipsync Refresh Chain Expiring Soon"
				if d.Severity() == diag.SeverityError {
					want = summaryReauth
				}
				if d.Summary() != want {
					t.Errorf("summary: got %q; want %q", d.Summary(), want)
				}
				if !strings.Contains(d.Detail(), deadline.Format(time.RFC3339)) {
					t.Errorf("detail: got %q; want the deadline %s", d.Detail(), deadline.Format(time.RFC3339))
				}
				if d.Severity() == diag.SeverityWarning {
					// The remedy the right way round: an apply rotates once less than rotate_before is left, and
					// keepers force a rotation at once.
					for _, want := range []string{"less than rotate_before left", "change a value in keepers and apply",
						"access token in state expires at " + accessExpiry.Format(time.RFC3339)} {
						if !strings.Contains(d.Detail(), want) {
							t.Errorf("warning detail: got %q; want it to say %q", d.Detail(), want)
						}
					}
				}
			}
		})
	}
}

func TestRefreshGrant_checkScopeWidening(t *testing.T) {
	t.Parallel()
	set := func(s ...string) types.Set {
		if s == nil {
			return types.SetNull(types.StringType)
		}
		v, _ := types.SetValueFrom(context.Background(), types.StringType, s)
		return v
	}
	tests := []struct {
		name        string
		plan, state types.Set
		wantWarning bool
		wantError   string // a word of the error detail, "" for none
	}{
		{"same", set("read", "write"), set("read", "write"), false, ""},
		{"narrowing (checkGrantNarrowing's)", set("read"), set("read", "write"), false, ""},
		{"widening", set("read", "write"), set("read"), false, "[write]"},
		{"other scope", set("team_abc"), set("read", "write"), false, "[team_abc]"},
		{"unset in plan", set(), set("read"), false, ""},
		{"unset in state", set("read", "write", "team_abc"), set(), false, ""},
		{"unknown in plan", types.SetUnknown(types.StringType), set("read"), false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var diags diag.Diagnostics
			checkScopeWidening(context.Background(), &refreshGrantModel{Scopes: tc.plan}, &refreshGrantModel{Scopes: tc.state}, &diags)
			if got := diags.WarningsCount() > 0; got != tc.wantWarning {
				t.Errorf("warning: got %t; want %t (%v)", got, tc.wantWarning, diags)
			}
			errs := diags.Errors()
			if tc.wantError == "" {
				if len(errs) != 0 {
					t.Errorf("errors: got %v; want none", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Summary() != summaryReauth || !strings.Contains(errs[0].Detail(), tc.wantError) {
				t.Errorf("errors: got %v; want one %q naming %s", errs, summaryReauth, tc.wantError)
			}
		})
	}
}
