package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/settings"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// expiringWithin is how close to its end a chain makes status exit ExitExpiring; the provider warns from the same
// point (Bipsync Refresh Chain Expiring Soon).
const expiringWithin = 7 * 24 * time.Hour

const statusDoc = `Shows a refresh chain as the token store holds it: where it lives, its generation, its last rotation, the
access token's expiry, the chain's end and the days left, and the scopes asked. No token is shown.

The chain is named by its seed, the refresh token the provider is given: set BIPSYNC_REFRESH_TOKEN, or pipe it on
standard input (` + Program + ` status < seed.txt). It is never a flag. The endpoint, the client and the store
are the provider's settings: the same BIPSYNC_* variables, or the flags below.

Exit status: 0 the chain is readable and more than 7 days from its end; 3 it ends within 7 days, or has ended (run
rotate, or any plan that uses it); 1 it cannot be read or the store holds no chain for the seed; 2 a setting is
missing or wrong.`

const rotateDoc = `Exchanges a refresh chain held in the token store now, then shows it as status does. It goes through the
provider's token source: the chain's locks, the reload under the lock, the save before anything else. A plan or
apply that uses the chain at the same moment waits for it, and a rotation that waited for such a run's exchange
takes that exchange instead of making a second one.

Use it after a suspected leak, to renew a chain's month without a Terraform run, or to find out at once whether
consent was withdrawn. The exchange revokes the previous refresh token and the access token issued with it, including
one a run in progress holds: rotate between runs when that matters. The seed comes from BIPSYNC_REFRESH_TOKEN or
standard input, never a flag. Exit status as for status; 1 also when the exchange failed.`

type statusFlags struct {
	client   clientFlags
	store    storeFlags
	lifetime lifetimeFlag
	json     bool
}

func runStatus(ctx context.Context, e *env, args []string) int {
	return statusOrRotate(ctx, e, args, false)
}

func runRotate(ctx context.Context, e *env, args []string) int {
	return statusOrRotate(ctx, e, args, true)
}

func statusOrRotate(ctx context.Context, e *env, args []string, rotate bool) int {
	name, doc := "status", statusDoc
	if rotate {
		name, doc = "rotate", rotateDoc
	}
	var f statusFlags
	fs := newFlagSet(e, name, doc)
	f.client.register(fs)
	f.store.register(fs)
	f.lifetime.register(fs)
	fs.BoolVar(&f.json, "json", false, "print the view as JSON, for machines")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	v, err := chainStatus(ctx, e, &f, rotate)
	if err != nil {
		return fail(e, name, err)
	}
	if f.json {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fail(e, name, err)
		}
	} else {
		v.print(e.Stdout)
	}
	return exitFor(v.State)
}

// Verdict is status's judgement of a chain's record at now: the state it reports ("ok", "expiring", "expired") and
// the exit status it gives. Its rules live here once, for status and for anything that must agree with it.
func Verdict(rec *tokenstore.Record, lifetime time.Duration, now time.Time) (state string, exit int) {
	state, _ = judge(rec, lifetime, now)
	return state, exitFor(state)
}

// judge returns the chain's state and whole days left.
func judge(rec *tokenstore.Record, lifetime time.Duration, now time.Time) (state string, daysLeft int) {
	left := rec.RefreshTokenIssuedAt.Add(lifetime).Sub(now)
	switch {
	case left <= 0:
		return stateExpired, 0
	case left < expiringWithin:
		return stateExpiring, int(left / (24 * time.Hour))
	default:
		return stateOK, int(left / (24 * time.Hour))
	}
}

func exitFor(state string) int {
	if state != stateOK {
		return ExitExpiring
	}
	return ExitOK
}

// States of a chain.
const (
	stateOK       = "ok"
	stateExpiring = "expiring"
	stateExpired  = "expired"
)

// chainView is what status shows and -json prints. It holds no secret.
type chainView struct {
	Store                string     `json:"store"`
	StoreKey             string     `json:"store_key"`
	Generation           int64      `json:"generation"`
	RotatedAt            *time.Time `json:"rotated_at"` // null: never exchanged since the seed was issued
	RefreshTokenIssuedAt time.Time  `json:"refresh_token_issued_at"`
	AccessTokenExpiresAt *time.Time `json:"access_token_expires_at"` // null: the record holds no access token
	ChainExpiresAt       time.Time  `json:"chain_expires_at"`
	DaysLeft             int        `json:"days_left"`
	Scopes               []string   `json:"scopes"` // null: the original consent, not known to the provider
	State                string     `json:"state"`
	Rotated              *bool      `json:"rotated,omitempty"` // rotate only: whether this run made the exchange
	now                  time.Time
}

func chainStatus(ctx context.Context, e *env, f *statusFlags, rotate bool) (*chainView, error) {
	c, err := f.client.resolve()
	if err != nil {
		return nil, err
	}
	cfg, err := f.store.resolve()
	if err != nil {
		return nil, err
	}
	lifetime, err := f.lifetime.resolve()
	if err != nil {
		return nil, err
	}
	seed, err := readSeed(e)
	if err != nil {
		return nil, err
	}
	src, st, err := e.openSource(c, cfg, lifetime)
	if err != nil {
		return nil, err
	}
	if !st.Traits().Persistent {
		return nil, usagef("the token store backend is none, which keeps no chain: name the store the provider uses "+
			"(%s, or -token-store)", settings.EnvTokenStore)
	}
	key := src.Key(seed)

	var rotated *bool
	if rotate {
		// Force exchanges now, unless another run rotated the chain past the generation this request first read
		// (its exchange won a race with this one's): that exchange is the rotation asked for, and one serves both.
		res, err := src.Token(ctx, tokensource.Request{
			Grant:        tokensource.GrantRefreshToken,
			RefreshToken: seed,
			Force:        true,
		})
		if err != nil {
			return nil, rotateError(err, st, c.clientID)
		}
		// rotate hands its token to no one: the lease its hand-out recorded ends now.
		_ = src.Release(ctx, res.Key)
		rotated = &res.Exchanged
		if res.Exchanged {
			fmt.Fprintf(e.Stderr, "Rotated: the chain is at generation %d; the previous refresh and access tokens are revoked.\n",
				res.Generation)
		} else {
			fmt.Fprintln(e.Stderr, "Another run exchanged the chain while this one waited for it; that exchange counts, and no "+
				"second one was made.")
		}
		for _, w := range res.Warnings {
			if w.Kind == tokensource.WarnPromiseBroken {
				fmt.Fprintf(e.Stderr, "Warning: the rotation revoked the access token handed out at %s and promised to stay valid "+
					"until %s: a run that still uses it now gets 401 from Bipsync.\n",
					w.PromisedAt.UTC().Format(time.RFC3339), w.PromisedUntil.UTC().Format(time.RFC3339))
			}
		}
	}

	rec, err := src.Record(ctx, seed)
	switch {
	case errors.Is(err, tokenstore.ErrCorrupt):
		return nil, fmt.Errorf("the %s holds a record for this seed that cannot be read: %w. Is it the seed the provider "+
			"is given? If it is, the record is damaged: see the reauthorization runbook (Unreadable Bipsync Token Store Record)",
			st.Describe(), err)
	case err != nil:
		return nil, fmt.Errorf("could not read the %s: %w", st.Describe(), err)
	case rec == nil:
		return nil, fmt.Errorf("the %s holds no chain for this seed. The provider saves a chain the first time it exchanges "+
			"the seed (or authorize -store saves it); check that this is the seed and the store the provider uses, with "+
			"the same endpoint and client ID", st.Describe())
	}
	v := view(rec, st, key, lifetime, e.opts.Now())
	v.Rotated = rotated
	return v, nil
}

// readSeed reads the seed from BIPSYNC_REFRESH_TOKEN, else from standard input when it is not a terminal.
func readSeed(e *env) (string, error) {
	if v, ok := settings.Lookup(settings.EnvRefreshToken); ok {
		return strings.TrimSpace(v), nil
	}
	if e.Stdin == nil || isTerminal(e.Stdin) {
		return "", usagef("give the chain's seed (the refresh token the provider is given) in %s or on standard input, "+
			"for example < seed.txt; it is never a flag", settings.EnvRefreshToken)
	}
	b, err := readSmall(e.Stdin, "standard input")
	if err != nil {
		return "", usagef("%v", err)
	}
	seed := strings.TrimSpace(string(b))
	if seed == "" {
		return "", usagef("standard input is empty: give the chain's seed (the refresh token the provider is given) "+
			"in %s or on standard input, for example < seed.txt; it is never a flag", settings.EnvRefreshToken)
	}
	if strings.ContainsAny(seed, " \t\r\n") {
		return "", usagef("standard input should hold one refresh token and nothing else")
	}
	return seed, nil
}

func view(rec *tokenstore.Record, st tokenstore.Store, key tokenstore.Key, lifetime time.Duration, now time.Time) *chainView {
	v := &chainView{
		Store:                st.Describe(),
		StoreKey:             string(key),
		Generation:           rec.Generation,
		RefreshTokenIssuedAt: rec.RefreshTokenIssuedAt.UTC(),
		ChainExpiresAt:       rec.RefreshTokenIssuedAt.Add(lifetime).UTC(),
		Scopes:               rec.Scopes,
		now:                  now,
	}
	if !rec.RotatedAt.IsZero() {
		t := rec.RotatedAt.UTC()
		v.RotatedAt = &t
	}
	if rec.AccessToken != "" {
		t := rec.AccessTokenExpiresAt.UTC()
		v.AccessTokenExpiresAt = &t
	}
	v.State, v.DaysLeft = judge(rec, lifetime, now)
	return v
}

func (v *chainView) print(w io.Writer) {
	stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
	fmt.Fprintf(w, "Chain in the %s\n", v.Store)
	fmt.Fprintf(w, "  store key:         %s\n", v.StoreKey)
	fmt.Fprintf(w, "  generation:        %d\n", v.Generation)
	if v.RotatedAt != nil {
		fmt.Fprintf(w, "  last rotation:     %s (%s ago)\n", stamp(*v.RotatedAt), ago(v.now.Sub(*v.RotatedAt)))
	} else {
		fmt.Fprintf(w, "  last rotation:     never; the seed was issued %s\n", stamp(v.RefreshTokenIssuedAt))
	}
	switch {
	case v.AccessTokenExpiresAt == nil:
		fmt.Fprintln(w, "  access token:      none stored; the next use exchanges the chain")
	case v.AccessTokenExpiresAt.After(v.now):
		fmt.Fprintf(w, "  access token:      valid until %s (%s left)\n", stamp(*v.AccessTokenExpiresAt), ago(v.AccessTokenExpiresAt.Sub(v.now)))
	default:
		fmt.Fprintf(w, "  access token:      expired %s; the next use exchanges the chain\n", stamp(*v.AccessTokenExpiresAt))
	}
	fmt.Fprintf(w, "  chain ends:        %s (%d days left)\n", stamp(v.ChainExpiresAt), v.DaysLeft)
	if v.Scopes == nil {
		fmt.Fprintln(w, "  scopes asked:      the original consent")
	} else if len(v.Scopes) == 0 {
		fmt.Fprintln(w, "  scopes asked:      none")
	} else {
		fmt.Fprintf(w, "  scopes asked:      %s\n", strings.Join(v.Scopes, " "))
	}
	switch v.State {
	case stateExpired:
		fmt.Fprintf(w, "The chain has ended: authorize anew (%s authorize) and give the provider the new seed.\n", Program)
	case stateExpiring:
		fmt.Fprintf(w, "The chain ends within 7 days: run %s rotate, or any plan that uses it, to renew its month.\n", Program)
	}
}

// ago writes a duration in the largest whole unit that fits.
func ago(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d/time.Hour))
	case d >= 2*time.Minute:
		return fmt.Sprintf("%d minutes", int(d/time.Minute))
	default:
		return fmt.Sprintf("%d seconds", int(d/time.Second))
	}
}

// rotateError explains a failed rotation and what to do.
func rotateError(err error, st tokenstore.Store, clientID string) error {
	var se *tokensource.SaveError
	var ie *tokensource.IncompleteAnswerError
	var stErr *tokensource.StoreError
	switch {
	case bipsync.NeedsReauthorization(err):
		return fmt.Errorf("the chain cannot be used again, Bipsync refused it: %w. Authorize anew (%s authorize, for "+
			"client %s) and give the provider the new refresh token as its seed", err, Program, clientID)
	case bipsync.IsInvalidClient(err):
		return fmt.Errorf("the client ID or secret was refused; the chain is untouched: %w. Check -client-id and the "+
			"client secret", err)
	case bipsync.IsOutcomeUnknown(err):
		return fmt.Errorf("the exchange was sent and no usable answer came back, so it may or may not have happened: %w. "+
			"Run status: if the generation did not change, run rotate again once", err)
	case errors.As(err, &se):
		return fmt.Errorf("%w. The chain's new head could not be kept: see the reauthorization runbook (Bipsync Token "+
			"Store Save Failed)", err)
	case errors.As(err, &ie):
		return fmt.Errorf("%w. Run rotate again: it exchanges the kept head", err)
	case errors.As(err, &stErr):
		return fmt.Errorf("%w. Nothing was exchanged", err)
	}
	return fmt.Errorf("the rotation failed: %w (%s)", err, st.Describe())
}
