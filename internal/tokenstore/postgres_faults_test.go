package tokenstore

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
)

// A server that cannot be reached gives a clear error at Lock, wrapping ErrUnavailable: nothing was read, nothing
// exchanged. A server that accepts the connection and never answers is given up after the connect timeout.
func TestPostgresStore_Unreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := listenerPort(t, l)
	l.Close() // nothing listens there now
	const pw = "unreach-pw-77"
	st := newTestPostgresStore(t, fmt.Sprintf("host=127.0.0.1 port=%d user=runner password=%s dbname=tf", port, pw))
	_, err = st.Lock(withTimeout(t, 30*time.Second), testKey(testSeed))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "cannot connect") || !strings.Contains(err.Error(), fmt.Sprint(port)) {
		t.Fatalf("got %v; want ErrUnavailable saying it cannot connect, and where to", err)
	}
	assertNoPassword(t, "the error", err.Error(), pw)

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // accepted, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	st = newTestPostgresStore(t, fmt.Sprintf("host=127.0.0.1 port=%d user=runner password=%s dbname=tf connect_timeout=1",
		listenerPort(t, silent), pw))
	start := time.Now()
	_, err = st.Load(withTimeout(t, 30*time.Second), testKey(testSeed), testSeed)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "connect timeout (1s") {
		t.Fatalf("got %v; want ErrUnavailable naming the connect timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("gave up after %v; want about the 1s connect timeout", d)
	}
	assertNoPassword(t, "the error", err.Error(), pw)
}

// A wrong password gives a clear error that never holds the password, given or right.
func TestPostgresStore_WrongPassword(t *testing.T) {
	t.Parallel()
	connStr := pgtest.Start(t)
	right := pgtest.Shared(t).Password()
	const wrong = "wrong-pw-0451"
	for _, cs := range []string{
		strings.Replace(connStr, "password="+right, "password="+wrong, 1),
		fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", pgtest.Superuser, wrong, pgtest.Shared(t).Port(), pgtest.DatabaseName(connStr)),
	} {
		st := newTestPostgresStore(t, cs)
		for op, call := range map[string]func() error{
			"lock": func() error { _, err := st.Lock(withTimeout(t, 30*time.Second), testKey(testSeed)); return err },
			"load": func() error {
				_, err := st.Load(withTimeout(t, 30*time.Second), testKey(testSeed), testSeed)
				return err
			},
			"save": func() error {
				return st.Save(withTimeout(t, 30*time.Second), testKey(testSeed), testSeed, sampleRecord(), nil)
			},
		} {
			err := call()
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "refused the login") || !strings.Contains(err.Error(), op+" chain") {
				t.Fatalf("%s: got %v; want ErrUnavailable saying the login was refused", op, err)
			}
			assertNoPassword(t, "the error", err.Error(), wrong)
			assertNoPassword(t, "the error", err.Error(), right)
			assertNoPassword(t, "Describe", st.Describe(), wrong)
		}
	}
}

// The server restarts (or crashes) between Lock and Save: the save still lands, on a new connection, and stays
// conditional, so a runner that took the lock meanwhile and saved first is never overwritten.
func TestPostgresStore_ServerRestartsMidRun(t *testing.T) {
	t.Parallel()
	srv := pgtest.NewServer(t)
	connStr := srv.CreateDatabase(t)
	for name, down := range map[string]func(testing.TB){"restart": srv.Stop, "crash": srv.Crash} {
		st, rival := newTestPostgresStore(t, connStr), newTestPostgresStore(t, connStr)
		key := testKey(name)
		g7 := sampleRecord()
		if err := saveLocked(t, st, key, g7, nil); err != nil {
			t.Fatal(err)
		}

		// The save lands after the server came back.
		ctx := withTimeout(t, 60*time.Second)
		unlock, err := st.Lock(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		loaded, err := st.Load(ctx, key, testSeed)
		if err != nil {
			t.Fatal(err)
		}
		down(t)
		srv.Start(t)
		g8 := nextRecord(loaded)
		if err := st.Save(ctx, key, testSeed, g8, loaded.Revision().Ptr()); err != nil {
			t.Fatalf("%s: save after the server came back: got %v; want it saved", name, err)
		}
		if err := unlock(); err != nil {
			t.Fatalf("%s: unlock after the session ended: got %v; want nil (the server released the lock with it)", name, err)
		}
		if got := loadOrFail(t, st, key); !recordsEqual(got, g8) {
			t.Fatalf("%s: got %v; want %v", name, got, g8)
		}

		// The lock went with the old session: a rival takes it and saves first; the late save is refused.
		unlock, err = st.Lock(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if loaded, err = st.Load(ctx, key, testSeed); err != nil {
			t.Fatal(err)
		}
		down(t)
		srv.Start(t)
		winner := nextRecord(loaded)
		if err := saveLocked(t, rival, key, winner, loaded.Revision().Ptr()); err != nil {
			t.Fatalf("%s: the rival: got %v; want its save", name, err)
		}
		var conflict *ConflictError
		if err := st.Save(ctx, key, testSeed, nextRecord(loaded), loaded.Revision().Ptr()); !errors.As(err, &conflict) ||
			conflict.Current == nil || *conflict.Current != winner.Revision() {
			t.Fatalf("%s: the late save: got %v; want a *ConflictError naming the rival's revision", name, err)
		}
		if err := unlock(); err != nil {
			t.Fatal(err)
		}
		if got := loadOrFail(t, st, key); !recordsEqual(got, winner) {
			t.Fatalf("%s: got %v; want the rival's %v", name, got, winner)
		}
	}
	// The pool's idle connections died with the server: the first load and lock after a restart (however soon) are not
	// failed by them.
	st := newTestPostgresStore(t, connStr)
	for _, down := range []func(testing.TB){srv.Stop, srv.Crash} {
		for range 2 {
			u, err := st.Lock(withTimeout(t, 30*time.Second), testKey(testSeed))
			if err != nil {
				t.Fatalf("lock: %v", err)
			}
			mustUnlock(t, u)
			if _, err := st.Load(withTimeout(t, 30*time.Second), testKey(testSeed), testSeed); err != nil {
				t.Fatalf("load: %v", err)
			}
		}
		down(t)
		srv.Start(t)
		u, err := st.Lock(withTimeout(t, 30*time.Second), testKey(testSeed))
		if err != nil {
			t.Fatalf("the first lock after a restart: got %v; want the lock", err)
		}
		mustUnlock(t, u)
		down(t)
		srv.Start(t)
		if _, err := st.Load(withTimeout(t, 30*time.Second), testKey("another chain"), testSeed); err != nil {
			t.Fatalf("the first load after a restart: got %v; want it done", err)
		}
	}

	// While the server is down, every operation fails with ErrUnavailable.
	srv.Stop(t)
	if _, err := st.Load(withTimeout(t, 30*time.Second), testKey(testSeed), testSeed); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("server down: got %v; want ErrUnavailable", err)
	}
	srv.Start(t)
}

// The table (or its schema) is dropped while runners use it: loads find nothing (the table is made again), and a save
// in flight puts its record in the recreated table rather than losing the newest head anyone has.
func TestPostgresStore_TableDropped(t *testing.T) {
	t.Parallel()
	for name, drop := range map[string]string{
		"table":  "DROP TABLE " + DefaultPostgresSchema + "." + PostgresTable,
		"schema": "DROP SCHEMA " + DefaultPostgresSchema + " CASCADE",
	} {
		st := newTestPostgresStore(t, pgtest.Start(t))
		conn := rawConn(t, st)
		key := testKey(testSeed)
		g7 := sampleRecord()
		if err := saveLocked(t, st, key, g7, nil); err != nil {
			t.Fatal(err)
		}
		ctx := withTimeout(t, 60*time.Second)
		unlock, err := st.Lock(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		loaded, err := st.Load(ctx, key, testSeed)
		if err != nil {
			t.Fatal(err)
		}
		rawExec(t, conn, drop)
		g8 := nextRecord(loaded)
		if err := st.Save(ctx, key, testSeed, g8, loaded.Revision().Ptr()); err != nil {
			t.Fatalf("%s dropped: got %v; want the save in the recreated table", name, err)
		}
		mustUnlock(t, unlock)
		if got := loadOrFail(t, st, key); !recordsEqual(got, g8) {
			t.Fatalf("%s dropped: got %v; want %v", name, got, g8)
		}
		rawExec(t, conn, drop)
		if got := loadOrFail(t, st, key); got != nil {
			t.Fatalf("%s dropped again: got %v; want no record", name, got)
		}
		if err := saveLocked(t, st, key, g8, nil); err != nil {
			t.Fatalf("%s: got %v; want the table usable again", name, err)
		}
	}
}

// A row edited by hand so that its revision columns no longer match its envelope is not trusted.
func TestPostgresStore_RowColumnsMustMatchEnvelope(t *testing.T) {
	t.Parallel()
	st := newTestPostgresStore(t, pgtest.Start(t))
	key := testKey(testSeed)
	if err := saveLocked(t, st, key, sampleRecord(), nil); err != nil {
		t.Fatal(err)
	}
	rawExec(t, rawConn(t, st), "UPDATE "+st.table+" SET generation = 99 WHERE key = $1", string(key))
	_, err := st.Load(withTimeout(t, 30*time.Second), key, testSeed)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "disagree") || !strings.Contains(err.Error(), "move it aside") {
		t.Fatalf("got %v; want ErrCorrupt saying the columns disagree and what to do", err)
	}
	assertNoSecret(t, "the error", err.Error())
}

// BenchmarkPostgresRoundTrip is what one exchange costs the store: Lock, Load, Save, unlock, over TCP on loopback. The
// tests' server runs with fsync off, so this is the store's own cost: a real server adds its WAL flush to the save.
func BenchmarkPostgresRoundTrip(b *testing.B) {
	st := newTestPostgresStore(b, pgtest.Start(b))
	key := testKey(testSeed)
	ctx := b.Context()
	if err := st.Save(ctx, key, testSeed, sampleRecord(), nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := incrementOnce(ctx, st, key, testSeed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPostgresLockUnlock is the lock alone: a round trip to take it and one to release it.
func BenchmarkPostgresLockUnlock(b *testing.B) {
	st := newTestPostgresStore(b, pgtest.Start(b))
	key := testKey(testSeed)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		u, err := st.Lock(ctx, key)
		if err != nil {
			b.Fatal(err)
		}
		if err := u(); err != nil {
			b.Fatal(err)
		}
	}
}
