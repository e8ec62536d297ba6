package multimachine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// writesFile, in a store helper's directory, lists the writes that landed there, one line per write naming its key:
// what a secret manager would bill for, and what a round's "store writes" counts.
const writesFile = ".writes"

// countWrite records a write of key that landed in dir. O_APPEND makes each line one atomic write, so helpers on every
// machine may count at once. Counting is the harness's bookkeeping, never the store's: a failure to count is not the
// helper's failure.
func countWrite(dir, key string) {
	f, err := os.OpenFile(filepath.Join(dir, writesFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	_, _ = f.WriteString(key + "\n")
	_ = f.Close()
}

// dirWrites counts the writes that landed in dir for the chain key: its record and its claim (tokenstore.ClaimKey).
func dirWrites(dir string, key tokenstore.Key) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, writesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		if k := tokenstore.Key(strings.TrimSpace(line)); k == key || k == tokenstore.ClaimKey(key) {
			n++
		}
	}
	return n, nil
}

// The postgres store's writes are counted by a trigger on its table, in a table of the harness's own beside it: a row
// per row inserted or updated. A statement that changes no row (a conditional write refused) adds none.
const (
	pgWritesTable    = "public.multimachine_writes"
	pgWritesFunction = "public.multimachine_count_write"
	pgWritesTrigger  = "multimachine_count_write"
	// pgWritesLock serialises the harness's set-up among chains that share a database: two sessions replacing one
	// trigger at once can fail on the catalog.
	pgWritesLock = 0x6d6d77726974 // "mmwrit"
)

// postgresWrites counts the writes of the chain key (its record and its claim) in the postgres store behind connStr,
// installing the counting trigger first if it is missing. Install it before the chain's first round: writes made
// before it are not counted.
func postgresWrites(ctx context.Context, connStr string, key tokenstore.Key) (int, error) {
	conn, err := pgx.Connect(ctx, connStr)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	table := pgx.Identifier{tokenstore.DefaultPostgresSchema, tokenstore.PostgresTable}.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
		return 0, err
	}
	if !exists {
		// The store creates its table on first use: a load of the chain (which has no record yet, so nothing is opened
		// and the seed is not needed) makes it exist before the trigger goes on it.
		st, err := tokenstore.NewPostgres(tokenstore.PostgresConfig{ConnStr: connStr})
		if err != nil {
			return 0, err
		}
		if _, err := st.Load(ctx, key, "no record yet"); err != nil {
			return 0, fmt.Errorf("create the store's table: %w", err)
		}
	}
	var counted bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = $1 AND tgrelid = to_regclass($2))",
		pgWritesTrigger, table).Scan(&counted); err != nil {
		return 0, err
	}
	if !counted {
		if err := installWriteCounter(ctx, conn, table); err != nil {
			return 0, fmt.Errorf("count the store's writes: %w", err)
		}
	}
	var n int
	err = conn.QueryRow(ctx, "SELECT count(*) FROM "+pgWritesTable+" WHERE key = $1 OR key = $2",
		string(key), string(tokenstore.ClaimKey(key))).Scan(&n)
	return n, err
}

// installWriteCounter puts the counting trigger on the store's table.
func installWriteCounter(ctx context.Context, conn *pgx.Conn, table string) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, stmt := range []string{
		fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", pgWritesLock),
		"CREATE TABLE IF NOT EXISTS " + pgWritesTable + " (key text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())",
		"CREATE OR REPLACE FUNCTION " + pgWritesFunction + "() RETURNS trigger LANGUAGE plpgsql AS " +
			"$$ BEGIN INSERT INTO " + pgWritesTable + " (key) VALUES (NEW.key); RETURN NULL; END $$",
		"CREATE OR REPLACE TRIGGER " + pgWritesTrigger + " AFTER INSERT OR UPDATE ON " + table +
			" FOR EACH ROW EXECUTE FUNCTION " + pgWritesFunction + "()",
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}
