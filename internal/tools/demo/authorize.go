package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
)

// chainStatus is what the demo reads of `terraform-provider-bipsync status -json`.
type chainStatus struct {
	Generation           int64      `json:"generation"`
	RotatedAt            *time.Time `json:"rotated_at"`
	AccessTokenExpiresAt *time.Time `json:"access_token_expires_at"`
	ChainExpiresAt       time.Time  `json:"chain_expires_at"`
	DaysLeft             int        `json:"days_left"`
	State                string     `json:"state"`
}

// subcommand returns the built provider binary running the subcommand args with the demo's endpoint, client secret
// file and (but for an authorize without -store) token store, stdin on its standard input.
func (d *demo) subcommand(ctx context.Context, stdin string, args ...string) *exec.Cmd {
	full := append(append([]string(nil), args...),
		"-base-url", d.vars["base_url"], "-client-id", clientID, "-client-secret-file", d.secretFile)
	if args[0] != "authorize" || slices.Contains(args, "-store") {
		full = append(full, "-token-store-path", d.vars["token_store_path"])
	}
	cmd := exec.CommandContext(ctx, d.providerBin, full...)
	cmd.Dir = d.work
	// The demo's variables and the user's BIPSYNC_* settings stay out: the flags above say everything.
	cmd.Env = tfcli.EngineEnv(os.Environ(), os.DevNull)
	cmd.Stdin = strings.NewReader(stdin)
	return cmd
}

// cli runs a subcommand (see subcommand) and shows it. Its standard error is streamed like the engine's output
// (secrets redacted, a leak fails the demo); its standard output is returned. A non-zero exit status is an error.
func (d *demo) cli(ctx context.Context, stdin string, args ...string) (string, error) {
	d.ui.say("%s %s", tfcli.ProviderBinary(), strings.Join(args, " "))
	cmd := d.subcommand(ctx, stdin, args...)
	var stdout bytes.Buffer
	lw := &lineWriter{emit: d.eng.emit}
	cmd.Stdout, cmd.Stderr = &stdout, lw
	err := cmd.Run()
	lw.flush()
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return stdout.String(), fmt.Errorf("%s %s exited with status %d", tfcli.ProviderBinary(), args[0], exit.ExitCode())
	}
	if err != nil {
		return "", fmt.Errorf("run %s %s: %w", tfcli.ProviderBinary(), args[0], err)
	}
	return stdout.String(), nil
}

// act1 gets the ephemeral chain's seed the way a person would: `authorize` runs the device flow against the fake,
// which plays the person and approves the code, writes the refresh token to a 0600 file, and saves the new chain
// with its first access token in the token store. status then shows the chain.
func (d *demo) act1(ctx context.Context) error {
	d.ui.say("Act 1: authorize. %s authorize runs the device flow; the fake plays the person who opens the address and "+
		"approves the code. The refresh token goes to a 0600 file, the chain and its first access token to the token store", tfcli.ProviderBinary())
	seedFile := filepath.Join(filepath.Dir(d.secretFile), "api-seed")
	err := d.step(ctx, 1, "authorize (device flow)", tally{}, func() error {
		actx, cancel := context.WithCancel(ctx)
		defer cancel()
		go d.approveDeviceCode(actx)
		if _, err := d.cli(ctx, "", "authorize", "-scope", strings.Join(ephemeralSeedScopes, " "), "-out", seedFile, "-store"); err != nil {
			return err
		}
		seed, err := os.ReadFile(seedFile)
		if err != nil {
			return fmt.Errorf("read the refresh token authorize wrote: %w", err)
		}
		d.vars["api_seed"] = strings.TrimSpace(string(seed))
		if st := d.srv.Stats(); st.DeviceTokens != 1 {
			return fmt.Errorf("the fake answered %d device code polls with tokens; want 1", st.DeviceTokens)
		}
		return nil
	})
	if err != nil {
		return err
	}
	st, err := d.showStatus(ctx)
	if err != nil {
		return err
	}
	if st.Generation != 0 || st.AccessTokenExpiresAt == nil {
		return fmt.Errorf("status shows generation %d; want generation 0 with the first access token", st.Generation)
	}
	d.ui.say("the ephemeral resource will find this chain by its seed (TF_VAR_api_seed) and hand out its first access token without an exchange")
	return nil
}

// approveDeviceCode plays the person: it waits for authorize's code to appear at the fake and approves it.
func (d *demo) approveDeviceCode(ctx context.Context) {
	for {
		if codes := d.srv.PendingUserCodes(); len(codes) > 0 {
			if err := d.srv.ApproveDevice(codes[0]); err == nil {
				d.ui.say("the fake approves code %s, as a person would on its verification page", codes[0])
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// showStatus prints `status` of the ephemeral chain and returns what `status -json` says.
func (d *demo) showStatus(ctx context.Context) (chainStatus, error) {
	out, err := d.cli(ctx, d.vars["api_seed"], "status")
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		d.eng.emit(line)
	}
	if err != nil {
		return chainStatus{}, err
	}
	return d.chainStatus(ctx)
}

// chainStatus reads the ephemeral chain's status as JSON, without printing it.
func (d *demo) chainStatus(ctx context.Context) (chainStatus, error) {
	cmd := d.subcommand(ctx, d.vars["api_seed"], "status", "-json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return chainStatus{}, fmt.Errorf("status -json: %w: %s", err, d.eng.redact(stderr.String()))
	}
	var st chainStatus
	if err := json.Unmarshal(out, &st); err != nil {
		return chainStatus{}, fmt.Errorf("status -json printed what is not its view: %w", err)
	}
	return st, nil
}
