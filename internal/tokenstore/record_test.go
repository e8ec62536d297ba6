package tokenstore

import (
	"bytes"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRecord_FormattingRedactsSecrets(t *testing.T) {
	t.Parallel()
	rec := sampleRecord()
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("record", "rec", *rec)
	outputs := map[string]string{
		"String":         rec.String(),
		"GoString":       rec.GoString(),
		"%v value":       fmt.Sprintf("%v", *rec),
		"%+v value":      fmt.Sprintf("%+v", *rec),
		"%#v value":      fmt.Sprintf("%#v", *rec),
		"%v pointer":     fmt.Sprintf("%v", rec),
		"%#v pointer":    fmt.Sprintf("%#v", rec),
		"%s pointer":     fmt.Sprintf("%s", rec), //nolint:staticcheck // S1025: the case under test is fmt's %s path, not String
		"%v in struct":   fmt.Sprintf("%+v", struct{ R Record }{*rec}),
		"%#v in struct":  fmt.Sprintf("%#v", struct{ R Record }{*rec}),
		"slog value":     logged.String(),
		"%v in []Record": fmt.Sprintf("%v", []Record{*rec}),
	}
	for name, out := range outputs {
		assertNoSecret(t, name, out)
		if !strings.Contains(out, "redacted") {
			t.Errorf("%s: got %q; want the tokens marked redacted", name, out)
		}
	}
	if s := rec.String(); !strings.Contains(s, "Generation:7") || !strings.Contains(s, "Scopes:[read write]") {
		t.Errorf("String: got %q; want the non-secret fields shown", s)
	}
}

func TestRecord_StringShowsAbsentTokens(t *testing.T) {
	t.Parallel()
	s := Record{TokenType: "Bearer"}.String()
	if !strings.Contains(s, `RefreshToken:""`) || strings.Contains(s, "redacted") {
		t.Fatalf("got %q; want empty tokens shown as empty, not redacted", s)
	}
	if !strings.Contains(s, "Scopes:nil") {
		t.Fatalf("got %q; want nil scopes shown as nil", s)
	}
}

func TestRecord_CloneIsDeep(t *testing.T) {
	t.Parallel()
	rec := sampleRecord()
	rec.Leases = []Lease{{ID: "lease", MinValidity: time.Minute}}
	rec.Asks = []ScopeAsk{{Scopes: []string{"read"}}, {Scopes: nil}, {Scopes: []string{}}}
	c := rec.Clone()
	if !reflect.DeepEqual(c, rec) {
		t.Fatalf("clone = %v; want %v", c, rec)
	}
	c.Scopes[0] = "changed"
	c.Leases[0].ID = "changed"
	c.Asks[0].Scopes[0] = "changed"
	if rec.Scopes[0] == "changed" || rec.Leases[0].ID == "changed" || rec.Asks[0].Scopes[0] == "changed" {
		t.Errorf("changing the clone changed the original: %v", rec)
	}
	if c.Asks[1].Scopes != nil || c.Asks[2].Scopes == nil {
		t.Errorf("clone's ask scopes = %#v and %#v; want nil and empty", c.Asks[1].Scopes, c.Asks[2].Scopes)
	}

	bare := (&Record{}).Clone()
	if bare.Scopes != nil || bare.Leases != nil || bare.Asks != nil {
		t.Errorf("clone of a record without slices = %#v; want nil slices", bare)
	}
	empty := (&Record{Scopes: []string{}}).Clone()
	if empty.Scopes == nil {
		t.Error("clone of empty scopes is nil; want empty (a known empty consent)")
	}
}
