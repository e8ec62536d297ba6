package cli

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/settings"
)

// pkceFlow is the authorization code grant with PKCE (S256) and a loopback redirect (RFC 8252): x/oauth2 builds the
// authorize address (AuthCodeURL with S256ChallengeOption) and exchanges the code (Exchange with VerifierOption); what
// it does not do is receive the redirect, so a one-shot listener on the registered redirect URI does that here.
type pkceFlow struct {
	cfg          *oauth2.Config
	redirect     *url.URL
	listenAddr   string
	openBrowser  bool
	wait         time.Duration
	authorizeURL string
}

func newPKCEFlow(f *authorizeFlags, c client) (*pkceFlow, error) {
	rawRedirect, redirectSrc := settings.Resolve("redirect-uri", f.redirectURI, settings.EnvRedirectURI)
	if rawRedirect == "" {
		return nil, usagef("-pkce needs the redirect URI registered with the application: give -redirect-uri "+
			"http://127.0.0.1:PORT/PATH (port included), or set %s", settings.EnvRedirectURI)
	}
	redirect, addr, err := loopbackRedirect(rawRedirect)
	if err != nil {
		return nil, usagef("the redirect URI from %s: %v", redirectSrc, err)
	}
	rawAuthorize, authorizeSrc := settings.Resolve("authorize-url", f.authorizeURL, settings.EnvAuthorizeURL)
	if rawAuthorize == "" {
		return nil, usagef("-pkce needs Bipsync's authorize page: give -authorize-url or set %s to the address Bipsync "+
			"gave for the authorization code grant (it is not guessed)", settings.EnvAuthorizeURL)
	}
	if err := checkAuthorizeURL(rawAuthorize); err != nil {
		return nil, usagef("the authorize address from %s: %v", authorizeSrc, err)
	}
	if f.wait <= 0 {
		return nil, usagef("-wait must be positive")
	}
	return &pkceFlow{
		cfg: &oauth2.Config{
			ClientID:     c.clientID,
			ClientSecret: c.clientSecret,
			Endpoint: oauth2.Endpoint{
				AuthURL:   rawAuthorize,
				TokenURL:  c.baseURL + bipsync.TokenPath,
				AuthStyle: oauth2.AuthStyleInParams,
			},
			RedirectURL: rawRedirect,
			Scopes:      f.scopes,
		},
		redirect:     redirect,
		listenAddr:   addr,
		openBrowser:  f.openBrowser,
		wait:         f.wait,
		authorizeURL: rawAuthorize,
	}, nil
}

// loopbackRedirect checks a redirect URI for a loopback listener: http, the literal address 127.0.0.1 or [::1] (RFC
// 8252 §8.3: "localhost" may resolve elsewhere), an explicit port (the one registered), no query or fragment. It returns
// the parsed URI and the address to listen on.
func loopbackRedirect(raw string) (*url.URL, string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, "", errors.New("it is not an absolute URI; use the form http://127.0.0.1:8765/callback")
	}
	switch {
	case u.Scheme != "http":
		return nil, "", fmt.Errorf("scheme %q: a loopback redirect is plain http, http://127.0.0.1:PORT/PATH", u.Scheme)
	case u.Hostname() != "127.0.0.1" && u.Hostname() != "::1":
		return nil, "", fmt.Errorf("host %q: register and use http://127.0.0.1:PORT/PATH (or http://[::1]:PORT/PATH); "+
			"a name such as localhost may resolve to another address than the one listened on", u.Hostname())
	case u.Port() == "":
		return nil, "", errors.New("it has no port: give the port registered with the application, e.g. http://127.0.0.1:8765/callback")
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, "", errors.New("it carries user information, a query or a fragment: give the plain registered URI")
	}
	if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
		return nil, "", errors.New("the port is not between 1 and 65535")
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u, net.JoinHostPort(u.Hostname(), u.Port()), nil
}

// checkAuthorizeURL checks the authorize page's address: absolute, https unless on loopback, no user information and
// no fragment (a query is kept: x/oauth2 adds its parameters after it).
func checkAuthorizeURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Hostname() == "" {
		return errors.New("it is not an absolute URL")
	}
	switch {
	case u.User != nil || u.Fragment != "":
		return errors.New("it carries user information or a fragment: remove them")
	case u.Scheme == "https":
	case u.Scheme == "http" && settings.IsLoopbackHost(u.Hostname()):
	default:
		return fmt.Errorf("scheme %q: the authorize page must be https (http only on a loopback host)", u.Scheme)
	}
	return nil
}

// callback is what the browser brought back.
type callback struct {
	tok *oauth2.Token
	err error
}

func (p *pkceFlow) run(ctx context.Context, e *env) (*oauth2.Token, error) {
	l, err := net.Listen("tcp", p.listenAddr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s for the redirect (%v): free the port, or register another redirect "+
			"URI with the application and give it with -redirect-uri", p.listenAddr, err)
	}
	state := rand.Text()
	verifier := oauth2.GenerateVerifier()
	authURL := p.cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))

	// Only a redirect that carries this run's state decides: any web page the browser shows can send a request to the
	// loopback address, with a made-up error or code, and such a request must neither end the flow nor be believed. A
	// request without the right state is answered 400 and the listener keeps waiting. The first redirect with the right
	// state decides, whatever it brings; later ones are turned away unread.
	out := &lockedWriter{w: e.Stderr} // the handler writes to it too
	done := make(chan callback, 1)
	var taken atomic.Bool
	var strays atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc(p.redirect.Path, func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("state")), []byte(state)) != 1 {
			// Told once: a page that keeps sending requests must not flood the terminal.
			if strays.Add(1) == 1 {
				fmt.Fprintln(out, "(Turned away a request to the redirect address whose state does not match this "+
					"authorization: it did not come from the address printed above. Still waiting.)")
			}
			page(w, errors.New("state mismatch"))
			return
		}
		if !taken.CompareAndSwap(false, true) {
			page(w, errors.New("already handled"))
			return
		}
		c := p.receive(ctx, r, verifier)
		page(w, c.err)
		done <- c
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	fmt.Fprintf(out, "To authorize client %s, open this address in a browser and sign in to Bipsync:\n\n    %s\n\n",
		p.cfg.ClientID, authURL)
	if p.openBrowser {
		if err := e.opts.OpenBrowser(ctx, authURL); err != nil {
			fmt.Fprintf(out, "(The browser could not be opened: %s. Open the address yourself.)\n", printable(err.Error()))
		}
	}
	fmt.Fprintf(out, "Waiting for the browser to come back to %s (up to %s) ...\n", p.redirect.String(), p.wait)

	timer := time.NewTimer(p.wait)
	defer timer.Stop()
	select {
	case c := <-done:
		return c.tok, c.err
	case <-timer.C:
		stray := ""
		if n := strays.Load(); n > 0 {
			stray = fmt.Sprintf(" (%d request(s) with another state were turned away: they did not come from this "+
				"authorization)", n)
		}
		return nil, fmt.Errorf("no browser came back to %s with this authorization's state within %s%s. Run this "+
			"command again; if the page showed an error about the redirect URI, register %s with the application",
			p.redirect, p.wait, stray, p.redirect)
	case <-ctx.Done():
		return nil, fmt.Errorf("stopped before the browser came back: %w", context.Cause(ctx))
	}
}

// receive reads a redirect whose state matched (an error, or a code) and exchanges the code with the verifier.
func (p *pkceFlow) receive(ctx context.Context, r *http.Request, verifier string) callback {
	q := r.URL.Query()
	if code := q.Get("error"); code != "" {
		a := answer{status: http.StatusFound, code: code, description: q.Get("error_description"), hint: q.Get("hint")}
		why := "the authorization was refused"
		switch code {
		case "access_denied":
			why = "the request was denied on Bipsync's page"
		case "invalid_scope":
			why = "Bipsync refused a scope: ask only for scopes the application may use (-scope)"
		}
		return callback{err: fmt.Errorf("%s, so nothing was issued. Run this command again to start over. %s (in the "+
			"redirect)", why, a.facts())}
	}
	code := q.Get("code")
	if code == "" {
		return callback{err: errors.New("the redirect carried neither a code nor an error. Run this command again")}
	}
	tok, err := p.cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		why := "the code could not be exchanged"
		if a, ok := answerOf(err); ok && a.code == "invalid_grant" {
			why = "Bipsync refused the code (it checks the code, the redirect URI and the PKCE verifier)"
		}
		return callback{err: fmt.Errorf("%s: %s. Run this command again", why, describe(err))}
	}
	return callback{tok: tok}
}

// page answers the browser. It says only whether to look at the terminal: no token, no code.
func page(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "<!DOCTYPE html><title>Not authorized</title><p>%s</p><p>See the terminal for what to do.</p>\n",
			html.EscapeString("The authorization did not complete."))
		return
	}
	fmt.Fprint(w, "<!DOCTYPE html><title>Authorized</title><p>Authorized. You can close this tab and return to the terminal.</p>\n")
}

// lockedWriter serializes writes from the flow and from the redirect handler's goroutine.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
