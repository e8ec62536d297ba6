package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/bipsync/terraform-provider-bipsync/internal/provider"
)

// TestFloor_SchemaMatchesProvider keeps the floor honest: the comparison means something only while both binaries
// accept the same configuration and answer with values of the same shape. Descriptions, validators and plan
// modifiers may differ; names, types and flags may not.
func TestFloor_SchemaMatchesProvider(t *testing.T) {
	t.Parallel()
	want := schemaOf(t, providerserver.NewProtocol6(provider.New("test")())())
	got := schemaOf(t, providerserver.NewProtocol6(newProvider())())

	tests := []struct {
		name      string
		got, want *tfprotov6.Schema
	}{
		{"provider", got.Provider, want.Provider},
		{"resource bipsync_refresh_grant", got.ResourceSchemas["bipsync_refresh_grant"], want.ResourceSchemas["bipsync_refresh_grant"]},
		{"ephemeral bipsync_access_token", got.EphemeralResourceSchemas["bipsync_access_token"], want.EphemeralResourceSchemas["bipsync_access_token"]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.want == nil {
				t.Fatalf("the Bipsync provider has no such schema; the floor is out of date")
			}
			if tt.got == nil {
				t.Fatalf("the floor has no such schema")
			}
			if g, w := shape(tt.got.Block, ""), shape(tt.want.Block, ""); g != w {
				t.Errorf("floor schema:\n%s\ngot the above; want the Bipsync provider's:\n%s", g, w)
			}
		})
	}
}

// TestFloor_CannedValues checks the canned answers: every computed attribute gets a known value of the right form,
// so the engine does the same walk as with the Bipsync provider.
func TestFloor_CannedValues(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var m grantModel
	cannedGrant(&m, now)
	if got, want := m.ExpiresAt.ValueString(), "2025-01-02T04:04:05Z"; got != want {
		t.Errorf("expires_at: got %s; want %s", got, want)
	}
	if got, want := m.RefreshTokenExpiresAt.ValueString(), "2025-02-01T03:04:05Z"; got != want {
		t.Errorf("refresh_token_expires_at: got %s; want %s", got, want)
	}
	for name, v := range map[string]string{"access_token": m.AccessToken.ValueString(), "refresh_token": m.RefreshToken.ValueString(),
		"token_type": m.TokenType.ValueString(), "rotated_at": m.RotatedAt.ValueString()} {
		if v == "" {
			t.Errorf("%s: got empty; want a canned value", name)
		}
	}
}

func schemaOf(t *testing.T, s tfprotov6.ProviderServer) *tfprotov6.GetProviderSchemaResponse {
	t.Helper()
	resp, err := s.GetProviderSchema(context.Background(), &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatalf("GetProviderSchema: %v", err)
	}
	for _, d := range resp.Diagnostics {
		if d.Severity == tfprotov6.DiagnosticSeverityError {
			t.Fatalf("GetProviderSchema: %s: %s", d.Summary, d.Detail)
		}
	}
	return resp
}

// shape renders a block as sorted lines of name, type and flags.
func shape(b *tfprotov6.SchemaBlock, prefix string) string {
	if b == nil {
		return ""
	}
	var lines []string
	for _, a := range b.Attributes {
		lines = append(lines, fmt.Sprintf("%s%s %s optional=%t required=%t computed=%t sensitive=%t write_only=%t",
			prefix, a.Name, a.Type, a.Optional, a.Required, a.Computed, a.Sensitive, a.WriteOnly))
	}
	for _, nb := range b.BlockTypes {
		lines = append(lines, fmt.Sprintf("%s%s block nesting=%v min=%d max=%d", prefix, nb.TypeName, nb.Nesting, nb.MinItems, nb.MaxItems))
		if inner := shape(nb.Block, prefix+nb.TypeName+"."); inner != "" {
			lines = append(lines, inner)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
