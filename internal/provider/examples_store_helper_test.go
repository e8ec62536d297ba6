package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/bipsync/terraform-provider-bipsync/internal/acctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// fakeAWS stands in for the AWS CLI: the Secrets Manager calls bipsync-store-aws.sh makes, over one file per
// secret in $FAKE_AWS_DIR, with the CLI's error text and exit status (254 for a service error). It logs each call's
// operation to $FAKE_AWS_DIR/calls, and fails every call with $FAKE_AWS_FAIL when that is set.
const fakeAWS = `#!/bin/sh
set -eu
[ "$1" = secretsmanager ] || { echo "fake aws: unsupported service $1" >&2; exit 252; }
op=$2
shift 2
id= value= query= output=
while [ $# -gt 0 ]; do
	case $1 in
	--secret-id|--name) id=$2 ;;
	--secret-string) value=$2 ;;
	--query) query=$2 ;;
	--output) output=$2 ;;
	*) echo "fake aws: unexpected argument $1" >&2; exit 252 ;;
	esac
	shift 2
done
echo "$op" >>"$FAKE_AWS_DIR/calls"
fail() { echo "An error occurred ($1) when calling the $2 operation: $3" >&2; exit 254; }
if [ -n "${FAKE_AWS_FAIL:-}" ]; then fail "$FAKE_AWS_FAIL" "$op" "injected"; fi
f="$FAKE_AWS_DIR/secret-$(printf %s "$id" | tr / _)"
read_value() { case $value in file://*) cat "${value#file://}" ;; *) printf %s "$value" ;; esac; }
case $op in
get-secret-value)
	[ "$query" = SecretString ] && [ "$output" = text ] || { echo "fake aws: want --query SecretString --output text" >&2; exit 252; }
	[ -f "$f" ] || fail ResourceNotFoundException GetSecretValue "Secrets Manager can't find the specified secret."
	cat "$f"; echo ;;
put-secret-value)
	[ -f "$f" ] || fail ResourceNotFoundException PutSecretValue "Secrets Manager can't find the specified secret."
	read_value >"$f.tmp"; mv "$f.tmp" "$f"; echo '{}' ;;
create-secret)
	[ ! -f "$f" ] || fail ResourceExistsException CreateSecret "The operation failed because the secret already exists."
	read_value >"$f"; echo '{}' ;;
*) echo "fake aws: unsupported operation $op" >&2; exit 252 ;;
esac
`

// awsHelper returns the argv that runs the guide's AWS Secrets Manager helper against a fake AWS CLI, and the
// fake's directory. The argv is what a user would put in token_store.command, behind env(1) to reach the fake.
func awsHelper(t *testing.T, failWith string) (argv []string, dir string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the helper is a POSIX shell script")
	}
	dir, bin := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "aws"), []byte(fakeAWS), 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(exampleRepoRoot(t), "examples", "guides", "keeping-a-chain-alive", "bipsync-store-aws.sh")
	return []string{"env", "PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "FAKE_AWS_DIR=" + dir,
		"FAKE_AWS_FAIL=" + failWith, "/bin/sh", script}, dir
}

// TestExamples_storeHelperAWS_protocol checks the guide's helper against the command store's protocol: `get` of a
// chain that has no record prints nothing and succeeds, and every other failure fails, so that the provider never
// takes a live chain for a new one.
func TestExamples_storeHelperAWS_protocol(t *testing.T) {
	t.Parallel()
	key := strings.Repeat("ab", 32)
	tests := []struct {
		name       string
		fail       string
		args       []string
		stdin      string
		wantExit   int
		wantStdout string
		wantStderr string
	}{
		{name: "get without record", args: []string{"get", key}, wantExit: 0},
		{name: "get refused", fail: "AccessDeniedException", args: []string{"get", key}, wantExit: 1, wantStderr: "AccessDeniedException"},
		{name: "put refused", fail: "AccessDeniedException", args: []string{"put", key}, stdin: "bts1.x.y.z\n", wantExit: 1, wantStderr: "AccessDeniedException"},
		{name: "unknown operation", args: []string{"list", key}, wantExit: 2, wantStderr: "unknown operation"},
		{name: "missing key", args: []string{"get"}, wantExit: 2, wantStderr: "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			argv, _ := awsHelper(t, tt.fail)
			cmd := exec.Command(argv[0], append(argv[1:], tt.args...)...)
			cmd.Stdin = strings.NewReader(tt.stdin)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			exit := 0
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee):
				exit = ee.ExitCode()
			case err != nil:
				t.Fatal(err)
			}
			if exit != tt.wantExit {
				t.Errorf("exit status: got %d; want %d (stderr: %s)", exit, tt.wantExit, stderr.String())
			}
			if stdout.String() != tt.wantStdout {
				t.Errorf("stdout: got %q; want %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr: got %q; want it to contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

// TestAccExamples_storeHelperAWS runs the guide's helper as the provider's command store, end to end: the first
// plan and apply exchange the chain once and create the secret, a second run reuses the stored token, and the
// secret holds only the encrypted record.
func TestAccExamples_storeHelperAWS(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	argv, awsDir := awsHelper(t, "")
	command, err := json.Marshal(argv)
	if err != nil {
		t.Fatal(err)
	}
	seed := f.seed()
	config := fmt.Sprintf(`
provider "bipsync" {
  base_url      = %q
  client_id     = %q
  client_secret = %q
  token_store {
    backend = "command"
    command = %s
  }
}

ephemeral "bipsync_access_token" "api" {
  refresh_token = %q
}

provider "echo" {
  data = ephemeral.bipsync_access_token.api
}

resource "echo" "token" {}
`, f.baseURL, testClientID, testClientSecret, command, seed)

	var accessToken string
	captureToken := statecheck.ExpectKnownValue("echo.token", tfjsonpath.New("data").AtMapKey("access_token"),
		acctest.Capture(&accessToken))
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		PreCheck:                 f.ledger.Reset,
		Steps: []resource.TestStep{
			{Config: config, ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.token"), captureToken}},
			{
				PreConfig:         f.ledger.Expect(1, "first plan and apply, chain kept by the AWS helper"),
				Config:            config,
				ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.token")},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(0, "second run and destroy, token reused from the AWS helper")()
			return nil
		},
	})

	secrets, err := filepath.Glob(filepath.Join(awsDir, "secret-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(secrets) != 1 {
		t.Fatalf("got %d secrets; want 1 (one chain)", len(secrets))
	}
	key := tokenstore.KeyFor(f.baseURL+bipsync.TokenPath, testClientID, seed)
	if got, want := filepath.Base(secrets[0]), "secret-terraform-provider-bipsync_"+string(key); got != want {
		t.Errorf("secret name: got %s; want %s (the default prefix and the chain's key)", got, want)
	}
	record, err := os.ReadFile(secrets[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(record, []byte("bts2.")) {
		t.Errorf("secret: got %.12q…; want an encrypted record (bts2.…)", record)
	}
	for name, secret := range map[string]string{"the seed": seed, "the access token": accessToken} {
		if secret == "" || bytes.Contains(record, []byte(secret)) {
			t.Errorf("secret holds %s in clear; want only the encrypted record", name)
		}
	}
	if refreshTokenShape.Match(record) {
		t.Errorf("secret holds a refresh token in clear; want only the encrypted record")
	}
	calls, err := os.ReadFile(filepath.Join(awsDir, "calls"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(calls), "create-secret"); n != 1 {
		t.Errorf("create-secret calls: got %d; want 1\ncalls:\n%s", n, calls)
	}
}
