package provider

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestFakeCLIs_contract checks the stand-ins themselves on the service behaviour the helpers rely on, so that a broken
// stand-in cannot make a broken helper look right: Secrets Manager refuses to move AWSCURRENT from a version that no
// longer has it, moves it on a put without staging labels, keeps it on a put with a label of its own, and takes a
// repeated client request token only with the same value; Vault refuses a check-and-set write whose version is not the
// current one, and -cas=0 once the entry exists.
func TestFakeCLIs_contract(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("the stand-ins run as POSIX programs on PATH")
	}
	run := func(t *testing.T, c *fakeCLI, stdin string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(c.bin, c.kind), args...)
		cmd.Env = append(os.Environ(), c.env()...)
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), stdout.String(), stderr.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, stdout.String(), stderr.String()
	}
	t.Run("aws", func(t *testing.T) {
		t.Parallel()
		c := newFakeCLI(t, "aws")
		sm := func(args ...string) (int, string, string) {
			return run(t, c, "", append([]string{"secretsmanager"}, args...)...)
		}
		current := func() string {
			_, out, _ := sm("get-secret-value", "--secret-id", "s", "--query", "VersionId", "--output", "text")
			return strings.TrimSpace(out)
		}
		const v1, v2, v3 = "11111111111111111111111111111111", "22222222222222222222222222222222", "33333333333333333333333333333333"
		if code, _, stderr := sm("get-secret-value", "--secret-id", "s", "--query", "SecretString", "--output", "text"); code != 254 ||
			!strings.Contains(stderr, "ResourceNotFoundException") {
			t.Errorf("get of a missing secret: got %d %q; want 254 and ResourceNotFoundException", code, stderr)
		}
		if code, _, stderr := sm("create-secret", "--name", "s", "--secret-string", "one", "--client-request-token", v1); code != 0 {
			t.Fatalf("create: %d %s", code, stderr)
		}
		if code, _, stderr := sm("create-secret", "--name", "s", "--secret-string", "again"); code != 254 || !strings.Contains(stderr, "ResourceExistsException") {
			t.Errorf("second create: got %d %q; want ResourceExistsException", code, stderr)
		}
		sm("put-secret-value", "--secret-id", "s", "--secret-string", "two", "--client-request-token", v2, "--version-stages", "MINE")
		if got := current(); got != v1 {
			t.Errorf("put with a label of its own: AWSCURRENT on %s; want it left on %s", got, v1)
		}
		if code, _, stderr := sm("put-secret-value", "--secret-id", "s", "--secret-string", "other", "--client-request-token", v2, "--version-stages", "MINE"); code != 254 ||
			!strings.Contains(stderr, "ResourceExistsException") {
			t.Errorf("a token again with another value: got %d %q; want ResourceExistsException", code, stderr)
		}
		if code, _, _ := sm("put-secret-value", "--secret-id", "s", "--secret-string", "two", "--client-request-token", v2, "--version-stages", "MINE"); code != 0 {
			t.Errorf("a token again with the same value: got %d; want 0 (ignored)", code)
		}
		sm("put-secret-value", "--secret-id", "s", "--secret-string", "three", "--client-request-token", v3)
		if got := current(); got != v3 {
			t.Errorf("put without labels: AWSCURRENT on %s; want it moved to %s", got, v3)
		}
		if code, _, stderr := sm("update-secret-version-stage", "--secret-id", "s", "--version-stage", "AWSCURRENT",
			"--move-to-version-id", v2, "--remove-from-version-id", v1); code != 254 || !strings.Contains(stderr, "InvalidParameterException") {
			t.Errorf("moving AWSCURRENT from a version that lost it: got %d %q; want InvalidParameterException", code, stderr)
		}
		if got := current(); got != v3 {
			t.Errorf("after a refused move: AWSCURRENT on %s; want %s", got, v3)
		}
		if code, _, stderr := sm("update-secret-version-stage", "--secret-id", "s", "--version-stage", "AWSCURRENT",
			"--move-to-version-id", v2, "--remove-from-version-id", v3); code != 0 || current() != v2 {
			t.Errorf("moving AWSCURRENT from its version: got %d %q, current %s; want it on %s", code, stderr, current(), v2)
		}
		if code, _, _ := sm("put-secret-value", "--secret-id", "s", "--secret-string", "x", "--client-request-token", "short"); code != 252 {
			t.Errorf("a client request token under 32 characters: got %d; want 252 (the CLI's own validation)", code)
		}
	})
	t.Run("vault", func(t *testing.T) {
		t.Parallel()
		c := newFakeCLI(t, "vault")
		v := func(stdin string, args ...string) (int, string, string) { return run(t, c, stdin, args...) }
		if code, _, stderr := v("", "read", "-field=current_version", "secret/metadata/p"); code != 2 || !strings.HasPrefix(stderr, "No value found at secret/metadata/p") {
			t.Errorf("metadata of a missing entry: got %d %q; want 2 and No value found", code, stderr)
		}
		if code, _, stderr := v("one", "kv", "put", "-mount=secret", "-cas=0", "p", "record=-"); code != 0 {
			t.Fatalf("first put with -cas=0: %d %s", code, stderr)
		}
		if code, _, stderr := v("two", "kv", "put", "-mount=secret", "-cas=0", "p", "record=-"); code != 2 ||
			!strings.Contains(stderr, "check-and-set parameter did not match the current version") {
			t.Errorf("-cas=0 over an entry: got %d %q; want the check-and-set refusal", code, stderr)
		}
		if code, _, _ := v("two", "kv", "put", "-mount=secret", "-cas=1", "p", "record=-"); code != 0 {
			t.Errorf("-cas=1 over version 1: got %d; want 0", code)
		}
		if code, _, _ := v("three", "kv", "put", "-mount=secret", "-cas=1", "p", "record=-"); code != 2 {
			t.Errorf("-cas=1 over version 2: got %d; want 2", code)
		}
		if _, out, _ := v("", "read", "-field=current_version", "secret/metadata/p"); out != "2" {
			t.Errorf("current_version: got %q; want 2", out)
		}
		if _, out, _ := v("", "kv", "get", "-mount=secret", "-version=1", "-field=record", "p"); out != "one" {
			t.Errorf("version 1: got %q; want one, without a newline", out)
		}
		if code, _, stderr := v("", "kv", "get", "-mount=secret", "-field=nothing", "p"); code != 1 || !strings.Contains(stderr, "not present") {
			t.Errorf("a missing field: got %d %q; want 1", code, stderr)
		}
	})
}
