package provider

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDiagnostics_everySummaryListed fails when a summary constant of diagnostics.go is missing from allSummaries (or
// the list names something else), so a new summary cannot escape the runbook test, which walks the list.
func TestDiagnostics_everySummaryListed(t *testing.T) {
	t.Parallel()
	f, err := parser.ParseFile(token.NewFileSet(), "diagnostics.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var constants, listed []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, spec := range g.Specs {
			vs, ok := spec.(*ast.ValueSpec)
			if !ok {
				continue
			}
			for i, name := range vs.Names {
				switch {
				case g.Tok == token.CONST && strings.HasPrefix(name.Name, "summary"):
					constants = append(constants, name.Name)
				case g.Tok == token.VAR && name.Name == "allSummaries" && i < len(vs.Values):
					list, ok := vs.Values[i].(*ast.CompositeLit)
					if !ok {
						t.Fatalf("allSummaries: got a %T; want a slice literal of the summary constants", vs.Values[i])
					}
					for _, e := range list.Elts {
						id, ok := e.(*ast.Ident)
						if !ok {
							t.Fatalf("allSummaries: got an element of type %T; want only summary constants", e)
						}
						listed = append(listed, id.Name)
					}
				}
			}
		}
	}
	if len(constants) < 40 {
		t.Fatalf("found %d summary constants in diagnostics.go; want at least 40 (has the code moved?)", len(constants))
	}
	for _, c := range constants {
		if !slices.Contains(listed, c) {
			t.Errorf("allSummaries does not list %s; want every summary constant of diagnostics.go in it", c)
		}
	}
	for _, l := range listed {
		if !slices.Contains(constants, l) {
			t.Errorf("allSummaries lists %s; want only summary constants of diagnostics.go", l)
		}
	}
	seen := map[string]bool{}
	for _, s := range allSummaries {
		if s == "" || seen[s] {
			t.Errorf("allSummaries: got %q twice or empty; want distinct summaries", s)
		}
		seen[s] = true
	}
}

// TestDiagnostics_noLiteralSummaries fails when a call that adds a diagnostic passes a summary written at the call
// site (a string literal, or one built from one) instead of a constant of diagnostics.go.
func TestDiagnostics_noLiteralSummaries(t *testing.T) {
	t.Parallel()
	// The index of the summary argument of each method that adds a diagnostic.
	summaryArg := map[string]int{
		"AddError": 0, "AddWarning": 0, "NewErrorDiagnostic": 0, "NewWarningDiagnostic": 0,
		"AddAttributeError": 1, "AddAttributeWarning": 1, "NewAttributeErrorDiagnostic": 1,
		"NewAttributeWarningDiagnostic": 1,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	calls := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			i, ok := summaryArg[sel.Sel.Name]
			if !ok || i >= len(call.Args) {
				return true
			}
			calls++
			ast.Inspect(call.Args[i], func(n ast.Node) bool {
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					t.Errorf("%s: %s is given the summary %s; want a summary constant of diagnostics.go (in allSummaries)",
						fset.Position(lit.Pos()), sel.Sel.Name, lit.Value)
				}
				return true
			})
			return true
		})
	}
	if calls < 25 {
		t.Errorf("found %d calls that add a diagnostic; want at least 25 (has the code moved?)", calls)
	}
}

// TestDiagnostics_authorizeAnewNamesTheCommand holds every "a person must authorize anew" step to naming the command
// that does it, with the client ID when the diagnostic knows it, and the guide.
func TestDiagnostics_authorizeAnewNamesTheCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ clientID, want string }{
		{"acme-reporting", "`terraform-provider-bipsync authorize -client-id acme-reporting -out FILE`"},
		{"", "`terraform-provider-bipsync authorize -out FILE`"},
	} {
		got := authorizeAnew(tc.clientID, "[read]", reseedGrant)
		for _, want := range []string{tc.want, "-pkce", "consenting to [read]", "Getting a refresh token", "2. " + string(reseedGrant)} {
			if !strings.Contains(got, want) {
				t.Errorf("authorizeAnew(%q): %q does not say %q", tc.clientID, got, want)
			}
		}
	}
}
