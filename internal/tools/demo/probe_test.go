package main

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

func TestProbeMain(t *testing.T) {
	t.Parallel()
	srv := bipsynctest.NewServer(bipsynctest.Options{})
	base := srv.Start()
	t.Cleanup(srv.Close)
	srv.AddClient("cli-test", "secret-of-the-test")
	live, _ := srv.IssueTokenPair("cli-test", []string{"rest_api:read"})
	revoked, rt := srv.IssueTokenPair("cli-test", []string{"rest_api:read"})
	srv.RevokeChain(rt)

	tests := []struct {
		name       string
		token      string
		wantCode   int
		wantOut    string
		wantStatus int
	}{
		{"live token", live, 0, "grant's access token: GET /v1/me → 200 OK for client cli-test, scopes [rest_api:read]", http.StatusOK},
		{"revoked token", revoked, exitFailed, "401 Unauthorized: access_denied (Access token has been revoked)", http.StatusUnauthorized},
		{"no token", "", exitFailed, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			report := filepath.Join(t.TempDir(), "probes.jsonl")
			getenv := func(k string) string {
				if k == probeTokenEnv {
					return tt.token
				}
				return ""
			}
			var stdout, stderr bytes.Buffer
			code := probeMain([]string{"-report", report, "grant", base + bipsynctest.ProtectedPath}, getenv, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code: got %d; want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantOut) {
				t.Errorf("stdout: got %q; want it to contain %q", stdout.String(), tt.wantOut)
			}
			for _, secret := range srv.SeenSecrets() {
				if strings.Contains(stdout.String()+stderr.String(), secret) {
					t.Errorf("the probe printed a secret: %q", stdout.String()+stderr.String())
				}
			}
			got, n, err := readReports(report, 0)
			if err != nil {
				t.Fatal(err)
			}
			if n != 1 || len(got) != 1 {
				t.Fatalf("reports: got %d lines; want 1", n)
			}
			if got[0].Label != "grant" || got[0].Status != tt.wantStatus {
				t.Errorf("report: got %+v; want label grant, status %d", got[0], tt.wantStatus)
			}
		})
	}
}

func TestProbeMain_Usage(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := probeMain([]string{"only-a-label"}, func(string) string { return "" }, &stdout, &stderr)
	if code != exitUsage {
		t.Errorf("exit code: got %d; want %d", code, exitUsage)
	}
	if !strings.Contains(stderr.String(), "usage:") {
		t.Errorf("stderr: got %q; want a usage line", stderr.String())
	}
}

func TestProbe_DoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	var followed atomic.Bool
	target := http.NewServeMux()
	target.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		followed.Store(true)
	})
	target.HandleFunc("/v1/me", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	srv := newLoopbackServer(t, target)

	res, err := probe(context.Background(), http.DefaultTransport, srv+"/v1/me", "a-token")
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusTemporaryRedirect || followed.Load() {
		t.Errorf("got status %d, followed %t; want 307 and not followed", res.Status, followed.Load())
	}
}

func TestReadReports_Skip(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "probes.jsonl")
	for _, label := range []string{"a", "b", "c"} {
		if err := appendReport(path, probeResult{Label: label, Status: http.StatusOK}); err != nil {
			t.Fatal(err)
		}
	}
	got, n, err := readReports(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || len(got) != 1 || got[0].Label != "c" {
		t.Errorf("got %d lines, results %+v; want 3 lines and only c", n, got)
	}
	if got, n, err := readReports(filepath.Join(t.TempDir(), "missing"), 0); err != nil || n != 0 || got != nil {
		t.Errorf("missing file: got %v, %d, %v; want nothing and no error", got, n, err)
	}
}
