package provider

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
)

// A database that cannot be used fails the run before anything is exchanged, with a diagnostic that says what is
// wrong, and no output, log or file of the run holds the password.
func TestAccAccessToken_postgresStoreFaults(t *testing.T) {
	t.Parallel()
	connStr := pgtest.Start(t)
	right := pgtest.Shared(t).Password()
	const wrong = "wrong-Pa55-4417"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().String()
	l.Close()
	host, port, _ := net.SplitHostPort(closedPort)
	for name, tc := range map[string]struct {
		connStr string
		want    *regexp.Regexp
	}{
		"wrong password": {strings.Replace(connStr, "password="+right, "password="+wrong, 1), words("the server refused the login")},
		"unreachable":    {fmt.Sprintf("postgres://runner:%s@%s:%s/tf?sslmode=disable&connect_timeout=2", wrong, host, port), words("cannot connect")},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			engineLog := filepath.Join(t.TempDir(), "engine.log")
			w := f.workspace("TF_VAR_conn_str="+tc.connStr, "TF_LOG=trace", "TF_LOG_PATH="+engineLog)
			w.writeConfig(`
variable "conn_str" {
  type      = string
  sensitive = true
}
` + f.postgresTokenConfig("    backend  = \"postgres\"\n    conn_str = var.conn_str", f.seed()))
			w.mustRun("init")
			stdout, stderr, err := w.run("plan")
			if err == nil || !words("Bipsync Token Store Error").MatchString(stderr) || !tc.want.MatchString(stderr) {
				t.Fatalf("got %v\nstderr:\n%s\nwant the plan to fail with Bipsync Token Store Error matching %s", err, stderr, tc.want)
			}
			if got := f.server.Stats().TokenRequests; got != 0 {
				t.Errorf("token requests: got %d; want 0 (nothing may be exchanged when the store cannot be used)", got)
			}
			log, _ := os.ReadFile(engineLog)
			for what, text := range map[string]string{"stdout": stdout, "stderr": stderr, "the engine's trace log": string(log)} {
				for _, pw := range []string{wrong, right} {
					if strings.Contains(text, pw) {
						t.Errorf("%s holds a password", what)
					}
				}
			}
		})
	}
}
