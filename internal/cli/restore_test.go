package cli

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// refusingStore fails every save, as a store whose permissions were taken away does.
type refusingStore struct{ tokenstore.Store }

func (refusingStore) Save(context.Context, tokenstore.Key, string, *tokenstore.Record, *tokenstore.Revision) error {
	return errors.New("AccessDeniedException: not authorized to perform secretsmanager:PutSecretValue")
}

// TestRestore_putsTheRescuedRecordBack: an exchange whose save failed leaves its record in a rescue file, and the
// command the diagnostic names puts it back, so the next run continues the chain without a reauthorization. A rescue
// that another run has overtaken is refused as stale and changes nothing.
func TestRestore_putsTheRescuedRecordBack(t *testing.T) {
	t.Parallel()
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			if sk.name == "command" && runtime.GOOS == "windows" {
				t.Skip("the helper is a shell script")
			}
			f := newFixture(t, bipsynctest.Options{})
			flags := sk.flags(f)
			seed := f.chain(flags)
			working := f.source(flags)
			st := working.Store()
			rescueDir := filepath.Join(f.dir, "rescue")
			tc, err := (&env{opts: Options{Now: time.Now, HTTPClient: http.DefaultClient}}).tokenClient(
				client{baseURL: f.url, clientID: confClient, clientSecret: confSecret})
			if err != nil {
				t.Fatal(err)
			}
			broken, err := tokensource.New(tokensource.Options{Client: tc, Store: refusingStore{st}, RescueDir: rescueDir,
				Registry: tokensource.NewRegistry(), SaveBudget: time.Second, Sleep: func(context.Context, time.Duration) error { return nil }})
			if err != nil {
				t.Fatal(err)
			}
			_, err = broken.Token(context.Background(), tokensource.Request{RefreshToken: seed, Force: true, MinValidity: time.Minute})
			var se *tokensource.SaveError
			if !errors.As(err, &se) || se.Rescue == "" {
				t.Fatalf("got %v; want a save failure with a rescue file", err)
			}

			r := f.run(context.Background(), "", Options{}, append(append([]string{"restore"}, flags...), se.Rescue)...)
			if r.code != ExitOK || !strings.Contains(r.stderr, "the record is back") {
				t.Fatalf("restore: exit %d, stderr:\n%s", r.code, r.stderr)
			}
			f.noSecrets("restore output", r.stdout, r.stderr)
			res, err := f.source(flags).Token(context.Background(), tokensource.Request{RefreshToken: seed, MinValidity: time.Minute})
			if err != nil || res.Exchanged || res.Generation != 2 || !f.srv.AccessTokenLive(res.AccessToken) {
				t.Fatalf("after restore: got (%v, %v); want the rescued generation 2, its live token, no exchange", res, err)
			}

			// The chain moves on; the same rescue file is stale now.
			if _, err := f.source(flags).Token(context.Background(), tokensource.Request{RefreshToken: seed, Force: true}); err != nil {
				t.Fatal(err)
			}
			r = f.run(context.Background(), "", Options{}, append(append([]string{"restore"}, flags...), se.Rescue)...)
			if r.code != ExitOK || !strings.Contains(r.stderr, "the rescue file is stale") {
				t.Fatalf("stale restore: exit %d, stderr:\n%s", r.code, r.stderr)
			}
			if rec, err := f.source(flags).Record(context.Background(), seed); err != nil || rec.Generation != 3 {
				t.Fatalf("after the stale restore: got (%v, %v); want generation 3 kept", rec, err)
			}
		})
	}
}

func TestRestore_badInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	junk := filepath.Join(f.dir, "junk")
	if err := os.WriteFile(junk, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"restore"}, {"restore", junk}, {"restore", filepath.Join(f.dir, "missing")}} {
		if r := f.run(context.Background(), "", Options{}, args...); r.code == ExitOK {
			t.Errorf("%v: got exit 0; want a failure", args)
		}
	}
}
