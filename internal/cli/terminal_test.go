//go:build !windows

package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// terminal is a pseudo-terminal: what the command writes to tty, a person would read; the test reads it from the
// controlling side.
type terminal struct {
	tty  *os.File
	seen chan string
}

func newTerminal(t *testing.T) *terminal {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	term := &terminal{tty: tty, seen: make(chan string, 1)}
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, ptmx) // ends with EIO once the tty side is closed
		term.seen <- b.String()
	}()
	t.Cleanup(func() { ptmx.Close(); tty.Close() })
	return term
}

// screen closes the terminal and returns everything that was shown on it.
func (term *terminal) screen() string {
	term.tty.Close()
	select {
	case s := <-term.seen:
		return s
	case <-time.After(5 * time.Second):
		return "(the terminal did not drain)"
	}
}

// TestAuthorize_terminal_refusesToShowTheToken runs the command with standard output on a terminal and no -out: it
// refuses before asking Bipsync for anything.
func TestAuthorize_terminal_refusesToShowTheToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	term := newTerminal(t)
	code := Run(context.Background(), append([]string{"authorize"}, f.endpoint(pubClient)...),
		IO{Stdin: strings.NewReader(""), Stdout: term.tty, Stderr: term.tty}, Options{})
	screen := term.screen()
	if code != ExitUsage || !strings.Contains(screen, "standard output is a terminal") || !strings.Contains(screen, "-out FILE") {
		t.Fatalf("exit %d; want 2 and the refusal on the terminal:\n%s", code, screen)
	}
	if n := len(f.srv.Requests()); n != 0 {
		t.Errorf("requests: got %d; want none", n)
	}
}

// TestAuthorize_terminal_tokenNeverShown runs the whole device flow, and -store, with standard output and standard
// error on a terminal: the token lands in the file and the store, and nothing secret is ever on the screen.
func TestAuthorize_terminal_tokenNeverShown(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	term := newTerminal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.approve(ctx)
	out := filepath.Join(f.dir, "seed.txt")
	args := append([]string{"authorize"}, f.endpoint(confClient)...)
	args = append(args, "-scope", "read", "-out", out, "-store", "-token-store-path", filepath.Join(f.dir, "chains"))
	code := Run(ctx, args, IO{Stdin: strings.NewReader(""), Stdout: term.tty, Stderr: term.tty}, Options{})
	screen := term.screen()
	if code != ExitOK {
		t.Fatalf("exit %d; screen:\n%s", code, screen)
	}
	seed, _ := os.ReadFile(out)
	if !f.srv.RefreshTokenLive(strings.TrimSpace(string(seed))) {
		t.Fatal("the file does not hold a live refresh token")
	}
	if !strings.Contains(screen, "went to "+out) || !strings.Contains(screen, "first access token") {
		t.Errorf("the screen does not say where the token and the chain went:\n%s", screen)
	}
	if len(f.srv.SeenSecrets()) < 3 {
		t.Fatalf("the fake saw %d secrets; want at least the device code and the two tokens", len(f.srv.SeenSecrets()))
	}
	f.noSecrets("the terminal", screen)
}
