package multimachine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// Modes of the store helper: what the secret manager it stands in for can do.
const (
	// HelperGetPut keeps records with a plain get and put, as a secret manager without a conditional write does: the
	// provider's token_store command_protocol 1.
	HelperGetPut = "store-getput"
	// HelperConditional refuses a put when the entry no longer holds the revision in BIPSYNC_STORE_REPLACES, with exit
	// status 75, as a secret manager's check-and-set does: command_protocol 2.
	HelperConditional = "store-conditional"
)

var keyPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// RunStoreHelper is a token store helper over a directory that every machine of a fleet shares, the stand-in for a
// secret manager: args are DIR OP KEY, run as `BIN MODE DIR get KEY` and `BIN MODE DIR put KEY`. It keeps one file per
// key and replaces it in one rename, so a get never sees half a record. It returns the exit status.
//
// In HelperConditional mode a put holds an exclusive lock on the key's lock file in DIR while it compares the entry's
// revision (read from the envelope's clear header: the helper never decrypts anything) with BIPSYNC_STORE_REPLACES and
// writes: the check and the write are one step for every machine.
func RunStoreHelper(mode string, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if (mode != HelperGetPut && mode != HelperConditional) || len(args) != 3 || !keyPattern.MatchString(args[2]) {
		fmt.Fprintf(stderr, "usage: %s|%s DIR get|put KEY\n", HelperGetPut, HelperConditional)
		return 2
	}
	dir, op, key := args[0], args[1], args[2]
	file := filepath.Join(dir, key)
	switch op {
	case "get":
		b, err := os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			return 0
		}
		if err != nil {
			fmt.Fprintln(stderr, "store helper: cannot read the entry:", err)
			return 1
		}
		_, _ = stdout.Write(b)
		return 0
	case "put":
		data, err := io.ReadAll(stdin)
		if err != nil {
			fmt.Fprintln(stderr, "store helper: cannot read the record:", err)
			return 1
		}
		if mode == HelperGetPut {
			err := replaceFile(file, data)
			if err == nil {
				countWrite(dir, key)
			}
			return report(stderr, err)
		}
		return conditionalPut(file, data, getenv(tokenstore.EnvStoreReplaces), getenv(tokenstore.EnvStoreRevision), stderr)
	default:
		fmt.Fprintf(stderr, "store helper: unknown operation %q\n", op)
		return 2
	}
}

// conditionalPut writes data to file when the file holds revision replaces ("none": no file), and succeeds without
// writing when it holds revision (an earlier put of this record landed). Otherwise it exits with ExitConflict.
func conditionalPut(file string, data []byte, replaces, revision string, stderr io.Writer) int {
	if replaces == "" || revision == "" {
		fmt.Fprintf(stderr, "store helper: %s and %s must be set for a conditional put\n", tokenstore.EnvStoreReplaces, tokenstore.EnvStoreRevision)
		return 2
	}
	unlock, err := lockPath(file + ".lock")
	if err != nil {
		fmt.Fprintln(stderr, "store helper: cannot lock the entry:", err)
		return 1
	}
	defer unlock()
	current := "none"
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		fmt.Fprintln(stderr, "store helper: cannot read the entry:", err)
		return 1
	default:
		rev, err := tokenstore.EnvelopeRevision(b)
		if err != nil {
			fmt.Fprintln(stderr, "store helper: the entry is not a record:", err)
			return 1
		}
		current = rev.Ptr().String()
	}
	switch current {
	case revision:
		return 0
	case replaces:
		err := replaceFile(file, data)
		if err == nil {
			countWrite(filepath.Dir(file), filepath.Base(file))
		}
		return report(stderr, err)
	default:
		fmt.Fprintf(stderr, "store helper: the entry holds revision %s, not %s\n", current, replaces)
		return tokenstore.ExitConflict
	}
}

// replaceFile writes data beside file and renames it into place.
func replaceFile(file string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".put-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

func report(stderr io.Writer, err error) int {
	if err != nil {
		fmt.Fprintln(stderr, "store helper: cannot write the entry:", err)
		return 1
	}
	return 0
}
