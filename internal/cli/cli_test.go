package cli

import (
	"context"
	"strings"
	"testing"
)

func TestIsCommand(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{"authorize": true, "status": true, "rotate": true, "help": true,
		"-debug": false, "": false, "serve": false} {
		if got := IsCommand(name); got != want {
			t.Errorf("IsCommand(%q): got %t; want %t", name, got, want)
		}
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	f := &fixture{t: t}
	r := f.run(context.Background(), "", Options{}, "help")
	for _, want := range []string{"authorize", "status", "rotate", "help COMMAND"} {
		if r.code != ExitOK || !strings.Contains(r.stdout, want) {
			t.Errorf("help: exit %d; want 0 listing %q:\n%s", r.code, want, r.stdout)
		}
	}
	r = f.run(context.Background(), "", Options{}, "help", "status")
	if r.code != ExitOK || !strings.Contains(r.stdout, "-json") || !strings.Contains(r.stdout, "Exit status") {
		t.Errorf("help status: exit %d:\n%s", r.code, r.stdout)
	}
	r = f.run(context.Background(), "", Options{}, "frobnicate")
	if r.code != ExitUsage || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d:\n%s", r.code, r.stderr)
	}
}
