package cli

import (
	"context"
	"errors"
	"fmt"
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

// LoadClaim and PutClaim pass to a store that claims (its Traits say so), as the embedded interface cannot.
func (s refusingStore) LoadClaim(ctx context.Context, key tokenstore.Key, seed string) (*tokenstore.Claim, error) {
	c, ok := s.Store.(tokenstore.Claimer)
	if !ok {
		return nil, errors.New("the store takes no claims")
	}
	return c.LoadClaim(ctx, key, seed)
}

func (s refusingStore) PutClaim(ctx context.Context, key tokenstore.Key, seed string, c, replaces *tokenstore.Claim) error {
	cl, ok := s.Store.(tokenstore.Claimer)
	if !ok {
		return errors.New("the store takes no claims")
	}
	return cl.PutClaim(ctx, key, seed, c, replaces)
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
			// Nothing was restored: a non-zero exit, and the advice to remove the file only because the store holds a
			// record of higher generation, which it names.
			said := flat(r.stderr)
			if r.code != ExitFailure || !strings.Contains(said, "nothing was restored") ||
				!strings.Contains(said, "holds generation 3") || !strings.Contains(said, "(generation 2)") ||
				!strings.Contains(said, "can be removed") {
				t.Fatalf("stale restore: exit %d; want 1, naming generations 3 and 2 and that the file can go; stderr:\n%s", r.code, r.stderr)
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

// TestRestore_conflictAdvice: a refused restore advises removing the rescue file only when the store holds a record of
// equal or higher generation than the rescued one; otherwise the file may hold the chain's live head and is kept.
func TestRestore_conflictAdvice(t *testing.T) {
	t.Parallel()
	key := tokenstore.KeyFor("https://t-api.bipsync.com/v1/oauth/token", "id", "seed")
	rec := &tokenstore.Record{RefreshToken: "head", Generation: 5, ID: tokenstore.NewRecordID()}
	env, err := tokenstore.Seal(key, "seed", rec)
	if err != nil {
		t.Fatal(err)
	}
	r := &tokenstore.Rescue{Key: key, Replaces: "4." + tokenstore.NewRecordID(), Envelope: string(env)}
	st := tokenstore.NewNone()
	rev := func(gen int64) *tokenstore.Revision {
		return &tokenstore.Revision{Generation: gen, ID: tokenstore.NewRecordID()}
	}
	for _, tc := range []struct {
		name    string
		current *tokenstore.Revision
		remove  bool
		say     string
	}{
		{"higher generation", rev(6), true, "holds generation 6"},
		{"equal generation (a fork's sibling that was saved)", rev(5), true, "holds generation 5"},
		{"lower generation", rev(4), false, "holds generation 4"},
		{"no record, or not told", nil, false, "does not tell"},
		{"legacy record", &tokenstore.Revision{}, false, "legacy"},
	} {
		msg := flat(conflictAdvice(st, r, fmt.Errorf("restore: %w", &tokenstore.ConflictError{Current: tc.current})).lines(Program + " restore"))
		removes := strings.Contains(msg, "can be removed")
		if removes != tc.remove || !strings.Contains(msg, tc.say) || !strings.Contains(msg, "nothing was restored") ||
			!strings.Contains(msg, "generation 5") {
			t.Errorf("%s: got %q; want removal advised %t, saying %q and the rescued generation 5", tc.name, msg, tc.remove, tc.say)
		}
		if !tc.remove && !strings.Contains(msg, "Keep the rescue file") {
			t.Errorf("%s: got %q; want it to say to keep the file", tc.name, msg)
		}
	}
}
