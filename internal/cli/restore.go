package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

const restoreDoc = `Puts a rescued record back into the token store. When an exchange succeeded but its new refresh token could not
be saved, the provider kept the sealed record in a rescue file and named it in the "Bipsync Token Store Save Failed"
diagnostic. Once the store works again, run this with the same token store settings as the provider (the
BIPSYNC_TOKEN_STORE* variables, or the flags below):

    terraform-provider-bipsync restore FILE

The record is saved only in place of the one the failed save replaced. When the store holds a record of equal or
higher generation (another runner has rotated the chain since), that record is the chain, the rescue is stale, nothing
is changed and the command exits 1; the rescue file can then be removed. When it holds anything else, nothing is
changed either (exit 1), and the rescue file is to be kept. No seed is needed: the record stays sealed, and nothing is
printed of it.`

func runRestore(ctx context.Context, e *env, args []string) int {
	var store storeFlags
	fs := newFlagSet(e, "restore", restoreDoc)
	store.register(fs)
	// The rescue file is the one argument: it names a file, not a secret.
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() != 1 {
		return fail(e, "restore", usagef("give the rescue file, and nothing else: %s restore [flags] FILE", Program))
	}
	ss, err := store.resolve()
	if err != nil {
		return fail(e, "restore", err)
	}
	r, err := tokenstore.ReadRescue(fs.Arg(0))
	if err != nil {
		return fail(e, "restore", err)
	}
	st, err := tokenstore.New(ss.cfg)
	if err != nil {
		return fail(e, "restore", usagef("the token store could not be opened: %v", err))
	}
	if st.Describe() != r.Store {
		fmt.Fprintf(e.Stderr, "%s restore: the record was rescued from the %s; restoring it into the %s.\n", Program, r.Store, st.Describe())
	}
	res, err := tokenstore.Restore(ctx, st, r)
	switch {
	case err == nil && res == tokenstore.RestoreAlreadyHeld:
		fmt.Fprintf(e.Stderr, "%s restore: the %s already holds the rescued record (an earlier restore, or the failed "+
			"save landed after all). Nothing was changed; the rescue file can be removed.\n", Program, st.Describe())
		return ExitOK
	case errors.Is(err, tokenstore.ErrConflict):
		return fail(e, "restore", conflictAdvice(st, r, err))
	case err != nil:
		return fail(e, "restore", err)
	}
	fmt.Fprintf(e.Stderr, "%s restore: the record is back in the %s. Run Terraform again; the rescue file can be removed.\n",
		Program, st.Describe())
	return ExitOK
}

// conflictAdvice explains a restore refused because the store no longer holds the record the rescued one replaces.
// Only a record of equal or higher generation is newer than the rescued one: then the store holds the chain and the
// rescue file is no longer needed. Anything else (an older record, a fork's sibling, no record, or one whose generation
// the store does not tell) may be behind the rescued record, which can then be the chain's only live head: the file is
// kept.
func conflictAdvice(st tokenstore.Store, r *tokenstore.Rescue, err error) *failure {
	f := &failure{heading: "nothing was restored.", err: err, facts: err.Error()}
	var ce *tokenstore.ConflictError
	rescued, rerr := tokenstore.EnvelopeRevision([]byte(r.Envelope))
	if errors.As(err, &ce) && ce.Current != nil && ce.Current.ID != "" && rerr == nil && rescued.ID != "" &&
		ce.Current.Generation >= rescued.Generation {
		f.happened = fmt.Sprintf("The %s holds generation %d of this chain, which is not older than the rescued record "+
			"(generation %d): another run saved the chain since, and the store's record is the chain.",
			st.Describe(), ce.Current.Generation, rescued.Generation)
		f.todo = "Nothing. The rescue file is no longer needed and can be removed."
		return f
	}
	// Current nil is no record, or a conditional helper that does not say what it holds.
	holds := "no record, or one whose generation it does not tell,"
	if errors.As(err, &ce) && ce.Current != nil {
		holds = "a record whose generation it does not tell (a legacy record)"
		if ce.Current.ID != "" {
			holds = fmt.Sprintf("generation %d", ce.Current.Generation)
		}
	}
	gen := "unknown"
	if rerr == nil && rescued.ID != "" {
		gen = fmt.Sprint(rescued.Generation)
	}
	f.happened = fmt.Sprintf("The %s holds %s for this chain, not the record the rescued one (generation %s) "+
		"replaces, so nothing was overwritten.", st.Describe(), holds, gen)
	f.todo = fmt.Sprintf("Keep the rescue file: it may hold the chain's live head. Run %s status with the chain's "+
		"seed to see what the store holds; if runs fail with Bipsync Reauthorization Required, see the reauthorization "+
		"runbook (Bipsync Token Store Save Failed).", Program)
	return f
}
