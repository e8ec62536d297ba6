package settings

import (
	"encoding/json"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
)

// The configuration parsers see text from HCL, from command-line flags and from BIPSYNC_* variables. The fuzz targets
// below hold each parser to the properties the provider and the subcommands rely on; their seed corpora live in
// testdata/fuzz/<target>/ and run with every `go test`.

// urlPassword returns the password of a URL-like input ("scheme://user:password@host" or "user:password@host"), or
// "" when it carries none that could be recognised in a message.
func urlPassword(s string) string {
	rest := s
	if _, after, ok := strings.Cut(s, "://"); ok {
		rest = after
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	_, password, ok := strings.Cut(rest[:at], ":")
	if !ok {
		return ""
	}
	return password
}

// repeats tells whether err repeats secret, a part of the input. The secret may also be a piece of the message's
// own fixed text (":tps:@" has the password "tps:", which "https://" contains), so the message is compared with
// errOther, the error for the same input with the secret replaced: a message that draws on the secret shows it more
// often than that one does.
func repeats(err error, secret string, errOther func() error) bool {
	n := strings.Count(err.Error(), secret)
	if n == 0 {
		return false
	}
	fixed := 0
	if other := errOther(); other != nil {
		fixed = strings.Count(other.Error(), secret)
	}
	return n > fixed
}

func FuzzNormalizeBaseURL(f *testing.F) {
	for _, s := range []string{
		"https://acme-api.bipsync.com",
		"https://acme-api.bipsync.com/",
		"https://proxy.example.com/bipsync/",
		"http://127.0.0.1:8080",
		"http://localhost:8080",
		"http://[::1]:8080",
		"http://acme-api.bipsync.com",
		"https://user:pw@acme-api.bipsync.com",
		"https://acme-api.bipsync.com?x=1",
		"https://acme-api.bipsync.com#frag",
		"ftp://acme-api.bipsync.com",
		"acme-api.bipsync.com",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := NormalizeBaseURL(s)
		if err != nil {
			if out != "" {
				t.Fatalf("NormalizeBaseURL(%q): got %q with error %v; want no value", s, out, err)
			}
			// A diagnostic says what is wrong without repeating a password it was given.
			if pw := urlPassword(s); len(pw) >= 4 && repeats(err, pw, func() error {
				_, err := NormalizeBaseURL(strings.ReplaceAll(s, pw, strings.Repeat("\x01", len(pw))))
				return err
			}) {
				t.Fatalf("NormalizeBaseURL(%q): error %q repeats the URL's password", s, err)
			}
			return
		}
		u, perr := url.Parse(out)
		if perr != nil {
			t.Fatalf("NormalizeBaseURL(%q) = %q: does not parse: %v", s, out, perr)
		}
		host := u.Hostname()
		schemeAllowed := u.Scheme == "https" || u.Scheme == "http" && IsLoopbackHost(host)
		switch {
		case host == "":
			t.Fatalf("NormalizeBaseURL(%q) = %q: accepted without a host name", s, out)
		case !schemeAllowed:
			t.Fatalf("NormalizeBaseURL(%q) = %q: scheme %q on host %q; want https, or http on a loopback host", s, out, u.Scheme, host)
		case u.User != nil:
			t.Fatalf("NormalizeBaseURL(%q) = %q: keeps user information", s, out)
		case u.RawQuery != "" || u.ForceQuery || strings.Contains(out, "?"):
			t.Fatalf("NormalizeBaseURL(%q) = %q: keeps a query", s, out)
		case u.Fragment != "" || strings.Contains(out, "#"):
			t.Fatalf("NormalizeBaseURL(%q) = %q: keeps a fragment", s, out)
		case strings.HasSuffix(out, "/"):
			t.Fatalf("NormalizeBaseURL(%q) = %q: keeps a trailing slash", s, out)
		}
		if u.Scheme == "http" {
			if ip := net.ParseIP(host); ip != nil && !ip.IsLoopback() {
				t.Fatalf("NormalizeBaseURL(%q) = %q: plain http to a non-loopback address", s, out)
			}
		}
		if again, err := NormalizeBaseURL(out); err != nil || again != out {
			t.Fatalf("NormalizeBaseURL(%q) = %q, then %q, %v; want the same value again", s, out, again, err)
		}
		// Configure turns an accepted value into a token client; a refusal there is reported as a provider bug.
		c, err := bipsync.New(bipsync.Config{BaseURL: out, ClientID: "cli"})
		if err != nil {
			t.Fatalf("NormalizeBaseURL(%q) = %q accepted, but the token client refuses it: %v", s, out, err)
		}
		tu, err := url.Parse(c.TokenURL())
		if err != nil || tu.Host != u.Host || tu.Scheme != u.Scheme {
			t.Fatalf("token URL %q for base %q: got host %q scheme %q (%v); want the base's", c.TokenURL(), out, tu.Host, tu.Scheme, err)
		}
	})
}

// validHostName checks RFC 1123 host name syntax: LDH labels of 1 to 63 characters that neither start nor end with
// a hyphen, 253 characters at most.
func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			ldh := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-'
			if !ldh {
				return false
			}
		}
	}
	return true
}

func FuzzValidateTenant(f *testing.F) {
	for _, s := range []string{"acme", "acme-capital", "a", "a1", strings.Repeat("a", 59), strings.Repeat("a", 60),
		"", "Acme", "-acme", "acme-", "acme.example", "acme_capital", "acme capital", "https://acme-api.bipsync.com",
		"acme\n", "xn--80ak6aa92e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := ValidateTenant(s); err != nil {
			return
		}
		base := BaseURLFromTenant(s)
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("tenant %q gives base URL %q, which does not parse: %v", s, base, err)
		}
		if want := s + "-api.bipsync.com"; u.Scheme != "https" || u.Host != want || u.Path != "" {
			t.Fatalf("tenant %q gives %q; want https://%s", s, base, want)
		}
		if !validHostName(u.Host) {
			t.Fatalf("tenant %q gives host %q, which is not a valid host name", s, u.Host)
		}
		if out, err := NormalizeBaseURL(base); err != nil || out != base {
			t.Fatalf("tenant %q: base URL %q normalises to %q, %v; want it unchanged", s, base, out, err)
		}
	})
}

func FuzzParseCommandEnv(f *testing.F) {
	for _, s := range []string{"store-helper --profile ci", `["/opt/my tools/helper","x"]`, `["unterminated`, "", "   ",
		`[]`, `[""]`, `[null]`, `["a",1]`, `{"a":"b"}`, "null", "  [\"x\"]  ", "a\tb\nc", `["\u0000"]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		argv, err := ParseCommandEnv(s)
		trimmed := strings.TrimSpace(s)
		if !strings.HasPrefix(trimmed, "[") {
			// The plain form splits on white space and cannot fail.
			if err != nil {
				t.Fatalf("ParseCommandEnv(%q): got error %v; want the words", s, err)
			}
			if want := strings.Fields(s); !slices.Equal(argv, want) {
				t.Fatalf("ParseCommandEnv(%q): got %q; want %q", s, argv, want)
			}
			for _, a := range argv {
				if a == "" || strings.IndexFunc(a, unicode.IsSpace) >= 0 {
					t.Fatalf("ParseCommandEnv(%q): word %q is empty or holds white space", s, a)
				}
			}
			return
		}
		var want []string
		jerr := json.Unmarshal([]byte(trimmed), &want)
		// An empty element (a JSON null decodes to one) names no program or argument: refused like bad JSON.
		if wantErr := jerr != nil || slices.Contains(want, ""); (err != nil) != wantErr {
			t.Fatalf("ParseCommandEnv(%q): got error %v; JSON decoding says %v, decoded %q", s, err, jerr, want)
		}
		if err != nil {
			if argv != nil {
				t.Fatalf("ParseCommandEnv(%q): got %q with error %v; want nothing", s, argv, err)
			}
			if !strings.Contains(err.Error(), EnvTokenStoreCommand) {
				t.Fatalf("ParseCommandEnv(%q): error %q does not name %s", s, err, EnvTokenStoreCommand)
			}
			// Fixed arguments may hold a secret manager's credential: the message must not repeat the value.
			if value := trimmed[1:]; len(trimmed) >= 16 && repeats(err, value, func() error {
				_, err := ParseCommandEnv(strings.ReplaceAll(s, value, strings.Repeat("\x01", len(value))))
				return err
			}) {
				t.Fatalf("ParseCommandEnv(%q): error %q repeats the value", s, err)
			}
			return
		}
		if !slices.Equal(argv, want) {
			t.Fatalf("ParseCommandEnv(%q): got %q; want %q", s, argv, want)
		}
	})
}
