// Package cli runs the provider binary's subcommands, the parts of a chain's life that need a person or a scheduled
// job rather than Terraform:
//
//   - authorize gets the first refresh token of a chain (its seed) through the device authorization grant, or the
//     authorization code grant with PKCE and a loopback redirect, and hands it over without showing it;
//   - status shows a chain as its token store holds it, and exits non-zero when it is unreadable or close to its end;
//   - rotate exchanges a chain now, through the same token source, locks and rules as the provider, and shows it;
//   - restore puts a record the provider could not save, kept sealed in a rescue file, back into the token store.
//
// main.go dispatches here when its first argument names a subcommand; otherwise the binary is the provider plugin that
// the engine starts.
//
// A refresh token never reaches a terminal and never a command line. authorize writes it to a file it creates with
// mode 0600, or to standard output only when standard output is not a terminal (a pipe into a secret manager's CLI);
// status and rotate read it from BIPSYNC_REFRESH_TOKEN or from standard input, never from a flag, because a command
// line is visible to other users of the machine and is kept in shell history. For the same reason the client secret
// comes from BIPSYNC_CLIENT_SECRET or a file (-client-secret-file), not from a flag. Everything meant for the person
// goes to standard error; standard output carries only the token (authorize) or the chain's view (status, rotate).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"

	"golang.org/x/term"
)

// Exit statuses.
const (
	// ExitOK: the command did what was asked; for status, the chain is readable and more than 7 days from its end, or
	// not exchanged yet.
	ExitOK = 0
	// ExitFailure: the command failed; its message says why and what to do.
	ExitFailure = 1
	// ExitUsage: a flag or a setting is missing or wrong; nothing was sent anywhere.
	ExitUsage = 2
	// ExitExpiring: status and rotate read the chain, and it ends within 7 days, has ended, or is dead (Bipsync refused
	// it for good).
	ExitExpiring = 3
)

// Program is the binary's name in messages.
const Program = "terraform-provider-bipsync"

// IO is where a command reads and writes.
type IO struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Options change what the commands depend on; tests use them to share a clock and an HTTP client and to play the
// browser.
type Options struct {
	// Version is the binary's version, for the User-Agent of token requests.
	Version string
	// Now is the clock of the records a command writes and of the times it shows; default time.Now.
	Now func() time.Time
	// HTTPClient is the client of every request to Bipsync (default: a client with a 30 s timeout). Redirects are
	// never followed, whatever its CheckRedirect says: a token request carries secrets.
	HTTPClient *http.Client
	// OpenBrowser opens an address in the person's browser, for authorize -pkce -open-browser; default the system's
	// opener (xdg-open, open, or the Windows URL handler).
	OpenBrowser func(ctx context.Context, url string) error
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) int
}

// commands lists the subcommands (a function, because help refers back to the list).
func commands() []command {
	return []command{
		{"authorize", "get a refresh token, the seed of a chain, through the device flow (or -pkce)", runAuthorize},
		{"status", "show a chain as its token store holds it; exit 3 within 7 days of its end", runStatus},
		{"rotate", "exchange a chain now, as the provider would, then show it", runRotate},
		{"restore", "put a record the provider could not save (its rescue file) back into the token store", runRestore},
		{"help", "list the subcommands, or show one command's flags: help COMMAND", runHelp},
	}
}

// IsCommand tells whether name is a subcommand, so that main can tell a person's command line from the engine's.
func IsCommand(name string) bool {
	return slices.ContainsFunc(commands(), func(c command) bool { return c.name == name })
}

// env is what every command gets.
type env struct {
	IO
	opts Options
}

// Run runs the subcommand args[0] with the rest of args, and returns the exit status.
func Run(ctx context.Context, args []string, stdio IO, opts Options) int {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	hc := *opts.HTTPClient
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	opts.HTTPClient = &hc
	if opts.OpenBrowser == nil {
		opts.OpenBrowser = openSystemBrowser
	}
	e := &env{IO: stdio, opts: opts}
	if len(args) == 0 {
		usage(e.Stderr)
		return ExitUsage
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	fmt.Fprintf(e.Stderr, "%s: unknown command %q\n\n", Program, args[0])
	usage(e.Stderr)
	return ExitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "%s is the Bipsync provider for Terraform and OpenTofu. The engine starts it as a plugin\n", Program)
	fmt.Fprintf(w, "(with no arguments); these subcommands are for people and scheduled jobs:\n\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun %s help COMMAND for a command's flags. Settings fall back to the provider's BIPSYNC_*\n", Program)
	fmt.Fprintln(w, "environment variables.")
}

func runHelp(_ context.Context, e *env, args []string) int {
	if len(args) == 0 {
		usage(e.Stdout)
		return ExitOK
	}
	if !IsCommand(args[0]) || args[0] == "help" {
		fmt.Fprintf(e.Stderr, "%s help: unknown command %q\n", Program, args[0])
		return ExitUsage
	}
	return Run(context.Background(), []string{args[0], "-h"}, IO{Stdout: e.Stdout, Stderr: e.Stdout}, e.opts)
}

// newFlagSet returns a flag set whose -h prints the command's doc and flags.
func newFlagSet(e *env, name, doc string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s %s [flags]\n\n%s\n\nFlags:\n", Program, name, doc)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; it returns an exit status when the command should stop (-h, a bad flag, an argument).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, true
		}
		return ExitUsage, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s %s: unexpected argument %q (every setting is a flag)\n", Program, fs.Name(), fs.Arg(0))
		return ExitUsage, true
	}
	return 0, false
}

// usageError is a missing or wrong setting: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// fail prints err as the command's failure and returns its exit status.
func fail(e *env, cmd string, err error) int {
	var f *failure
	if errors.As(err, &f) {
		fmt.Fprint(e.Stderr, f.lines(Program+" "+cmd))
		return ExitFailure
	}
	fmt.Fprintf(e.Stderr, "%s %s: %s\n", Program, cmd, err)
	var ue *usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitFailure
}

// isTerminal tells whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printable drops control characters from text a server chose (a verification address, an error description), so
// that an answer cannot move the cursor or rewrite what the person reads.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, s)
}
