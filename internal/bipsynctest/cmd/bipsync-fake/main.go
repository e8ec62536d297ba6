// Command bipsync-fake runs the fake Bipsync token server on a loopback address for local demos and scripts.
//
// It registers one client, seeds one refresh-token chain for it, and prints the base URL and the client id. The
// device authorization grant works as is: a person approves a code on the fake's page /oauth/device, a script with
// POST /_fake/device/approve?user_code=CODE. The authorization code grant needs -redirect-uri; its authorize page is
// /oauth/authorize.
// Secrets never go to stdout: with -state-file they are written, with the URL, to a 0600 JSON file that
// scripts can read ({"base_url","client_id","client_secret","refresh_token"}); the file is removed on exit,
// since the server keeps its tokens in memory only. The demo endpoints under /_fake/ are enabled.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bipsync-fake:", err)
		os.Exit(1)
	}
}

type state struct {
	BaseURL      string `json:"base_url"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	RefreshToken string `json:"refresh_token"`
}

// run serves until ctx ends. It writes the state file before it prints the listening line, so a script that
// waits for that line can read the file at once.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bipsync-fake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "loopback `host:port` to listen on")
	clientID := fs.String("client-id", "demo-client", "client id to register")
	clientSecret := fs.String("client-secret", "", "client secret to register (default: random)")
	public := fs.Bool("public", false, "register a public client (no secret)")
	scopes := fs.String("scopes", strings.Join(bipsynctest.DefaultScopes, " "),
		"space-separated scopes the server knows; the seeded chain is granted all of them")
	accessTTL := fs.Duration("access-ttl", time.Hour, "access token life")
	refreshTTL := fs.Duration("refresh-ttl", 30*24*time.Hour, "refresh token life")
	tokenType := fs.String("token-type", "Bearer", `token_type to answer ("Bearer" or "bearer")`)
	redirectURI := fs.String("redirect-uri", "", "register this redirect `URI` for the authorization code grant "+
		"(e.g. http://127.0.0.1:8765/callback)")
	stateFile := fs.String("state-file", "", "write base URL, client id, secret and refresh token to this `file` (mode 0600)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := checkLoopback(*addr); err != nil {
		return err
	}
	if *public && *clientSecret != "" {
		return errors.New("-public and -client-secret exclude each other")
	}

	clock := bipsynctest.NewClock(time.Now())
	srv := bipsynctest.NewServer(bipsynctest.Options{
		Clock:           clock,
		AccessTokenTTL:  *accessTTL,
		RefreshTokenTTL: *refreshTTL,
		TokenType:       *tokenType,
		Scopes:          strings.Fields(*scopes),
		Admin:           true,
	})
	st := state{ClientID: *clientID}
	if *public {
		srv.AddPublicClient(*clientID)
	} else {
		st.ClientSecret = *clientSecret
		if st.ClientSecret == "" {
			st.ClientSecret = rand.Text()
		}
		srv.AddClient(*clientID, st.ClientSecret)
	}
	st.RefreshToken = srv.IssueRefreshToken(*clientID, strings.Fields(*scopes))
	if *redirectURI != "" {
		srv.RegisterRedirectURI(*clientID, *redirectURI)
	}

	baseURL, err := srv.StartAddr(*addr)
	if err != nil {
		return err
	}
	defer srv.Close()
	st.BaseURL = baseURL

	if *stateFile != "" {
		if err := writeState(*stateFile, st); err != nil {
			return err
		}
		defer os.Remove(*stateFile)
	}
	fmt.Fprintf(stdout, "bipsync-fake listening on %s\n", baseURL)
	fmt.Fprintf(stdout, "client id: %s\n", *clientID)
	if *stateFile != "" {
		fmt.Fprintf(stdout, "secrets: in %s (mode 0600, removed on exit)\n", *stateFile)
	} else {
		if !*public && *clientSecret == "" {
			fmt.Fprintln(stdout, "client secret: random and not printed; pass -client-secret or -state-file")
		}
		fmt.Fprintf(stdout, "refresh token: not printed; pass -state-file, or POST %s%sseed?client_id=%s\n",
			baseURL, bipsynctest.AdminPrefix, url.QueryEscape(*clientID))
	}

	<-ctx.Done()
	return nil
}

// checkLoopback refuses any address a machine other than this one could reach: the fake hands out tokens to
// whoever asks.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q is not a loopback address; use 127.0.0.1, ::1 or localhost", addr)
	}
	return nil
}

// writeState writes the file atomically with mode 0600, so a reader never sees it half-written or readable
// by others.
func writeState(path string, st state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".bipsync-fake-*")
	if err != nil {
		return fmt.Errorf("create state file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod state file: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename state file: %w", err)
	}
	return nil
}
