package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	if p := decide("/usr/local/bin/moto_server", nil, true); p.found != "/usr/local/bin/moto_server" || p.install != nil || p.skip != "" {
		t.Errorf("installed: got %+v; want it found and nothing installed", p)
	}
	notFound := errors.New("no moto_server found")
	want := []string{"python3", "-m", "pip", "install", "--user", "--quiet", "moto[server]==5.2.1"}
	if p := decide("", notFound, true); !slices.Equal(p.install, want) || p.skip != "" {
		t.Errorf("missing, with pip: got %+v; want %q", p, want)
	}
	if p := decide("", notFound, false); p.install != nil || !strings.Contains(p.skip, "no moto_server found") {
		t.Errorf("missing, without pip: got %+v; want a skip that says why", p)
	}
}
