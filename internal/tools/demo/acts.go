package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

const (
	grantAddress = "bipsync_refresh_grant.main"

	// dueMargin is waited beyond the moment a token comes due, for the
	// whole seconds in expires_in and the clock reads of two processes.
	dueMargin = 1500 * time.Millisecond

	// act3Budget is the time act 3 needs at most on a slow machine.
	act3Budget = 6 * time.Second

	// reauthSummary is the diagnostic a revoked chain must produce.
	reauthSummary = "Bipsync Reauthorization Required"
)

// demo is one run of the acts against one fake server and one engine.
type demo struct {
	ui          *ui
	eng         *engine
	srv         *bipsynctest.Server
	work        string
	vars        map[string]string
	probeReport string
	grantSeed   string
	providerBin string // the built provider, for its subcommands
	secretFile  string // the client secret, 0600, for the subcommands

	steps []step
	// marks of what the previous step had already seen
	logMark, reportMark int
	statsMark           bipsynctest.Stats
}

// step is one line of the closing summary.
type step struct {
	act     int
	name    string
	counts  tally
	elapsed time.Duration
	waited  bool
}

// play runs the acts in order and stops at the first that misbehaves.
func (d *demo) play(ctx context.Context) error {
	for i, act := range []func(context.Context) error{d.act1, d.act2, d.act3, d.act4, d.act5} {
		err := act(ctx)
		if d.eng.leaked {
			return fmt.Errorf("act %d: a token or secret appeared in the engine's output (shown above as [REDACTED])", i+1)
		}
		if err != nil {
			return fmt.Errorf("act %d: %w", i+1, err)
		}
	}
	return nil
}

// act2 creates the grant and hands an ephemeral token to a consumer.
func (d *demo) act2(ctx context.Context) error {
	d.ui.say("Act 2: create the grant (its chain lives in state) and hand an ephemeral token to a consumer: the chain " +
		"authorize saved in the token store, whose first access token needs no exchange")
	err := d.step(ctx, 2, "first apply", tally{grant: 1}, func() error {
		return d.apply(ctx, "-auto-approve")
	})
	if err != nil {
		return err
	}
	before, err := d.grantState(ctx)
	if err != nil {
		return err
	}
	d.ui.say("grant chain head in state: %s (first 8 hex digits of its SHA-256), rotated at %s, access token expires at %s",
		fingerprint(before.RefreshToken), clock(before.RotatedAt), clock(before.ExpiresAt))
	return nil
}

// act3 shows that neither a plan nor another apply exchanges a chain whose
// token is still good.
func (d *demo) act3(ctx context.Context) error {
	d.ui.say("Act 3: plan, then apply that plan, while both access tokens are still good: no exchange")
	before, err := d.grantState(ctx)
	if err != nil {
		return err
	}
	grantDue, ephemeralDue, err := d.dueTimes(ctx, before)
	if err != nil {
		return err
	}
	// Act 3 takes a few seconds; a machine so slow that the tokens come
	// due during it would fail it for the wrong reason.
	if slack := time.Until(earliest(grantDue, ephemeralDue)); slack < act3Budget {
		return fmt.Errorf("only %.1fs are left before the first token comes due, and act 3 needs about %s: "+
			"this machine ran acts 1 and 2 too slowly for the demo's %s tokens", slack.Seconds(), act3Budget, accessTokenTTL)
	}
	err = d.step(ctx, 3, "plan -detailed-exitcode", tally{}, func() error {
		res, err := d.eng.run(ctx, d.vars, "plan", "-input=false", "-detailed-exitcode", "-out=act3.tfplan")
		if err != nil {
			return err
		}
		// The consumers run on every apply, so the plan always has changes.
		if res.code != 2 {
			return fmt.Errorf("plan -detailed-exitcode exited %d; want 2 (the consumers are replaced on every run)", res.code)
		}
		actions, err := d.planActions(ctx, "act3.tfplan")
		if err != nil {
			return err
		}
		if got := actions[grantAddress]; got != "no-op" {
			return fmt.Errorf("the plan would %s %s; want no-op (its access token is not due yet)", got, grantAddress)
		}
		d.ui.say("the plan leaves %s alone (no-op) and replaces the two consumers", grantAddress)
		return nil
	})
	if err != nil {
		return err
	}
	err = d.step(ctx, 3, "apply of that plan", tally{}, func() error {
		return d.apply(ctx, "act3.tfplan")
	})
	if err != nil {
		return err
	}
	after, err := d.grantState(ctx)
	if err != nil {
		return err
	}
	if fingerprint(after.RefreshToken) != fingerprint(before.RefreshToken) {
		return fmt.Errorf("the grant chain head changed from %s to %s; want it unchanged", fingerprint(before.RefreshToken), fingerprint(after.RefreshToken))
	}
	d.ui.say("grant chain head still %s", fingerprint(after.RefreshToken))
	return nil
}

// act4 waits until both access tokens are due and shows one apply rotating
// both chains once.
func (d *demo) act4(ctx context.Context) error {
	before, err := d.grantState(ctx)
	if err != nil {
		return err
	}
	grantDue, ephemeralDue, err := d.dueTimes(ctx, before)
	if err != nil {
		return err
	}
	due := grantDue
	if ephemeralDue.After(due) {
		due = ephemeralDue
	}
	due = due.Add(dueMargin)

	d.ui.say("Act 4: rotation. The grant's access token enters its %s rotate_before window at %s; the ephemeral token "+
		"drops under its %s min_validity at %s", rotateBefore, clock(grantDue), minValidity, clock(ephemeralDue))
	start := time.Now()
	if err := d.waitUntil(ctx, due); err != nil {
		return err
	}
	d.steps = append(d.steps, step{act: 4, name: "wait until both tokens are due", elapsed: time.Since(start), waited: true})

	err = d.step(ctx, 4, "apply after they are due", tally{grant: 1, ephemeral: 1}, func() error {
		return d.apply(ctx, "-auto-approve")
	})
	if err != nil {
		return err
	}
	after, err := d.grantState(ctx)
	if err != nil {
		return err
	}
	if fingerprint(after.RefreshToken) == fingerprint(before.RefreshToken) || !after.RotatedAt.After(before.RotatedAt) {
		return fmt.Errorf("the grant chain head %s, rotated at %s; want a new head and a later rotated_at than %s",
			fingerprint(after.RefreshToken), clock(after.RotatedAt), clock(before.RotatedAt))
	}
	d.ui.say("grant chain head %s → %s, rotated at %s; the chain now lives until %s",
		fingerprint(before.RefreshToken), fingerprint(after.RefreshToken), clock(after.RotatedAt),
		after.RefreshTokenExpiresAt.UTC().Format(time.RFC3339))
	d.ui.say("the ephemeral chain, as its token store holds it now:")
	st, err := d.showStatus(ctx)
	if err != nil {
		return err
	}
	if st.Generation != 1 || st.RotatedAt == nil {
		return fmt.Errorf("status shows the ephemeral chain at generation %d; want 1, rotated by this apply", st.Generation)
	}
	return nil
}

// act5 revokes the grant's chain, shows the diagnostic that asks for a new
// authorization, and recovers in one apply with a new seed.
func (d *demo) act5(ctx context.Context) error {
	d.ui.say("Act 5: the user withdraws consent at Bipsync (the fake revokes the grant's chain); a keepers change asks for a rotation now")
	before, err := d.grantState(ctx)
	if err != nil {
		return err
	}
	d.srv.RevokeChain(d.grantSeed)
	d.vars["grant_keepers"] = hclMap(map[string]string{"reason": "rotate after the revocation"})

	err = d.step(ctx, 5, "apply on the revoked chain (fails)", tally{grantRejected: 1}, func() error {
		res, err := d.eng.run(ctx, d.vars, "apply", "-input=false", "-auto-approve")
		if err != nil {
			return err
		}
		if res.code == 0 {
			return fmt.Errorf("apply on a revoked chain exited 0; want a failure")
		}
		if !strings.Contains(res.output, reauthSummary) {
			return fmt.Errorf("apply on a revoked chain exited %d without the diagnostic %q", res.code, reauthSummary)
		}
		d.ui.say("apply exited %d with %q, as it should: only a person can authorize again", res.code, reauthSummary)
		return d.probes(false)
	})
	if err != nil {
		return err
	}

	d.ui.say("recovery: a new authorization gives a new seed; bump refresh_token_wo_version and apply once")
	d.grantSeed = d.srv.IssueRefreshToken(clientID, grantScopes)
	d.vars["grant_seed"] = d.grantSeed
	d.vars["grant_seed_version"] = "2"
	err = d.step(ctx, 5, "apply with the new seed", tally{grant: 1}, func() error {
		return d.apply(ctx, "-auto-approve")
	})
	if err != nil {
		return err
	}
	after, err := d.grantState(ctx)
	if err != nil {
		return err
	}
	if fingerprint(after.RefreshToken) == fingerprint(before.RefreshToken) {
		return fmt.Errorf("the grant chain head is still %s after the re-seed; want a new one", fingerprint(after.RefreshToken))
	}
	d.ui.say("grant chain head %s → %s (a new chain from the new seed)", fingerprint(before.RefreshToken), fingerprint(after.RefreshToken))
	return nil
}

// apply runs apply with args and checks that it succeeded and that both
// consumers called /v1/me successfully.
func (d *demo) apply(ctx context.Context, args ...string) error {
	res, err := d.eng.run(ctx, d.vars, append([]string{"apply", "-input=false"}, args...)...)
	if err != nil {
		return err
	}
	if res.code != 0 {
		return fmt.Errorf("apply exited %d; want 0", res.code)
	}
	return d.probes(true)
}

// probes shows what the consumers reported since the last call. With
// wantBoth, both must have called /v1/me successfully; in any case none may
// have been refused.
func (d *demo) probes(wantBoth bool) error {
	got, n, err := readReports(d.probeReport, d.reportMark)
	if err != nil {
		return err
	}
	d.reportMark = n
	seen := map[string]bool{}
	for _, r := range got {
		d.ui.say("consumer of the %s token: GET /v1/me → %s", r.Label, r)
		if r.Status != http.StatusOK {
			return fmt.Errorf("the %s consumer's call got %s; want 200 OK", r.Label, r)
		}
		seen[r.Label] = true
	}
	if wantBoth && (!seen["grant"] || !seen["ephemeral"]) {
		return fmt.Errorf("consumer calls seen: %d (grant %t, ephemeral %t); want one from each", len(got), seen["grant"], seen["ephemeral"])
	}
	return nil
}

// step runs fn as one summary line and checks the exchanges the fake saw
// during it against want.
func (d *demo) step(ctx context.Context, act int, name string, want tally, fn func() error) error {
	start := time.Now()
	err := fn()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	reqs := d.srv.Requests()
	stats := d.srv.Stats()
	got := tallyRequests(reqs[min(d.logMark, len(reqs)):])
	exchanges := stats.RefreshExchanges - d.statsMark.RefreshExchanges
	denied := stats.ProtectedDenied - d.statsMark.ProtectedDenied
	d.logMark, d.statsMark = len(reqs), stats
	d.steps = append(d.steps, step{act: act, name: name, counts: got, elapsed: elapsed})
	if err != nil {
		return err
	}

	d.ui.say("the fake's exchange counter: +%d (grant chain %d, ephemeral chain %d)%s",
		exchanges, got.grant, got.ephemeral, rejectedNote(got))
	switch {
	case got != want:
		return fmt.Errorf("%s: the fake saw %s; want %s", name, got, want)
	case exchanges != got.grant+got.ephemeral:
		return fmt.Errorf("%s: the fake counted %d exchanges but only %d belong to the demo's chains", name, exchanges, got.grant+got.ephemeral)
	case denied != 0:
		return fmt.Errorf("%s: the fake refused %d calls to /v1/me; want none", name, denied)
	}
	return nil
}

func rejectedNote(t tally) string {
	if t.grantRejected+t.ephemeralRejected == 0 {
		return ""
	}
	return fmt.Sprintf("; refused: grant chain %d, ephemeral chain %d", t.grantRejected, t.ephemeralRejected)
}

// waitUntil sleeps until t, saying how long is left every few seconds.
func (d *demo) waitUntil(ctx context.Context, t time.Time) error {
	left := time.Until(t)
	if left <= 0 {
		return nil
	}
	d.ui.say("waiting %ds until both are due", int(left.Round(time.Second)/time.Second))
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	timer := time.NewTimer(left)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return nil
		case <-tick.C:
			if left := time.Until(t); left >= time.Second {
				d.ui.plain("%ds left", int(left.Round(time.Second)/time.Second))
			}
		}
	}
}

// dueTimes returns when the grant's access token enters its rotation window
// and when the ephemeral resource's stored token drops under min_validity,
// as the chain's status shows it.
func (d *demo) dueTimes(ctx context.Context, grant grantState) (grantDue, ephemeralDue time.Time, err error) {
	st, err := d.chainStatus(ctx)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if st.AccessTokenExpiresAt == nil {
		return time.Time{}, time.Time{}, fmt.Errorf("status shows no access token in the ephemeral chain")
	}
	return grant.ExpiresAt.Add(-rotateBefore), st.AccessTokenExpiresAt.Add(-minValidity), nil
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// summary prints the closing table.
func (d *demo) summary(start time.Time) {
	if len(d.steps) == 0 {
		return
	}
	d.ui.say("Summary: refresh exchanges counted by the fake Bipsync server")
	for _, line := range summaryTable(d.steps, time.Since(start)) {
		d.ui.plain("%s", line)
	}
	d.ui.plain("engine: %s", d.eng.name)
}

// summaryTable lays out the steps, a total line and the wall time.
func summaryTable(steps []step, wall time.Duration) []string {
	const row = "%-3s  %-46s  %11s  %15s  %5s  %7s"
	lines := []string{fmt.Sprintf(row, "act", "step", "grant chain", "ephemeral chain", "total", "time")}
	var total tally
	for _, s := range steps {
		secs := fmt.Sprintf("%.1fs", s.elapsed.Seconds())
		if s.waited {
			lines = append(lines, fmt.Sprintf(row, fmt.Sprint(s.act), s.name, "-", "-", "-", secs))
			continue
		}
		total.add(s.counts)
		name := s.name
		if n := s.counts.grantRejected + s.counts.ephemeralRejected; n > 0 {
			name += fmt.Sprintf(" [%d refused]", n)
		}
		lines = append(lines, fmt.Sprintf(row, fmt.Sprint(s.act), name, fmt.Sprint(s.counts.grant),
			fmt.Sprint(s.counts.ephemeral), fmt.Sprint(s.counts.grant+s.counts.ephemeral), secs))
	}
	return append(lines,
		fmt.Sprintf(row, "", "total", fmt.Sprint(total.grant), fmt.Sprint(total.ephemeral), fmt.Sprint(total.grant+total.ephemeral), ""),
		fmt.Sprintf("wall time %.1fs, the provider build included", wall.Seconds()))
}

// clock formats t as a time of day, enough to follow a demo of a few minutes.
func clock(t time.Time) string {
	return t.Local().Format("15:04:05")
}
