package tokenstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultPostgresSchema is the schema of the postgres store's table when none is configured, named after the provider
// the way Terraform's pg state backend names its own terraform_remote_state.
const DefaultPostgresSchema = "terraform_provider_bipsync"

// PostgresTable is the name of the postgres store's table in its schema.
const PostgresTable = "chains"

const (
	// defaultPostgresConnectTimeout bounds each connection attempt unless the connection string sets connect_timeout
	// (or PGCONNECT_TIMEOUT does): a database that does not answer must not hang Terraform.
	defaultPostgresConnectTimeout = 10 * time.Second
	// postgresMaxConns bounds the connections of one provider process unless conn_str sets pool_max_conns (pgxpool's
	// own key). Each chain being exchanged holds one (its lock's session) and does its reads and writes on it, so this
	// many chains can be in flight at once; more wait.
	postgresMaxConns = 16
	// postgresReleaseTimeout bounds the release of a lock. A session that cannot be asked to release it is closed,
	// which releases it as well.
	postgresReleaseTimeout = 10 * time.Second
	// postgresAttempts bounds how often one operation is tried: again on a new connection when the server went away
	// under the first (a restart, a failover), and again after recreating a table that was dropped.
	postgresAttempts = 3
)

// ErrUnavailable marks a failure of the database behind a store: it could not be reached, refused the login, lacks a
// grant, or failed the statement. A lock or load that fails with it has read nothing; a save that fails with it may
// or may not have landed, and is safe to repeat.
var ErrUnavailable = errors.New("token store database unavailable")

// PostgresConfig configures NewPostgres, the way Terraform's pg state backend is configured.
type PostgresConfig struct {
	// ConnStr is a libpq connection string: key=value pairs ("host=db.internal user=runner dbname=terraform") or a URL
	// ("postgres://runner@db.internal/terraform?sslmode=verify-full"). What it leaves out comes from the standard
	// PG* environment variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, PGCONNECT_TIMEOUT, ...)
	// and ~/.pgpass, as libpq reads them; empty uses those alone.
	ConnStr string
	// SchemaName is the schema of the store's table; DefaultPostgresSchema when empty.
	SchemaName string
}

// postgresStore is the store NewPostgres returns.
type postgresStore struct {
	poolConfig *pgxpool.Config
	schema     string
	table      string   // the schema-qualified table, quoted for SQL
	where      string   // the table, database, server and user, for Describe and errors
	secrets    []string // what errors must never show: the passwords of the connection configuration

	mu    sync.Mutex
	pool  *pgxpool.Pool // created on first use
	ready bool          // the schema and table exist, as far as this store knows

	heldMu sync.Mutex
	held   map[Key]*pgLock // the chains whose lock this store holds, with the session holding it
}

// pgLock is a held chain lock: the session (connection) that holds it, which the lock holder's loads and saves use too.
type pgLock struct {
	mu   sync.Mutex // one statement at a time on conn
	conn *pgxpool.Conn
	dead bool // the session ended (the server restarted, the network failed); with it, the lock
	gone bool // conn was closed or handed back: the lock is over
}

// end closes the lock's session, which releases the lock at the server. The caller holds l.mu.
func (l *pgLock) end() {
	if !l.gone {
		destroy(l.conn)
		l.gone, l.dead = true, true
	}
}

// NewPostgres returns a store that keeps records in a PostgreSQL table, one row per chain, for runners on several
// machines that share a database. Rows hold the sealed envelope (see Seal) and its revision, never a token in clear.
//
// It does no network I/O: the provider calls it while it is configured, also at validate time. The first operation
// connects (each attempt bounded by connect_timeout, default 10 s) and creates the schema and table if missing.
//
// Lock takes a PostgreSQL session-level advisory lock per chain and holds it on one connection until unlock, so that
// runners on every machine queue on it and no two exchange one chain at once; Save writes only where the row still
// holds the revision it replaces, in one statement, so the store never goes back even when a lock was lost.
func NewPostgres(cfg PostgresConfig) (Store, error) {
	schema := cfg.SchemaName
	if schema == "" {
		schema = DefaultPostgresSchema
	}
	if err := CheckPostgresSchemaName(schema); err != nil {
		return nil, fmt.Errorf("schema_name: %w", err)
	}
	pc, err := parsePostgresConfig(cfg.ConnStr)
	if err != nil {
		return nil, err
	}
	cc := pc.ConnConfig
	if cc.ConnectTimeout <= 0 {
		cc.ConnectTimeout = defaultPostgresConnectTimeout
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "terraform-provider-bipsync"
	}
	// pgxpool leaves no trace of whether pool_max_conns was given (its default depends on the CPUs), so look for the key.
	if !strings.Contains(cfg.ConnStr, "pool_max_conns") {
		pc.MaxConns = postgresMaxConns
	}
	pc.MinConns, pc.MinIdleConns = 0, 0 // no connection before first use

	s := &postgresStore{
		poolConfig: pc,
		schema:     schema,
		table:      pgx.Identifier{schema, PostgresTable}.Sanitize(),
		held:       map[Key]*pgLock{},
	}
	s.secrets = appendSecretForms(nil, cc.Password) // fallback hosts share it
	s.where = fmt.Sprintf("table %s in database %q on %s as user %q", s.table, cc.Database, serverName(cc), cc.User)
	return s, nil
}

// serverName names the server without credentials: host:port, or the socket directory.
func serverName(cc *pgx.ConnConfig) string {
	name := net.JoinHostPort(cc.Host, fmt.Sprint(cc.Port))
	if strings.HasPrefix(cc.Host, "/") {
		name = fmt.Sprintf("the Unix socket in %s (port %d)", cc.Host, cc.Port)
	}
	// pgx lists a host twice when it tries TLS and then plain text (sslmode=prefer); only other hosts count.
	others := map[string]bool{}
	for _, f := range cc.Fallbacks {
		if f.Host != cc.Host || f.Port != cc.Port {
			others[net.JoinHostPort(f.Host, fmt.Sprint(f.Port))] = true
		}
	}
	if n := len(others); n > 0 {
		name += fmt.Sprintf(" (or %d more hosts)", n)
	}
	return name
}

// CheckPostgresSchemaName checks a schema name for the postgres store. It is used quoted, so case and characters are
// kept as they are; PostgreSQL limits names to 63 bytes and reserves the pg_ prefix.
func CheckPostgresSchemaName(name string) error {
	switch {
	case name == "":
		return errors.New("the schema name is empty: leave it unset for " + DefaultPostgresSchema + ", or name a schema")
	case len(name) > 63:
		return fmt.Errorf("the schema name is %d bytes long; PostgreSQL names are at most 63", len(name))
	case !utf8.ValidString(name) || strings.ContainsRune(name, 0):
		return errors.New("the schema name is not valid UTF-8 text")
	case strings.HasPrefix(strings.ToLower(name), "pg_"):
		return errors.New("names starting with pg_ are reserved for PostgreSQL's own schemas: choose another")
	}
	return nil
}

// CheckPostgresConnStr checks a connection string as NewPostgres reads it, with the PG* environment variables. The
// error never quotes the string, which may hold a password.
func CheckPostgresConnStr(connStr string) error {
	_, err := parsePostgresConfig(connStr)
	return err
}

func parsePostgresConfig(connStr string) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(connStr)
	if err == nil {
		return pc, nil
	}
	detail := ""
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) {
		detail = parseErrorDetail(pce)
	}
	secrets := connStrSecrets(connStr)
	if p := os.Getenv("PGPASSWORD"); p != "" {
		secrets = appendSecretForms(secrets, p)
	}
	detail = scrub(detail, secrets)
	if detail != "" {
		detail = " (" + detail + ")"
	}
	return nil, fmt.Errorf("conn_str is not a PostgreSQL connection string that can be used%s: give key=value pairs "+
		"(host=db.internal port=5432 user=runner dbname=terraform sslmode=verify-full) or a URL "+
		"(postgres://runner@db.internal:5432/terraform?sslmode=verify-full) with special characters of its password "+
		"percent-encoded; parts it leaves out come from the PG* environment variables, which must be valid too", detail)
}

// parseErrorDetail is what pgx says is wrong with a connection string, without the string (which pgx quotes with its
// password masked only on a best-effort basis) and without a URL parser's message (which quotes the URL).
func parseErrorDetail(pce *pgconn.ParseConfigError) string {
	const marker = "\x00"
	c := *pce
	c.ConnString = marker
	msg, ok := strings.CutPrefix(c.Error(), "cannot parse `"+marker+"`: ")
	if !ok {
		return ""
	}
	if inner := errors.Unwrap(pce); inner != nil {
		var ue *url.Error
		if errors.As(inner, &ue) {
			msg = strings.TrimSuffix(msg, " ("+inner.Error()+")")
		}
	}
	return msg
}

var (
	kvPassword  = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)
	urlUserinfo = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#]*)@`)
)

// connStrSecrets finds what may be a password in a connection string that does not parse, so that no part of an error
// shows it.
func connStrSecrets(connStr string) []string {
	var out []string
	for _, m := range kvPassword.FindAllStringSubmatch(connStr, -1) {
		out = appendSecretForms(out, strings.Trim(m[1], "'"))
	}
	if m := urlUserinfo.FindStringSubmatch(connStr); m != nil {
		if _, pw, ok := strings.Cut(m[1], ":"); ok {
			out = appendSecretForms(out, pw)
		}
	}
	return out
}

// appendSecretForms adds a secret and the forms it takes in a URL.
func appendSecretForms(list []string, secret string) []string {
	if secret == "" {
		return list
	}
	list = append(list, secret, url.QueryEscape(secret), url.PathEscape(secret))
	if u, err := url.PathUnescape(secret); err == nil {
		list = append(list, u)
	}
	return list
}

// scrub masks secrets in s. A secret shorter than minScrub is left: it is in every text, and masking it would make
// the message unreadable without hiding anything.
func scrub(s string, secrets []string) string {
	for _, p := range secrets {
		if len(p) >= minScrub {
			s = strings.ReplaceAll(s, p, "xxxxx")
		}
	}
	return s
}

const minScrub = 4

func (s *postgresStore) Traits() Traits {
	return Traits{Persistent: true, SharedLock: true, AtomicSave: true}
}

func (s *postgresStore) Describe() string { return "postgres store: " + s.where }

// getPool returns the connection pool, creating it on first use. Creating it opens no connection.
func (s *postgresStore) getPool() (*pgxpool.Pool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pool == nil {
		p, err := pgxpool.NewWithConfig(context.Background(), s.poolConfig)
		if err != nil {
			return nil, err
		}
		s.pool = p
	}
	return s.pool, nil
}

// close closes the store's connections, ending the sessions of locks still held. The provider never calls it (a store
// lives as long as its process); tests do, so that many stores do not pile up connections.
func (s *postgresStore) close() {
	s.heldMu.Lock()
	for key, l := range s.held {
		delete(s.held, key)
		l.mu.Lock()
		l.end()
		l.mu.Unlock()
	}
	s.heldMu.Unlock()
	s.mu.Lock()
	p := s.pool
	s.pool = nil
	s.mu.Unlock()
	if p != nil {
		p.Close()
	}
}

func (s *postgresStore) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	pool, err := s.getPool()
	if err != nil {
		return nil, err
	}
	c, err := pool.Acquire(ctx)
	if err != nil {
		return nil, &connectError{err}
	}
	return c, nil
}

// connectError marks a failure to open a connection, as opposed to one of a statement.
type connectError struct{ err error }

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// destroy closes a connection instead of returning it to the pool. The server ends the session, and releases every
// lock it held.
func destroy(c *pgxpool.Conn) {
	conn := c.Hijack()
	ctx, cancel := context.WithTimeout(context.Background(), postgresReleaseTimeout)
	defer cancel()
	_ = conn.Close(ctx) // closing is best effort: a session whose socket is gone ends at the server anyway
}

// advisoryLockID maps names to a 64-bit advisory lock key. Chains of different schemas get different keys, and the
// prefix keeps them apart from other applications' advisory locks in the same database.
func advisoryLockID(parts ...string) int64 {
	h := sha256.New()
	var n [8]byte
	for _, p := range append([]string{"terraform-provider-bipsync advisory lock v1"}, parts...) {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return int64(binary.BigEndian.Uint64(h.Sum(nil)[:8]))
}

func (s *postgresStore) chainLockID(key Key) int64 {
	return advisoryLockID("chain", s.schema, string(key))
}

// Lock takes the chain's session-level advisory lock (pg_advisory_lock) on a connection of its own and keeps that
// connection until unlock.
//
// An advisory lock rather than a row lock: it needs no row (a chain's first save has none to lock), it keeps no
// transaction open across the exchange (a long idle transaction holds back vacuum and is what
// idle_in_transaction_session_timeout kills), and each save commits on its own, durable before the lock is released.
// Like a row lock it belongs to the session: when the holder's process dies, its connection closes and the server
// releases the lock, so a crashed runner never blocks the others. A waiter waits in the server's queue; when its
// context ends, pgx abandons the query and sends the server a cancel request, which ends the wait there too.
func (s *postgresStore) Lock(ctx context.Context, key Key) (func() error, error) {
	if err := checkKeyCtx(ctx, key); err != nil {
		return nil, err
	}
	// Holders that share this store queue here first, so that a waiter does not take a connection from the pool to
	// wait. Two stores in one process (two provider configurations) queue at the server, as two processes do.
	release, err := acquireProc(ctx, fmt.Sprintf("postgres\x00%p\x00%s", s, key))
	if err != nil {
		return nil, s.fail(ctx, "lock", key, err)
	}
	id := s.chainLockID(key)
	var c *pgxpool.Conn
	for attempt := 1; ; attempt++ {
		if c, err = s.acquire(ctx); err != nil {
			release()
			return nil, s.fail(ctx, "lock", key, err)
		}
		waited := false
		if err = s.ensure(ctx, c.Conn()); err == nil {
			waited = true
			_, err = c.Exec(ctx, "SELECT pg_advisory_lock($1)", id)
		}
		if err == nil {
			break
		}
		// A lock granted just as the wait was cancelled must not outlive this call: ending the session releases it.
		broken := c.Conn().IsClosed()
		destroy(c)
		if ctx.Err() != nil && waited {
			release()
			return nil, s.fail(ctx, "lock", key, fmt.Errorf("another runner holds it and did not release it in time: %w", context.Cause(ctx)))
		}
		if ctx.Err() != nil {
			release()
			return nil, s.fail(ctx, "lock", key, err)
		}
		// A pooled connection whose server restarted since fails at its first statement: try a new one.
		if !broken || attempt == postgresAttempts {
			release()
			return nil, s.fail(ctx, "lock", key, err)
		}
	}
	l := &pgLock{conn: c}
	s.heldMu.Lock()
	s.held[key] = l
	s.heldMu.Unlock()
	var once sync.Once
	var uerr error
	return func() error {
		once.Do(func() {
			uerr = s.unlock(key, l, id)
			release()
		})
		return uerr
	}, nil
}

func (s *postgresStore) unlock(key Key, l *pgLock, id int64) error {
	s.heldMu.Lock()
	delete(s.held, key)
	s.heldMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone || l.dead || l.conn.Conn().IsClosed() {
		// The session ended, and the server released the lock with it.
		l.end()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), postgresReleaseTimeout)
	defer cancel()
	var released bool
	if err := l.conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", id).Scan(&released); err != nil {
		l.end() // ending the session releases the lock just as well
		return nil
	}
	if !released {
		l.end()
		return s.fail(ctx, "unlock", key, errors.New("the session no longer held the lock (something released it): "+
			"runners may have overlapped, which conditional saves keep harmless"))
	}
	l.conn.Release()
	l.gone = true
	return nil
}

// connFor returns the connection for an operation on key: the session holding the chain's lock when this store holds
// it, else one from the pool. done hands it back.
func (s *postgresStore) connFor(ctx context.Context, key Key) (conn *pgx.Conn, done func(), err error) {
	s.heldMu.Lock()
	l := s.held[key]
	s.heldMu.Unlock()
	if l != nil {
		l.mu.Lock()
		if !l.dead && !l.gone && !l.conn.Conn().IsClosed() {
			return l.conn.Conn(), func() {
				if l.conn.Conn().IsClosed() {
					l.dead = true
				}
				l.mu.Unlock()
			}, nil
		}
		// The lock's session ended (the server restarted, or the network failed): the lock is gone with it. The
		// operation goes on with a new connection; saves stay conditional, so no runner that took the lock meanwhile
		// is overwritten.
		l.dead = true
		l.mu.Unlock()
	}
	return s.pooledConn(ctx)
}

// do runs op on the connection for key, making sure the table exists. It runs op again, at most twice: on a new
// connection when the server went away under it (the statement may or may not have run, so op must be safe to
// repeat), and after recreating the table when it was dropped (then wiped is true: the store holds nothing).
func (s *postgresStore) do(ctx context.Context, key Key, op func(ctx context.Context, conn *pgx.Conn, wiped bool) error) error {
	wiped := false
	var err error
	for range postgresAttempts {
		var conn *pgx.Conn
		var done func()
		conn, done, err = s.connFor(ctx, key)
		if err != nil {
			return err
		}
		if err = s.ensure(ctx, conn); err == nil {
			err = op(ctx, conn, wiped)
		}
		broken := conn.IsClosed()
		done()
		switch {
		case err == nil || ctx.Err() != nil:
			return err
		case isMissingTable(err):
			s.mu.Lock()
			s.ready = false
			s.mu.Unlock()
			wiped = true
		case !broken:
			return err
		}
	}
	return err
}

// isMissingTable tells whether err says that the store's table or schema does not exist (any longer).
func isMissingTable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000") // undefined_table, invalid_schema_name
}

// ensure creates the schema and table if missing, once per store (again after do found them dropped). It takes a
// transaction-level advisory lock first: CREATE ... IF NOT EXISTS run by two sessions at once can still fail on the
// catalog's unique index, and the check before it lets a user without CREATE use a schema or table made for it.
func (s *postgresStore) ensure(ctx context.Context, conn *pgx.Conn) error {
	s.mu.Lock()
	ready := s.ready
	s.mu.Unlock()
	if ready {
		return nil
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", advisoryLockID("schema", s.schema)); err != nil {
		return err
	}
	var schemaExists, tableExists bool
	if err := tx.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1),
		EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relname = $2)`, s.schema, PostgresTable).Scan(&schemaExists, &tableExists); err != nil {
		return err
	}
	if !schemaExists {
		if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{s.schema}.Sanitize()); err != nil {
			return err
		}
	}
	if !tableExists {
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s.table+` (
			key        text        PRIMARY KEY,
			generation bigint      NOT NULL,
			record_id  text        NOT NULL,
			envelope   text        NOT NULL,
			updated_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `COMMENT ON TABLE `+s.table+` IS 'Refresh chains of terraform-provider-bipsync: one `+
			`row per chain, its record sealed with AES-256-GCM under a key derived from the chain''s seed (no token in `+
			`clear). Generation and record_id are the sealed record''s revision, which saves compare.'`); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.ready = true
	s.mu.Unlock()
	return nil
}

func (s *postgresStore) Load(ctx context.Context, key Key, seed string) (*Record, error) {
	if err := checkKeyCtx(ctx, key); err != nil {
		return nil, err
	}
	var rec *Record
	err := s.do(ctx, key, func(ctx context.Context, conn *pgx.Conn, _ bool) error {
		rec = nil
		var gen int64
		var id, env string
		err := conn.QueryRow(ctx, "SELECT generation, record_id, envelope FROM "+s.table+" WHERE key = $1", string(key)).
			Scan(&gen, &id, &env)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		rec, err = s.open(key, seed, Revision{Generation: gen, ID: id}, []byte(env))
		return err
	})
	if err != nil {
		return nil, s.fail(ctx, "load", key, err)
	}
	return rec, nil
}

// open decrypts a row's envelope, after checking that its revision columns (what saves compare) agree with the
// envelope's authenticated header.
func (s *postgresStore) open(key Key, seed string, cols Revision, env []byte) (*Record, error) {
	hdr, err := EnvelopeRevision(env)
	if err == nil && (hdr.ID != cols.ID || hdr.ID != "" && hdr.Generation != cols.Generation) {
		err = corrupt("the row's generation and record_id columns disagree with its envelope")
	}
	var rec *Record
	if err == nil {
		rec, err = Open(key, seed, env)
	}
	if err != nil {
		return nil, fmt.Errorf("token store record %s in %s: %w; it was not written for this seed or is damaged: move it "+
			"aside (UPDATE %s SET key = 'moved-' || key WHERE key = '%s'), then seed the chain again", key, s.where, err, s.table, key)
	}
	return rec, nil
}

func (s *postgresStore) Save(ctx context.Context, key Key, seed string, rec *Record, replaces *Revision) error {
	return sealAndPut(ctx, s, key, seed, rec, replaces)
}

// putEnvelope writes the row in one statement that checks what it replaces: an insert that does nothing when a row
// exists, or an update of the row only where it holds the replaced revision. Nothing can slip between check and write,
// whoever holds the lock. A refused write then reads what the row holds: the record being saved (an earlier save that
// landed although it reported a failure) is success, anything else a *ConflictError.
//
// A table found missing (dropped, or a database restored without it) is recreated, and then holds nothing: the record
// being saved is the newest anyone has, so it is inserted whatever it replaced, unless another runner put one first.
func (s *postgresStore) putEnvelope(ctx context.Context, key Key, data []byte, next Revision, replaces *Revision) error {
	err := s.do(ctx, key, func(ctx context.Context, conn *pgx.Conn, wiped bool) error {
		var tag pgconn.CommandTag
		var err error
		if replaces == nil || wiped {
			tag, err = conn.Exec(ctx, "INSERT INTO "+s.table+" (key, generation, record_id, envelope) VALUES ($1, $2, $3, $4) "+
				"ON CONFLICT (key) DO NOTHING", string(key), next.Generation, next.ID, string(data))
		} else {
			// A legacy record (no ID) matches a legacy revision whatever its generation, as Revision.Matches says.
			tag, err = conn.Exec(ctx, "UPDATE "+s.table+" SET generation = $2, record_id = $3, envelope = $4, updated_at = now() "+
				"WHERE key = $1 AND record_id = $5 AND ($5 = '' OR generation = $6)",
				string(key), next.Generation, next.ID, string(data), replaces.ID, replaces.Generation)
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		var env string
		err = conn.QueryRow(ctx, "SELECT envelope FROM "+s.table+" WHERE key = $1", string(key)).Scan(&env)
		var current *Revision
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			if current, err = currentRevision([]byte(env)); err != nil {
				return fmt.Errorf("token store record %s in %s: %w; it is left alone: move it aside if you are sure it is dead", key, s.where, err)
			}
		}
		if current != nil && current.Matches(next) {
			return nil // an earlier save of this very record landed
		}
		return &ConflictError{Replaces: replaces, Current: current}
	})
	if err != nil {
		return s.fail(ctx, "save", key, err)
	}
	return nil
}

// pgStoreError is an error of the postgres store. Its text names the operation and holds no password; the
// errors it wraps are for errors.Is and errors.As, not for printing.
type pgStoreError struct {
	msg  string
	errs []error
}

func (e *pgStoreError) Error() string   { return e.msg }
func (e *pgStoreError) Unwrap() []error { return e.errs }

// fail words err for op on key. Conflicts and unreadable records are already worded and pass through; when ctx ended,
// the error says so and wraps the context's cause; every other failure is an ErrUnavailable, with advice where the
// cause is a common one.
func (s *postgresStore) fail(ctx context.Context, op string, key Key, err error) error {
	if errors.Is(err, ErrConflict) || errors.Is(err, ErrCorrupt) {
		return err
	}
	// The store is not named: callers name it (the token source says "could not lock the postgres store: ...").
	what := fmt.Sprintf("%s chain %s: ", op, key)
	if ctx.Err() != nil {
		errs := []error{err}
		if cause := context.Cause(ctx); !errors.Is(err, cause) {
			errs = append(errs, cause)
		}
		return &pgStoreError{msg: what + s.quote(err), errs: errs}
	}
	advice := ""
	var pe *pgconn.PgError
	var ce *connectError
	switch {
	case errors.As(err, &pe):
		advice = pgAdvice(pe, s)
	case errors.As(err, &ce) && pgconn.Timeout(err):
		advice = fmt.Sprintf("no answer within the connect timeout (%s; connect_timeout in conn_str, or PGCONNECT_TIMEOUT): "+
			"is the server reachable from here?", s.poolConfig.ConnConfig.ConnectTimeout)
	case errors.As(err, &ce):
		advice = "cannot connect: is the server running and reachable, and are host and port right (conn_str, PGHOST, PGPORT)?"
	}
	if advice != "" {
		what += advice + ": "
	}
	return &pgStoreError{msg: what + s.quote(err), errs: []error{ErrUnavailable, err}}
}

// quote is err's text for an error message: on one line (pgx puts each connection attempt on a line of its own), and
// without the connection's password. pgx's messages name the user, database and host, never the password; this keeps
// it so should that change.
func (s *postgresStore) quote(err error) string {
	return scrub(strings.ReplaceAll(err.Error(), "\n\t", "; "), s.secrets)
}

// pgAdvice says what to do about the server errors a user can fix.
func pgAdvice(pe *pgconn.PgError, s *postgresStore) string {
	switch {
	case pe.Code == "28P01" || pe.Code == "28000":
		return "the server refused the login: check the user and password (in conn_str, PGUSER and PGPASSWORD, or ~/.pgpass) " +
			"and the server's pg_hba.conf"
	case pe.Code == "3D000":
		return "the database does not exist: create it, or name another (dbname in conn_str, or PGDATABASE)"
	case pe.Code == "42501":
		return fmt.Sprintf("permission denied: the user needs CREATE on the database (or on an existing schema %q), or a table "+
			"made for it, and SELECT, INSERT and UPDATE on that table; see the token store docs", s.schema)
	case pe.Code == "53300":
		return "the server has no connection slot left"
	case strings.HasPrefix(pe.Code, "57P"):
		return "the server is shutting down, restarting or starting"
	}
	return ""
}

// getEnvelope returns the envelope the row of key holds (nil: no row), for Restore.
func (s *postgresStore) getEnvelope(ctx context.Context, key Key) ([]byte, error) {
	if err := checkKeyCtx(ctx, key); err != nil {
		return nil, err
	}
	var data []byte
	err := s.do(ctx, key, func(ctx context.Context, conn *pgx.Conn, _ bool) error {
		data = nil
		var env string
		err := conn.QueryRow(ctx, "SELECT envelope FROM "+s.table+" WHERE key = $1", string(key)).Scan(&env)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		data = []byte(env)
		return err
	})
	if err != nil {
		return nil, s.fail(ctx, "load", key, err)
	}
	return data, nil
}
