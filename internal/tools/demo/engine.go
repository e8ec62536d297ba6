package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
)

// interruptGrace is how long the engine gets to stop after an interrupt
// before it is killed. An engine stopped mid-apply may lose state, which in
// a throwaway working directory costs nothing.
const interruptGrace = 20 * time.Second

// buildProvider builds the provider binary into dir.
func buildProvider(ctx context.Context, root, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, tfcli.ProviderBinary()), ".")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build the provider: %w\n%s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// engine runs one engine in the demo's working directory.
type engine struct {
	name    string
	bin     string
	dir     string
	baseEnv []string
	ui      *ui
	// secrets lists every token and secret in play; a line of engine output
	// that holds one is printed redacted and fails the demo.
	secrets func() []string
	leaked  bool
	// overrides keeps the dev_overrides warning to its first appearance.
	overrides overrideWarning
}

// result is how an engine command ended.
type result struct {
	code   int    // exit status
	output string // combined output as printed (redacted)
}

// run streams an engine command's output and returns its exit status. An
// error means the command could not run or was interrupted; a non-zero exit
// status alone is not an error.
func (e *engine) run(ctx context.Context, vars map[string]string, args ...string) (result, error) {
	// The demo dims the engine's lines itself; the engine's own colours
	// would fight that and garble a log file.
	args = append([]string{args[0], "-no-color"}, args[1:]...)
	e.ui.say("%s %s", e.name, strings.Join(args, " "))
	lw := &lineWriter{emit: e.emit}
	code, err := e.exec(ctx, vars, lw, lw, args)
	lw.flush()
	return result{code: code, output: lw.captured.String()}, err
}

// capture runs an engine command without printing its output, for `show
// -json`, whose output holds every sensitive value in clear.
func (e *engine) capture(ctx context.Context, vars map[string]string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	code, err := e.exec(ctx, vars, &stdout, &stderr, args)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("%s %s exited with status %d: %s", e.name, strings.Join(args, " "), code, e.redact(stderr.String()))
	}
	return stdout.Bytes(), nil
}

func (e *engine) exec(ctx context.Context, vars map[string]string, stdout, stderr interface{ Write([]byte) (int, error) }, args []string) (int, error) {
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Dir = e.dir
	cmd.Env = append(append([]string(nil), e.baseEnv...), tfVars(vars)...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = interruptGrace
	// The engine gets one interrupt from the demo, not a second one from the
	// terminal: two make it exit at once without saving state.
	detach(cmd)
	err := cmd.Run()
	if ctx.Err() != nil {
		return -1, ctx.Err()
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("run %s: %w", e.name, err)
	}
	return 0, nil
}

func (e *engine) emit(line string) string {
	line = e.redact(line)
	if e.overrides.show(line) {
		e.ui.engineLine(line)
	}
	return line
}

// overrideHeader opens the warning both engines print at every command while a CLI configuration's dev_overrides are
// in effect.
const overrideHeader = "Warning: Provider development overrides are in effect"

// overrideWarning hides that warning after its first appearance: the demo runs a dozen engine commands, and once is
// enough to say that the provider is a local build. The warning is a paragraph block: its heading, then three blank
// lines in all (after the heading, after the list of overrides, after the closing paragraph).
type overrideWarning struct {
	seen     bool
	skipping bool
	blanks   int
}

// show tells whether to print line. A warning whose wording no longer matches is printed every time, never lost.
func (o *overrideWarning) show(line string) bool {
	trimmed := strings.TrimSpace(line)
	switch {
	case o.skipping:
		if trimmed == "" {
			o.blanks++
			o.skipping = o.blanks < 3
		}
		return false
	case trimmed != overrideHeader:
		return true
	case !o.seen:
		o.seen = true
		return true
	}
	o.skipping, o.blanks = true, 0
	return false
}

// redact replaces every known secret in s and remembers that one leaked.
func (e *engine) redact(s string) string {
	for _, secret := range e.secrets() {
		if secret != "" && strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, "[REDACTED]")
			e.leaked = true
		}
	}
	return s
}

// tfVars turns the demo's variables into TF_VAR_ assignments, in a stable
// order. Secrets reach the engine only this way, never on a command line.
func tfVars(vars map[string]string) []string {
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, "TF_VAR_"+k+"="+vars[k])
	}
	return out
}

// lineWriter hands complete lines to emit and keeps what emit returns. The
// engine's stdout and stderr share one, so Write is serialised.
type lineWriter struct {
	emit     func(string) string
	mu       sync.Mutex
	partial  []byte
	captured strings.Builder
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.put(strings.TrimRight(string(w.partial[:i]), "\r"))
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.put(string(w.partial))
		w.partial = nil
	}
}

func (w *lineWriter) put(line string) {
	w.captured.WriteString(w.emit(line))
	w.captured.WriteByte('\n')
}

// hclString quotes s as an HCL string literal. JSON's escapes are HCL's;
// template sequences are escaped as well.
func hclString(s string) string {
	b, _ := json.Marshal(s)
	q := strings.ReplaceAll(string(b), "${", "$${")
	return strings.ReplaceAll(q, "%{", "%%{")
}

// hclList is an HCL list of strings, for a list variable set through TF_VAR_.
func hclList(items ...string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = hclString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// hclMap is an HCL map of strings with sorted keys.
func hclMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = hclString(k) + " = " + hclString(m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func randomSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate the client secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}
