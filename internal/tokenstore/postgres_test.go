package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
)

// postgresHelpers are the helper-process modes of the postgres store's tests (see runHelper).
var postgresHelpers = map[string]func(ctx context.Context, args []string) error{
	// CONNSTR KEY: hold the chain's lock until stdin closes
	"pghold": func(ctx context.Context, args []string) error {
		st, err := NewPostgres(PostgresConfig{ConnStr: args[0]})
		if err != nil {
			return err
		}
		unlock, err := st.Lock(ctx, Key(args[1]))
		if err != nil {
			return err
		}
		fmt.Fprintln(os.Stdout, "locked")
		if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
			return errors.Join(err, unlock())
		}
		return unlock()
	},
	// CONNSTR KEY SEED N: N lock/load/increment/save rounds
	"pgloop": func(ctx context.Context, args []string) error {
		st, err := NewPostgres(PostgresConfig{ConnStr: args[0]})
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(args[3])
		if err != nil {
			return err
		}
		return incrementLoop(ctx, st, Key(args[1]), args[2], n)
	},
}

// newTestPostgresStore opens a postgres store on connStr, closed when the test ends.
func newTestPostgresStore(t testing.TB, connStr string) *postgresStore {
	t.Helper()
	return openTestPostgresStore(t, PostgresConfig{ConnStr: connStr})
}

func openTestPostgresStore(t testing.TB, cfg PostgresConfig) *postgresStore {
	t.Helper()
	st, err := NewPostgres(cfg)
	if err != nil {
		t.Fatalf("got NewPostgres error %v; want nil", err)
	}
	ps, ok := st.(*postgresStore)
	if !ok {
		t.Fatalf("got NewPostgres store of type %T; want *postgresStore", st)
	}
	t.Cleanup(ps.close)
	return ps
}

// rawConn connects to the store's database as a client of its own: another runner, or a person at psql.
func rawConn(t testing.TB, st *postgresStore) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, st.poolConfig.ConnConfig.Copy())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func rawExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(withTimeout(t, 30*time.Second), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// pgWriteRaw puts data in the chain's row by hand, with the revision columns its header names (0 and "" when it has
// none), creating the table first.
func pgWriteRaw(t *testing.T, st *postgresStore, key Key, data []byte) {
	t.Helper()
	if _, err := st.Load(withTimeout(t, 30*time.Second), key, "any seed"); err != nil {
		t.Fatal(err)
	}
	rev, _ := EnvelopeRevision(data)
	rawExec(t, rawConn(t, st), "INSERT INTO "+st.table+" (key, generation, record_id, envelope) VALUES ($1, $2, $3, $4) "+
		"ON CONFLICT (key) DO UPDATE SET generation = $2, record_id = $3, envelope = $4", string(key), rev.Generation, rev.ID, string(data))
}

func pgReadRaw(t *testing.T, st *postgresStore, key Key) []byte {
	t.Helper()
	var env string
	err := rawConn(t, st).QueryRow(withTimeout(t, 30*time.Second), "SELECT envelope FROM "+st.table+" WHERE key = $1", string(key)).Scan(&env)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return []byte(env)
}

func listenerPort(t *testing.T, l net.Listener) int {
	t.Helper()
	a, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("listener address %v is not TCP", l.Addr())
	}
	return a.Port
}

// assertNoPassword fails when text holds password, in clear or in a URL's encoding.
func assertNoPassword(t *testing.T, what, text, password string) {
	t.Helper()
	for _, f := range appendSecretForms(nil, password) {
		if strings.Contains(text, f) {
			t.Errorf("%s contains the password (as %q): %s", what, f, text)
		}
	}
}

// NewPostgres opens no connection: the provider calls it while it is configured, also at validate time, when the
// database may not be reachable and must not be needed.
func TestNewPostgres_NoNetworkIO(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	port := listenerPort(t, l)
	st, err := NewPostgres(PostgresConfig{ConnStr: fmt.Sprintf("host=127.0.0.1 port=%d user=runner password=hunter2-pg dbname=tf connect_timeout=2", port)})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = st.Traits(), st.Describe()
	time.Sleep(200 * time.Millisecond) // what a background connection would need to show up
	if n := len(accepted); n != 0 {
		t.Fatalf("got %d connections after NewPostgres; want none before first use", n)
	}
	if _, err := st.Lock(withTimeout(t, 10*time.Second), testKey(testSeed)); err == nil {
		t.Fatal("Lock against a listener that is no PostgreSQL server: got nil; want an error")
	}
	if n := len(accepted); n == 0 {
		t.Fatal("got no connection from Lock; want the first use to connect")
	}
}

// The pool holds postgresMaxConns connections at most, whatever the machine's CPUs, unless conn_str sets its own bound.
func TestNewPostgres_PoolBound(t *testing.T) {
	t.Parallel()
	for connStr, want := range map[string]int32{
		"host=db.internal dbname=tf":                                         postgresMaxConns,
		"postgres://runner@db.internal/tf":                                   postgresMaxConns,
		"host=db.internal dbname=tf pool_max_conns=3":                        3,
		"postgres://runner@db.internal/tf?pool_max_conns=40&sslmode=require": 40,
	} {
		st, err := NewPostgres(PostgresConfig{ConnStr: connStr})
		if err != nil {
			t.Fatalf("%s: %v", connStr, err)
		}
		pg, ok := st.(*postgresStore)
		if !ok {
			t.Fatalf("%s: got a %T; want the postgres store", connStr, st)
		}
		if got := pg.poolConfig.MaxConns; got != want {
			t.Errorf("%s: pool bound %d; want %d", connStr, got, want)
		}
	}
}

func TestNewPostgres_Describe(t *testing.T) {
	t.Parallel()
	for connStr, want := range map[string][]string{
		"host=db.internal port=6432 user=runner password=s3cr3t-pw dbname=terraform": {`"terraform_provider_bipsync"."chains"`, `database "terraform"`, "db.internal:6432", `user "runner"`},
		"postgres://runner:s3cr3t-pw@db.internal/tf?sslmode=require":                 {`database "tf"`, "db.internal:5432"},
		"host=/var/run/postgresql user=runner password=s3cr3t-pw dbname=tf":          {"Unix socket in /var/run/postgresql"},
	} {
		st, err := NewPostgres(PostgresConfig{ConnStr: connStr})
		if err != nil {
			t.Fatalf("%s: %v", connStr, err)
		}
		d := st.Describe()
		for _, w := range want {
			if !strings.Contains(d, w) {
				t.Errorf("got %q; want it to name %s", d, w)
			}
		}
		assertNoPassword(t, "Describe", d, "s3cr3t-pw")
	}
	st, err := NewPostgres(PostgresConfig{ConnStr: "host=db dbname=tf user=u", SchemaName: "CI Chains"})
	if err != nil {
		t.Fatal(err)
	}
	if d := st.Describe(); !strings.Contains(d, `"CI Chains"."chains"`) {
		t.Errorf("got %q; want the schema quoted as given", d)
	}
	if want := (Traits{Persistent: true, SharedLock: true, AtomicSave: true}); st.Traits() != want {
		t.Errorf("got traits %+v; want %+v", st.Traits(), want)
	}
}

// The PG* variables fill what the connection string leaves out, as libpq does; an empty string uses them alone.
func TestNewPostgres_EnvironmentVariables(t *testing.T) {
	t.Setenv("PGHOST", "pg.example")
	t.Setenv("PGPORT", "6543")
	t.Setenv("PGUSER", "envuser")
	t.Setenv("PGDATABASE", "envdb")
	t.Setenv("PGPASSWORD", "env-pass-1234")
	st, err := NewPostgres(PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	d := st.Describe()
	for _, w := range []string{"pg.example:6543", `"envuser"`, `"envdb"`} {
		if !strings.Contains(d, w) {
			t.Errorf("got %q; want %s from the PG* variables", d, w)
		}
	}
	assertNoPassword(t, "Describe", d, "env-pass-1234")
	st, err = NewPostgres(PostgresConfig{ConnStr: "dbname=fromconnstr"})
	if err != nil {
		t.Fatal(err)
	}
	if d := st.Describe(); !strings.Contains(d, `"fromconnstr"`) || !strings.Contains(d, "pg.example:6543") {
		t.Errorf("got %q; want the connection string's database and the variables' host", d)
	}
	t.Setenv("PGPORT", "not-a-port")
	if _, err := NewPostgres(PostgresConfig{}); err == nil || !strings.Contains(err.Error(), "PG* environment variables") {
		t.Errorf("with PGPORT=not-a-port: got %v; want an error that points at the variables too", err)
	}
}

// Bad configuration is refused with an error that names the setting and never quotes a password.
func TestNewPostgres_RefusesBadConfig(t *testing.T) {
	t.Parallel()
	const pw = "Pa55-w0rd-9f8e"
	for _, connStr := range []string{
		"host=db password=" + pw + " port=notaport",
		"host=db password='" + pw + "' sslmode=sometimes",
		"postgres://runner:" + pw + "@db:notaport/tf",
		"postgres://runner:" + pw + "@db/tf?sslmode=sometimes",
		"postgres://runner:" + pw + "/x@db/tf%zz",
		"host=db password=" + pw + " unterminated='",
		"not a conn string " + pw,
	} {
		_, err := NewPostgres(PostgresConfig{ConnStr: connStr})
		if err == nil {
			t.Errorf("%q: got nil; want an error", connStr)
			continue
		}
		if !strings.HasPrefix(err.Error(), "conn_str ") {
			t.Errorf("got %q; want it to name conn_str", err)
		}
		assertNoPassword(t, "the error", err.Error(), pw)
		if err := CheckPostgresConnStr(connStr); err == nil {
			t.Errorf("CheckPostgresConnStr(%q): got nil; want an error", connStr)
		}
	}
	for name, want := range map[string]string{
		strings.Repeat("s", 64): "at most 63",
		"pg_chains":             "reserved",
		"bad\x00name":           "UTF-8",
		"\xff":                  "UTF-8",
	} {
		_, err := NewPostgres(PostgresConfig{ConnStr: "host=db", SchemaName: name})
		if err == nil || !strings.HasPrefix(err.Error(), "schema_name: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("schema %q: got %v; want a schema_name error saying %q", name, err, want)
		}
	}
}

// The table holds one row per chain: its key, revision, sealed envelope and time of update, and never a token in
// clear, in any column.
func TestPostgresStore_RowsHoldNoTokenInClear(t *testing.T) {
	t.Parallel()
	st := newTestPostgresStore(t, pgtest.Start(t))
	key, other := testKey(testSeed), testKey("another seed")
	g7 := sampleRecord()
	g7.Asks = []ScopeAsk{{Scopes: []string{"read"}, At: g7.RotatedAt}}
	if err := saveLocked(t, st, key, g7, nil); err != nil {
		t.Fatal(err)
	}
	g8 := nextRecord(g7)
	if err := saveLocked(t, st, key, g8, g7.Revision().Ptr()); err != nil {
		t.Fatal(err)
	}
	if err := saveLocked(t, st, other, sampleRecord(), nil); err != nil {
		t.Fatal(err)
	}
	conn := rawConn(t, st)
	rows, err := conn.Query(withTimeout(t, 30*time.Second),
		"SELECT key, generation, record_id, envelope, updated_at, t::text FROM "+st.table+" t ORDER BY key")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		key, id, env, whole string
		gen                 int64
		updated             time.Time
	}
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.key, &r.gen, &r.id, &r.env, &r.updated, &r.whole); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d rows; want one per chain (2)", len(got))
	}
	for _, r := range got {
		assertNoSecret(t, "row "+r.key, r.whole)
		if time.Since(r.updated) > time.Hour || r.updated.After(time.Now().Add(time.Minute)) {
			t.Errorf("got updated_at %v; want about now", r.updated)
		}
		if r.key == string(key) {
			if r.gen != 8 || r.id != g8.ID || !strings.HasPrefix(r.env, "bts2.8."+g8.ID+".") {
				t.Errorf("got row (%d, %s, %.40s...); want generation 8's revision and envelope", r.gen, r.id, r.env)
			}
		}
	}
	// The table's whole content, as a dump of it would show it.
	var dump string
	if err := conn.QueryRow(withTimeout(t, 30*time.Second), "SELECT string_agg(t::text, E'\\n') FROM "+st.table+" t").Scan(&dump); err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "the table", dump)
	if got := loadOrFail(t, st, key); !recordsEqual(got, g8) {
		t.Fatalf("got %v; want %v", got, g8)
	}
}

// Runners that start at once on an empty database all create the schema and table, and none fails for it.
func TestPostgresStore_CreatesTableConcurrently(t *testing.T) {
	t.Parallel()
	connStr := pgtest.Start(t)
	const runners = 8
	var wg sync.WaitGroup
	errs := make([]error, runners)
	start := make(chan struct{})
	for i := range runners {
		st := newTestPostgresStore(t, connStr)
		wg.Go(func() {
			<-start
			_, errs[i] = st.Load(withTimeout(t, 30*time.Second), testKey(testSeed), testSeed)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("runner %d: got %v; want the table created or found", i, err)
		}
	}
}

// A user without CREATE works with a schema and table made for it, given SELECT, INSERT and UPDATE; a user without
// them gets an error that names the grants.
func TestPostgresStore_Grants(t *testing.T) {
	t.Parallel()
	connStr := pgtest.Start(t)
	admin := newTestPostgresStore(t, connStr)
	ctx := withTimeout(t, 60*time.Second)
	if _, err := admin.Load(ctx, testKey(testSeed), testSeed); err != nil {
		t.Fatal(err)
	}
	db := pgtest.DatabaseName(connStr)
	conn := rawConn(t, admin)
	rawExec(t, conn, "CREATE ROLE runner LOGIN PASSWORD 'runner-pw-1'")
	rawExec(t, conn, "CREATE ROLE stranger LOGIN PASSWORD 'stranger-pw-1'")
	rawExec(t, conn, "REVOKE CREATE ON DATABASE "+db+" FROM PUBLIC")
	rawExec(t, conn, "GRANT USAGE ON SCHEMA "+DefaultPostgresSchema+" TO runner")
	rawExec(t, conn, "GRANT SELECT, INSERT, UPDATE ON "+admin.table+" TO runner")

	as := func(role string) string {
		return strings.NewReplacer("user="+pgtest.Superuser, "user="+role, "password="+pgtest.Shared(t).Password(), "password="+role+"-pw-1").Replace(connStr)
	}
	runner := newTestPostgresStore(t, as("runner"))
	g7 := sampleRecord()
	if err := saveLocked(t, runner, testKey(testSeed), g7, nil); err != nil {
		t.Fatalf("with the grants on a table made for it: got %v; want the save", err)
	}
	if got := loadOrFail(t, runner, testKey(testSeed)); !recordsEqual(got, g7) {
		t.Fatalf("got %v; want %v", got, g7)
	}

	stranger := newTestPostgresStore(t, as("stranger"))
	_, err := stranger.Load(ctx, testKey(testSeed), testSeed)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "SELECT, INSERT and UPDATE") {
		t.Fatalf("without grants: got %v; want ErrUnavailable naming the grants", err)
	}
	other := openTestPostgresStore(t, PostgresConfig{ConnStr: as("stranger"), SchemaName: "own_schema"})
	if _, err = other.Lock(ctx, testKey(testSeed)); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "CREATE on the database") {
		t.Fatalf("without CREATE on the database: got %v; want ErrUnavailable naming the grant", err)
	}
	assertNoPassword(t, "the error", err.Error(), "stranger-pw-1")
}

// Two OS processes: while one holds a chain's lock, the other waits, and gets it once the holder is killed (the
// server ends the dead process's session, and releases its lock).
func TestPostgresStore_LockExcludesOtherProcessAndDiesWithIt(t *testing.T) {
	t.Parallel()
	connStr := pgtest.Start(t)
	st := newTestPostgresStore(t, connStr)
	key := testKey(testSeed)
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	cmd, out, stderr := startHelper(t, withTimeout(t, 60*time.Second), stdinR, "pghold", connStr, string(key))
	if line, err := out.ReadString('\n'); line != "locked\n" {
		t.Fatalf("got %q, %v (stderr %q); want the helper to report the lock", line, err, stderr.String())
	}

	expectLockedElsewhere(t, st, key, 300*time.Millisecond, "another runner holds it", 5*time.Second)

	got := make(chan error, 1)
	go func() {
		u, err := st.Lock(withTimeout(t, 30*time.Second), key)
		if err == nil {
			err = u()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("got the lock (%v) while the helper holds it", err)
	case <-time.After(300 * time.Millisecond):
	}
	killed := time.Now()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	stdinW.Close() // Wait waits for the copy of stdin to end
	var exit *exec.ExitError
	if err := cmd.Wait(); err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("after the holder was killed: got %v; want the lock", err)
	}
	t.Logf("lock passed to the waiter %v after the holder was killed", time.Since(killed).Round(time.Millisecond))
}

// Processes that increment one chain's record under the lock never lose an increment and never see a conflict: a
// conflict or a count below procs*loops means two held the lock at once.
func TestPostgresStore_CrossProcessIncrements(t *testing.T) {
	t.Parallel()
	connStr := pgtest.Start(t)
	st := newTestPostgresStore(t, connStr)
	key := testKey(testSeed)
	const procs, loops = 4, 25
	ctx := withTimeout(t, 120*time.Second)
	var wg sync.WaitGroup
	errs := make([]error, procs)
	stderrs := make([]strings.Builder, procs)
	for i := range procs {
		cmd := helperCmd(ctx, "pgloop", connStr, string(key), testSeed, strconv.Itoa(loops))
		cmd.Stderr = &stderrs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { errs[i] = cmd.Wait() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("process %d: got %v (stderr %q); want success", i, err, stderrs[i].String())
		}
	}
	if rec := loadOrFail(t, st, key); rec == nil || rec.Generation != procs*loops {
		t.Fatalf("got %v; want generation %d", rec, procs*loops)
	}
}

// A waiter whose context ends stops waiting at once, and its wait is cancelled at the server (no backend is left
// queued for the lock); independent chains never wait for each other.
func TestPostgresStore_WaiterHonoursContext(t *testing.T) {
	t.Parallel()
	st := newTestPostgresStore(t, pgtest.Start(t))
	key := testKey(testSeed)
	other := rawConn(t, st) // another runner, holding the chain's lock
	rawExec(t, other, "SELECT pg_advisory_lock($1)", st.chainLockID(key))

	start := time.Now()
	_, err := st.Lock(withTimeout(t, 250*time.Millisecond), key)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "another runner holds it") {
		t.Fatalf("got %v; want a wait ending in context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("waited %v; want about the deadline", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	if _, err := st.Lock(ctx, key); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v; want context.Canceled", err)
	}
	var waiting int
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := other.QueryRow(withTimeout(t, 10*time.Second),
			"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if waiting != 0 {
		t.Fatalf("got %d backends still waiting for the lock; want the cancelled waits gone at the server", waiting)
	}

	u, err := st.Lock(withTimeout(t, 5*time.Second), testKey("independent chain"))
	if err != nil {
		t.Fatalf("an independent chain: got %v; want its lock at once", err)
	}
	mustUnlock(t, u)

	rawExec(t, other, "SELECT pg_advisory_unlock($1)", st.chainLockID(key))
	u, err = st.Lock(withTimeout(t, 10*time.Second), key)
	if err != nil {
		t.Fatalf("after the other runner let go: got %v; want the lock", err)
	}
	mustUnlock(t, u)
	if err := u(); err != nil {
		t.Fatalf("a second unlock: got %v; want nil (idempotent)", err)
	}
}

// Within one process, holders queue too, and the holder's loads and saves run on its lock's session.
func TestPostgresStore_LockInProcess(t *testing.T) {
	t.Parallel()
	st := newTestPostgresStore(t, pgtest.Start(t))
	key := testKey(testSeed)
	const workers, loops = 8, 10
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := range workers {
		// Two stores, as two provider configurations (aliases) in one process would have.
		s := Store(st)
		if i%2 == 1 {
			s = newTestPostgresStore(t, st.poolConfig.ConnConfig.ConnString())
		}
		wg.Go(func() { errs[i] = incrementLoop(withTimeout(t, 60*time.Second), s, key, testSeed, loops) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}
	if rec := loadOrFail(t, st, key); rec.Generation != workers*loops {
		t.Fatalf("got generation %d; want %d", rec.Generation, workers*loops)
	}
	// More chains in flight than the pool has connections: each holder works on its own session, none starves.
	var holders []func() error
	for i := range postgresMaxConns {
		k := testKey("chain " + strconv.Itoa(i))
		u, err := st.Lock(withTimeout(t, 10*time.Second), k)
		if err != nil {
			t.Fatalf("lock %d: %v", i, err)
		}
		holders = append(holders, u)
		if _, err := st.Load(withTimeout(t, 10*time.Second), k, testSeed); err != nil {
			t.Fatalf("load %d while %d locks are held: %v", i, i+1, err)
		}
	}
	for _, u := range holders {
		mustUnlock(t, u)
	}
}
