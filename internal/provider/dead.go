package provider

import (
	"fmt"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
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
	return fmt.Sprintf("Bipsync refused this refresh chain at %s, as a run on %s learned and recorded in the token store. "+
		"%s\n\nNothing was sent to Bipsync this time, and the chain's stored access token, which Bipsync revoked with it, "+
		"was not handed out.\n\nThe refresh chain cannot be used again; a person must authorize anew:\n%s\n\n"+
		"Recorded at: %s\nRecorded by: %s\nCause: %s\nGeneration: %d\nBipsync said: %s",
		d.At.UTC().Format(time.RFC3339), by, what, authorizeAnew(fc.clientID, "every scope this configuration asks for", fc.steps),
		d.At.UTC().Format(time.RFC3339), by, d.Cause, spent.Generation, d.Detail)
}
