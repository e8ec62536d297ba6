package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// consumedByGrantText says that the refused head is a seed a bipsync_refresh_grant exchanged: the seed belongs to the
// grant's chain now, which lives on in the grant's state, so the block that failed needs a chain of its own.
func consumedByGrantText(at time.Time) string {
	return fmt.Sprintf("This refresh token was exchanged by a bipsync_refresh_grant on %s; give this block its own "+
		"authorization. A seed given to a grant starts the grant's chain, kept in its state, and Bipsync revoked the seed "+
		"with that exchange, so any other block that uses the same seed finds it revoked. The grant's chain is not "+
		"affected.", at.UTC().Format(time.RFC3339))
}

// spentNotes adds to what, the cause of a refusal, what the token source learned about the dead chain: whose exchange
// consumed its seed, and whether the death is now recorded for later runs.
func spentNotes(spent *tokensource.ChainSpentError, what string) string {
	if !spent.ConsumedByGrantAt.IsZero() {
		what = consumedByGrantText(spent.ConsumedByGrantAt)
	}
	switch {
	case spent.Recorded:
		what += " The token store now records the chain as dead, so later runs fail at once without asking Bipsync."
	case spent.RecordErr != nil:
		what += " The token store could not record the chain as dead (" + spent.RecordErr.Error() + "), so later runs " +
			"ask Bipsync again and fail the same way."
	}
	return what
}

// knownDeadDetail explains a chain that an earlier run recorded as dead: nothing was asked of Bipsync, and the stored
// access token, which Bipsync revoked with the head, was not handed out.
func knownDeadDetail(spent *tokensource.ChainSpentError, fc failureContext) string {
	d := spent.Death
	what := reauthCauses[bipsync.ReauthCause(d.Cause)]
	if what == "" {
		what = reauthCauses[bipsync.CauseInvalid]
	}
	if !spent.ConsumedByGrantAt.IsZero() {
		what = consumedByGrantText(spent.ConsumedByGrantAt)
	}
	by := d.By
	if by == "" {
		by = "another run"
	}
	nothing := "Nothing was sent to Bipsync this time, and the chain's stored access token, which Bipsync revoked with it, " +
		"was not handed out."
	if fc.steps == reseedGrant {
		nothing = "Nothing was sent to Bipsync this time."
	}
	return fmt.Sprintf("Bipsync refused this refresh chain at %s, as a run on %s learned and recorded in the token store. "+
		"%s\n\n%s\n\nThe refresh chain cannot be used again; a person must authorize anew:\n%s\n\n"+
		"Recorded at: %s\nRecorded by: %s\nCause: %s\nGeneration: %d\nBipsync said: %s",
		d.At.UTC().Format(time.RFC3339), by, what, nothing, authorizeAnew(fc.clientID, "every scope this configuration asks for", fc.steps),
		d.At.UTC().Format(time.RFC3339), by, d.Cause, spent.Generation, d.Detail)
}

// recordGrantDeath marks the grant's journal record dead when Bipsync refused, as revoked or expired, the head that
// record holds: the next plan then fails at once (checkJournalDeath) instead of planning a rotation that can only fail
// again in apply. It returns the error to report: a *tokensource.ChainSpentError saying whether the death was recorded,
// or err as it was when there is nothing to record (another refusal, no journal, or a journal of another head).
func (r *refreshGrantResource) recordGrantDeath(ctx context.Context, prev *tokenstore.Record, id string, j *grantJournal, err error) error {
	cause := bipsync.ReauthorizationCause(err)
	if (cause != bipsync.CauseRevoked && cause != bipsync.CauseExpired) || !r.journalOn() || j == nil || id == "" {
		return err
	}
	key := r.grantJournalKey(id)
	spent := &tokensource.ChainSpentError{Err: err}
	spent.RecordErr = func() error {
		unlock, lerr := r.data.store.Lock(ctx, key)
		if lerr != nil {
			return lerr
		}
		defer func() { _ = unlock() }()
		cur, lerr := r.data.store.Load(ctx, key, j.Secret)
		if lerr != nil {
			return lerr
		}
		if cur == nil || cur.RefreshToken != prev.RefreshToken || cur.Dead != nil {
			return errNothingToRecord
		}
		next := cur.Clone()
		next.ID = tokenstore.NewRecordID()
		next.Dead = &tokenstore.Death{At: r.data.now(), Cause: string(cause), Detail: err.Error(), By: tokensource.RunnerName()}
		if serr := r.data.store.Save(ctx, key, j.Secret, next, cur.Revision().Ptr()); serr != nil {
			return serr
		}
		spent.Death, spent.Recorded = next.Dead, true
		return nil
	}()
	if errors.Is(spent.RecordErr, errNothingToRecord) {
		return err
	}
	return spent
}

// errNothingToRecord says that the grant's journal holds no record of the refused head.
var errNothingToRecord = errors.New("no journal record of this head")

// journalDeath returns the known-dead error when the grant's journal records that Bipsync refused prev's head: an
// exchange could only fail again, so the apply fails at once without calling Bipsync. nil when nothing is recorded.
func (r *refreshGrantResource) journalDeath(ctx context.Context, prev *tokenstore.Record, id string, j *grantJournal) error {
	if !r.journalOn() || j == nil || id == "" {
		return nil
	}
	rec := r.loadJournal(ctx, r.grantJournalKey(id), j.Secret)
	if rec == nil || rec.Dead == nil || rec.RefreshToken != prev.RefreshToken {
		return nil
	}
	return &tokensource.ChainSpentError{Known: true, Death: rec.Dead, Generation: rec.Generation, LastRotation: rec.RotatedAt}
}

// checkJournalDeath warns in a grant's plan when its journal records that Bipsync refused the head in state: an apply
// that rotates the grant fails at once. It is a warning, not an error, because the plan may be the refresh before a
// destroy, which must go through for a dead chain too.
func (r *refreshGrantResource) checkJournalDeath(ctx context.Context, p privateData, state *refreshGrantModel, diags *diag.Diagnostics) {
	err := r.journalDeath(ctx, &tokenstore.Record{RefreshToken: state.RefreshToken.ValueString()}, state.ID.ValueString(),
		readJournalData(ctx, p))
	if err == nil {
		return
	}
	_, detail := tokenErrorDiagnostic(err, r.data.failureContext(reseedGrant))
	diags.AddAttributeWarning(path.Root("refresh_token"), summaryChainDead, "An apply that rotates this grant fails "+
		"at once with \""+summaryReauth+"\", without calling Bipsync. "+detail)
}
