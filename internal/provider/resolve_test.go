package provider

import (
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// The resolution itself: which setting a diagnostic names, and that none quotes the connection string's password.
func TestResolvePostgres(t *testing.T) {
	t.Parallel()
	const pw = "Pa55-w0rd-resolve"
	for name, tc := range map[string]struct {
		m        tokenStoreModel
		wantPath string
		want     string
	}{
		"bad conn_str": {tokenStoreModel{Backend: types.StringValue("postgres"), ConnStr: types.StringValue("host=db password=" + pw + " sslmode=maybe")},
			"token_store.conn_str", "Invalid Bipsync Token Store Setting"},
		"bad url": {tokenStoreModel{Backend: types.StringValue("postgres"), ConnStr: types.StringValue("postgres://runner:" + pw + "@db:port/tf")},
			"token_store.conn_str", "Invalid Bipsync Token Store Setting"},
		"empty schema": {tokenStoreModel{Backend: types.StringValue("postgres"), SchemaName: types.StringValue("")},
			"token_store.schema_name", "Invalid Bipsync Token Store Setting"},
		"conn_str for the file store": {tokenStoreModel{Backend: types.StringValue("file"), ConnStr: types.StringValue("password=" + pw)},
			"token_store.conn_str", "Bipsync Token Store Setting Without Effect"},
		"unknown conn_str": {tokenStoreModel{Backend: types.StringValue("postgres"), ConnStr: types.StringUnknown()},
			"token_store.conn_str", "Unknown Bipsync Token Store Setting"},
	} {
		m := tc.m // the zero types.String is null, as an unset attribute is
		m.Command = types.ListNull(types.StringType)
		var diags diag.Diagnostics
		var cfg resolvedConfig
		resolveStore(&m, &diags, &cfg)
		if len(diags) != 1 {
			t.Errorf("%s: got %d diagnostics (%v); want 1", name, len(diags), diags)
			continue
		}
		d := diags[0]
		ad, ok := d.(diag.DiagnosticWithPath)
		if !ok || ad.Path().String() != tc.wantPath || d.Summary() != tc.want {
			t.Errorf("%s: got %q at %v; want %q at %s", name, d.Summary(), d, tc.want, tc.wantPath)
		}
		if strings.Contains(d.Detail(), pw) {
			t.Errorf("%s: the detail quotes the password: %s", name, d.Detail())
		}
	}
	var diags diag.Diagnostics
	var cfg resolvedConfig
	resolveStore(&tokenStoreModel{Backend: types.StringValue("postgres"), Path: types.StringNull(), Command: types.ListNull(types.StringType),
		ConnStr: types.StringValue("host=db.internal dbname=tf"), SchemaName: types.StringNull()}, &diags, &cfg)
	if diags.HasError() || cfg.storeBackend != "postgres" || cfg.storeConnStr != "host=db.internal dbname=tf" || cfg.storeSchemaName != "" {
		t.Fatalf("got %v, %+v; want the postgres settings resolved", diags, cfg)
	}
}
