package cli

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// browser plays the person's browser: it follows the authorize address on the fake, which redirects to the command's
// loopback listener. tamper may change the address before it is opened (tamperURL) and the redirect before it is
// followed (tamperRedirect). It records the last page it was shown.
type browser struct {
	t              *testing.T
	tamperURL      func(*url.URL)
	tamperRedirect func(*url.URL)
	page           chan string
}

func newBrowser(t *testing.T) *browser {
	return &browser{t: t, page: make(chan string, 1)}
}

func (b *browser) open(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if b.tamperURL != nil {
		b.tamperURL(u)
	}
	go func() {
		hc := &http.Client{Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := hc.Get(u.String())
		if err != nil {
			b.t.Errorf("browser: %v", err)
			return
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if resp.StatusCode != http.StatusFound || err != nil {
			b.t.Errorf("browser: the authorize page answered %d (Location %v); want a redirect", resp.StatusCode, err)
			return
		}
		if b.tamperRedirect != nil {
			b.tamperRedirect(loc)
		}
		resp, err = hc.Get(loc.String())
		if err != nil {
			b.t.Errorf("browser: follow the redirect: %v", err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		b.page <- fmt.Sprintf("%d %s", resp.StatusCode, body)
	}()
	return nil
}

// pkceArgs are the flags of a -pkce run for client with a registered redirect URI on a free port.
func (f *fixture) pkceArgs(client string) []string {
	redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(f.t))
	f.srv.RegisterRedirectURI(client, redirect)
	return append(f.endpoint(client), "-pkce", "-redirect-uri", redirect, "-authorize-url", f.url+bipsynctest.AuthorizePath,
		"-open-browser", "-scope", "read write")
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestAuthorize_pkce_approved(t *testing.T) {
	t.Parallel()
	for _, client := range []string{pubClient, confClient} {
		t.Run(client, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, bipsynctest.Options{})
			b := newBrowser(t)
			out := filepath.Join(f.dir, "seed.txt")
			r := f.authorize(context.Background(), Options{OpenBrowser: b.open}, append(f.pkceArgs(client), "-out", out)...)
			if r.code != ExitOK {
				t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
			}
			seed, _ := os.ReadFile(out)
			if !f.srv.RefreshTokenLive(strings.TrimSpace(string(seed))) {
				t.Fatal("the file does not hold a live refresh token")
			}
			page := <-b.page
			if !strings.HasPrefix(page, "200 ") || !strings.Contains(page, "Authorized") {
				t.Errorf("browser page: got %q; want the success page", page)
			}
			// The address printed carries the S256 challenge, the state, the scopes and the redirect URI.
			u := urlOf(t, r.stderr, f.url+bipsynctest.AuthorizePath)
			q := u.Query()
			if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || len(q.Get("state")) < 16 ||
				q.Get("scope") != "read write" || q.Get("response_type") != "code" || q.Get("client_id") != client {
				t.Errorf("authorize address: got %s", u)
			}
			if st := f.srv.Stats(); st.AuthorizationCodeTokens != 1 {
				t.Errorf("stats: got %+v; want one code exchanged", st)
			}
			f.noSecrets("stderr", r.stderr, page)
		})
	}
}

// TestAuthorize_pkce_wrongState: any web page the browser shows can send requests to the loopback redirect address.
// Requests without this run's state (a made-up denial with no state or another state, a code with another state) are
// answered 400 and neither end the flow nor are believed: the real redirect that follows still completes it.
func TestAuthorize_pkce_wrongState(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	b := newBrowser(t)
	strays := make(chan []int, 1)
	b.tamperRedirect = func(u *url.URL) {
		state := u.Query().Get("state")
		var codes []int
		for _, q := range []url.Values{
			{"error": {"access_denied"}},
			{"error": {"access_denied"}, "state": {"forged-" + state}},
			{"code": {"forged-code"}, "state": {state + "x"}},
			{"code": {"forged-code"}},
		} {
			stray := *u
			stray.RawQuery = q.Encode()
			resp, err := http.Get(stray.String())
			if err != nil {
				t.Errorf("stray request: %v", err)
				continue
			}
			resp.Body.Close()
			codes = append(codes, resp.StatusCode)
		}
		strays <- codes
	}
	out := filepath.Join(f.dir, "seed.txt")
	r := f.authorize(context.Background(), Options{OpenBrowser: b.open}, append(f.pkceArgs(pubClient), "-out", out)...)
	if r.code != ExitOK || !strings.Contains(r.stderr, "state does not match") {
		t.Fatalf("exit %d; want 0 after the stray requests were turned away, and a note of them; stderr:\n%s", r.code, r.stderr)
	}
	if codes := <-strays; fmt.Sprint(codes) != "[400 400 400 400]" {
		t.Errorf("stray requests answered %v; want 400 each", codes)
	}
	if page := <-b.page; !strings.HasPrefix(page, "200 ") {
		t.Errorf("browser page: got %q; want the success page", page)
	}
	if st := f.srv.Stats(); st.AuthorizationCodes != 1 || st.AuthorizationCodeTokens != 1 {
		t.Errorf("stats: got %+v; want the one real code exchanged, and no forged one", st)
	}
	seed, _ := os.ReadFile(out)
	if !f.srv.RefreshTokenLive(strings.TrimSpace(string(seed))) {
		t.Error("the file does not hold a live refresh token")
	}
	f.noSecrets("stderr", r.stderr)
}

// TestAuthorize_pkce_onlyStrays: when only requests with another state come, the command waits its -wait out and says
// so, instead of reporting a denial it was never given.
func TestAuthorize_pkce_onlyStrays(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	args := append(f.pkceArgs(pubClient), "-wait", "2s", "-out", filepath.Join(f.dir, "s"))
	redirect := args[slices.Index(args, "-redirect-uri")+1]
	status := make(chan int, 1)
	open := func(context.Context, string) error {
		go func() {
			resp, err := http.Get(redirect + "?error=access_denied&state=guess")
			if err != nil {
				t.Errorf("stray request: %v", err)
				status <- 0
				return
			}
			resp.Body.Close()
			status <- resp.StatusCode
		}()
		return nil
	}
	r := f.authorize(context.Background(), Options{OpenBrowser: open}, args...)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "no browser came back") || strings.Contains(r.stderr, "denied") ||
		!strings.Contains(r.stderr, "1 request(s) with another state were turned away") {
		t.Fatalf("exit %d; want 1, a timeout naming the turned-away request and no denial; stderr:\n%s", r.code, r.stderr)
	}
	if got := <-status; got != http.StatusBadRequest {
		t.Errorf("stray request answered %d; want 400", got)
	}
}

// TestAuthorize_pkce_wrongVerifier opens the authorize address with another code challenge than the command's, as if
// the address had been tampered with: Bipsync then refuses the command's verifier.
func TestAuthorize_pkce_wrongVerifier(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	b := newBrowser(t)
	b.tamperURL = func(u *url.URL) {
		q := u.Query()
		q.Set("code_challenge", s256(strings.Repeat("x", 43)))
		u.RawQuery = q.Encode()
	}
	r := f.authorize(context.Background(), Options{OpenBrowser: b.open}, append(f.pkceArgs(confClient), "-out", filepath.Join(f.dir, "s"))...)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "Failed to verify `code_verifier`.") ||
		!strings.Contains(r.stderr, "PKCE verifier") {
		t.Fatalf("exit %d; want 1 and Bipsync's verifier refusal; stderr:\n%s", r.code, r.stderr)
	}
	<-b.page
	if st := f.srv.Stats(); st.AuthorizationCodeTokens != 0 {
		t.Errorf("stats: got %+v; want no code exchanged", st)
	}
	f.noSecrets("stderr", r.stderr)
}

func TestAuthorize_pkce_denied(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	f.srv.DenyAuthorizations(true)
	b := newBrowser(t)
	r := f.authorize(context.Background(), Options{OpenBrowser: b.open}, append(f.pkceArgs(pubClient), "-out", filepath.Join(f.dir, "s"))...)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "denied on Bipsync's page") || !strings.Contains(r.stderr, "The user denied the request") {
		t.Fatalf("exit %d; want 1 and the denial; stderr:\n%s", r.code, r.stderr)
	}
	<-b.page
}

func TestAuthorize_pkce_noBrowserComesBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	opened := make(chan string, 1)
	args := append(f.pkceArgs(pubClient), "-wait", "200ms", "-out", filepath.Join(f.dir, "s"))
	r := f.authorize(context.Background(), Options{OpenBrowser: func(_ context.Context, u string) error { opened <- u; return nil }}, args...)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "no browser came back") {
		t.Fatalf("exit %d; want 1 and a timeout; stderr:\n%s", r.code, r.stderr)
	}
	if u := <-opened; !strings.HasPrefix(u, f.url+bipsynctest.AuthorizePath+"?") {
		t.Errorf("opened %q; want the authorize address", u)
	}
}
