package provider

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Stand-ins for the aws and vault CLIs, for the tests of the guide's store helpers. The test binary becomes one when
// it runs under the name aws or vault with FAKE_CLI_DIR set (fakeCLIMain, called from TestMain), so the helpers run
// unchanged with the stand-in first on PATH. Each models only what the helpers call, as the documentation of the CLI
// and its service describe it: the arguments (anything else is refused), the output, the error messages and exit
// statuses, and the service's own checks (Secrets Manager's versions and staging labels, Vault KV v2's versions and
// check-and-set), each call taking effect as one atomic step under a lock on FAKE_CLI_DIR. They are not the services:
// what a helper relies on beyond this is said in its header comment.
//
// Faults, for the helpers' failure paths:
//
//	FAKE_CLI_FAIL=X        every call fails with the service error X (aws: an error code such as AccessDeniedException;
//	                       vault: an HTTP status such as 403), changing nothing
//	FAKE_CLI_FAIL_AFTER=OP the write OP (aws: create-secret, put-secret-value or update-secret-version-stage; vault:
//	                       put) takes effect, then the call fails as if its answer was lost
//	FAKE_CLI_DIR/interleave a file whose content another writer stores, unconditionally, just before the next write
//	                       of any kind takes effect (the file is then removed): a runner that saves between a helper's
//	                       read and its write
const (
	envFakeCLIDir       = "FAKE_CLI_DIR"
	envFakeCLIFail      = "FAKE_CLI_FAIL"
	envFakeCLIFailAfter = "FAKE_CLI_FAIL_AFTER"
)

// fakeCLIMain runs a stand-in when this process was started as one, and exits; it returns only when it was not.
func fakeCLIMain() {
	dir := os.Getenv(envFakeCLIDir)
	if dir == "" {
		return
	}
	var run func(dir string, args []string) int
	switch filepath.Base(os.Args[0]) {
	case "aws":
		run = runFakeAWS
	case "vault":
		run = runFakeVault
	default:
		return
	}
	os.Exit(run(dir, os.Args[1:]))
}

// fakeLock takes the stand-in's lock on dir: every call is one atomic step, as each request is at the service.
func fakeLock(dir string) (unlock func()) {
	path := filepath.Join(dir, "lock")
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }
		}
		if !errors.Is(err, os.ErrExist) || time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "fake cli: cannot take the lock:", err)
			os.Exit(70)
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeLog appends one line to the stand-in's call log.
func fakeLog(dir, line string) {
	f, err := os.OpenFile(filepath.Join(dir, "calls"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err == nil {
		fmt.Fprintln(f, line)
		f.Close()
	}
}

// takeInterleave returns the content another writer stores before this write, and removes it.
func takeInterleave(dir string) (string, bool) {
	path := filepath.Join(dir, "interleave")
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	os.Remove(path)
	return string(b), true
}

func readJSON(path string, v any) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, json.Unmarshal(b, v)
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fileName turns a secret's name or path into one file name.
func fileName(name string) string { return strings.NewReplacer("/", "_", ".", "_").Replace(name) }

// awsSecret is one secret in the Secrets Manager stand-in.
type awsSecret struct {
	Versions map[string]string `json:"versions"` // version ID → SecretString
	Labels   map[string]string `json:"labels"`   // staging label → version ID
}

func awsSecretPath(dir, name string) string { return filepath.Join(dir, "aws", fileName(name)+".json") }

// fakeAWSCurrent returns the value of a secret's AWSCURRENT version, as the stand-in holds it.
func fakeAWSCurrent(dir, name string) (string, bool, error) {
	var s awsSecret
	ok, err := readJSON(awsSecretPath(dir, name), &s)
	if !ok || err != nil {
		return "", false, err
	}
	return s.Versions[s.Labels["AWSCURRENT"]], true, nil
}

// awsOperation names a CLI operation as the service's error messages do.
var awsOperation = map[string]string{
	"get-secret-value":            "GetSecretValue",
	"put-secret-value":            "PutSecretValue",
	"create-secret":               "CreateSecret",
	"update-secret-version-stage": "UpdateSecretVersionStage",
}

type awsError struct{ code, msg string }

func (e *awsError) Error() string { return e.code + ": " + e.msg }

// runFakeAWS is `aws secretsmanager OP --option value...`. Service errors print as the CLI prints them and exit 254;
// arguments the helper should never pass exit 252, as the CLI's own usage errors do.
func runFakeAWS(dir string, args []string) int {
	usage := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "usage: aws [options] <command> <subcommand> [<subcommand> ...] [parameters]\naws: error: "+format+"\n", a...)
		return 252
	}
	if len(args) < 2 || args[0] != "secretsmanager" {
		return usage("this stand-in knows only the secretsmanager commands")
	}
	op, opName := args[1], awsOperation[args[1]]
	if opName == "" {
		return usage("argument operation: invalid choice: %q", op)
	}
	opts := map[string][]string{}
	for rest := args[2:]; len(rest) > 0; {
		name := rest[0]
		if !strings.HasPrefix(name, "--") {
			return usage("unrecognized arguments: %s", name)
		}
		rest = rest[1:]
		n := 0
		for n < len(rest) && !strings.HasPrefix(rest[n], "--") {
			n++
		}
		if n == 0 || (n > 1 && name != "--version-stages") {
			return usage("argument %s: expected one argument", name)
		}
		opts[name] = rest[:n]
		rest = rest[n:]
	}
	allowed := map[string][]string{
		"get-secret-value":            {"--secret-id", "--version-id", "--version-stage", "--query", "--output"},
		"put-secret-value":            {"--secret-id", "--secret-string", "--client-request-token", "--version-stages"},
		"create-secret":               {"--name", "--secret-string", "--client-request-token"},
		"update-secret-version-stage": {"--secret-id", "--version-stage", "--move-to-version-id", "--remove-from-version-id"},
	}[op]
	for name := range opts {
		if !slices.Contains(allowed, name) {
			return usage("unrecognized arguments: %s", name)
		}
	}
	one := func(name string) string {
		if v := opts[name]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	secretID := one("--secret-id")
	if op == "create-secret" {
		secretID = one("--name")
	}
	if secretID == "" {
		return usage("the following arguments are required: --secret-id")
	}
	if tok := one("--client-request-token"); tok != "" && (len(tok) < 32 || len(tok) > 64) {
		fmt.Fprintf(os.Stderr, "\nParameter validation failed:\nInvalid length for parameter ClientRequestToken, value: %d, valid min length: 32\n", len(tok))
		return 252
	}
	value := one("--secret-string")
	if path, ok := strings.CutPrefix(value, "file://"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "\nError parsing parameter '--secret-string': Unable to load paramfile %s: %v\n", value, err)
			return 252
		}
		value = string(b)
	}
	if op == "get-secret-value" && (one("--output") != "text" || (one("--query") != "SecretString" && one("--query") != "VersionId")) {
		return usage("this stand-in prints only --query SecretString or VersionId with --output text")
	}

	fakeLog(dir, op)
	if code := os.Getenv(envFakeCLIFail); code != "" {
		fmt.Fprintf(os.Stderr, "\nAn error occurred (%s) when calling the %s operation: injected failure\n", code, opName)
		return 254
	}
	unlock := fakeLock(dir)
	defer unlock()
	path := awsSecretPath(dir, secretID)
	var s awsSecret
	exists, err := readJSON(path, &s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake aws:", err)
		return 70
	}
	if op != "get-secret-value" {
		if other, ok := takeInterleave(dir); ok {
			// Another runner's plain put: a new version that takes AWSCURRENT.
			if !exists {
				s = awsSecret{Versions: map[string]string{}, Labels: map[string]string{}}
				exists = true
			}
			id := randomHex(16)
			s.Versions[id] = other
			s.moveLabel("AWSCURRENT", id)
		}
	}
	out, aerr := s.apply(op, secretID, exists, opts, one, value)
	if aerr == nil && op != "get-secret-value" {
		if err := writeJSON(path, &s); err != nil {
			fmt.Fprintln(os.Stderr, "fake aws:", err)
			return 70
		}
		if os.Getenv(envFakeCLIFailAfter) == op {
			aerr = &awsError{"InternalServiceError", "injected failure after the write"}
		}
	} else if op != "get-secret-value" && exists {
		// A refused write still keeps another writer's interleaved put.
		if err := writeJSON(path, &s); err != nil {
			fmt.Fprintln(os.Stderr, "fake aws:", err)
			return 70
		}
	}
	if aerr != nil {
		fmt.Fprintf(os.Stderr, "\nAn error occurred (%s) when calling the %s operation: %s\n", aerr.code, opName, aerr.msg)
		return 254
	}
	fmt.Print(out)
	return 0
}

// moveLabel attaches label to version id, moving it from the version that had it; AWSCURRENT leaves AWSPREVIOUS on
// the version it left, as Secrets Manager does.
func (s *awsSecret) moveLabel(label, id string) {
	if old, ok := s.Labels[label]; ok && label == "AWSCURRENT" && old != id {
		s.Labels["AWSPREVIOUS"] = old
	}
	s.Labels[label] = id
}

// apply runs one operation on the secret (exists: whether there is one) and returns what the CLI prints.
func (s *awsSecret) apply(op, name string, exists bool, opts map[string][]string, one func(string) string, value string) (string, *awsError) {
	notFound := &awsError{"ResourceNotFoundException", "Secrets Manager can't find the specified secret."}
	result := func(id string) string {
		return fmt.Sprintf(`{"ARN": "arn:aws:secretsmanager:eu-west-2:123456789012:secret:%s", "Name": %q, "VersionId": %q}`+"\n", name, name, id)
	}
	switch op {
	case "get-secret-value":
		if !exists {
			return "", notFound
		}
		id := s.Labels["AWSCURRENT"]
		if l := one("--version-stage"); l != "" {
			if id = s.Labels[l]; id == "" {
				return "", &awsError{"ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: " + l}
			}
		}
		if v := one("--version-id"); v != "" {
			if _, ok := s.Versions[v]; !ok {
				return "", &awsError{"ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: " + v}
			}
			id = v
		}
		if one("--query") == "VersionId" {
			return id + "\n", nil
		}
		return s.Versions[id] + "\n", nil
	case "create-secret":
		if exists {
			return "", &awsError{"ResourceExistsException", "The operation failed because the secret " + name + " already exists."}
		}
		id := one("--client-request-token")
		if id == "" {
			id = randomHex(16)
		}
		*s = awsSecret{Versions: map[string]string{id: value}, Labels: map[string]string{"AWSCURRENT": id}}
		return result(id), nil
	case "put-secret-value":
		if !exists {
			return "", notFound
		}
		id := one("--client-request-token")
		if id == "" {
			id = randomHex(16)
		}
		if old, ok := s.Versions[id]; ok {
			if old != value {
				return "", &awsError{"ResourceExistsException", "You can't modify an existing version, you can only create new versions."}
			}
			return result(id), nil // the same request again: ignored
		}
		s.Versions[id] = value
		stages := opts["--version-stages"]
		if len(stages) == 0 {
			stages = []string{"AWSCURRENT"}
		}
		for _, l := range stages {
			s.moveLabel(l, id)
		}
		return result(id), nil
	case "update-secret-version-stage":
		if !exists {
			return "", notFound
		}
		label, to, from := one("--version-stage"), one("--move-to-version-id"), one("--remove-from-version-id")
		if _, ok := s.Versions[to]; !ok || to == "" {
			return "", &awsError{"ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: " + to}
		}
		if cur, ok := s.Labels[label]; ok && cur != to && cur != from {
			return "", &awsError{"InvalidParameterException", "The parameter RemoveFromVersionId doesn't match the version the staging label " + label + " is attached to."}
		}
		if from != "" && s.Labels[label] != from && s.Labels[label] != to {
			return "", &awsError{"InvalidParameterException", "The staging label " + label + " isn't attached to version " + from + "."}
		}
		s.moveLabel(label, to)
		return fmt.Sprintf(`{"ARN": "arn:aws:secretsmanager:eu-west-2:123456789012:secret:%s", "Name": %q}`+"\n", name, name), nil
	}
	return "", &awsError{"InvalidRequestException", "unsupported"}
}

// vaultEntry is one KV v2 entry in the Vault stand-in.
type vaultEntry struct {
	CurrentVersion int                     `json:"current_version"`
	Versions       map[string]vaultVersion `json:"versions"`
}

type vaultVersion struct {
	Data    map[string]string `json:"data"`
	Deleted bool              `json:"deleted"`
}

func vaultEntryPath(dir, mount, path string) string {
	return filepath.Join(dir, "vault", fileName(mount), fileName(path)+".json")
}

// fakeVaultCurrent returns the field record of an entry's current version, as the stand-in holds it.
func fakeVaultCurrent(dir, mount, path string) (string, bool, error) {
	var e vaultEntry
	ok, err := readJSON(vaultEntryPath(dir, mount, path), &e)
	if !ok || err != nil {
		return "", false, err
	}
	v := e.Versions[strconv.Itoa(e.CurrentVersion)]
	if v.Deleted {
		return "", false, nil
	}
	return v.Data["record"], true, nil
}

// fakeVaultDelete soft-deletes an entry's current version, as `vault kv delete` does.
func fakeVaultDelete(dir, mount, path string) error {
	unlock := fakeLock(dir)
	defer unlock()
	var e vaultEntry
	if _, err := readJSON(vaultEntryPath(dir, mount, path), &e); err != nil {
		return err
	}
	v := e.Versions[strconv.Itoa(e.CurrentVersion)]
	v.Deleted, v.Data = true, nil
	e.Versions[strconv.Itoa(e.CurrentVersion)] = v
	return writeJSON(vaultEntryPath(dir, mount, path), &e)
}

// runFakeVault is `vault read -field=current_version MOUNT/metadata/PATH`, `vault kv get -mount=M [-version=N]
// -field=F PATH` and `vault kv put -mount=M [-cas=N] PATH K=V...`. Errors print as the CLI prints them (an API error
// quotes the request and the server's errors) and exit 2; flags it does not know exit 1, as the CLI's do.
func runFakeVault(dir string, args []string) int {
	flagErr := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, format+"\n", a...)
		return 1
	}
	var cmd string
	switch {
	case len(args) >= 1 && args[0] == "read":
		cmd, args = "read", args[1:]
	case len(args) >= 2 && args[0] == "kv" && (args[1] == "get" || args[1] == "put"):
		cmd, args = "kv "+args[1], args[2:]
	default:
		return flagErr("fake vault: unsupported command %q", strings.Join(args, " "))
	}
	flags := map[string]string{}
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		name, val, ok := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
		if !ok {
			return flagErr("fake vault: flags take -name=value; got %s", args[0])
		}
		flags[name] = val
		args = args[1:]
	}
	allowed := map[string][]string{"read": {"field"}, "kv get": {"mount", "version", "field"}, "kv put": {"mount", "cas"}}[cmd]
	for name := range flags {
		if !slices.Contains(allowed, name) {
			return flagErr("flag provided but not defined: -%s", name)
		}
	}
	if len(args) < 1 {
		return flagErr("Not enough arguments (expected 1, got 0)")
	}
	var mount, path, apiPath string
	if cmd == "read" {
		var ok bool
		mount, path, ok = strings.Cut(args[0], "/metadata/")
		if !ok || flags["field"] != "current_version" || len(args) != 1 {
			return flagErr("fake vault: this stand-in reads only -field=current_version of MOUNT/metadata/PATH")
		}
		apiPath = args[0]
	} else {
		mount, path = flags["mount"], args[0]
		if mount == "" {
			return flagErr("fake vault: this stand-in needs -mount")
		}
		apiPath = mount + "/data/" + path
	}
	method := "GET"
	if cmd == "kv put" {
		method = "PUT"
	}
	apiError := func(what string, status int, msg string) int {
		fmt.Fprintf(os.Stderr, "%s %s: Error making API request.\n\nURL: %s https://127.0.0.1:8200/v1/%s\nCode: %d. Errors:\n\n* %s\n",
			what, apiPath, method, apiPath, status, msg)
		return 2
	}
	what := "Error reading"
	if cmd == "kv put" {
		what = "Error writing data to"
	}

	fakeLog(dir, cmd)
	if status := os.Getenv(envFakeCLIFail); status != "" {
		n, _ := strconv.Atoi(status)
		return apiError(what, n, "permission denied")
	}
	unlock := fakeLock(dir)
	defer unlock()
	file := vaultEntryPath(dir, mount, path)
	var e vaultEntry
	exists, err := readJSON(file, &e)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake vault:", err)
		return 70
	}
	if !exists {
		e = vaultEntry{Versions: map[string]vaultVersion{}}
	}
	switch cmd {
	case "read":
		if !exists {
			fmt.Fprintf(os.Stderr, "No value found at %s\n", apiPath)
			return 2
		}
		fmt.Print(e.CurrentVersion) // -field prints no newline
		return 0
	case "kv get":
		version := e.CurrentVersion
		if v := flags["version"]; v != "" {
			if version, err = strconv.Atoi(v); err != nil {
				return flagErr("invalid value %q for flag -version: parse error", v)
			}
		}
		ver, ok := e.Versions[strconv.Itoa(version)]
		if !exists || !ok {
			fmt.Fprintf(os.Stderr, "No value found at %s\n", apiPath)
			return 2
		}
		if ver.Deleted {
			fmt.Fprintf(os.Stderr, "No data found at %s\n", apiPath)
			return 2
		}
		field := flags["field"]
		val, ok := ver.Data[field]
		if field == "" || !ok {
			fmt.Fprintf(os.Stderr, "Field %q not present in secret\n", field)
			return 1
		}
		fmt.Print(val) // -field prints no newline
		return 0
	}
	// kv put
	data := map[string]string{}
	for _, kv := range args[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "Failed to parse K=V data: invalid key/value pair %q\n", kv)
			return 1
		}
		switch {
		case v == "-":
			b, err := io.ReadAll(os.Stdin)
			if err != nil {
				return flagErr("Failed to parse K=V data: %v", err)
			}
			v = string(b)
		case strings.HasPrefix(v, "@"):
			b, err := os.ReadFile(v[1:])
			if err != nil {
				return flagErr("Failed to parse K=V data: %v", err)
			}
			v = string(b)
		}
		data[k] = v
	}
	if len(data) == 0 {
		return flagErr("Must supply data")
	}
	if other, ok := takeInterleave(dir); ok {
		e.CurrentVersion++
		e.Versions[strconv.Itoa(e.CurrentVersion)] = vaultVersion{Data: map[string]string{"record": other}}
		if err := writeJSON(file, &e); err != nil {
			fmt.Fprintln(os.Stderr, "fake vault:", err)
			return 70
		}
	}
	if c, ok := flags["cas"]; ok {
		cas, err := strconv.Atoi(c)
		if err != nil {
			return flagErr("invalid value %q for flag -cas: parse error", c)
		}
		if cas != e.CurrentVersion {
			return apiError(what, 400, "check-and-set parameter did not match the current version")
		}
	}
	e.CurrentVersion++
	e.Versions[strconv.Itoa(e.CurrentVersion)] = vaultVersion{Data: data}
	if err := writeJSON(file, &e); err != nil {
		fmt.Fprintln(os.Stderr, "fake vault:", err)
		return 70
	}
	if os.Getenv(envFakeCLIFailAfter) == "put" {
		return apiError(what, 503, "injected failure after the write")
	}
	fmt.Printf("= Secret Path =\n%s\n\nversion    %d\n", apiPath, e.CurrentVersion)
	return 0
}

// fakeCLI is one stand-in CLI for a test: a bin directory that holds it under its CLI's name, and the directory of
// its service's state.
type fakeCLI struct {
	t    *testing.T
	kind string // "aws" or "vault"
	bin  string
	dir  string
}

func newFakeCLI(t *testing.T, kind string) *fakeCLI {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeCLI{t: t, kind: kind, bin: t.TempDir(), dir: t.TempDir()}
	if err := os.Symlink(exe, filepath.Join(c.bin, kind)); err != nil {
		t.Fatal(err)
	}
	return c
}

// env is the environment that puts the stand-in first on PATH, with faults (NAME=VALUE) if any.
func (c *fakeCLI) env(faults ...string) []string {
	return append([]string{"PATH=" + c.bin + string(os.PathListSeparator) + os.Getenv("PATH"), envFakeCLIDir + "=" + c.dir}, faults...)
}

// calls returns the operations the stand-in was asked for, in order.
func (c *fakeCLI) calls() []string {
	b, err := os.ReadFile(filepath.Join(c.dir, "calls"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// interleave makes another writer store value just before the next write takes effect.
func (c *fakeCLI) interleave(value string) {
	c.t.Helper()
	if err := os.WriteFile(filepath.Join(c.dir, "interleave"), []byte(value), 0o600); err != nil {
		c.t.Fatal(err)
	}
}
