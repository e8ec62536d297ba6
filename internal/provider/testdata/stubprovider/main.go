// Command stubprovider stands in for the third-party providers that the examples hand Bipsync tokens to
// (Mastercard/restapi, hashicorp/aws, hashicorp/http), so that TestExamples_validate can run `validate` on every
// example without a network. Installed as terraform-provider-<name>, it serves the schema of <name>.
//
// Each stand-in declares only the arguments the examples use, with the types, sensitivity and write-only flags
// their providers document. Validation then checks what matters on the Bipsync side: references, types, and the
// engine's rules for ephemeral values (a provider block or a write-only argument may take one; nothing else may).
// It cannot catch a misspelt argument of the real provider that the stand-in also misspells. It never plans or
// applies: every operation but validation fails.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	dschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	pschema "github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	rschema "github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// kind is an argument's type.
type kind int

const (
	str kind = iota
	number
	boolean
	stringMap
)

// arg is one argument or attribute of a stand-in schema.
type arg struct {
	kind      kind
	required  bool
	computed  bool
	sensitive bool
	writeOnly bool
}

func optional(k kind) arg { return arg{kind: k} }
func required(k kind) arg { return arg{kind: k, required: true} }
func computed(k kind) arg { return arg{kind: k, computed: true} }

type stand struct {
	provider    map[string]arg
	resources   map[string]map[string]arg
	dataSources map[string]map[string]arg
}

// stands are the stand-ins, by provider type name. The arguments come from each provider's documentation.
var stands = map[string]stand{
	// registry: Mastercard/restapi, docs/index.md and docs/resources/object.md.
	"restapi": {
		provider: map[string]arg{
			"uri":                  required(str),
			"headers":              optional(stringMap),
			"write_returns_object": optional(boolean),
		},
		resources: map[string]map[string]arg{
			"restapi_object": {
				"path": required(str),
				"data": required(str),
				"id":   computed(str),
			},
		},
	},
	// registry: hashicorp/aws, secretsmanager_secret and secretsmanager_secret_version.
	"aws": {
		provider: map[string]arg{
			"region": optional(str),
		},
		resources: map[string]map[string]arg{
			"aws_secretsmanager_secret": {
				"name": optional(str),
				"arn":  computed(str),
				"id":   computed(str),
			},
			"aws_secretsmanager_secret_version": {
				"secret_id":                required(str),
				"secret_string_wo":         {kind: str, sensitive: true, writeOnly: true},
				"secret_string_wo_version": optional(number),
				"version_id":               computed(str),
				"id":                       computed(str),
			},
		},
	},
	// registry: hashicorp/http, data source http.
	"http": {
		provider: map[string]arg{},
		dataSources: map[string]map[string]arg{
			"http": {
				"url":             required(str),
				"request_headers": optional(stringMap),
				"response_body":   computed(str),
				"status_code":     computed(number),
				"id":              computed(str),
			},
		},
	},
}

func main() {
	// terraform-provider-<name>, or terraform-provider-<name>_v<version> as a filesystem mirror names it.
	name := strings.TrimPrefix(filepath.Base(os.Args[0]), "terraform-provider-")
	name = strings.TrimSuffix(name, ".exe")
	name, _, _ = strings.Cut(name, "_v")
	s, ok := stands[name]
	if !ok {
		log.Fatalf("stubprovider: no stand-in named %q (install it as terraform-provider-<name>)", name)
	}
	err := providerserver.Serve(context.Background(), func() provider.Provider { return &stubProvider{name: name, stand: s} },
		providerserver.ServeOpts{Address: "registry.terraform.io/stub/" + name})
	if err != nil {
		log.Fatal(err)
	}
}

type stubProvider struct {
	name  string
	stand stand
}

func (p *stubProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = p.name
}

func (p *stubProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	attrs := map[string]pschema.Attribute{}
	for n, a := range p.stand.provider {
		switch a.kind {
		case str:
			attrs[n] = pschema.StringAttribute{Required: a.required, Optional: !a.required, Sensitive: a.sensitive}
		case number:
			attrs[n] = pschema.Int64Attribute{Required: a.required, Optional: !a.required, Sensitive: a.sensitive}
		case boolean:
			attrs[n] = pschema.BoolAttribute{Required: a.required, Optional: !a.required, Sensitive: a.sensitive}
		case stringMap:
			attrs[n] = pschema.MapAttribute{ElementType: types.StringType, Required: a.required, Optional: !a.required, Sensitive: a.sensitive}
		}
	}
	resp.Schema = pschema.Schema{Attributes: attrs}
}

// Configure does nothing: validation never configures a provider.
func (p *stubProvider) Configure(context.Context, provider.ConfigureRequest, *provider.ConfigureResponse) {
}

func (p *stubProvider) Resources(context.Context) []func() resource.Resource {
	var out []func() resource.Resource
	for _, n := range sortedKeys(p.stand.resources) {
		r := &stubResource{name: n, args: p.stand.resources[n]}
		out = append(out, func() resource.Resource { return r })
	}
	return out
}

func (p *stubProvider) DataSources(context.Context) []func() datasource.DataSource {
	var out []func() datasource.DataSource
	for _, n := range sortedKeys(p.stand.dataSources) {
		d := &stubDataSource{name: n, args: p.stand.dataSources[n]}
		out = append(out, func() datasource.DataSource { return d })
	}
	return out
}

type stubResource struct {
	name string
	args map[string]arg
}

func (r *stubResource) Metadata(_ context.Context, _ resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = r.name
}

func (r *stubResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	attrs := map[string]rschema.Attribute{}
	for n, a := range r.args {
		opt := !a.required && !a.computed
		switch a.kind {
		case str:
			attrs[n] = rschema.StringAttribute{Required: a.required, Optional: opt, Computed: a.computed, Sensitive: a.sensitive, WriteOnly: a.writeOnly}
		case number:
			attrs[n] = rschema.Int64Attribute{Required: a.required, Optional: opt, Computed: a.computed, Sensitive: a.sensitive, WriteOnly: a.writeOnly}
		case boolean:
			attrs[n] = rschema.BoolAttribute{Required: a.required, Optional: opt, Computed: a.computed, Sensitive: a.sensitive, WriteOnly: a.writeOnly}
		case stringMap:
			attrs[n] = rschema.MapAttribute{ElementType: types.StringType, Required: a.required, Optional: opt, Computed: a.computed, Sensitive: a.sensitive, WriteOnly: a.writeOnly}
		}
	}
	resp.Schema = rschema.Schema{Attributes: attrs}
}

func (r *stubResource) Create(_ context.Context, _ resource.CreateRequest, resp *resource.CreateResponse) {
	resp.Diagnostics.AddError("Stand-In Provider", notForUse(r.name))
}

func (r *stubResource) Read(_ context.Context, _ resource.ReadRequest, resp *resource.ReadResponse) {
	resp.Diagnostics.AddError("Stand-In Provider", notForUse(r.name))
}

func (r *stubResource) Update(_ context.Context, _ resource.UpdateRequest, resp *resource.UpdateResponse) {
	resp.Diagnostics.AddError("Stand-In Provider", notForUse(r.name))
}

func (r *stubResource) Delete(_ context.Context, _ resource.DeleteRequest, resp *resource.DeleteResponse) {
	resp.Diagnostics.AddError("Stand-In Provider", notForUse(r.name))
}

type stubDataSource struct {
	name string
	args map[string]arg
}

func (d *stubDataSource) Metadata(_ context.Context, _ datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = d.name
}

func (d *stubDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	attrs := map[string]dschema.Attribute{}
	for n, a := range d.args {
		opt := !a.required && !a.computed
		switch a.kind {
		case str:
			attrs[n] = dschema.StringAttribute{Required: a.required, Optional: opt, Computed: a.computed, Sensitive: a.sensitive}
		case number:
			attrs[n] = dschema.Int64Attribute{Required: a.required, Optional: opt, Computed: a.computed, Sensitive: a.sensitive}
		case boolean:
			attrs[n] = dschema.BoolAttribute{Required: a.required, Optional: opt, Computed: a.computed, Sensitive: a.sensitive}
		case stringMap:
			attrs[n] = dschema.MapAttribute{ElementType: types.StringType, Required: a.required, Optional: opt, Computed: a.computed, Sensitive: a.sensitive}
		}
	}
	resp.Schema = dschema.Schema{Attributes: attrs}
}

func (d *stubDataSource) Read(_ context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	resp.Diagnostics.AddError("Stand-In Provider", notForUse(d.name))
}

func notForUse(name string) string {
	return fmt.Sprintf("%s is a stand-in that only validates configurations; it cannot plan or apply.", name)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
