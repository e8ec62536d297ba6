package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestRefreshGrant_checkGrantNarrowing(t *testing.T) {
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
		allow       bool
		wantWarning bool
		wantError   bool
	}{
		{"narrowing a chain of known scopes", set("read"), set("read", "write"), false, false, true},
		{"narrowing allowed", set("read"), set("read", "write"), true, true, false},
		{"same", set("read", "write"), set("write", "read"), false, false, false},
		{"widening (checkScopeWidening's)", set("read", "write"), set("read"), false, false, false},
		{"scopes not known in state", set("read"), set(), false, false, false},
		{"unset in plan keeps the chain's scopes", set(), set("read", "write"), false, false, false},
		{"unknown in plan", types.SetUnknown(types.StringType), set("read", "write"), false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var diags diag.Diagnostics
			plan := &refreshGrantModel{Scopes: tc.plan, AllowNarrowing: types.BoolValue(tc.allow)}
			checkGrantNarrowing(context.Background(), plan, &refreshGrantModel{Scopes: tc.state}, &diags)
			if got := diags.WarningsCount() > 0; got != tc.wantWarning {
				t.Errorf("warning: got %t; want %t (%v)", got, tc.wantWarning, diags)
			}
			errs := diags.Errors()
			if !tc.wantError {
				if len(errs) != 0 {
					t.Errorf("errors: got %v; want none", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Summary() != summaryNoNarrowing || !strings.Contains(errs[0].Detail(), "allow_narrowing = true") ||
				!strings.Contains(errs[0].Detail(), "[read write]") {
				t.Errorf("errors: got %v; want one %q naming allow_narrowing and the chain's scopes", errs, summaryNoNarrowing)
			}
		})
	}
}
