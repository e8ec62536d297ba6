package provider

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestDocs_runbookNamesEveryDiagnostic fails when the provider can report a diagnostic summary that the
// reauthorization runbook does not name: the runbook promises every one. The provider's summaries are allSummaries
// (TestDiagnostics_everySummaryListed keeps that list complete); the warnings internal/tokensource words itself must
// be among them.
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
	for _, s := range tokensourceSummaries(t, filepath.Join(root, "internal", "tokensource")) {
		if !slices.Contains(allSummaries, s) {
			t.Errorf("internal/tokensource reports the warning %q; want it among the provider's summary constants", s)
		}
	}
}

// tokensourceSummaries returns the Summary fields of the warnings the non-test Go files in dir write.
func tokensourceSummaries(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	field := regexp.MustCompile(`Summary:\s*("(?:[^"\\]|\\.)*")`)
	var summaries []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range field.FindAllSubmatch(src, -1) {
			s, err := strconv.Unquote(string(m[1]))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			summaries = append(summaries, s)
		}
	}
	return summaries
}
