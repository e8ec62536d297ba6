package tokenstore

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "chains")
	for _, tc := range []struct {
		name  string
		cfg   Config
		local bool
		err   string
	}{
		{name: "file", cfg: Config{Backend: "file", Path: dir}, local: true},
		{name: "default backend", cfg: Config{Path: dir}, local: true},
		{name: "none", cfg: Config{Backend: "none"}},
		{name: "command", cfg: Config{Backend: "command", Command: []string{"true"}}},
		{name: "command, protocol 2", cfg: Config{Backend: "command", Command: []string{"true"}, Protocol: ProtocolConditional}},
		{name: "command, unknown protocol", cfg: Config{Backend: "command", Command: []string{"true"}, Protocol: 7}, err: "protocol"},
		{name: "command without a program", cfg: Config{Backend: "command"}, err: "needs a command"},
		{name: "postgres", cfg: Config{Backend: "postgres", ConnStr: "host=db.internal dbname=tf", SchemaName: "ci"}},
		{name: "postgres, bad connection string", cfg: Config{Backend: "postgres", ConnStr: "port=notaport"}, err: "conn_str"},
		{name: "postgres, bad schema", cfg: Config{Backend: "postgres", SchemaName: "pg_x"}, err: "schema_name"},
		{name: "unknown backend", cfg: Config{Backend: "vault"}, err: `"vault" is not file, command, postgres, s3 or none`},
	} {
		st, err := New(tc.cfg)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: got %v; want an error containing %q", tc.name, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case st.Traits().Local != tc.local:
			t.Errorf("%s: got traits %+v; want Local %t", tc.name, st.Traits(), tc.local)
		case tc.cfg.Backend == "postgres" && !strings.Contains(st.Describe(), `"ci"."chains"`):
			t.Errorf("%s: got %q; want the schema it was given", tc.name, st.Describe())
		}
	}
}
