package bipsynctest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestAdmin_documentedInREADME fails when an endpoint mountAdmin serves is missing from the README's table of the
// fake's endpoints ("Try it locally"), the one place users read about them.
func TestAdmin_documentedInREADME(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("admin.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	routes := regexp.MustCompile(`HandleFunc\("(GET|POST) "\s*\+\s*AdminPrefix\s*\+\s*"([^"]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(routes) < 5 {
		t.Fatalf("found %d admin routes in admin.go; want at least 5 (has the code moved?)", len(routes))
	}
	for _, r := range routes {
		if row := "| `" + r[1] + " " + AdminPrefix + r[2]; !strings.Contains(string(readme), row) {
			t.Errorf("README.md has no row for %s %s%s; want one in the table of the fake's endpoints", r[1], AdminPrefix, r[2])
		}
	}
}
