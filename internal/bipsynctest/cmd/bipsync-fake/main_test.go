package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// started runs the command until the test ends and returns its first three stdout lines.
func started(t *testing.T, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(run(ctx, args, pw, io.Discard)) }()
	t.Cleanup(func() {
		cancel()
		pr.Close()
	})
	var lines []string
	sc := bufio.NewScanner(pr)
	for len(lines) < 3 && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	// Keep draining so the command never blocks on a full pipe.
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return lines
}

func TestRun_stateFileAndExchange(t *testing.T) {
	t.Parallel()
	stateFile := filepath.Join(t.TempDir(), "fake.json")
	lines := started(t, "-state-file", stateFile, "-client-id", "demo", "-scopes", "read write")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "bipsync-fake listening on http://127.0.0.1:") ||
		lines[1] != "client id: demo" {
		t.Fatalf("stdout: got %q; want the listening line and the client id", lines)
	}
	info, err := os.Stat(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("state file mode: got %o; want 600", mode)
	}
	b, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.BaseURL != strings.TrimPrefix(lines[0], "bipsync-fake listening on ") || st.ClientID != "demo" ||
		st.ClientSecret == "" || !strings.HasPrefix(st.RefreshToken, "def50200") {
		t.Errorf("state: got base %q client %q; want the printed URL, demo, a secret and a refresh token", st.BaseURL, st.ClientID)
	}
	for _, line := range lines {
		if strings.Contains(line, st.ClientSecret) || strings.Contains(line, st.RefreshToken) {
			t.Errorf("stdout line carries a secret: %q", line)
		}
	}

	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {st.ClientID},
		"client_secret": {st.ClientSecret}, "refresh_token": {st.RefreshToken}}
	resp, err := http.PostForm(st.BaseURL+"/v1/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"refresh_token":"def50200`) {
		t.Errorf("exchange with the state file's credentials: got %d %s; want 200", resp.StatusCode, body)
	}
	resp, err = http.Get(st.BaseURL + "/_fake/stats")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"refresh_exchanges":1`) {
		t.Errorf("admin stats: got %s; want one exchange", body)
	}
}

func TestRun_exitsAndRemovesStateFile(t *testing.T) {
	t.Parallel()
	stateFile := filepath.Join(t.TempDir(), "fake.json")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, []string{"-state-file", stateFile, "-public"}, pw, io.Discard) }()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "bipsync-fake listening on ") {
		t.Fatalf("first line: got %q; want the listening line", sc.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("run: got %v; want nil on cancellation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
	if _, err := os.Stat(stateFile); !os.IsNotExist(err) {
		t.Errorf("state file after exit: got %v; want it removed", err)
	}
}

func TestRun_refusesBadArguments(t *testing.T) {
	t.Parallel()
	tests := [][]string{
		{"-addr", "0.0.0.0:0"},
		{"-addr", "192.0.2.1:8080"},
		{"-addr", "example.com:80"},
		{"-addr", "no-port"},
		{"-public", "-client-secret", "s"},
		{"extra"},
	}
	for _, args := range tests {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q): got nil; want an error", args)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"127.0.0.1:0", "[::1]:8080", "localhost:0", "127.1.2.3:9"} {
		if err := checkLoopback(addr); err != nil {
			t.Errorf("checkLoopback(%q): got %v; want nil", addr, err)
		}
	}
}
