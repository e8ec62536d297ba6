package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestLineWriter(t *testing.T) {
	t.Parallel()
	var emitted []string
	w := &lineWriter{emit: func(s string) string {
		emitted = append(emitted, s)
		return strings.ToUpper(s)
	}}
	for _, chunk := range []string{"one\r\ntw", "o\n", "\nthree"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q): got %d, %v; want %d, nil", chunk, n, err, len(chunk))
		}
	}
	w.flush()
	if want := []string{"one", "two", "", "three"}; !slices.Equal(emitted, want) {
		t.Errorf("emitted: got %q; want %q", emitted, want)
	}
	if got, want := w.captured.String(), "ONE\nTWO\n\nTHREE\n"; got != want {
		t.Errorf("captured: got %q; want %q", got, want)
	}
}

func TestEngineRedact(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	e := &engine{ui: &ui{w: &out}, secrets: func() []string { return []string{"", "s3cret", "tok-123"} }}

	if got := e.emit("nothing to hide"); got != "nothing to hide" || e.leaked {
		t.Errorf("got %q, leaked %t; want the line unchanged and no leak", got, e.leaked)
	}
	got := e.emit(`Authorization: Bearer tok-123, secret "s3cret"`)
	if want := `Authorization: Bearer [REDACTED], secret "[REDACTED]"`; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	if !e.leaked {
		t.Error("leaked: got false; want true")
	}
	if strings.Contains(out.String(), "tok-123") || strings.Contains(out.String(), "s3cret") {
		t.Errorf("printed a secret: %q", out.String())
	}
}

func TestHCLQuoting(t *testing.T) {
	t.Parallel()
	tests := []struct{ got, want string }{
		{hclString(`C:\dir "x"`), `"C:\\dir \"x\""`},
		{hclString("a${b}%{c}"), `"a$${b}%%{c}"`},
		{hclList("/bin/demo", "probe"), `["/bin/demo", "probe"]`},
		{hclList(), `[]`},
		{hclMap(map[string]string{"b": "2", "a": "1"}), `{"a" = "1", "b" = "2"}`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %s; want %s", tt.got, tt.want)
		}
	}
}

func TestEngineShowsOverrideWarningOnce(t *testing.T) {
	t.Parallel()
	// Two commands' output as `tofu plan -no-color` prints it under dev_overrides.
	command := []string{
		"",
		"Warning: Provider development overrides are in effect",
		"",
		"The following provider development overrides are set in the CLI",
		"configuration:",
		" - bipsync/bipsync in /tmp/demo/bin",
		"",
		"The behavior may therefore not match any released version of the provider and",
		"applying changes may cause the state to become incompatible with published",
		"releases.",
		"",
		"No changes. Your infrastructure matches the configuration.",
	}
	var out bytes.Buffer
	e := &engine{ui: &ui{w: &out}, secrets: func() []string { return nil }}
	var captured []string
	for range 2 {
		for _, line := range command {
			captured = append(captured, e.emit(line))
		}
	}
	printed := out.String()
	for text, want := range map[string]int{
		"Warning: Provider development overrides are in effect": 1,
		"bipsync/bipsync in /tmp/demo/bin":                      1,
		"releases.":                                             1,
		"No changes.":                                           2,
	} {
		if got := strings.Count(printed, text); got != want {
			t.Errorf("%q printed %d times; want %d\n%s", text, got, want, printed)
		}
	}
	if !slices.Equal(captured, append(command, command...)) {
		t.Errorf("captured output: got %q; want every line of both commands (the acts read it)", captured)
	}
	// Another warning is printed every time.
	e.emit("Warning: Something else")
	e.emit("Warning: Something else")
	if got := strings.Count(out.String(), "Warning: Something else"); got != 2 {
		t.Errorf("another warning printed %d times; want 2", got)
	}
}

func TestTFVars(t *testing.T) {
	t.Parallel()
	got := tfVars(map[string]string{"b": "2", "a": "x=y"})
	if want := []string{"TF_VAR_a=x=y", "TF_VAR_b=2"}; !slices.Equal(got, want) {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestCopyConfig(t *testing.T) {
	t.Parallel()
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "work")
	for name, body := range map[string]string{"main.tf": "# main", "vars.tf": "# vars", "README.md": "# not copied", "terraform.tfstate": "{}"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyConfig(src, dst); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dst)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if want := []string{"main.tf", "vars.tf"}; !slices.Equal(got, want) {
		t.Errorf("copied: got %q; want %q", got, want)
	}
	if err := copyConfig(t.TempDir(), dst); err == nil {
		t.Error("copy of an empty directory: got no error; want one")
	}
}

// TestDemoVars_MatchConfiguration keeps the demo and examples/demo in step:
// every variable the demo sets is declared, and every declared variable
// without a default is set.
func TestDemoVars_MatchConfiguration(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "demo", "variables.tf"))
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{} // name → has a default
	blocks := regexp.MustCompile(`(?ms)^variable "([a-z_]+)" \{(.*?)^\}`).FindAllStringSubmatch(string(data), -1)
	for _, b := range blocks {
		declared[b[1]] = regexp.MustCompile(`(?m)^\s*default\s*=`).MatchString(b[2])
	}
	if len(declared) == 0 {
		t.Fatal("no variables found in examples/demo/variables.tf")
	}
	vars := demoVars("http://127.0.0.1:1", "secret", "seed-1", "seed-2", "/tmp/store", []string{"/bin/demo", probeCommand})
	vars["grant_keepers"] = hclMap(map[string]string{"reason": "test"}) // set by act 5
	for name := range vars {
		if _, ok := declared[name]; !ok {
			t.Errorf("the demo sets %s, which examples/demo does not declare", name)
		}
	}
	for name, hasDefault := range declared {
		if _, ok := vars[name]; !ok && !hasDefault {
			t.Errorf("examples/demo declares %s without a default, and the demo does not set it", name)
		}
	}
	// The defaults are the demo's own windows, so that a run by hand against
	// a fake with the demo's token life behaves the same.
	for _, b := range blocks {
		want, ok := map[string]string{"rotate_before": vars["rotate_before"], "min_validity": vars["min_validity"]}[b[1]]
		if !ok {
			continue
		}
		if !strings.Contains(b[2], `default     = "`+want+`"`) {
			t.Errorf("variable %s: want default %q, the demo's value", b[1], want)
		}
	}
}

// TestWindows checks the timing the acts rely on: act 3 fits before either
// token comes due, and both tokens come due before they expire.
func TestWindows(t *testing.T) {
	t.Parallel()
	if accessTokenTTL-rotateBefore < 2*act3Budget || accessTokenTTL-minValidity < 2*act3Budget {
		t.Errorf("ttl %s, rotate_before %s, min_validity %s: want at least %s before either token comes due",
			accessTokenTTL, rotateBefore, minValidity, 2*act3Budget)
	}
	if minValidity <= 0 || rotateBefore <= 0 || minValidity >= accessTokenTTL || rotateBefore >= accessTokenTTL {
		t.Errorf("ttl %s, rotate_before %s, min_validity %s: want both windows inside the token life", accessTokenTTL, rotateBefore, minValidity)
	}
}
