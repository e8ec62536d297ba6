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

The record is saved only in place of the one the failed save replaced. When the store holds a newer record (another
runner has rotated the chain since), the rescue is stale and nothing is changed. No seed is needed: the record stays
sealed, and nothing is printed of it.`

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
	_, err = tokenstore.Restore(ctx, st, r)
	switch {
	case errors.Is(err, tokenstore.ErrConflict):
		fmt.Fprintf(e.Stderr, "%s restore: the %s holds a newer record of this chain than the one the rescued record "+
			"replaces: another run saved the chain since. Nothing was changed; the rescue file is stale and can be removed.\n",
			Program, st.Describe())
		return ExitOK
	case err != nil:
		return fail(e, "restore", err)
	}
	fmt.Fprintf(e.Stderr, "%s restore: the record is back in the %s. Run Terraform again; the rescue file can be removed.\n",
		Program, st.Describe())
	return ExitOK
}
