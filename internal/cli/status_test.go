package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
)

// storeKind is one token store backend the commands are tested against, with the flags that name it.
type storeKind struct {
	name  string
	flags func(f *fixture) []string
}

// commandHelper is a protocol-1 store helper that keeps each record in a file of the directory it is given.
const commandHelper = `#!/bin/sh
dir=$1; op=$2; key=$3
case "$op" in
get) if [ -f "$dir/$key" ]; then cat "$dir/$key"; fi ;;
put) cat > "$dir/$key.tmp" && mv "$dir/$key.tmp" "$dir/$key" ;;
*) exit 2 ;;
esac
`

var storeKinds = []storeKind{
	{"file", func(f *fixture) []string { return []string{"-token-store-path", filepath.Join(f.dir, "chains")} }},
	{"command", func(f *fixture) []string {
		records := filepath.Join(f.dir, "records")
		script := filepath.Join(f.dir, "helper.sh")
		if _, err := os.Stat(script); err != nil {
			if err := os.MkdirAll(records, 0o700); err != nil {
				f.t.Fatal(err)
			}
			if err := os.WriteFile(script, []byte(commandHelper), 0o700); err != nil {
				f.t.Fatal(err)
			}
		}
		argv, _ := json.Marshal([]string{"sh", script, records})
		return []string{"-token-store", "command", "-token-store-command", string(argv)}
	}},
	{"postgres", func(f *fixture) []string {
		if f.pgConnStr == "" {
			f.pgConnStr = pgtest.Start(f.t)
		}
		return []string{"-token-store", "postgres", "-token-store-conn-str", f.pgConnStr}
	}},
	{"s3", s3StoreFlags},
}

// source returns a token source over the store the flags name, as a provider configured the same way would have.
func (f *fixture) source(storeFlagArgs []string) *tokensource.Source {
	f.t.Helper()
	var sf storeFlags
	fs := newFlagSet(&env{IO: IO{Stderr: os.Stderr}}, "test", "")
	sf.register(fs)
	if err := fs.Parse(storeFlagArgs); err != nil {
		f.t.Fatal(err)
	}
	ss, err := sf.resolve()
	if err != nil {
		f.t.Fatal(err)
	}
	st, err := tokenstore.New(ss.cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	tc, err := bipsync.New(bipsync.Config{BaseURL: f.url, ClientID: confClient, ClientSecret: confSecret})
	if err != nil {
		f.t.Fatal(err)
	}
	src, err := tokensource.New(tokensource.Options{Client: tc, Store: st, ClientSecret: confSecret})
	if err != nil {
		f.t.Fatal(err)
	}
	return src
}

// chain seeds a chain at the fake and has the provider's token source exchange it once, as a first plan would: the
// store then holds generation 1. It returns the seed.
func (f *fixture) chain(storeFlagArgs []string) string {
	f.t.Helper()
	seed := f.srv.IssueRefreshToken(confClient, []string{"read", "write"})
	if _, err := f.source(storeFlagArgs).Token(context.Background(), tokensource.Request{RefreshToken: seed, MinValidity: 15 * time.Minute}); err != nil {
		f.t.Fatal(err)
	}
	return seed
}

func (f *fixture) chainCommand(ctx context.Context, cmd, seed string, opts Options, storeFlagArgs []string, extra ...string) result {
	f.t.Helper()
	args := append(append(append([]string{cmd}, f.endpoint(confClient)...), storeFlagArgs...), extra...)
	return f.run(ctx, seed, opts, args...)
}

func TestStatus_stores(t *testing.T) {
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
			exchanges := f.srv.Stats().RefreshExchanges

			r := f.chainCommand(context.Background(), "status", seed, Options{}, flags)
			if r.code != ExitOK {
				t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
			}
			for _, want := range []string{"generation:        1", "last rotation:", "valid until", "chain ends:", "(29 days left)",
				"scopes asked:      the original consent", sk.name} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("status does not show %q:\n%s", want, r.stdout)
				}
			}
			r = f.chainCommand(context.Background(), "status", seed, Options{}, flags, "-json")
			var v map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != ExitOK {
				t.Fatalf("-json: exit %d, %v:\n%s", r.code, err, r.stdout)
			}
			if v["generation"] != 1.0 || v["state"] != "ok" || v["days_left"] != 29.0 || v["rotated_at"] == nil ||
				v["access_token_expires_at"] == nil || v["scopes"] != nil {
				t.Errorf("-json: got %v", v)
			}
			if got := f.srv.Stats().RefreshExchanges; got != exchanges {
				t.Errorf("status exchanged the chain: %d exchanges; want %d", got, exchanges)
			}
			f.noSecrets("status output", r.stdout, r.stderr)
		})
	}
}

// TestStatus_nearTheEnd moves the command's clock: 7 days before the chain's end it exits 3, and after its end too.
func TestStatus_nearTheEnd(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	flags := storeKinds[0].flags(f)
	seed := f.chain(flags)
	for _, tc := range []struct {
		after time.Duration
		code  int
		state string
		say   string
	}{
		{22 * 24 * time.Hour, ExitOK, stateOK, "(7 days left)"},
		{23*24*time.Hour + time.Minute, ExitExpiring, stateExpiring, "ends within 7 days"},
		{31 * 24 * time.Hour, ExitExpiring, stateExpired, "authorize anew"},
	} {
		at := time.Now().Add(tc.after)
		opts := Options{Now: func() time.Time { return at }}
		r := f.chainCommand(context.Background(), "status", seed, opts, flags)
		if r.code != tc.code || !strings.Contains(r.stdout, tc.say) {
			t.Errorf("after %s: exit %d; want %d saying %q:\n%s", tc.after, r.code, tc.code, tc.say, r.stdout)
		}
		r = f.chainCommand(context.Background(), "status", seed, opts, flags, "-json")
		var v chainView
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.State != tc.state {
			t.Errorf("after %s: -json state %q (%v); want %q", tc.after, v.State, err, tc.state)
		}
	}
}

func TestStatus_failures(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	file := storeKinds[0].flags(f)
	seed := f.chain(file)
	command := storeKinds[1].flags(f)
	commandSeed := f.chain(command)
	// Damage the command store's record: the helper hands back what is not an envelope.
	entries, _ := os.ReadDir(filepath.Join(f.dir, "records"))
	if len(entries) != 1 {
		t.Fatalf("records: got %d; want 1", len(entries))
	}
	if err := os.WriteFile(filepath.Join(f.dir, "records", entries[0].Name()), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		stdin string
		flags []string
		code  int
		want  string
	}{
		{"no chain for the seed", f.srv.IssueRefreshToken(confClient, nil), file, ExitFailure, "holds no chain for this seed"},
		{"damaged record", commandSeed, command, ExitFailure, "cannot be read"},
		{"no seed", "", file, ExitUsage, "never a flag"},
		{"two words on stdin", seed + " " + seed, file, ExitUsage, "one refresh token"},
		{"store none", seed, []string{"-token-store", "none"}, ExitUsage, "keeps no chain"},
		{"bad lifetime", seed, append(file, "-refresh-token-lifetime", "forever"), ExitUsage, "refresh token lifetime"},
	} {
		r := f.chainCommand(context.Background(), "status", tc.stdin, Options{}, tc.flags)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d; want %d and %q; stderr:\n%s", tc.name, r.code, tc.code, tc.want, r.stderr)
		}
		f.noSecrets(tc.name, r.stdout, r.stderr)
	}
}

// TestStatus_seedFromEnvironment is not parallel: it sets BIPSYNC_REFRESH_TOKEN.
func TestStatus_seedFromEnvironment(t *testing.T) {
	f := newFixture(t, bipsynctest.Options{})
	flags := storeKinds[0].flags(f)
	seed := f.chain(flags)
	t.Setenv("BIPSYNC_REFRESH_TOKEN", seed)
	r := f.chainCommand(context.Background(), "status", "", Options{}, flags)
	if r.code != ExitOK || !strings.Contains(r.stdout, "generation:        1") {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestRotate_stores(t *testing.T) {
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
			src := f.source(flags)
			before, err := src.Token(context.Background(), tokensource.Request{RefreshToken: seed, MinValidity: 15 * time.Minute})
			if err != nil || before.Exchanged {
				t.Fatalf("a fresh token should be reused: %v, %v", before, err)
			}
			exchanges := f.srv.Stats().RefreshExchanges

			r := f.chainCommand(context.Background(), "rotate", seed, Options{}, flags, "-json")
			if r.code != ExitOK {
				t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
			}
			var v chainView
			if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
				t.Fatal(err)
			}
			if v.Generation != 2 || v.Rotated == nil || !*v.Rotated || v.State != stateOK {
				t.Errorf("view after rotate: got %+v; want generation 2, rotated", v)
			}
			if got := f.srv.Stats().RefreshExchanges; got != exchanges+1 {
				t.Errorf("exchanges: got %d; want %d", got, exchanges+1)
			}
			if f.srv.AccessTokenLive(before.AccessToken) {
				t.Error("the access token handed out before the rotation is still live")
			}
			after, err := src.Token(context.Background(), tokensource.Request{RefreshToken: seed, MinValidity: 15 * time.Minute})
			if err != nil || after.Exchanged || after.Generation != 2 || !f.srv.AccessTokenLive(after.AccessToken) {
				t.Errorf("the provider after the rotation: got %v, %v; want the rotated chain's token, no exchange", after, err)
			}
			f.noSecrets("rotate output", r.stdout, r.stderr)
		})
	}
}

func TestRotate_revokedChain(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	flags := storeKinds[0].flags(f)
	seed := f.chain(flags)
	f.srv.RevokeChain(seed)
	r := f.chainCommand(context.Background(), "rotate", seed, Options{}, flags)
	if r.code != ExitFailure || !strings.Contains(flat(r.stderr), "Token has been revoked") ||
		!strings.Contains(flat(r.stderr), Program+" authorize") {
		t.Fatalf("exit %d; want 1 naming the revocation and the authorize command; stderr:\n%s", r.code, r.stderr)
	}
	f.noSecrets("rotate output", r.stdout, r.stderr)
}

// TestRotate_failureLines: a failed rotation says what happened, what to do and the facts, each part on lines of its
// own that fit 80 columns, and keeps every fact of the error.
func TestRotate_failureLines(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	flags := storeKinds[0].flags(f)
	revoked := f.chain(flags)
	f.srv.RevokeChain(revoked)
	wrongSecret := filepath.Join(f.dir, "wrong-secret")
	if err := os.WriteFile(wrongSecret, []byte("not-the-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		seed  string
		extra []string
		says  []string
	}{
		{"revoked", revoked, nil, []string{"refused the chain for good", Program + " authorize, for client " + confClient,
			"HTTP 400", "invalid_grant", "Token has been revoked"}},
		{"invalid client", f.chain(flags), []string{"-client-secret-file", wrongSecret}, []string{
			"refused the client ID or secret", "the chain is untouched", "HTTP 401", "invalid_client"}},
	} {
		r := f.chainCommand(context.Background(), "rotate", tc.seed, Options{}, flags, tc.extra...)
		if r.code != ExitFailure {
			t.Errorf("%s: exit %d; want 1; stderr:\n%s", tc.name, r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
		if len(lines) < 4 || lines[0] != Program+" rotate failed." {
			t.Errorf("%s: got %d lines starting %q; want a heading and its parts:\n%s", tc.name, len(lines), lines[0], r.stderr)
		}
		for _, l := range lines {
			if len(l) > 80 && strings.Contains(strings.TrimSpace(l), " ") {
				t.Errorf("%s: a line of %d columns:\n%s", tc.name, len(l), l)
			}
		}
		for _, want := range append([]string{"What happened:", "What to do:", "Facts:"}, tc.says...) {
			if !strings.Contains(flat(r.stderr), want) {
				t.Errorf("%s: does not say %q:\n%s", tc.name, want, r.stderr)
			}
		}
		f.noSecrets(tc.name, r.stdout, r.stderr)
	}
}

// flat joins text's words with single spaces, so that a test can match words that a wrapped message puts on two lines.
func flat(text string) string { return strings.Join(strings.Fields(text), " ") }

// startChain saves a chain the way authorize -store does, with a first access token that expires in expiresIn
// (whatever the fake itself would say), and returns its seed.
func (f *fixture) startChain(storeFlagArgs []string, expiresIn time.Duration) string {
	f.t.Helper()
	at, seed := f.srv.IssueTokenPair(confClient, []string{"read"})
	// An hour-long token issued an hour before it expires, as Bipsync's are.
	issued := time.Now().Add(expiresIn - time.Hour)
	first := &bipsync.Token{AccessToken: at, TokenType: "Bearer", RefreshToken: seed, ReceivedAt: issued, Expiry: issued.Add(time.Hour)}
	if _, err := f.source(storeFlagArgs).Start(context.Background(), seed, first, []string{"read"}); err != nil {
		f.t.Fatal(err)
	}
	return seed
}

// TestRotate_racingAProviderRun runs rotate as another process while this one asks the chain for a token as a plan
// would (min_validity 15m), with the first token request held 1 s by the fake so that the two truly overlap. Whichever
// takes the chain's lock first, both are served and the rotation's own exchange is the chain's last: with a stored
// token that is still good for the run, only the rotation exchanges; with one that is not, the run may exchange first,
// and the rotation then exchanges again (an exchange it waited for may have been answered before it began).
func TestRotate_racingAProviderRun(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("uses a second process sharing the file store")
	}
	for _, stale := range []bool{false, true} {
		for round := range 3 {
			t.Run(fmt.Sprintf("stale=%t/%d", stale, round), func(t *testing.T) {
				t.Parallel()
				f := newFixture(t, bipsynctest.Options{})
				flags := storeKinds[0].flags(f)
				left := 50 * time.Minute
				if stale {
					left = 5 * time.Minute
				}
				seed := f.startChain(flags, left)
				src := f.source(flags)
				f.srv.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultDelay, Delay: time.Second})

				args := append(append(append([]string{"rotate"}, f.endpoint(confClient)...), flags...), "-json")
				p := child(t, seed, nil, args...)
				res, err := src.Token(context.Background(), tokensource.Request{RefreshToken: seed, MinValidity: 15 * time.Minute})
				code := p.wait()
				if err != nil || code != ExitOK {
					t.Fatalf("run: %v; rotate: exit %d, stderr:\n%s", err, code, p.stderr.String())
				}
				got := f.srv.Stats().RefreshExchanges
				if want := 1 + boolInt(stale && res.Exchanged); got != want {
					t.Fatalf("exchanges: got %d; want %d (run exchanged: %t; rotate said:\n%s)", got, want, res.Exchanged, p.stderr.String())
				}
				var v chainView
				if err := json.Unmarshal([]byte(p.stdout.String()), &v); err != nil || v.Generation != int64(got) || v.Rotated == nil || !*v.Rotated {
					t.Errorf("rotate's view: %v, %+v; want generation %d, rotated by rotate itself", err, v, got)
				}
				// A run served before the rotation holds the token the rotation revoked, as rotate's help says; a run
				// served after it holds the rotated chain's token.
				if stale && res.Generation < 1 {
					t.Errorf("the run with a stale token was served generation %d; want an exchanged one", res.Generation)
				}
				if res.Generation == int64(got) && !f.srv.AccessTokenLive(res.AccessToken) {
					t.Error("the run was handed the rotated chain's token, and it is not live")
				}
			})
		}
	}
}

// saveRecord saves rec as the chain of seed in the store the flags name, in place of whatever it holds.
func (f *fixture) saveRecord(storeFlagArgs []string, seed string, rec *tokenstore.Record) {
	f.t.Helper()
	src := f.source(storeFlagArgs)
	key := src.Key(seed)
	var replaces *tokenstore.Revision
	if old, err := src.Record(context.Background(), seed); err != nil {
		f.t.Fatal(err)
	} else if old != nil {
		r := old.Revision()
		replaces = &r
	}
	rec.ID = tokenstore.NewRecordID()
	if err := src.Store().Save(context.Background(), key, seed, rec, replaces); err != nil {
		f.t.Fatal(err)
	}
}

// TestStatus_neverExchanged: a first run whose exchange consumed nothing (a wrong client secret) leaves a record at
// generation 0 whose head is the seed and whose issue time nobody knows. That chain has not ended: status says it was
// not exchanged yet and exits 0.
func TestStatus_neverExchanged(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	flags := storeKinds[0].flags(f)
	seed := f.srv.IssueRefreshToken(confClient, []string{"read"})
	f.saveRecord(flags, seed, &tokenstore.Record{RefreshToken: seed})

	r := f.chainCommand(context.Background(), "status", seed, Options{}, flags)
	if r.code != ExitOK || !strings.Contains(r.stdout, "not been exchanged yet") || strings.Contains(r.stdout, "authorize anew") ||
		strings.Contains(r.stdout, "0001-") {
		t.Fatalf("exit %d; want 0 saying the chain was not exchanged yet, no end and no reauthorization; stdout:\n%s\nstderr:\n%s",
			r.code, r.stdout, r.stderr)
	}
	r = f.chainCommand(context.Background(), "status", seed, Options{}, flags, "-json")
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != ExitOK {
		t.Fatalf("-json: exit %d, %v:\n%s", r.code, err, r.stdout)
	}
	if v["state"] != "not_exchanged" || v["chain_expires_at"] != nil || v["refresh_token_issued_at"] != nil || v["generation"] != 0.0 {
		t.Errorf("-json: got %v; want state not_exchanged with no chain end and no issue time", v)
	}
	if f.srv.Stats().RefreshExchanges != 0 {
		t.Error("status exchanged the chain")
	}
	f.noSecrets("status output", r.stdout, r.stderr)
}

// TestStatus_dead: a chain that a run recorded as refused for good is dead whatever its month says: status says when
// and why, that it needs a new authorization with the authorize command, and exits 3; -json carries the same.
func TestStatus_dead(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	flags := storeKinds[0].flags(f)
	seed := f.chain(flags)
	rec, err := f.source(flags).Record(context.Background(), seed)
	if err != nil || rec == nil {
		t.Fatalf("record: %v, %v", rec, err)
	}
	at := time.Date(2026, 12, 6, 10, 30, 0, 0, time.UTC)
	rec.Dead = &tokenstore.Death{At: at, Cause: "revoked", Detail: "invalid_grant: Token has been revoked"}
	f.saveRecord(flags, seed, rec)

	r := f.chainCommand(context.Background(), "status", seed, Options{}, flags)
	for _, want := range []string{"The chain is dead", "revoked", "2026-12-06 10:30:00 UTC", "Token has been revoked",
		"new authorization", Program + " authorize"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status does not say %q:\n%s", want, r.stdout)
		}
	}
	if r.code != ExitExpiring {
		t.Errorf("exit %d; want %d", r.code, ExitExpiring)
	}
	r = f.chainCommand(context.Background(), "status", seed, Options{}, flags, "-json")
	var v chainView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != ExitExpiring {
		t.Fatalf("-json: exit %d, %v:\n%s", r.code, err, r.stdout)
	}
	if v.State != stateDead || v.Dead == nil || !v.Dead.At.Equal(at) || v.Dead.Cause != "revoked" ||
		v.Dead.Detail != "invalid_grant: Token has been revoked" {
		t.Errorf("-json: got state %q, dead %+v; want dead at %s, revoked", v.State, v.Dead, at)
	}
	f.noSecrets("status output", r.stdout, r.stderr)
}

func TestVerdict(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	month := 30 * 24 * time.Hour
	for _, tc := range []struct {
		name  string
		rec   tokenstore.Record
		state string
		exit  int
	}{
		{"fresh", tokenstore.Record{Generation: 3, RefreshTokenIssuedAt: now.Add(-time.Hour)}, stateOK, ExitOK},
		{"seed saved, never exchanged", tokenstore.Record{Generation: 0}, stateNotExchanged, ExitOK},
		{"seed issued long ago, never exchanged", tokenstore.Record{Generation: 0, RefreshTokenIssuedAt: now.Add(-2 * month)}, stateExpired, ExitExpiring},
		{"near its end", tokenstore.Record{Generation: 1, RefreshTokenIssuedAt: now.Add(-month + 24*time.Hour)}, stateExpiring, ExitExpiring},
		{"ended", tokenstore.Record{Generation: 1, RefreshTokenIssuedAt: now.Add(-month)}, stateExpired, ExitExpiring},
		{"dead though fresh", tokenstore.Record{Generation: 2, RefreshTokenIssuedAt: now.Add(-time.Hour),
			Dead: &tokenstore.Death{At: now, Cause: "revoked"}}, stateDead, ExitExpiring},
		{"dead before its first exchange", tokenstore.Record{Dead: &tokenstore.Death{At: now, Cause: "revoked"}}, stateDead, ExitExpiring},
	} {
		if state, exit := Verdict(&tc.rec, month, now); state != tc.state || exit != tc.exit {
			t.Errorf("%s: got (%s, %d); want (%s, %d)", tc.name, state, exit, tc.state, tc.exit)
		}
	}
}

// TestRotate_exchangesWhateverTheRecordSays: a record whose last exchange is stamped after the rotation started (a
// runner whose clock is ahead wrote it) does not keep rotate from exchanging: a forced rotation makes an exchange of
// its own, decided by nothing another machine's clock wrote.
func TestRotate_exchangesWhateverTheRecordSays(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	flags := storeKinds[0].flags(f)
	seed := f.chain(flags)
	rec, err := f.source(flags).Record(context.Background(), seed)
	if err != nil || rec == nil {
		t.Fatalf("record: %v, %v", rec, err)
	}
	rec.RotatedAt = time.Now().Add(time.Hour) // the clock of the runner that exchanged it is an hour ahead
	f.saveRecord(flags, seed, rec)
	exchanges := f.srv.Stats().RefreshExchanges

	r := f.chainCommand(context.Background(), "rotate", seed, Options{}, flags, "-json")
	if r.code != ExitOK {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	var v chainView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Rotated == nil || !*v.Rotated {
		t.Fatalf("-json: %v, %+v; want rotated", err, v)
	}
	if got := f.srv.Stats().RefreshExchanges; got != exchanges+1 || !strings.Contains(strings.ToLower(flat(r.stderr)), "rotated:") {
		t.Errorf("%d exchanges (want %d), stderr:\n%s", got, exchanges+1, r.stderr)
	}
}

// TestRotate_deadChain: rotate on a chain a run recorded dead fails at once, asks Bipsync nothing, and says when and by
// whom the death was learned and what to do.
func TestRotate_deadChain(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{})
	flags := storeKinds[0].flags(f)
	seed := f.chain(flags)
	rec, err := f.source(flags).Record(context.Background(), seed)
	if err != nil || rec == nil {
		t.Fatalf("record: %v, %v", rec, err)
	}
	rec.Dead = &tokenstore.Death{At: time.Date(2026, 12, 6, 10, 30, 0, 0, time.UTC), Cause: "revoked", By: "ci-runner-7, pid 42"}
	f.saveRecord(flags, seed, rec)
	exchanges := f.srv.Stats().RefreshExchanges

	r := f.chainCommand(context.Background(), "rotate", seed, Options{}, flags)
	if r.code == ExitOK {
		t.Fatalf("exit 0 on a dead chain; stderr:\n%s", r.stderr)
	}
	said := flat(r.stderr)
	for _, want := range []string{"refused this chain for good (revoked)", "ci-runner-7, pid 42", "2026-12-06T10:30:00Z",
		"Nothing was sent to Bipsync", Program + " authorize"} {
		if !strings.Contains(said, want) {
			t.Errorf("rotate does not say %q:\n%s", want, r.stderr)
		}
	}
	if got := f.srv.Stats().RefreshExchanges; got != exchanges {
		t.Errorf("exchanges: got %d; want %d (nothing sent)", got, exchanges)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
