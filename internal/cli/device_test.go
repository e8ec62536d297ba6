package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
)

// The device flow polls through x/oauth2 on the wall clock: every test here waits at least one real 1 s interval
// (the fake's), and the slow_down test six more. They run in parallel.

func TestAuthorize_device_approvedToFile(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.approve(ctx)
	out := filepath.Join(f.dir, "seed.txt")
	r := f.authorize(ctx, Options{}, append(f.endpoint(confClient), "-scope", "read,write", "-out", out)...)
	if r.code != ExitOK {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	seed := strings.TrimSuffix(string(b), "\n")
	if !f.srv.RefreshTokenLive(seed) {
		t.Fatalf("the file holds %d bytes that are not a live refresh token of the fake", len(b))
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode of %s: got %v; want 0600", out, fi.Mode().Perm())
	}
	if leftovers, _ := filepath.Glob(filepath.Join(f.dir, ".seed.txt.*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	if r.stdout != "" {
		t.Errorf("stdout: got %q; want nothing (the token went to the file)", r.stdout)
	}
	// The person is told the code, where to type it, and the address that carries it.
	uc := regexp.MustCompile(`\n    ([BCDFGHJKLMNPQRSTVWXZ]{8})\n`).FindStringSubmatch(r.stderr)
	if uc == nil || !strings.Contains(r.stderr, f.url+"/oauth/device\n") ||
		!strings.Contains(r.stderr, f.url+"/oauth/device?user_code="+uc[1]) {
		t.Errorf("stderr lacks the user code, the verification address or the complete address:\n%s", r.stderr)
	}
	for _, want := range []string{out + " (mode 0600)", "TF_VAR_bipsync_refresh_token", "BIPSYNC_REFRESH_TOKEN"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
		}
	}
	f.noSecrets("stderr", r.stderr)
	if st := f.srv.Stats(); st.DeviceTokens != 1 || st.RefreshExchanges != 0 {
		t.Errorf("stats: got %+v; want one device token and no exchange", st)
	}
	// The scopes asked are the chain's.
	var scope string
	for _, e := range f.srv.Requests() {
		if e.Path == bipsynctest.DevicePath {
			scope = e.Scope
		}
	}
	if scope != "read write" {
		t.Errorf("device authorization scope: got %q; want %q", scope, "read write")
	}
}

func TestAuthorize_device_approvedToPipe(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.approve(ctx)
	r := f.authorize(ctx, Options{}, f.endpoint(pubClient)...)
	if r.code != ExitOK {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	if !f.srv.RefreshTokenLive(r.stdout) {
		t.Fatalf("stdout (%d bytes) is not exactly a live refresh token", len(r.stdout))
	}
	if !strings.Contains(r.stderr, "went to standard output") {
		t.Errorf("stderr does not say where the token went:\n%s", r.stderr)
	}
	f.noSecrets("stderr", r.stderr)
}

func TestAuthorize_device_denied(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.person(ctx, func(uc string) { _ = f.srv.DenyDevice(uc) })
	out := filepath.Join(f.dir, "seed.txt")
	r := f.authorize(ctx, Options{}, append(f.endpoint(pubClient), "-out", out)...)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "denied") || !strings.Contains(r.stderr, "HTTP 401") ||
		!strings.Contains(r.stderr, "Run this command again") {
		t.Fatalf("exit %d; want 1 and a denial that says what to do; stderr:\n%s", r.code, r.stderr)
	}
	if entries, _ := os.ReadDir(f.dir); len(entries) != 0 {
		t.Errorf("files left after a denial: %v", entries)
	}
	f.noSecrets("stderr", r.stdout, r.stderr)
}

// TestAuthorize_device_expired covers both ways an expiry shows: Bipsync's expired_token, and the code's deadline
// passing before a poll sees it.
func TestAuthorize_device_expired(t *testing.T) {
	t.Parallel()
	t.Run("expired_token", func(t *testing.T) {
		t.Parallel()
		// A tenant whose codes live 90 seconds, not the default 60: the messages give the figure Bipsync sent.
		f := newFixture(t, bipsynctest.Options{DeviceCodeTTL: 90 * time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		f.person(ctx, func(string) {
			f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultStatus, Status: 400,
				Body: `{"error":"expired_token","error_description":"The ` + "`device_code`" + ` has expired and the device authorization session has concluded.","hint":"device_code"}`})
		})
		r := f.authorize(ctx, Options{}, f.endpoint(pubClient)...)
		if r.code != ExitFailure || !strings.Contains(r.stderr, "expired") || !strings.Contains(r.stderr, "Run this command again") ||
			!strings.Contains(r.stderr, "the code expires in 90 seconds") || !strings.Contains(r.stderr, "gave it 90 seconds") ||
			strings.Contains(r.stderr, "60 seconds") {
			t.Fatalf("exit %d; want 1 and an expiry that gives the code's 90 seconds and says to run it again; stderr:\n%s", r.code, r.stderr)
		}
		f.noSecrets("stderr", r.stdout, r.stderr)
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, bipsynctest.Options{DeviceCodeTTL: time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r := f.authorize(ctx, Options{}, f.endpoint(pubClient)...)
		if r.code != ExitFailure || !strings.Contains(r.stderr, "expired before it was approved (Bipsync gave it 1 second)") ||
			!strings.Contains(r.stderr, "Run this command again") || strings.Contains(r.stderr, "60 seconds") {
			t.Fatalf("exit %d; want 1 and an expiry that says to run it again; stderr:\n%s", r.code, r.stderr)
		}
	})
}

// TestAuthorize_device_slowDown answers the first poll with slow_down: the next poll must wait 5 s more than the
// interval (RFC 8628 §3.5), and the flow must go on to the approval.
func TestAuthorize_device_slowDown(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.person(ctx, func(uc string) {
		f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultStatus, Status: 400,
			Body: `{"error":"slow_down","error_description":"The authorization request is still pending and polling should continue, but the interval MUST be increased by 5 seconds for this and all subsequent requests.","hint":""}`})
		if err := f.srv.ApproveDevice(uc); err != nil {
			t.Error(err)
		}
	})
	r := f.authorize(ctx, Options{}, f.endpoint(pubClient)...)
	if r.code != ExitOK || !f.srv.RefreshTokenLive(r.stdout) {
		t.Fatalf("exit %d; want 0 and a token; stderr:\n%s", r.code, r.stderr)
	}
	var polls []time.Time
	for _, e := range f.srv.Requests() {
		if e.GrantType == bipsynctest.DeviceCodeGrantType {
			polls = append(polls, e.Time)
		}
	}
	if len(polls) != 2 {
		t.Fatalf("polls: got %d; want 2 (slow_down, then the approved one)", len(polls))
	}
	if gap := polls[1].Sub(polls[0]); gap < 6*time.Second {
		t.Errorf("gap after slow_down: got %s; want at least the 1 s interval plus 5 s", gap)
	}
}

func TestAuthorize_device_serverError(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.person(ctx, func(string) { f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultStatus, Status: 500}) })
	r := f.authorize(ctx, Options{}, f.endpoint(pubClient)...)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "HTTP 500") || !strings.Contains(r.stderr, "server_error") ||
		!strings.Contains(r.stderr, "run this command again") {
		t.Fatalf("exit %d; want 1 naming the 500 and what to do; stderr:\n%s", r.code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout: got %q; want nothing", r.stdout)
	}
	f.noSecrets("stderr", r.stderr)
}

// TestAuthorize_device_redirectNotFollowed answers the device authorization request, and then the first poll, with a
// redirect to another server: the command must not follow it, or it would send the client ID, the client secret and
// the device code there.
func TestAuthorize_device_redirectNotFollowed(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(other.Close) // after the parallel subtests, and after the check below
	redirect := bipsynctest.Fault{Kind: bipsynctest.FaultRedirect, Location: other.URL + "/v1/oauth/token"}
	for _, at := range []string{"device authorization", "poll"} {
		t.Run(at, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, bipsynctest.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if at == "poll" {
				f.person(ctx, func(string) { f.srv.InjectFault(redirect) })
			} else {
				f.srv.InjectFault(redirect)
			}
			r := f.authorize(ctx, Options{}, f.endpoint(confClient)...)
			if r.code != ExitFailure || !strings.Contains(r.stderr, "HTTP 307") {
				t.Fatalf("exit %d; want 1 naming the 307; stderr:\n%s", r.code, r.stderr)
			}
			if st := f.srv.Stats(); st.FaultsInjected != 1 {
				t.Fatalf("the redirect was not answered: %+v", st)
			}
			f.noSecrets("stderr", r.stdout, r.stderr)
		})
	}
	t.Cleanup(func() {
		if n := elsewhere.Load(); n != 0 {
			t.Errorf("the redirect was followed: the other server got %d requests", n)
		}
	})
}

// TestAuthorize_device_noRefreshToken is an application that may not use the refresh token grant: the approved poll
// answers 200 with an access token only. There is no chain to seed, so nothing is delivered.
func TestAuthorize_device_noRefreshToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.person(ctx, func(uc string) {
		f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultNoRefreshToken200})
		_ = f.srv.ApproveDevice(uc)
	})
	out := filepath.Join(f.dir, "seed.txt")
	r := f.authorize(ctx, Options{}, append(f.endpoint(pubClient), "-out", out)...)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "no refresh token") || !strings.Contains(r.stderr, "refresh token grant") {
		t.Fatalf("exit %d; want 1 explaining the missing refresh token; stderr:\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s: got %v; want no file", out, err)
	}
	if f.srv.Stats().DeviceTokens != 1 {
		t.Fatalf("the fault did not hit the approved poll: %+v", f.srv.Stats())
	}
	f.noSecrets("stderr", r.stderr)
}

// TestAuthorize_device_refused covers answers to the device authorization request itself: nothing is polled.
func TestAuthorize_device_refused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"unknown client", []string{"-base-url", f.url, "-client-id", "cli-nope"}, []string{"does not know the client ID cli-nope", "HTTP 401"}},
		{"unknown scope", append(f.endpoint(pubClient), "-scope", "read", "-scope", "admin"), []string{`refused the scope "admin"`, "-scope"}},
	} {
		r := f.run(ctx, "", Options{}, append([]string{"authorize"}, tc.args...)...)
		if r.code != ExitFailure {
			t.Errorf("%s: exit %d; want 1; stderr:\n%s", tc.name, r.code, r.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr does not say %q:\n%s", tc.name, w, r.stderr)
			}
		}
	}
	f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultStatus, Status: 400,
		Body: `{"error":"unauthorized_client","error_description":"The authenticated client is not authorized to use this authorization grant type."}`})
	r := f.run(ctx, "", Options{}, append([]string{"authorize"}, f.endpoint(pubClient)...)...)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "device authorization grant") || !strings.Contains(r.stderr, "-pkce") {
		t.Errorf("grant not enabled: exit %d; want 1 suggesting -pkce; stderr:\n%s", r.code, r.stderr)
	}
	for _, e := range f.srv.Requests() {
		if e.GrantType != "" {
			t.Errorf("a refused device authorization was polled: %+v", e)
		}
	}
}

// TestAuthorize_usage covers settings that are missing or wrong: exit 2, and nothing reaches the server.
func TestAuthorize_usage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	existing := filepath.Join(f.dir, "existing")
	if err := os.WriteFile(existing, []byte("keep me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ep := f.endpoint(pubClient)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no endpoint", []string{"-client-id", pubClient}, "no Bipsync endpoint"},
		{"both endpoints", []string{"-client", "acme", "-base-url", f.url, "-client-id", pubClient}, "both a tenant (from the --client flag)"},
		{"plain http", []string{"-base-url", "http://example.com", "-client-id", pubClient}, "loopback"},
		{"no client id", []string{"-base-url", f.url}, "no client ID"},
		{"client id with a space", []string{"-base-url", f.url, "-client-id", "cli pub"}, "white space"},
		{"missing secret file", []string{"-base-url", f.url, "-client-id", confClient, "-client-secret-file", f.dir + "/nope"}, "-client-secret-file"},
		{"bad scope", append(ep, "-scope", `re"ad`), "single OAuth scope"},
		{"existing file", append(ep, "-out", existing), "exists: give another file, or -force"},
		{"pkce flag without -pkce", append(ep, "-redirect-uri", "http://127.0.0.1:8765/cb"), "belong to -pkce"},
		{"store flag without -store", append(ep, "-token-store", "none"), "add -store"},
		{"postgres flag without -store", append(ep, "-token-store-schema-name", "chains"), "add -store"},
		{"store none", append(ep, "-store", "-token-store", "none"), "keeps records"},
		{"bad store backend", append(ep, "-store", "-token-store", "vault"), "not file, command, postgres, s3 or none"},
		{"bad postgres connection string", append(ep, "-store", "-token-store", "postgres", "-token-store-conn-str",
			"host=db port=notaport password=Pa55-cli-4412"), "the postgres connection string from the --token-store-conn-str flag"},
		{"bad postgres schema", append(ep, "-store", "-token-store", "postgres", "-token-store-schema-name", "pg_x"), "reserved"},
		{"pkce without redirect", append(ep, "-pkce", "-authorize-url", f.url+"/oauth/authorize"), "needs the redirect URI"},
		{"pkce redirect on localhost", append(ep, "-pkce", "-authorize-url", f.url+"/oauth/authorize", "-redirect-uri", "http://localhost:8765/cb"), "127.0.0.1"},
		{"pkce redirect without port", append(ep, "-pkce", "-authorize-url", f.url+"/oauth/authorize", "-redirect-uri", "http://127.0.0.1/cb"), "no port"},
		{"pkce without authorize url", append(ep, "-pkce", "-redirect-uri", "http://127.0.0.1:8765/cb"), "not guessed"},
		{"pkce authorize url over http", append(ep, "-pkce", "-redirect-uri", "http://127.0.0.1:8765/cb", "-authorize-url", "http://acme.bipsync.com/oauth/authorize"), "https"},
		{"an argument", append(ep, "extra"), `unexpected argument "extra"`},
	} {
		r := f.run(context.Background(), "", Options{}, append([]string{"authorize"}, tc.args...)...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d; want 2 and %q; stderr:\n%s", tc.name, r.code, tc.want, r.stderr)
		}
		if strings.Contains(r.stderr, "Pa55-cli-4412") {
			t.Errorf("%s: the error quotes the password", tc.name)
		}
	}
	if n := len(f.srv.Requests()); n != 0 {
		t.Errorf("requests: got %d; want none", n)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me\n" {
		t.Errorf("existing file: got %q; want it untouched", b)
	}
}

func TestAuthorize_device_forceReplaces(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := filepath.Join(f.dir, "seed.txt")
	if err := os.WriteFile(out, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.approve(ctx)
	r := f.authorize(ctx, Options{}, append(f.endpoint(pubClient), "-out", out, "-force")...)
	if r.code != ExitOK {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	b, _ := os.ReadFile(out)
	if !f.srv.RefreshTokenLive(strings.TrimSpace(string(b))) {
		t.Error("the file does not hold the new token")
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode: got %v; want 0600", fi.Mode().Perm())
	}
}

// urlOf finds the first address in text that starts with prefix.
func urlOf(t *testing.T, text, prefix string) *url.URL {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(prefix) + `\S*`).FindString(text)
	u, err := url.Parse(m)
	if m == "" || err != nil {
		t.Fatalf("no address starting %s in:\n%s", prefix, text)
	}
	return u
}

// TestAuthorize_device_toStore saves the new chain in each kind of store: the provider's first use of the seed then
// finds its first access token and exchanges nothing, and status shows it.
func TestAuthorize_device_toStore(t *testing.T) {
	t.Parallel()
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, bipsynctest.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			f.approve(ctx)
			flags := sk.flags(f)
			args := append(append(f.endpoint(confClient), "-scope", "write read", "-store"), flags...)
			r := f.authorize(ctx, Options{}, args...)
			if r.code != ExitOK || !strings.Contains(r.stderr, "first access token") {
				t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
			}
			seed := r.stdout
			res, err := f.source(flags).Token(ctx, tokensource.Request{RefreshToken: seed, MinValidity: 15 * time.Minute})
			if err != nil || res.Exchanged || res.Generation != 0 || !f.srv.AccessTokenLive(res.AccessToken) {
				t.Fatalf("first use: got %v, %v; want the stored first access token, no exchange", res, err)
			}
			if st := f.srv.Stats(); st.RefreshExchanges != 0 {
				t.Errorf("exchanges: got %d; want 0", st.RefreshExchanges)
			}
			s := f.chainCommand(ctx, "status", seed, Options{}, flags)
			if s.code != ExitOK || !strings.Contains(s.stdout, "generation:        0") || !strings.Contains(s.stdout, "never") ||
				!strings.Contains(s.stdout, "scopes asked:      read write") {
				t.Errorf("status: exit %d:\n%s%s", s.code, s.stdout, s.stderr)
			}
			f.noSecrets("stderr", r.stderr, s.stdout, s.stderr)
		})
	}
}
