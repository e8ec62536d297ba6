// Command demo shows the provider at work against a fake Bipsync server, on
// a machine that has only Go:
//
//	make demo                      # through OpenTofu (built and cached on first use)
//	make demo ARGS='-engine terraform'
//
// It builds the provider into a temporary directory, starts the fake server
// from internal/bipsynctest in this process on 127.0.0.1 with short-lived
// tokens, and drives the engine through examples/demo with a CLI
// configuration whose dev_overrides point at the build. Each act states what
// should happen, streams the engine's own output, then checks what the fake
// server saw. The exit status is 0 only when every act behaved as expected.
//
// The same binary, run as `demo probe`, is the consumer the configuration's
// provisioners call: it sends GET /v1/me with the token it was handed and
// reports the answer, never the token.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/provideraddr"
	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
)

// The fake server's token life and the configuration's windows are chosen
// together: after the first apply the second plan and apply have 15 seconds
// before the grant's access token enters its rotation window (each takes
// about a second), and the rotation act waits about 20 seconds for both tokens
// to come due. The fake shows a 1 s device polling interval, so that the
// authorize act waits one second for its first poll rather than Bipsync's 5.
const (
	accessTokenTTL = 40 * time.Second
	rotateBefore   = 25 * time.Second
	minValidity    = 15 * time.Second

	clientID = "cli-demo"

	// engineEnv picks the engine when -engine is not given.
	engineEnv = "BIPSYNC_DEMO_ENGINE"

	exitFailed      = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// The chains are seeded with different scopes. The grant asks for its
// scopes at every exchange and the ephemeral resource asks for none (it
// keeps the consent), which is how the fake's request log tells the two
// chains' exchanges apart.
var (
	grantScopes         = []string{"rest_api:read"}
	ephemeralSeedScopes = []string{"rest_api:read"}
	ephemeralScopes     []string
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == probeCommand {
		os.Exit(probeMain(os.Args[2:], os.Getenv, os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	start := time.Now()
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	defaultEngine := os.Getenv(engineEnv)
	if defaultEngine == "" {
		defaultEngine = "tofu"
	}
	engineName := fs.String("engine", defaultEngine, "engine to drive: tofu (OpenTofu "+tfcli.TofuVersion+
		", built and cached on first use) or terraform (a terraform >= "+tfcli.MinTerraformVersion+" on PATH); default $"+engineEnv+" or tofu")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./internal/tools/demo [-engine tofu|terraform]\n\n"+
			"Runs examples/demo against a fake Bipsync server on 127.0.0.1 and checks every step.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if fs.NArg() != 0 || (*engineName != "tofu" && *engineName != "terraform") {
		fs.Usage()
		return exitUsage
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ui := newUI(os.Stdout)
	d, cleanup, err := setUp(ctx, ui, *engineName)
	defer cleanup()
	if err == nil {
		ui.say("ready in %s; the acts start now", since(start))
		err = d.play(ctx)
		d.summary(start)
	}
	switch {
	case ctx.Err() != nil:
		ui.say("interrupted; removing the temporary files")
		return exitInterrupted
	case err != nil:
		ui.fail("%v", err)
		return exitFailed
	}
	ui.say("demo passed in %s", since(start))
	return 0
}

// setUp does everything before the first act: the temporary directory, the
// provider build, the engine, the fake server and the engine's environment.
// cleanup is always safe to call, also after an error.
func setUp(ctx context.Context, ui *ui, engineName string) (d *demo, cleanup func(), err error) {
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}

	root, err := moduleRoot()
	if err != nil {
		return nil, cleanup, err
	}
	tmp, err := os.MkdirTemp("", "bipsync-demo-")
	if err != nil {
		return nil, cleanup, fmt.Errorf("create a temporary directory: %w", err)
	}
	undo = append(undo, func() { _ = os.RemoveAll(tmp) })

	ui.say("building the provider into %s", filepath.Join(tmp, "bin"))
	binDir := filepath.Join(tmp, "bin")
	if err := buildProvider(ctx, root, binDir); err != nil {
		return nil, cleanup, err
	}

	ui.say("finding the engine (%s)", engineName)
	bin, version, err := findEngine(ctx, engineName)
	if err != nil {
		return nil, cleanup, err
	}
	ui.say("engine: %s (%s)", version, bin)

	work := filepath.Join(tmp, "work")
	if err := copyConfig(filepath.Join(root, "examples", "demo"), work); err != nil {
		return nil, cleanup, err
	}
	cliConfig := filepath.Join(tmp, "cli.tfrc")
	if err := tfcli.WriteDevOverrides(cliConfig, binDir, nil); err != nil {
		return nil, cleanup, err
	}
	ui.say("CLI configuration %s: dev_overrides serve %s from that build; the engine warns about that at every command, and the demo shows the warning once", cliConfig, provideraddr.Source)
	self, err := os.Executable()
	if err != nil {
		return nil, cleanup, fmt.Errorf("locate the demo program for the probe: %w", err)
	}

	srv := bipsynctest.NewServer(bipsynctest.Options{AccessTokenTTL: accessTokenTTL, DeviceInterval: time.Second,
		DeviceIntervalVisible: true})
	url := srv.Start()
	undo = append(undo, srv.Close)
	secret, err := randomSecret()
	if err != nil {
		return nil, cleanup, err
	}
	srv.AddClient(clientID, secret)
	ui.say("fake Bipsync server at %s: client %s, access tokens live %s", url, clientID, accessTokenTTL)
	// The subcommands take the client secret from a file, never from a command line.
	secretFile := filepath.Join(tmp, "client-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		return nil, cleanup, fmt.Errorf("write the client secret file: %w", err)
	}

	d = &demo{
		ui:          ui,
		srv:         srv,
		work:        work,
		probeReport: filepath.Join(tmp, "probes.jsonl"),
		grantSeed:   srv.IssueRefreshToken(clientID, grantScopes),
		providerBin: filepath.Join(binDir, tfcli.ProviderBinary()),
		secretFile:  secretFile,
	}
	// The ephemeral chain's seed comes from the authorize act.
	d.vars = demoVars(url, secret, d.grantSeed, "", filepath.Join(tmp, "store"),
		[]string{self, probeCommand, "-report", d.probeReport})
	d.eng = &engine{
		name:    engineName,
		bin:     bin,
		dir:     work,
		baseEnv: tfcli.EngineEnv(os.Environ(), cliConfig),
		ui:      ui,
		secrets: srv.SeenSecrets,
	}
	return d, cleanup, nil
}

// demoVars are the values of the demo configuration's variables, handed to
// the engine as TF_VAR_ environment variables.
func demoVars(url, secret, grantSeed, apiSeed, storePath string, probe []string) map[string]string {
	return map[string]string{
		"base_url":           url,
		"client_id":          clientID,
		"client_secret":      secret,
		"grant_seed":         grantSeed,
		"grant_seed_version": "1",
		"api_seed":           apiSeed,
		"rotate_before":      rotateBefore.String(),
		"min_validity":       minValidity.String(),
		"token_store_path":   storePath,
		"probe":              hclList(probe...),
	}
}

// findEngine returns the engine's path and the first line of its version.
func findEngine(ctx context.Context, name string) (bin, version string, err error) {
	cfg := tfcli.Config{Log: os.Stderr}
	if name == "terraform" {
		bin, err = tfcli.Terraform(ctx, cfg)
	} else {
		bin, err = tfcli.Tofu(ctx, cfg)
	}
	if err != nil {
		return "", "", fmt.Errorf("find the engine: %w", err)
	}
	id, err := tfcli.Identify(ctx, cfg, bin)
	if err != nil {
		return "", "", fmt.Errorf("find the engine: %w", err)
	}
	return bin, id.String(), nil
}

// moduleRoot finds the repository from the working directory, which is the
// root under make and usually somewhere inside it otherwise.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the working directory: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/bipsync/terraform-provider-bipsync\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the demo from inside the terraform-provider-bipsync repository (make demo)")
		}
		dir = parent
	}
}

// copyConfig copies the demo configuration into the working directory, so
// that state, plans and the engine's data directory stay out of the
// repository and every run starts from nothing.
func copyConfig(src, dst string) error {
	files, err := filepath.Glob(filepath.Join(src, "*.tf"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no configuration in %s", src)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read the demo configuration: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), data, 0o600); err != nil {
			return fmt.Errorf("copy the demo configuration: %w", err)
		}
	}
	return nil
}

func since(t time.Time) time.Duration {
	return time.Since(t).Round(100 * time.Millisecond)
}

// ui prints the demo's own lines, set apart from the engine's.
type ui struct {
	w     io.Writer
	color bool
}

func newUI(f *os.File) *ui {
	u := &ui{w: f}
	if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb" {
		u.color = true
	}
	return u
}

func (u *ui) say(format string, args ...any) {
	u.line("\x1b[1m", "==> "+fmt.Sprintf(format, args...))
}

func (u *ui) fail(format string, args ...any) {
	u.line("\x1b[1;31m", "==> FAIL: "+fmt.Sprintf(format, args...))
}

// engineLine prints one line of the engine's output, indented and dimmed.
func (u *ui) engineLine(s string) {
	u.line("\x1b[2m", "    │ "+s)
}

// plain prints an indented line of the demo's own.
func (u *ui) plain(format string, args ...any) {
	u.line("", "    "+fmt.Sprintf(format, args...))
}

func (u *ui) line(style, s string) {
	if u.color && style != "" {
		s = style + s + "\x1b[0m"
	}
	fmt.Fprintln(u.w, s)
}
