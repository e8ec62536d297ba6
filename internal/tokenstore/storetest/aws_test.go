package storetest_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/mototest"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/storetest"
)

// secretsManagerMax is the largest secret value AWS Secrets Manager takes (SecretString, 65,536 bytes). moto 5.2.1
// does not enforce it; the suite keeps under it so that what passes here fits AWS.
const secretsManagerMax = 65536

// awsHelperTimeout bounds one run of the AWS helper in these tests, instead of the store's 60 s: the helper's aws CLI
// runs start Python each, and several at once on a loaded machine take minutes.
const awsHelperTimeout = 10 * time.Minute

// awsCLIDirs are where the aws CLI is looked for when it is not on PATH (pyenv installs it there).
var awsCLIDirs = []string{"/root/.pyenv/shims"}

// motoAWS is a moto server and the real aws CLI pointed at it.
type motoAWS struct {
	env []string // for the CLI: moto's endpoint, dummy credentials and region, and a PATH that finds aws
}

// startMotoAWS starts moto for t and finds the aws CLI. Either missing skips the test loudly, or fails it under CI=true.
func startMotoAWS(t *testing.T) *motoAWS {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the AWS helper is a POSIX shell script")
	}
	aws, err := exec.LookPath("aws")
	if err != nil {
		for _, d := range awsCLIDirs {
			if p := filepath.Join(d, "aws"); isExecutable(p) {
				aws, err = p, nil
				break
			}
		}
	}
	if err != nil {
		reason := "no aws CLI on PATH or in " + strings.Join(awsCLIDirs, ", ") + ": pip install awscli"
		if pgtest.Required() {
			t.Fatalf("aws: %s (CI=true: the AWS helper's tests must run)", reason)
		}
		fmt.Fprintln(os.Stderr, "SKIP aws: "+reason)
		t.Skip("SKIP aws: " + reason)
	}
	endpoint := mototest.Start(t)
	env := append(mototest.Env(endpoint), "PATH="+filepath.Dir(aws)+string(os.PathListSeparator)+os.Getenv("PATH"))
	return &motoAWS{env: env}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// aws runs the CLI against moto and returns its exit status, stdout and stderr.
func (m *motoAWS) aws(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command("aws", args...)
	cmd.Env = append(os.Environ(), m.env...)
	for _, kv := range m.env {
		if p, ok := strings.CutPrefix(kv, "PATH="); ok {
			if full, err := lookPathIn("aws", p); err == nil {
				cmd.Path = full
			}
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatalf("running aws: %v", err)
	}
	return 0, stdout.String(), stderr.String()
}

func lookPathIn(name, path string) (string, error) {
	for _, d := range filepath.SplitList(path) {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// awsScript is the guide's AWS Secrets Manager helper.
func awsScript(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "examples", "guides", "keeping-a-chain-alive", "bipsync-store-aws.sh")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("cannot find the repository root (go.mod) above the working directory")
		}
		dir = parent
	}
}

// helperArgv is what a user puts in token_store.command for the AWS helper, behind env(1) to reach moto.
func (m *motoAWS) helperArgv(t testing.TB, prefix string) []string {
	return slices.Concat([]string{"env"}, m.env, []string{"/bin/sh", awsScript(t), "--prefix=" + prefix})
}

func randomPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "storetest-" + hex.EncodeToString(b[:]) + "/"
}

// awsBackend is the AWS helper at protocol over moto. Each new store has a prefix of its own. Handles of a get/put
// helper share a lock directory (one machine); those of a conditional helper do not (machines sharing the secret).
func awsBackend(m *motoAWS, protocol int) storetest.Backend {
	var mu sync.Mutex
	prefixes := map[tokenstore.Store]string{}
	return storetest.Backend{
		MaxRecord: secretsManagerMax,
		// Every helper run is several aws CLI runs, each a Python start-up: on a loaded machine, concurrent runs take
		// minutes. TestAWSHelper_race puts 8 at once through the helper itself.
		Concurrency: 4,
		New: func(t testing.TB) (tokenstore.Store, func(testing.TB) tokenstore.Store) {
			prefix, lockDir := randomPrefix(), t.TempDir()
			open := func(t testing.TB) tokenstore.Store {
				ld := lockDir
				if protocol == tokenstore.ProtocolConditional {
					ld = t.TempDir()
				}
				st, err := tokenstore.NewCommand(tokenstore.CommandConfig{Argv: m.helperArgv(t, prefix), Protocol: protocol, LockDir: ld,
					Timeout: awsHelperTimeout})
				if err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				prefixes[st] = prefix
				mu.Unlock()
				return st
			}
			return open(t), open
		},
		WriteRaw: func(t testing.TB, st tokenstore.Store, key tokenstore.Key, data []byte) {
			mu.Lock()
			prefix := prefixes[st]
			mu.Unlock()
			// A put run by hand (no BIPSYNC_STORE_REPLACES) writes unconditionally.
			argv := m.helperArgv(t, prefix)
			cmd := exec.Command(argv[0], append(argv[1:], "put", string(key))...)
			cmd.Stdin = bytes.NewReader(data)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("writing by hand: %v: %s", err, out)
			}
		},
	}
}

// The guide's AWS Secrets Manager helper, run by the command store with the real aws CLI against moto, passes the
// store suite at both protocol levels.
func TestConformance_awsHelper(t *testing.T) {
	t.Parallel()
	m := startMotoAWS(t)
	t.Run("protocol 1", func(t *testing.T) { storetest.Run(t, awsBackend(m, tokenstore.ProtocolGetPut)) })
	t.Run("protocol 2", func(t *testing.T) { storetest.Run(t, awsBackend(m, tokenstore.ProtocolConditional)) })
}

// Eight runners put a record over the same revision at once, straight through the helper: exactly one exits 0, the
// others 75, and the secret holds the winner's record.
func TestAWSHelper_race(t *testing.T) {
	t.Parallel()
	m := startMotoAWS(t)
	prefix := randomPrefix()
	key := storetest.Key
	put := func(rec *tokenstore.Record, replaces string) (int, string) {
		env, err := tokenstore.Seal(key, storetest.Seed, rec)
		if err != nil {
			t.Error(err)
			return -1, ""
		}
		argv := m.helperArgv(t, prefix)
		cmd := exec.Command(argv[0], append(argv[1:], "put", string(key))...)
		cmd.Env = append(os.Environ(), tokenstore.EnvStoreProtocol+"=2", tokenstore.EnvStoreReplaces+"="+replaces,
			tokenstore.EnvStoreRevision+"="+rec.Revision().Ptr().String())
		cmd.Stdin = bytes.NewReader(env)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err = cmd.Run()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			return ee.ExitCode(), stderr.String()
		case err != nil:
			t.Error(err)
			return -1, ""
		}
		return 0, stderr.String()
	}
	first := &tokenstore.Record{RefreshToken: "head-1", Generation: 1, ID: tokenstore.NewRecordID()}
	if code, stderr := put(first, "none"); code != 0 {
		t.Fatalf("first put: exit %d (%s); want 0", code, stderr)
	}
	const n = 8
	recs := make([]*tokenstore.Record, n)
	codes := make([]int, n)
	stderrs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		recs[i] = &tokenstore.Record{RefreshToken: fmt.Sprintf("head-2-%d", i), Generation: 2, ID: tokenstore.NewRecordID()}
		wg.Go(func() { codes[i], stderrs[i] = put(recs[i], first.Revision().Ptr().String()) })
	}
	wg.Wait()
	won := -1
	for i, code := range codes {
		switch {
		case code == 0 && won >= 0:
			t.Errorf("runners %d and %d both put over revision 1; want exactly one", won, i)
		case code == 0:
			won = i
		case code != tokenstore.ExitConflict:
			t.Errorf("runner %d: exit %d (%s); want 0 or %d", i, code, stderrs[i], tokenstore.ExitConflict)
		}
	}
	if won < 0 {
		t.Fatalf("nobody won: exits %v", codes)
	}
	st, err := tokenstore.NewCommand(tokenstore.CommandConfig{Argv: m.helperArgv(t, prefix), LockDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Load(t.Context(), key, storetest.Seed)
	if err != nil || got == nil || got.Revision() != recs[won].Revision() {
		t.Fatalf("after the race: got (%v, %v); want the winner's record", got, err)
	}
}

// The helper relies on moto (standing in for AWS) refusing conditional writes that do not hold; these fail when moto
// stops enforcing them. What moto enforces, and what it does not, is in CONTRIBUTING.md.
func TestMoto_conditionalWritesEnforced(t *testing.T) {
	t.Parallel()
	m := startMotoAWS(t)
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return "file://" + p
	}
	must := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := m.aws(t, args...)
		if code != 0 {
			t.Fatalf("aws %v: exit %d: %s", args, code, stderr)
		}
		return strings.TrimSpace(stdout)
	}
	refused := func(what, want string, args ...string) {
		t.Helper()
		code, _, stderr := m.aws(t, args...)
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("%s: got exit %d (%s); want a refusal with %s", what, code, strings.TrimSpace(stderr), want)
		}
	}

	t.Run("secretsmanager", func(t *testing.T) {
		v1 := "11111111-1111-1111-1111-111111111111"
		v2 := "2-22222222222222222222222222222222"
		v3 := "3-33333333333333333333333333333333"
		must("secretsmanager", "create-secret", "--name", "cond", "--secret-string", file("one", "one"), "--client-request-token", v1)
		refused("create-secret of an existing secret", "ResourceExistsException",
			"secretsmanager", "create-secret", "--name", "cond", "--secret-string", file("other", "other"))
		must("secretsmanager", "put-secret-value", "--secret-id", "cond", "--secret-string", file("two", "two"),
			"--client-request-token", v2, "--version-stages", "BIPSYNC_PENDING")
		refused("put-secret-value of another value with a used client request token", "ResourceExistsException",
			"secretsmanager", "put-secret-value", "--secret-id", "cond", "--secret-string", file("other", "other"),
			"--client-request-token", v2, "--version-stages", "BIPSYNC_PENDING")
		must("secretsmanager", "put-secret-value", "--secret-id", "cond", "--secret-string", file("three", "three"),
			"--client-request-token", v3, "--version-stages", "BIPSYNC_PENDING")
		must("secretsmanager", "update-secret-version-stage", "--secret-id", "cond", "--version-stage", "AWSCURRENT",
			"--move-to-version-id", v2, "--remove-from-version-id", v1)
		// v1 no longer carries AWSCURRENT: a runner that read it before the move must be refused.
		refused("update-secret-version-stage with a stale --remove-from-version-id", "InvalidParameterException",
			"secretsmanager", "update-secret-version-stage", "--secret-id", "cond", "--version-stage", "AWSCURRENT",
			"--move-to-version-id", v3, "--remove-from-version-id", v1)
		if got := must("secretsmanager", "get-secret-value", "--secret-id", "cond", "--version-stage", "AWSCURRENT",
			"--query", "SecretString", "--output", "text"); got != "two" {
			t.Errorf("AWSCURRENT after the refused move: got %q; want %q", got, "two")
		}
		// Where moto is not AWS (CONTRIBUTING.md says so; when these fail, moto changed: update it there).
		if got := must("secretsmanager", "get-secret-value", "--secret-id", "cond", "--query", "SecretString", "--output", "text"); got == "two" {
			t.Errorf("get-secret-value without a stage now returns AWSCURRENT, as AWS does: update CONTRIBUTING.md")
		}
		if code, _, _ := m.aws(t, "secretsmanager", "create-secret", "--name", "big",
			"--secret-string", file("big", strings.Repeat("a", secretsManagerMax+1))); code != 0 {
			t.Errorf("a secret value over %d bytes is now refused, as AWS does: update CONTRIBUTING.md", secretsManagerMax)
		}
	})

	t.Run("s3", func(t *testing.T) {
		must("s3api", "create-bucket", "--bucket", "storetest-conditions")
		body := func(name, content string) string { return strings.TrimPrefix(file(name, content), "file://") }
		etag := must("s3api", "put-object", "--bucket", "storetest-conditions", "--key", "k", "--body", body("b1", "one"),
			"--if-none-match", "*", "--query", "ETag", "--output", "text")
		refused("put-object --if-none-match '*' of an existing key", "PreconditionFailed",
			"s3api", "put-object", "--bucket", "storetest-conditions", "--key", "k", "--body", body("b2", "two"), "--if-none-match", "*")
		must("s3api", "put-object", "--bucket", "storetest-conditions", "--key", "k", "--body", body("b3", "three"), "--if-match", etag)
		refused("put-object with a stale --if-match", "PreconditionFailed",
			"s3api", "put-object", "--bucket", "storetest-conditions", "--key", "k", "--body", body("b4", "four"), "--if-match", etag)
		refused("delete-object with a stale --if-match", "PreconditionFailed",
			"s3api", "delete-object", "--bucket", "storetest-conditions", "--key", "k", "--if-match", etag)
		refused("put-object --if-match of a missing key", "NoSuchKey",
			"s3api", "put-object", "--bucket", "storetest-conditions", "--key", "missing", "--body", body("b5", "five"), "--if-match", etag)
		// Versioning, which CONTRIBUTING.md says moto keeps.
		must("s3api", "put-bucket-versioning", "--bucket", "storetest-conditions", "--versioning-configuration", "Status=Enabled")
		must("s3api", "put-object", "--bucket", "storetest-conditions", "--key", "v", "--body", body("v1", "one"))
		must("s3api", "put-object", "--bucket", "storetest-conditions", "--key", "v", "--body", body("v2", "two"))
		if got := strings.Fields(must("s3api", "list-object-versions", "--bucket", "storetest-conditions", "--prefix", "v",
			"--query", "Versions[].VersionId", "--output", "text")); len(got) != 2 {
			t.Errorf("versions of an object put twice in a versioned bucket: got %q; want 2", got)
		}
	})
}
