package provider

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
)

// TestDocs_runbookNamesEveryDiagnostic fails when the provider can report a diagnostic summary that the
// reauthorization runbook does not name: the runbook promises every one. The provider's summaries are allSummaries
// (TestDiagnostics_everySummaryListed keeps that list complete, TestDiagnostics_noLiteralSummaries keeps call sites to
// it); internal/tokensource returns typed warnings that the provider words with these constants.
func TestDocs_runbookNamesEveryDiagnostic(t *testing.T) {
	t.Parallel()
	root := exampleRepoRoot(t)
	runbook, err := os.ReadFile(filepath.Join(root, "templates", "guides", "reauthorization-runbook.md.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range allSummaries {
		if !bytes.Contains(runbook, []byte(s)) {
			t.Errorf("the runbook does not name the diagnostic %q; want a row or a section for it", s)
		}
	}
}

// TestSchemas_everyAttributeDescribed fails on any schema, attribute or block without a MarkdownDescription: the
// docs are generated from them. Descriptions are full sentences, so each must end with a full stop.
func TestSchemas_everyAttributeDescribed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := New("test")()

	schemas := map[string]any{}
	var pr provider.SchemaResponse
	p.Schema(ctx, provider.SchemaRequest{}, &pr)
	schemas["provider"] = pr.Schema
	for _, newResource := range p.Resources(ctx) {
		r := newResource()
		var meta fwresource.MetadataResponse
		r.Metadata(ctx, fwresource.MetadataRequest{ProviderTypeName: "bipsync"}, &meta)
		var resp fwresource.SchemaResponse
		r.Schema(ctx, fwresource.SchemaRequest{}, &resp)
		schemas["resource "+meta.TypeName] = resp.Schema
	}
	if pe, ok := p.(provider.ProviderWithEphemeralResources); ok {
		for _, newEphemeral := range pe.EphemeralResources(ctx) {
			e := newEphemeral()
			var meta ephemeral.MetadataResponse
			e.Metadata(ctx, ephemeral.MetadataRequest{ProviderTypeName: "bipsync"}, &meta)
			var resp ephemeral.SchemaResponse
			e.Schema(ctx, ephemeral.SchemaRequest{}, &resp)
			schemas["ephemeral "+meta.TypeName] = resp.Schema
		}
	}
	for _, newDataSource := range p.DataSources(ctx) {
		d := newDataSource()
		var meta datasource.MetadataResponse
		d.Metadata(ctx, datasource.MetadataRequest{ProviderTypeName: "bipsync"}, &meta)
		var resp datasource.SchemaResponse
		d.Schema(ctx, datasource.SchemaRequest{}, &resp)
		schemas["data "+meta.TypeName] = resp.Schema
	}
	if len(schemas) < 4 {
		t.Fatalf("got %d schemas; want the provider, resource, ephemeral resource and data source", len(schemas))
	}

	var described int
	for name, s := range schemas {
		walkDescriptions(reflect.ValueOf(s), name, func(path, desc string) {
			described++
			switch {
			case strings.TrimSpace(desc) == "":
				t.Errorf("%s: got an empty MarkdownDescription; want a description (the docs are generated from it)", path)
			case !strings.HasSuffix(strings.TrimSpace(desc), "."):
				t.Errorf("%s: description %q does not end with a full stop; want full sentences", path, desc)
			}
		})
	}
	if described < 40 {
		t.Errorf("checked %d descriptions; want every schema, attribute and block (at least 40)", described)
	}
}

// walkDescriptions calls fn for every schema, attribute and block in v with its MarkdownDescription. The schema
// types of the framework's packages differ but share field names: MarkdownDescription, Attributes, Blocks and
// NestedObject.
func walkDescriptions(v reflect.Value, path string, fn func(path, desc string)) {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return
	}
	if d := v.FieldByName("MarkdownDescription"); d.IsValid() && d.Kind() == reflect.String {
		fn(path, d.String())
	}
	for _, field := range []string{"Attributes", "Blocks"} {
		m := v.FieldByName(field)
		if !m.IsValid() || m.Kind() != reflect.Map {
			continue
		}
		keys := m.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			walkDescriptions(m.MapIndex(k), path+"."+k.String(), fn)
		}
	}
	if n := v.FieldByName("NestedObject"); n.IsValid() {
		walkNested(n, path, fn)
	}
}

// walkNested descends into a nested object, which has attributes (and blocks) but no description of its own.
func walkNested(v reflect.Value, path string, fn func(path, desc string)) {
	for _, field := range []string{"Attributes", "Blocks"} {
		m := v.FieldByName(field)
		if !m.IsValid() || m.Kind() != reflect.Map {
			continue
		}
		for _, k := range m.MapKeys() {
			walkDescriptions(m.MapIndex(k), path+"."+k.String(), fn)
		}
	}
}
