package storetest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/bipsync/terraform-provider-bipsync/internal/multimachine"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/storetest"
	"github.com/jackc/pgx/v5"
)

// TestMain runs this test binary as the example store helpers when it is started as one, and removes the PostgreSQL
// server the postgres backend's tests share once they are done.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == multimachine.HelperGetPut || os.Args[1] == multimachine.HelperConditional) {
		os.Exit(multimachine.RunStoreHelper(os.Args[1], os.Args[2:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
	}
	pgtest.Main(m)
}

func fileBackend() storetest.Backend {
	return storetest.Backend{
		New: func(t testing.TB) (tokenstore.Store, func(testing.TB) tokenstore.Store) {
			dir := filepath.Join(t.TempDir(), "chains")
			open := func(t testing.TB) tokenstore.Store {
				st, err := tokenstore.NewFile(dir)
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
			return open(t), open
		},
		WriteRaw: func(t testing.TB, st tokenstore.Store, key tokenstore.Key, data []byte) {
			// The file store names a record after its key in the directory Describe names.
			dir := describedDir(t, st)
			if err := os.WriteFile(filepath.Join(dir, string(key)+".rec"), data, 0o600); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// commandBackend runs the example helper of the given mode (get/put or conditional) at protocol. Handles of a
// get/put helper share a lock directory (one machine: only the lock keeps read-then-write saves apart); handles of a
// conditional helper each have their own (machines that share only the secret manager).
func commandBackend(mode string, protocol int) storetest.Backend {
	var dirs = map[tokenstore.Store]string{}
	return storetest.Backend{
		New: func(t testing.TB) (tokenstore.Store, func(testing.TB) tokenstore.Store) {
			smDir, lockDir := t.TempDir(), t.TempDir()
			open := func(t testing.TB) tokenstore.Store {
				ld := lockDir
				if protocol == tokenstore.ProtocolConditional {
					ld = t.TempDir()
				}
				st, err := tokenstore.NewCommand(tokenstore.CommandConfig{Argv: []string{os.Args[0], mode, smDir}, Protocol: protocol, LockDir: ld})
				if err != nil {
					t.Fatal(err)
				}
				dirs[st] = smDir
				return st
			}
			return open(t), open
		},
		WriteRaw: func(t testing.TB, st tokenstore.Store, key tokenstore.Key, data []byte) {
			if err := os.WriteFile(filepath.Join(dirs[st], string(key)), data, 0o600); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func postgresBackend() storetest.Backend {
	conns := map[tokenstore.Store]string{}
	return storetest.Backend{
		New: func(t testing.TB) (tokenstore.Store, func(testing.TB) tokenstore.Store) {
			// Idle connections close soon: every handle has a pool of its own.
			connStr := pgtest.Start(t)
			open := func(t testing.TB) tokenstore.Store {
				st, err := tokenstore.NewPostgres(tokenstore.PostgresConfig{ConnStr: connStr + " pool_max_conn_idle_time=1s"})
				if err != nil {
					t.Fatal(err)
				}
				conns[st] = connStr
				return st
			}
			return open(t), open
		},
		WriteRaw: func(t testing.TB, st tokenstore.Store, key tokenstore.Key, data []byte) {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, conns[st])
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			table := pgx.Identifier{tokenstore.DefaultPostgresSchema, tokenstore.PostgresTable}.Sanitize()
			if _, err := conn.Exec(ctx, "INSERT INTO "+table+" (key, generation, record_id, envelope) VALUES ($1, 0, '', $2) "+
				"ON CONFLICT (key) DO UPDATE SET generation = 0, record_id = '', envelope = $2", string(key), string(data)); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// describedDir is the directory a file store's Describe names.
func describedDir(t testing.TB, st tokenstore.Store) string {
	t.Helper()
	var dir string
	if _, err := fmt.Sscanf(st.Describe(), "file store in %s", &dir); err != nil {
		t.Fatalf("cannot find the directory in %q: %v", st.Describe(), err)
	}
	return dir
}

func TestConformance_file(t *testing.T) {
	t.Parallel()
	storetest.Run(t, fileBackend())
}

func TestConformance_commandGetPut(t *testing.T) {
	t.Parallel()
	storetest.Run(t, commandBackend(multimachine.HelperGetPut, tokenstore.ProtocolGetPut))
}

func TestConformance_commandConditional(t *testing.T) {
	t.Parallel()
	storetest.Run(t, commandBackend(multimachine.HelperConditional, tokenstore.ProtocolConditional))
}

func TestConformance_postgres(t *testing.T) {
	t.Parallel()
	storetest.Run(t, postgresBackend())
}
