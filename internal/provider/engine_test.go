package provider

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/bipsync/terraform-provider-bipsync/internal/acctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/provideraddr"
	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
)

// Some behaviour cannot be reached through terraform-plugin-testing: a plan saved in one run and applied in another
// (with the clock moved in between), the CLI's warnings, or the raw state file. These helpers drive the engine
// directly, with the provider served in this process so that it shares the fixture's fake clock and server.

// currentEngine returns the engine of this test run (TF_ACC_TERRAFORM_PATH, which TestMain sets), skipping the test
// when there is none.
func currentEngine(t *testing.T) tfcli.Engine {
	t.Helper()
	accPreCheck(t)
	return accEngine
}

// testProviderAddress is where the engine looks for the provider of a configuration without required_providers: each
// engine resolves the implied hashicorp namespace on its own registry host.
func testProviderAddress(e tfcli.Engine) string {
	return e.RegistryHost() + "/hashicorp/" + provideraddr.Name
}

// serveProvider serves one provider server in this process in go-plugin's test mode and returns the value of
// TF_REATTACH_PROVIDERS that points the engine at it. The engine shuts the server down when its command ends, so
// every command needs a server of its own; stop waits for it to be gone.
func serveProvider(t *testing.T, address string, server func() tfprotov6.ProviderServer) (reattach string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	configCh := make(chan *plugin.ReattachConfig, 1)
	closeCh := make(chan struct{})
	errCh := make(chan error, 1)
	go func() {
		errCh <- tf6server.Serve(address, server,
			tf6server.WithDebug(ctx, configCh, closeCh),
			tf6server.WithGoPluginLogger(hclog.NewNullLogger()),
			// Provider logs follow the test process's TF_LOG settings, as with terraform-plugin-testing, instead of
			// going to stderr at trace level.
			tf6server.WithLoggingSink(t),
		)
	}()
	var cfg *plugin.ReattachConfig
	select {
	case cfg = <-configCh:
	case err := <-errCh:
		cancel()
		t.Fatalf("serving the provider: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serving the provider: no reattach configuration after 30s")
	}
	type addr struct{ Network, String string }
	type reattachConfig struct {
		Protocol        string
		ProtocolVersion int
		Pid             int
		Test            bool
		Addr            addr
	}
	b, err := json.Marshal(map[string]reattachConfig{address: {
		Protocol:        string(cfg.Protocol),
		ProtocolVersion: cfg.ProtocolVersion,
		Pid:             cfg.Pid,
		Test:            cfg.Test,
		Addr:            addr{Network: cfg.Addr.Network(), String: cfg.Addr.String()},
	}})
	if err != nil {
		cancel()
		t.Fatalf("encoding the reattach configuration: %v", err)
	}
	return string(b), func() {
		cancel()
		<-closeCh
	}
}

// runEngine runs the engine in dir with env added to the environment every engine run gets (tfcli.EngineEnv: this
// process's, less the user's own TF_* and BIPSYNC_* settings, with TestMain's empty CLI configuration) and returns
// what it printed. A command that exits non-zero returns an *exec.ExitError.
func runEngine(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	e := currentEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Path, args...)
	cmd.Dir = dir
	cmd.Env = tfcli.EngineEnv(os.Environ(), cliConfig, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// engineWorkspace is a working directory in which a test runs engine commands itself, each with a fresh provider
// server from the fixture.
type engineWorkspace struct {
	t        *testing.T
	dir      string
	env      []string
	engine   tfcli.Engine
	provider func() tfprotov6.ProviderServer
}

// workspace returns an empty working directory for engine commands, serving the fixture's provider (same fake
// clock and server as f.factories). env is added to every command's environment, e.g. TF_VAR_seed=....
func (f *fixture) workspace(env ...string) *engineWorkspace {
	f.t.Helper()
	return &engineWorkspace{
		t:        f.t,
		dir:      f.t.TempDir(),
		env:      env,
		engine:   currentEngine(f.t),
		provider: providerserver.NewProtocol6(NewWithOptions("test", f.options())()),
	}
}

// writeConfig replaces the workspace's configuration (main.tf).
func (w *engineWorkspace) writeConfig(hcl string) {
	w.t.Helper()
	if err := os.WriteFile(filepath.Join(w.dir, "main.tf"), []byte(hcl), 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// run runs one engine command against a provider served for it, with -no-color added after the subcommand.
func (w *engineWorkspace) run(args ...string) (stdout, stderr string, err error) {
	w.t.Helper()
	if len(args) > 0 {
		args = append([]string{args[0], "-no-color"}, args[1:]...)
	}
	reattach, stop := serveProvider(w.t, testProviderAddress(w.engine), w.provider)
	defer stop()
	env := append(append([]string{}, w.env...), "TF_REATTACH_PROVIDERS="+reattach)
	return runEngine(w.t, w.dir, env, args...)
}

// mustRun runs an engine command that must succeed and returns its standard output.
func (w *engineWorkspace) mustRun(args ...string) string {
	w.t.Helper()
	stdout, stderr, err := w.run(args...)
	if err != nil {
		w.t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", w.engine.Path, strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// rawState returns the local state file, exactly as the engine wrote it.
func (w *engineWorkspace) rawState() []byte {
	w.t.Helper()
	b, err := os.ReadFile(filepath.Join(w.dir, "terraform.tfstate"))
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

// checkState runs state checks, the same the terraform-plugin-testing steps use, on the workspace's state as
// `show -json` prints it.
func (w *engineWorkspace) checkState(checks ...statecheck.StateCheck) {
	w.t.Helper()
	if err := acctest.CheckShowJSON([]byte(w.mustRun("show", "-json")), checks...); err != nil {
		w.t.Errorf("state after the last command: %v", err)
	}
}

// planFileContains tells whether any file inside a saved plan (a zip archive) contains s.
func planFileContains(t *testing.T, w *engineWorkspace, name, s string) bool {
	t.Helper()
	z, err := zip.OpenReader(filepath.Join(w.dir, name))
	if err != nil {
		t.Fatalf("opening the saved plan: %v", err)
	}
	defer z.Close()
	for _, f := range z.File {
		r, err := f.Open()
		if err != nil {
			t.Fatalf("opening %s in the saved plan: %v", f.Name, err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("reading %s in the saved plan: %v", f.Name, err)
		}
		if strings.Contains(string(b), s) {
			return true
		}
	}
	return false
}

// exitCode is the exit status of a failed command, 0 for none and -1 when it did not run.
func exitCode(err error) int {
	var ee interface{ ExitCode() int }
	if err == nil {
		return 0
	}
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}
