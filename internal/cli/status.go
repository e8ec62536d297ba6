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

Exit status: 0 the chain is readable and more than 7 days from its end, or not exchanged yet (a first run kept the
seed and consumed nothing); 3 it ends within 7 days (run rotate, or any plan that uses it), has ended, or is dead
(Bipsync refused it for good: authorize anew); 1 it cannot be read or the store holds no chain for the seed; 2 a
setting is missing or wrong.`

const rotateDoc = `Exchanges a refresh chain held in the token store now, then shows it as status does. It goes through the
provider's token source: the chain's locks, the reload under the lock, the save before anything else. A plan or
apply that uses the chain at the same moment waits for it. The rotation always makes an exchange of its own once it
holds the chain, even after another run's exchange it waited for: that one may have been answered before the rotation
began, and its tokens may be the ones suspected.

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

// Verdict is status's judgement of a chain's record at now: the state it reports ("ok", "expiring", "expired",
// "not_exchanged", "dead") and the exit status it gives. Its rules live here once, for status and for anything that
// must agree with it.
func Verdict(rec *tokenstore.Record, lifetime time.Duration, now time.Time) (state string, exit int) {
	state, _ = judge(rec, lifetime, now)
	return state, exitFor(state)
}

// judge returns the chain's state and whole days left (0 when the chain has no known end).
func judge(rec *tokenstore.Record, lifetime time.Duration, now time.Time) (state string, daysLeft int) {
	switch {
	case rec.Dead != nil:
		// What a run learned from Bipsync outranks any date: the chain cannot be used again, whatever its month says.
		return stateDead, 0
	case neverExchanged(rec):
		// The head is the seed and its issue time is unknown: a first run kept the record and its exchange consumed
		// nothing (a wrong client secret, say). The chain's month is unknown, not over; the next use exchanges it.
		return stateNotExchanged, 0
	}
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

// neverExchanged tells a record saved before the chain's first exchange, whose seed's issue time nobody knows.
func neverExchanged(rec *tokenstore.Record) bool {
	return rec.Generation == 0 && rec.RefreshTokenIssuedAt.IsZero()
}

func exitFor(state string) int {
	switch state {
	case stateOK, stateNotExchanged:
		return ExitOK
	}
	return ExitExpiring
}

// States of a chain.
const (
	stateOK           = "ok"
	stateExpiring     = "expiring"
	stateExpired      = "expired"
	stateNotExchanged = "not_exchanged"
	stateDead         = "dead"
)

// chainView is what status shows and -json prints. It holds no secret.
type chainView struct {
	Store                string     `json:"store"`
	StoreKey             string     `json:"store_key"`
	Generation           int64      `json:"generation"`
	RotatedAt            *time.Time `json:"rotated_at"`              // null: never exchanged since the seed was issued
	RefreshTokenIssuedAt *time.Time `json:"refresh_token_issued_at"` // null: not known (never exchanged)
	AccessTokenExpiresAt *time.Time `json:"access_token_expires_at"` // null: the record holds no access token
	ChainExpiresAt       *time.Time `json:"chain_expires_at"`        // null: not known (never exchanged)
	DaysLeft             int        `json:"days_left"`
	Scopes               []string   `json:"scopes"` // null: the original consent, not known to the provider
	State                string     `json:"state"`
	Dead                 *deathView `json:"dead"`              // null: not known dead
	Rotated              *bool      `json:"rotated,omitempty"` // rotate only: whether this run made the exchange
	now                  time.Time
}

// deathView is what a run learned when Bipsync refused the chain for good.
type deathView struct {
	At     time.Time `json:"at"`
	Cause  string    `json:"cause"`
	Detail string    `json:"detail"`
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
		// Force makes an exchange of this run's own once it holds the chain, whatever other runs did meanwhile.
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
		fmt.Fprintf(e.Stderr, "Rotated: the chain is at generation %d.\nThe previous refresh and access tokens are "+
			"revoked.\n", res.Generation)
		for _, w := range res.Warnings {
			if w.Kind == tokensource.WarnPromiseBroken {
				fmt.Fprintf(e.Stderr, "Warning: the rotation revoked the access token handed out at %s\nand promised to "+
					"stay valid until %s:\na run that still uses it now gets 401 from Bipsync.\n",
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
		Store:      st.Describe(),
		StoreKey:   string(key),
		Generation: rec.Generation,
		Scopes:     rec.Scopes,
		now:        now,
	}
	if !neverExchanged(rec) {
		issued, ends := rec.RefreshTokenIssuedAt.UTC(), rec.RefreshTokenIssuedAt.Add(lifetime).UTC()
		v.RefreshTokenIssuedAt, v.ChainExpiresAt = &issued, &ends
	}
	if d := rec.Dead; d != nil {
		v.Dead = &deathView{At: d.At.UTC(), Cause: d.Cause, Detail: d.Detail}
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
	switch {
	case v.RotatedAt != nil:
		fmt.Fprintf(w, "  last rotation:     %s (%s ago)\n", stamp(*v.RotatedAt), ago(v.now.Sub(*v.RotatedAt)))
	case v.RefreshTokenIssuedAt != nil:
		fmt.Fprintf(w, "  last rotation:     never; the seed was issued %s\n", stamp(*v.RefreshTokenIssuedAt))
	default:
		fmt.Fprintln(w, "  last rotation:     never; the seed has not been exchanged yet")
	}
	switch {
	case v.AccessTokenExpiresAt == nil:
		fmt.Fprintln(w, "  access token:      none stored; the next use exchanges the chain")
	case v.AccessTokenExpiresAt.After(v.now):
		fmt.Fprintf(w, "  access token:      valid until %s (%s left)\n", stamp(*v.AccessTokenExpiresAt), ago(v.AccessTokenExpiresAt.Sub(v.now)))
	default:
		fmt.Fprintf(w, "  access token:      expired %s; the next use exchanges the chain\n", stamp(*v.AccessTokenExpiresAt))
	}
	if v.ChainExpiresAt != nil {
		fmt.Fprintf(w, "  chain ends:        %s (%d days left)\n", stamp(*v.ChainExpiresAt), v.DaysLeft)
	} else {
		fmt.Fprintln(w, "  chain ends:        not known until the seed is first exchanged (a month after its issue)")
	}
	if v.Scopes == nil {
		fmt.Fprintln(w, "  scopes asked:      the original consent")
	} else if len(v.Scopes) == 0 {
		fmt.Fprintln(w, "  scopes asked:      none")
	} else {
		fmt.Fprintf(w, "  scopes asked:      %s\n", strings.Join(v.Scopes, " "))
	}
	switch v.State {
	case stateDead:
		fmt.Fprintf(w, "The chain is dead: Bipsync refused it for good (%s).\n", printable(v.Dead.Cause))
		fmt.Fprintf(w, "  learned:           %s (%s ago), by a run that used it\n", stamp(v.Dead.At), ago(v.now.Sub(v.Dead.At)))
		if v.Dead.Detail != "" {
			fmt.Fprintf(w, "  Bipsync said:      %s\n", printable(v.Dead.Detail))
		}
		fmt.Fprintf(w, "It cannot be used again. It needs a new authorization: run\n  %s authorize\nand give the "+
			"provider the new refresh token as its seed.\n", Program)
	case stateNotExchanged:
		fmt.Fprintln(w, "The chain has not been exchanged yet: a first run kept the seed but consumed nothing (for example, the")
		fmt.Fprintln(w, "client secret was refused). The next plan or apply that uses it exchanges it; rotate does so now.")
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

// rotateError explains a failed rotation: what happened, what to do, and the facts, each told on lines of its own.
func rotateError(err error, st tokenstore.Store, clientID string) error {
	var se *tokensource.SaveError
	var ie *tokensource.IncompleteAnswerError
	var stErr *tokensource.StoreError
	f := &failure{err: err, facts: err.Error()}
	death, knownDead := tokensource.KnownDead(err)
	switch {
	case knownDead:
		f.happened = fmt.Sprintf("Bipsync refused this chain for good (%s), as a run on %s learned and recorded in the "+
			"token store at %s. Nothing was sent to Bipsync this time.", death.Cause, death.By,
			death.At.UTC().Format(time.RFC3339))
		f.todo = fmt.Sprintf("Authorize anew (%s authorize, for client %s) and give the provider the new refresh "+
			"token as its seed.", Program, clientID)
	case bipsync.NeedsReauthorization(err):
		f.happened = "Bipsync refused the chain for good (revoked, or past its month): it cannot be used again."
		f.todo = fmt.Sprintf("Authorize anew (%s authorize, for client %s) and give the provider the new refresh "+
			"token as its seed.", Program, clientID)
	case bipsync.IsInvalidClient(err):
		f.happened = "Bipsync refused the client ID or secret. Nothing was exchanged: the chain is untouched."
		f.todo = "Check -client-id (or BIPSYNC_CLIENT_ID) and the client secret (BIPSYNC_CLIENT_SECRET or " +
			"-client-secret-file), then run rotate again."
	case bipsync.IsOutcomeUnknown(err):
		f.happened = "The exchange was sent and no usable answer came back, so it may or may not have happened."
		f.todo = fmt.Sprintf("Run %s status: if the generation did not change, run rotate again, once.", Program)
	case errors.As(err, &se):
		f.happened = fmt.Sprintf("Bipsync rotated the chain, but the %s did not take the new head.", se.Store)
		if se.Rescue != "" {
			f.todo = fmt.Sprintf("Keep the rescue file %s: it holds the new head, sealed. Once the store works "+
				"again, run %s restore %s.", se.Rescue, Program, se.Rescue)
		} else {
			f.todo = "No rescue file could be written either: see the reauthorization runbook (Bipsync Token Store " +
				"Save Failed)."
		}
	case errors.As(err, &ie):
		f.happened = fmt.Sprintf("Bipsync rotated the chain but its answer had no usable access token; the new "+
			"refresh token was kept in the %s.", ie.Kept)
		f.todo = "Run rotate again: it exchanges the kept head."
	case errors.As(err, &stErr):
		f.happened = fmt.Sprintf("The %s could not be used, before any exchange: nothing was exchanged.", stErr.Store)
		f.todo = "Make the store reachable (its settings, permissions, network), then run rotate again."
	default:
		f.happened = fmt.Sprintf("The rotation failed (%s).", st.Describe())
		f.todo = fmt.Sprintf("Run %s status to see the chain as the store holds it.", Program)
	}
	return f
}
