package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDetectThrowAwayRunner checks the detection table: each documented variable alone names its system, the most
// specific system wins over the generic CI variable that many systems also set, and a variable that is empty, "false"
// or "0" does not count.
func TestDetectThrowAwayRunner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env        map[string]string
		wantSystem string // "" for none
		wantVar    string
	}{
		{env: nil},
		{env: map[string]string{"TFC_RUN_ID": "run-CKuwsxMGgMd4W7Ui"}, wantSystem: "HCP Terraform or Terraform Enterprise", wantVar: "TFC_RUN_ID"},
		{env: map[string]string{"TFC_WORKSPACE_NAME": "prod-load-balancers"}, wantSystem: "HCP Terraform or Terraform Enterprise", wantVar: "TFC_WORKSPACE_NAME"},
		{env: map[string]string{"TF_VAR_spacelift_run_id": "01JKZAHVAQHFM8CC3EA5HWRMP1"}, wantSystem: "Spacelift", wantVar: "TF_VAR_spacelift_run_id"},
		{env: map[string]string{"GITHUB_ACTIONS": "true", "CI": "true"}, wantSystem: "GitHub Actions", wantVar: "GITHUB_ACTIONS"},
		{env: map[string]string{"GITLAB_CI": "true", "CI": "true"}, wantSystem: "GitLab CI/CD", wantVar: "GITLAB_CI"},
		{env: map[string]string{"TF_BUILD": "True"}, wantSystem: "Azure Pipelines", wantVar: "TF_BUILD"},
		{env: map[string]string{"BITBUCKET_BUILD_NUMBER": "42", "CI": "true"}, wantSystem: "Bitbucket Pipelines", wantVar: "BITBUCKET_BUILD_NUMBER"},
		{env: map[string]string{"CIRCLECI": "true", "CI": "true"}, wantSystem: "CircleCI", wantVar: "CIRCLECI"},
		{env: map[string]string{"BUILDKITE": "true", "CI": "true"}, wantSystem: "Buildkite", wantVar: "BUILDKITE"},
		{env: map[string]string{"CODEBUILD_BUILD_ID": "project:0d2f"}, wantSystem: "AWS CodeBuild", wantVar: "CODEBUILD_BUILD_ID"},
		{env: map[string]string{"JENKINS_URL": "https://ci.example.com/"}, wantSystem: "Jenkins", wantVar: "JENKINS_URL"},
		{env: map[string]string{"TEAMCITY_VERSION": "2025.03"}, wantSystem: "TeamCity", wantVar: "TEAMCITY_VERSION"},
		{env: map[string]string{"DRONE": "true", "CI": "true"}, wantSystem: "Drone", wantVar: "DRONE"},
		{env: map[string]string{"CI": "woodpecker"}, wantSystem: "a CI system", wantVar: "CI"},
		{env: map[string]string{"CI": "1"}, wantSystem: "a CI system", wantVar: "CI"},
		// HCP Terraform runs inside another system's job only in theory, but the more specific system is named first.
		{env: map[string]string{"TFC_RUN_ID": "run-1", "GITHUB_ACTIONS": "true"}, wantSystem: "HCP Terraform or Terraform Enterprise", wantVar: "TFC_RUN_ID"},
		// Switched off, or not set at all.
		{env: map[string]string{"CI": "false"}},
		{env: map[string]string{"CI": " FALSE "}},
		{env: map[string]string{"CI": "0"}},
		{env: map[string]string{"GITHUB_ACTIONS": ""}},
		{env: map[string]string{"GITHUB_ACTIONS": "false", "CI": "true"}, wantSystem: "a CI system", wantVar: "CI"},
		// Atlantis keeps its disk: its variables alone are no throw-away runner.
		{env: map[string]string{"ATLANTIS_TERRAFORM_VERSION": "1.11.4"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.env), func(t *testing.T) {
			t.Parallel()
			got, ok := detectThrowAwayRunner(func(name string) string { return tt.env[name] })
			if ok != (tt.wantSystem != "") || got.System != tt.wantSystem || got.Variable != tt.wantVar {
				t.Errorf("got %+v, %t; want {Variable:%s System:%s}, %t", got, ok, tt.wantVar, tt.wantSystem, tt.wantSystem != "")
			}
		})
	}
}

// TestThrowAwayRunners_listedInDocs fails when the guide does not list a variable the provider recognises, or lists
// one it does not: the docs are how a user finds out why the warning fired, or why it did not.
func TestThrowAwayRunners_listedInDocs(t *testing.T) {
	t.Parallel()
	guide := readRepoFile(t, "templates/guides/which-store.md.tmpl")
	start := strings.Index(guide, "<!-- throw-away runners -->")
	end := strings.Index(guide, "<!-- end throw-away runners -->")
	if start < 0 || end < start {
		t.Fatal("the guide has no table of throw-away runners between <!-- throw-away runners --> and <!-- end throw-away runners -->")
	}
	table := guide[start:end]
	listed := 0
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "| `") {
			listed++
		}
	}
	for _, r := range throwAwayRunners {
		row := "| `" + r.Variable + "` | " + r.System + " |"
		if !strings.Contains(table, row) {
			t.Errorf("the guide's table lacks the row %q", row)
		}
	}
	if listed != len(throwAwayRunners) {
		t.Errorf("the guide's table has %d rows; want %d, one per recognised variable", listed, len(throwAwayRunners))
	}
}

// readRepoFile returns a file of the repository, by its path from the module root.
func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(exampleRepoRoot(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAccAccessToken_fileStoreOnThrowAwayRunner runs plans through the engine as HCP Terraform, GitHub Actions and a
// workstation would: a refresh chain in a file store warns on the first two, naming the system and the variable that
// gave it away, and not on the third; a chain in a command store never warns. The provider reads this process's
// environment (it is served in process), so the test cannot run in parallel with others.
func TestAccAccessToken_fileStoreOnThrowAwayRunner(t *testing.T) {
	f := newFixture(t)
	seed := f.seed()
	w := f.workspace()
	w.writeConfig(f.providerBlock() + fmt.Sprintf(`
ephemeral "bipsync_access_token" "t" {
  refresh_token = %q
}
`, seed))
	warning := words("Warning: Bipsync File Token Store On A CI Runner")
	plan := func(what string, env map[string]string) string {
		t.Helper()
		for _, r := range throwAwayRunners {
			t.Setenv(r.Variable, env[r.Variable])
		}
		stdout, stderr, err := w.run("plan")
		if err != nil {
			t.Fatalf("plan %s: %v\nstdout:\n%s\nstderr:\n%s", what, err, stdout, stderr)
		}
		return stdout + stderr
	}
	w.mustRun("init")

	out := plan("on HCP Terraform", map[string]string{"TFC_RUN_ID": "run-CKuwsxMGgMd4W7Ui", "TFC_WORKSPACE_NAME": "prod"})
	if !warning.MatchString(out) || !words("This run is on HCP Terraform or Terraform Enterprise (TFC_RUN_ID is set)").MatchString(out) {
		t.Errorf("plan on HCP Terraform: got\n%s\nwant the file store warning naming HCP Terraform and TFC_RUN_ID", out)
	}
	out = plan("on GitHub Actions", map[string]string{"GITHUB_ACTIONS": "true", "CI": "true"})
	if !warning.MatchString(out) || !words("This run is on GitHub Actions (GITHUB_ACTIONS is set)").MatchString(out) {
		t.Errorf("plan on GitHub Actions: got\n%s\nwant the file store warning naming GitHub Actions", out)
	}
	out = plan("on a workstation", nil)
	if warning.MatchString(out) {
		t.Errorf("plan on a workstation: got\n%s\nwant no file store warning", out)
	}

	argv := newStoreHelper(t, "aws").argv(nil)
	w.writeConfig(fmt.Sprintf(`
provider "bipsync" {
  base_url      = %q
  client_id     = %q
  client_secret = %q
  token_store {
    backend = "command"
    command = %s
  }
}

ephemeral "bipsync_access_token" "t" {
  refresh_token = %q
}
`, f.baseURL, testClientID, testClientSecret, hclList(argv), f.seed()))
	out = plan("on HCP Terraform with a command store", map[string]string{"TFC_RUN_ID": "run-CKuwsxMGgMd4W7Ui"})
	if warning.MatchString(out) {
		t.Errorf("plan with a command store on HCP Terraform: got\n%s\nwant no file store warning", out)
	}
	f.ledger.Expect(2, "one exchange per chain: the file store's, then the command store's")()
}

// TestFileStoreOnCIDetail_namesEverySharedStore fails when the warning for a file store on a CI runner leaves out a
// store that runners share: the user reading it must learn every place the chain can go instead.
func TestFileStoreOnCIDetail_namesEverySharedStore(t *testing.T) {
	t.Parallel()
	detail := fileStoreOnCIDetail(throwAwayRunner{Variable: "GITHUB_ACTIONS", System: "GitHub Actions"}, "file store at /x")
	for _, want := range []string{
		`backend = "s3"`, `backend = "postgres"`, `backend = "command"`, "bipsync_refresh_grant", "GitHub Actions",
		"GITHUB_ACTIONS", "/x",
	} {
		if !strings.Contains(detail, want) {
			t.Errorf("the detail does not name %q:\n%s", want, detail)
		}
	}
}
