package provider

import "strings"

// throwAwayRunner is one kind of runner that may be thrown away after its job, recognised by an environment variable
// that the system documents as set in every job or run.
type throwAwayRunner struct {
	// Variable is the environment variable that the system sets.
	Variable string
	// System names the runner in the warning.
	System string
}

// throwAwayRunners are the runners whose disk may not survive the job, most specific first, so that the warning names
// the system rather than the generic CI variable that many of them also set. Each variable is one its system
// documents as set in every job or run.
//
// Atlantis is not here: an Atlantis server keeps its data directory between runs, as a workstation does, so a file
// store there keeps its chains (several Atlantis servers do not share it, which is a question of one owner per chain,
// not of a disk thrown away).
var throwAwayRunners = []throwAwayRunner{
	{"TFC_RUN_ID", "HCP Terraform or Terraform Enterprise"},
	{"TFC_WORKSPACE_NAME", "HCP Terraform or Terraform Enterprise"},
	{"TF_VAR_spacelift_run_id", "Spacelift"},
	{"GITHUB_ACTIONS", "GitHub Actions"},
	{"GITLAB_CI", "GitLab CI/CD"},
	{"TF_BUILD", "Azure Pipelines"},
	{"BITBUCKET_BUILD_NUMBER", "Bitbucket Pipelines"},
	{"CIRCLECI", "CircleCI"},
	{"BUILDKITE", "Buildkite"},
	{"CODEBUILD_BUILD_ID", "AWS CodeBuild"},
	{"JENKINS_URL", "Jenkins"},
	{"TEAMCITY_VERSION", "TeamCity"},
	{"DRONE", "Drone"},
	{"CI", "a CI system"},
}

// detectThrowAwayRunner returns the first throw-away runner whose variable getenv reports set, and whether there
// was one. A variable counts as set when it is not empty, "false" or "0" (in any case, around white space), so that
// CI=false switches the warning off as users expect.
func detectThrowAwayRunner(getenv func(string) string) (throwAwayRunner, bool) {
	for _, r := range throwAwayRunners {
		switch strings.ToLower(strings.TrimSpace(getenv(r.Variable))) {
		case "", "false", "0":
		default:
			return r, true
		}
	}
	return throwAwayRunner{}, false
}

// fileStoreOnCIDetail is the detail of summaryFileStoreOnCI: which runner was recognised and by what, where the chain
// lives, and where to keep it instead.
func fileStoreOnCIDetail(r throwAwayRunner, store string) string {
	return "This run is on " + r.System + " (" + r.Variable + " is set), and this refresh chain lives in a local file (" +
		store + "). A runner that is thrown away after the job loses the rotated chain with it, and the next job would " +
		"need a new authorization. Keep the chain where every run finds it: in a store the runners share, chosen with " +
		"BIPSYNC_TOKEN_STORE or the token_store block: an S3 bucket (backend = \"s3\"), a PostgreSQL database " +
		"(backend = \"postgres\"), or a secret manager through a helper program (backend = \"command\", with " +
		"command_protocol = \"2\" when runners on several machines use the chain); or in a bipsync_refresh_grant in " +
		"remote state (on HCP Terraform, the workspace's own state). The guide \"Which store for which runner\" has " +
		"an example of each. Ignore this warning only on a runner whose disk is kept between jobs and that is the only " +
		"one using this chain."
}
