package tokenstore

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
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
