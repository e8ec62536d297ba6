package mototest

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A server answers S3 requests on loopback, keeps objects, refuses a conditional write that does not hold (what the
// s3 token store relies on), and is gone when the test ends.
func TestStart_S3OnLoopback(t *testing.T) {
	aws, err := exec.LookPath("aws")
	if err != nil {
		for _, d := range pyenvShims {
			if p := filepath.Join(d, "aws"); isFile(p) {
				aws = p
			}
		}
	}
	if aws == "" {
		t.Skip("SKIP moto: no aws CLI to talk to the server with")
	}
	var endpoint string
	t.Run("server", func(t *testing.T) {
		endpoint = Start(t)
		if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
			t.Fatalf("endpoint %q; want one on 127.0.0.1", endpoint)
		}
		body := filepath.Join(t.TempDir(), "body")
		if err := os.WriteFile(body, []byte("record"), 0o600); err != nil {
			t.Fatal(err)
		}
		run := func(args ...string) (string, error) {
			cmd := exec.Command(aws, args...)
			cmd.Env = append(os.Environ(), Env(endpoint)...)
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		if out, err := run("s3api", "create-bucket", "--bucket", "mototest-bucket"); err != nil {
			t.Fatalf("create-bucket: %v\n%s", err, out)
		}
		if out, err := run("s3api", "put-object", "--bucket", "mototest-bucket", "--key", "k", "--body", body, "--if-none-match", "*"); err != nil {
			t.Fatalf("first put: %v\n%s", err, out)
		}
		out, err := run("s3api", "put-object", "--bucket", "mototest-bucket", "--key", "k", "--body", body, "--if-none-match", "*")
		if err == nil || !strings.Contains(out, "PreconditionFailed") {
			t.Fatalf("second put with If-None-Match *: got %v\n%s; want PreconditionFailed", err, out)
		}
		out, err = run("s3api", "get-object", "--bucket", "mototest-bucket", "--key", "k", filepath.Join(t.TempDir(), "out"))
		if err != nil || !strings.Contains(out, "ETag") {
			t.Fatalf("get-object: %v\n%s", err, out)
		}
	})
	c := &http.Client{Timeout: 2 * time.Second}
	if resp, err := c.Get(endpoint + "/moto-api/"); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("the server at %s still answers after its test ended", endpoint)
	}
}

// Two servers do not share a port or objects.
func TestStart_OwnServer(t *testing.T) {
	a, b := Start(t), Start(t)
	if a == b {
		t.Fatalf("two servers on %s", a)
	}
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
