package provider

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readmeMaxLines is the README's budget: it is the front page, and the guides hold the rest.
const readmeMaxLines = 300

// TestREADME_length fails when the README grows past its budget.
func TestREADME_length(t *testing.T) {
	t.Parallel()
	readme := readRepoFile(t, "README.md")
	if n := strings.Count(readme, "\n"); n > readmeMaxLines {
		t.Errorf("README.md has %d lines; want at most %d (move the detail into a guide)", n, readmeMaxLines)
	}
}

// readmeTryItLocally returns the shell block of the README's "Try it locally" section.
func readmeTryItLocally(t *testing.T) string {
	t.Helper()
	readme := readRepoFile(t, "README.md")
	i := strings.Index(readme, "\n## Try it locally\n")
	if i < 0 {
		t.Fatal(`README.md has no "## Try it locally" section`)
	}
	m := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(readme[i:])
	if m == nil {
		t.Fatal(`the README's "Try it locally" section has no sh block`)
	}
	return m[1]
}

// TestAccREADME_tryItLocally runs the README's "Try it locally" block as a reader would, from the repository, with
// the engine under test named terraform: make install-local, the fake server, authorize with the three variables,
// the approval, init, apply, status, and a second apply that exchanges nothing. Only what would collide with the
// machine is moved: the fake's port, the /tmp paths, HOME (where install-local puts the plugin) and the directory the
// command is installed in (put first on PATH). A reader's CLI configuration is absent, as after a clean install.
func TestAccREADME_tryItLocally(t *testing.T) {
	engine := currentEngine(t)
	for _, tool := range []string{"bash", "make", "curl", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the README's block needs %s on PATH: %v", tool, err)
		}
	}
	root := exampleRepoRoot(t)
	tmp := t.TempDir()
	home, gobin, enginebin, work := filepath.Join(tmp, "home"), filepath.Join(tmp, "gobin"), filepath.Join(tmp, "engine"), filepath.Join(tmp, "work")
	for _, d := range []string{home, gobin, enginebin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(engine.Path, filepath.Join(enginebin, "terraform")); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	block := readmeTryItLocally(t)
	for _, s := range []string{"127.0.0.1:8089", "/tmp/bipsync-local", "/tmp/bipsync-fake", "make install-local",
		"terraform-provider-bipsync authorize", "terraform-provider-bipsync status", "terraform apply"} {
		if !strings.Contains(block, s) {
			t.Fatalf("the README's block no longer contains %q; update this test with it:\n%s", s, block)
		}
	}
	block = strings.NewReplacer("127.0.0.1:8089", addr, "/tmp/bipsync-local", work,
		"/tmp/bipsync-fake", filepath.Join(tmp, "bipsync-fake")).Replace(block)
	// The fake and a waiting authorize must not outlive a failed run.
	script := "set -e\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n" + block

	goEnv := map[string]string{}
	// Go keeps its settings file and caches under HOME by default: keep the reader's, or the block would build
	// everything again with other settings.
	goVars := []string{"GOENV", "GOPATH", "GOCACHE", "GOMODCACHE"}
	out, err := exec.Command("go", append([]string{"env"}, goVars...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range goVars {
		goEnv[name] = strings.Split(strings.TrimRight(string(out), "\n"), "\n")[i]
	}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "TF_") || strings.HasPrefix(name, "BIPSYNC_") || name == "HOME" || name == "PATH" ||
			name == "GOBIN" || name == "XDG_CACHE_HOME" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+home, "GOBIN="+gobin, "XDG_CACHE_HOME="+filepath.Join(tmp, "cache"), "CHECKPOINT_DISABLE=1",
		"PATH="+gobin+string(os.PathListSeparator)+enginebin+string(os.PathListSeparator)+os.Getenv("PATH"))
	for name, v := range goEnv {
		env = append(env, name+"="+v)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-m", "-c", script)
	cmd.Dir, cmd.Env = root, env
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's block failed: %v\n%s", err, got)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`generation:\s+1\n`),
		regexp.MustCompile(`"refresh_exchanges":1,`),
		regexp.MustCompile(`"protected_ok":2,`),
		regexp.MustCompile(`"device_tokens":1,`),
		regexp.MustCompile(`is on PATH: run it as terraform-provider-bipsync`),
	} {
		if !want.Match(got) {
			t.Errorf("the README's block did not print %s:\n%s", want, got)
		}
	}
	if _, err := os.Stat(filepath.Join(gobin, "terraform-provider-bipsync")); err != nil {
		t.Errorf("make install-local did not install the command where GOBIN says: %v", err)
	}
	if strings.Contains(string(got), strconv.Quote("access_token")) {
		t.Errorf("the README's block printed an access token field:\n%s", got)
	}
}
