package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/settings"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

const authorizeDoc = `Gets a refresh token for the Bipsync OAuth application: the seed of a chain, which the provider's
bipsync_access_token (refresh_token) and bipsync_refresh_grant (refresh_token_wo) take.

By default it runs the device authorization grant: it prints a code and an address, a person opens the address on any
device, signs in to Bipsync and approves, and the command receives the token (the code lives as long as Bipsync says:
60 seconds by default). With -pkce it runs the authorization code grant with PKCE instead: it listens on the loopback
redirect URI registered with the application, prints the authorize address to open in a browser, and exchanges the
code the browser brings back.

The token is never shown. It goes to the file -out names (created with mode 0600), or to standard output when that
is a pipe, for example into "gh secret set NAME". With -store, the new chain and its first access token are also
saved in the token store the provider uses, so that the first plan needs no exchange; the provider still needs the
token as its seed, because a chain's record is found and decrypted with it.`

// scopeList is a repeatable -scope flag; each value may hold several scopes separated by spaces or commas.
type scopeList []string

func (s *scopeList) String() string { return strings.Join(*s, " ") }

func (s *scopeList) Set(v string) error {
	for _, sc := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if err := settings.ValidateScope(sc); err != nil {
			return err
		}
		*s = append(*s, sc)
	}
	return nil
}

type authorizeFlags struct {
	client       clientFlags
	store        storeFlags
	scopes       scopeList
	out          string
	force        bool
	toStore      bool
	pkce         bool
	redirectURI  string
	authorizeURL string
	openBrowser  bool
	wait         time.Duration
}

func runAuthorize(ctx context.Context, e *env, args []string) int {
	var f authorizeFlags
	fs := newFlagSet(e, "authorize", authorizeDoc)
	f.client.register(fs)
	fs.Var(&f.scopes, "scope", "a `scope` to ask for; repeat the flag, or separate scopes with spaces or commas (none: a token "+
		"that reaches no API resource)")
	fs.StringVar(&f.out, "out", "", "write the refresh token to this `file`, created with mode 0600 (default: standard output, "+
		"when it is not a terminal)")
	fs.BoolVar(&f.force, "force", false, "let -out replace an existing file")
	fs.BoolVar(&f.toStore, "store", false, "also save the new chain, with its first access token, in the token store")
	f.store.register(fs)
	fs.BoolVar(&f.pkce, "pkce", false, "use the authorization code grant with PKCE and a loopback redirect instead of the device flow")
	fs.StringVar(&f.redirectURI, "redirect-uri", "", "-pkce: the redirect `URI` registered with the application, "+
		"http://127.0.0.1:PORT/PATH (default $"+settings.EnvRedirectURI+")")
	fs.StringVar(&f.authorizeURL, "authorize-url", "", "-pkce: Bipsync's authorize page, as Bipsync gave it to you; never "+
		"guessed (default $"+settings.EnvAuthorizeURL+")")
	fs.BoolVar(&f.openBrowser, "open-browser", false, "-pkce: open the authorize address in the system browser as well as printing it")
	fs.DurationVar(&f.wait, "wait", 5*time.Minute, "-pkce: how long to wait for the browser to come back")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if err := authorize(ctx, e, &f, fs); err != nil {
		return fail(e, "authorize", err)
	}
	return ExitOK
}

func authorize(ctx context.Context, e *env, f *authorizeFlags, fs *flag.FlagSet) error {
	c, err := f.client.resolve()
	if err != nil {
		return err
	}
	var src *tokensource.Source
	var st tokenstore.Store
	if f.toStore {
		cfg, err := f.store.resolve()
		if err != nil {
			return err
		}
		if src, st, err = e.openSource(c, cfg, tokensource.DefaultRefreshTokenLifetime); err != nil {
			return err
		}
		if !st.Traits().Persistent {
			return usagef("-store needs a token store that keeps records; the backend is none")
		}
	} else if storeFlagGiven(fs) {
		return usagef("the -token-store flags name the store -store saves in: add -store, or drop them")
	}
	var pk *pkceFlow
	if f.pkce {
		if pk, err = newPKCEFlow(f, c); err != nil {
			return err
		}
	} else if setAny(fs, "redirect-uri", "authorize-url", "open-browser", "wait") {
		return usagef("-redirect-uri, -authorize-url, -open-browser and -wait belong to -pkce: add -pkce, or drop them")
	}
	d, err := planDelivery(f.out, f.force, e.Stdout)
	if err != nil {
		return err
	}
	defer d.abandon()

	ctx = context.WithValue(ctx, oauth2.HTTPClient, e.opts.HTTPClient)
	var tok *oauth2.Token
	if pk != nil {
		tok, err = pk.run(ctx, e)
	} else {
		tok, err = deviceFlow(ctx, e, c, f.scopes)
	}
	if err != nil {
		return err
	}
	received := e.opts.Now()
	if tok.RefreshToken == "" {
		return errors.New("the answer held an access token but no refresh token, so there is no chain to seed. The " +
			"application may not be allowed the refresh token grant: ask Bipsync to enable it for this client ID, then run " +
			"this command again. The access token that came is discarded")
	}

	where, err := d.write(tok.RefreshToken)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stderr, "\nAuthorized. The refresh token went to %s; it is not shown here.\n", where)

	if src != nil {
		first := &bipsync.Token{
			AccessToken:  tok.AccessToken,
			TokenType:    tok.TokenType,
			RefreshToken: tok.RefreshToken,
			ExpiresIn:    tok.ExpiresIn,
			ReceivedAt:   received,
			Expiry:       received.Add(time.Duration(tok.ExpiresIn) * time.Second),
		}
		if _, err := src.Start(ctx, tok.RefreshToken, first, f.scopes); err != nil {
			fmt.Fprintf(e.Stderr, "The chain could not be saved in the %s (%s). Nothing is lost: the provider exchanges "+
				"the refresh token on first use and saves the chain then.\n", st.Describe(), printable(err.Error()))
		} else {
			fmt.Fprintf(e.Stderr, "The chain and its first access token (valid until %s) are in the %s, so the first "+
				"plan needs no exchange.\n", first.Expiry.UTC().Format(time.RFC3339), st.Describe())
		}
	}
	nextSteps(e, d)
	return nil
}

// nextSteps says what to do with the token: which variable or argument takes it.
func nextSteps(e *env, d *delivery) {
	w := e.Stderr
	fmt.Fprintln(w, "\nNext: give the provider this refresh token as the seed of the chain, and keep giving the same one")
	fmt.Fprintln(w, "while the chain lives (the provider keeps the rotated chain; the seed finds and decrypts it):")
	if d.path != "" {
		fmt.Fprintf(w, "  export TF_VAR_bipsync_refresh_token=\"$(cat %s)\"\n", shellQuote(d.path))
		fmt.Fprintln(w, "for a variable \"bipsync_refresh_token\" (sensitive, ephemeral) that feeds refresh_token of")
		fmt.Fprintln(w, "ephemeral \"bipsync_access_token\", or refresh_token_wo of resource \"bipsync_refresh_grant\" (with a new")
		fmt.Fprintf(w, "refresh_token_wo_version). Or export %s the same way for the ephemeral resource and data source.\n",
			settings.EnvRefreshToken)
		return
	}
	fmt.Fprintln(w, "wherever you piped it (a CI secret, a secret manager), expose it to the run as")
	fmt.Fprintf(w, "TF_VAR_bipsync_refresh_token (for refresh_token = var.bipsync_refresh_token, or refresh_token_wo) or as %s.\n",
		settings.EnvRefreshToken)
}

// shellQuote quotes a path for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		safe := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@", r)
		return !safe
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// setAny tells whether any of the named flags was given.
func setAny(fs *flag.FlagSet, names ...string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) {
		for _, n := range names {
			if f.Name == n {
				found = true
			}
		}
	})
	return found
}
