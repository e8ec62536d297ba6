package provider

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/bipsync/terraform-provider-bipsync/internal/acctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// storeHelper is one of the guide's store helpers, run against its stand-in CLI (see fakecli_test.go).
type storeHelper struct {
	t      *testing.T
	kind   string // "aws" or "vault"
	script string
	cli    *fakeCLI
}

// storeHelperKinds are the guide's helpers, by the CLI they drive.
var storeHelperKinds = []string{"aws", "vault"}

func newStoreHelper(t *testing.T, kind string) *storeHelper {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the helpers are POSIX shell scripts")
	}
	return &storeHelper{
		t:      t,
		kind:   kind,
		script: filepath.Join(exampleRepoRoot(t), "examples", "guides", "keeping-a-chain-alive", "bipsync-store-"+kind+".sh"),
		cli:    newFakeCLI(t, kind),
	}
}

// argv is what a user would put in token_store.command (options are the helper's own, such as --prefix=), behind
// env(1) to reach the stand-in and set its faults.
func (h *storeHelper) argv(faults []string, options ...string) []string {
	return slices.Concat([]string{"env"}, h.cli.env(faults...), []string{"/bin/sh", h.script}, options)
}

// entry returns the record the service holds for helperKey under the helper's default names, as the service holds it.
func (h *storeHelper) entry() (string, bool) {
	h.t.Helper()
	var (
		v   string
		ok  bool
		err error
	)
	switch h.kind {
	case "aws":
		v, ok, err = fakeAWSCurrent(h.cli.dir, "terraform-provider-bipsync/"+helperKey)
	default:
		v, ok, err = fakeVaultCurrent(h.cli.dir, "secret", "terraform-provider-bipsync/"+helperKey)
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return v, ok
}

// helperRun is one run of a helper.
type helperRun struct {
	exit           int
	stdout, stderr string
}

// run runs the helper once: faults for the stand-in, env for the helper (BIPSYNC_STORE_*), stdin, and the arguments.
func (h *storeHelper) run(faults, env []string, stdin string, args ...string) helperRun {
	h.t.Helper()
	argv := h.argv(faults)
	cmd := exec.Command(argv[0], append(argv[1:], args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := helperRun{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.exit = ee.ExitCode()
	case err != nil: // Errorf, not Fatal: run may be called from goroutines
		h.t.Errorf("running the %s helper: %v", h.kind, err)
		r.exit = -1
	}
	// A helper never shows a record where a log could keep it, even sealed.
	if strings.Contains(r.stderr, "bts1.") || strings.Contains(r.stderr, "bts2.") {
		h.t.Errorf("%s helper %v: stderr holds a record: %q", h.kind, args, r.stderr)
	}
	return r
}

// put runs a conditional put of record for helperKey over replaces ("none", "legacy" or a revision).
func (h *storeHelper) put(faults []string, replaces, record string) helperRun {
	h.t.Helper()
	return h.putRevision(faults, replaces, record, revisionOf(h.t, record))
}

// putRevision is put with the record's revision given, for goroutines (revisionOf may stop the test).
func (h *storeHelper) putRevision(faults []string, replaces, record, revision string) helperRun {
	h.t.Helper()
	return h.run(faults, []string{tokenstore.EnvStoreProtocol + "=2", tokenstore.EnvStoreReplaces + "=" + replaces,
		tokenstore.EnvStoreRevision + "=" + revision}, record, "put", helperKey)
}

// store puts value unconditionally, as a person restoring an entry by hand would (or another tool).
func (h *storeHelper) store(key, value string) {
	h.t.Helper()
	if r := h.run(nil, nil, value, "put", key); r.exit != 0 {
		h.t.Fatalf("%s helper put by hand: exit %d, stderr %q", h.kind, r.exit, r.stderr)
	}
}

// helperKey is a chain key for the helper tests that need no provider.
const helperKey = "abababababababababababababababababababababababababababababababab"

// sealedRecord returns an envelope of generation gen for helperKey, sealed as the provider seals one.
func sealedRecord(t *testing.T, gen int64) string {
	t.Helper()
	env, err := tokenstore.Seal(tokenstore.Key(helperKey), "seed-for-helper-tests",
		&tokenstore.Record{RefreshToken: "rt", Generation: gen, ID: tokenstore.NewRecordID()})
	if err != nil {
		t.Fatal(err)
	}
	return string(env)
}

// revisionOf is an envelope's revision as a helper sees it: "<generation>.<id>", or "legacy".
func revisionOf(t *testing.T, env string) string {
	t.Helper()
	rev, err := tokenstore.EnvelopeRevision([]byte(env))
	if err != nil {
		t.Fatal(err)
	}
	return rev.Ptr().String()
}

// TestExamples_storeHelpers_protocol checks the guide's helpers against the command store's protocol: `get` of a chain
// that has no record prints nothing and succeeds, `get` after a put prints the record, and every other failure fails,
// so that the provider never takes a live chain for a new one.
func TestExamples_storeHelpers_protocol(t *testing.T) {
	t.Parallel()
	refused := map[string][]string{"aws": {envFakeCLIFail + "=AccessDeniedException"}, "vault": {envFakeCLIFail + "=403"}}
	refusal := map[string]string{"aws": "AccessDeniedException", "vault": "permission denied"}
	for _, kind := range storeHelperKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			rec := sealedRecord(t, 3)
			tests := []struct {
				name       string
				faults     []string
				env        []string
				stdin      string
				args       []string
				wantExit   int
				wantStdout string
				wantStderr string
			}{
				{name: "get without record", args: []string{"get", helperKey}},
				{name: "get refused", faults: refused[kind], args: []string{"get", helperKey}, wantExit: 1, wantStderr: refusal[kind]},
				{name: "put refused", faults: refused[kind], env: []string{tokenstore.EnvStoreReplaces + "=none",
					tokenstore.EnvStoreRevision + "=" + revisionOf(t, rec)}, stdin: rec, args: []string{"put", helperKey},
					wantExit: 1, wantStderr: refusal[kind]},
				{name: "put of another revision than the record's", env: []string{tokenstore.EnvStoreReplaces + "=none",
					tokenstore.EnvStoreRevision + "=4.0123456789abcdef0123456789abcdef"}, stdin: rec, args: []string{"put", helperKey},
					wantExit: 2, wantStderr: "not revision 4.0123456789abcdef0123456789abcdef"},
				{name: "put of a malformed revision", env: []string{tokenstore.EnvStoreReplaces + "=none",
					tokenstore.EnvStoreRevision + "=3"}, stdin: rec, args: []string{"put", helperKey},
					wantExit: 2, wantStderr: "not <generation>.<id>"},
				{name: "unknown operation", args: []string{"list", helperKey}, wantExit: 2, wantStderr: "unknown operation"},
				{name: "missing key", args: []string{"get"}, wantExit: 2, wantStderr: "usage"},
				{name: "unknown option", args: []string{"--region=eu-west-2", "get", helperKey}, wantExit: 2, wantStderr: "usage"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					h := newStoreHelper(t, kind)
					r := h.run(tt.faults, tt.env, tt.stdin, tt.args...)
					if r.exit != tt.wantExit {
						t.Errorf("exit status: got %d; want %d (stderr: %s)", r.exit, tt.wantExit, r.stderr)
					}
					if r.stdout != tt.wantStdout {
						t.Errorf("stdout: got %q; want %q", r.stdout, tt.wantStdout)
					}
					if !strings.Contains(r.stderr, tt.wantStderr) {
						t.Errorf("stderr: got %q; want it to contain %q", r.stderr, tt.wantStderr)
					}
					if _, ok := h.entry(); ok {
						t.Errorf("the service holds an entry; want none after %s", tt.name)
					}
				})
			}
			t.Run("get after put", func(t *testing.T) {
				t.Parallel()
				h := newStoreHelper(t, kind)
				if r := h.put(nil, "none", rec); r.exit != 0 {
					t.Fatalf("put: exit %d, stderr %q", r.exit, r.stderr)
				}
				r := h.run(nil, nil, "", "get", helperKey)
				if r.exit != 0 || strings.TrimSpace(r.stdout) != strings.TrimSpace(rec) {
					t.Errorf("get: exit %d, stdout %q; want 0 and the record", r.exit, r.stdout)
				}
			})
		})
	}
}

// TestExamples_storeHelpers_conditionalPut checks protocol 2's put: the helper writes only in place of the record it
// replaces, exits 0 when the entry already holds the record it writes (an earlier try landed), exits 75 when another
// record is there and leaves it alone, and decides a write the service refused or whose answer was lost by what the
// entry holds afterwards.
func TestExamples_storeHelpers_conditionalPut(t *testing.T) {
	t.Parallel()
	failAfter := map[string]string{"aws": "update-secret-version-stage", "vault": "put"}
	for _, kind := range storeHelperKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			g7, g8, sibling8, g9 := sealedRecord(t, 7), sealedRecord(t, 8), sealedRecord(t, 8), sealedRecord(t, 9)
			legacy := "bts1.c2FsdHNhbHRzYWx0c2FsdA.bm9uY2Vub25jZQ.Y2lwaGVydGV4dA\n"
			rev := func(env string) string { return revisionOf(t, env) }
			tests := []struct {
				name       string
				held       string // the entry before the put; "" for none
				interleave string // another runner's record, stored between the helper's read and its write
				faults     []string
				replaces   string
				record     string
				wantExit   int
				wantHeld   string // the entry after the put
				wantStderr string
			}{
				{name: "first record", replaces: "none", record: g7, wantHeld: g7},
				{name: "next record", held: g7, replaces: rev(g7), record: g8, wantHeld: g8},
				{name: "already landed", held: g8, replaces: rev(g7), record: g8, wantHeld: g8},
				{name: "stale replaces", held: g8, replaces: rev(g7), record: sibling8, wantExit: 75, wantHeld: g8,
					wantStderr: "another runner saved first"},
				{name: "stale record", held: g9, replaces: rev(g7), record: g8, wantExit: 75, wantHeld: g9},
				{name: "none over a record", held: g7, replaces: "none", record: g8, wantExit: 75, wantHeld: g7},
				{name: "legacy record", held: legacy, replaces: "legacy", record: g8, wantHeld: g8},
				{name: "none over a legacy record", held: legacy, replaces: "none", record: g8, wantExit: 75, wantHeld: legacy},
				{name: "not a record", held: "hello\n", replaces: "none", record: g8, wantExit: 1, wantHeld: "hello\n",
					wantStderr: "not a token store record"},
				{name: "another runner writes between read and write", held: g7, interleave: sibling8, replaces: rev(g7),
					record: g8, wantExit: 75, wantHeld: sibling8},
				{name: "another runner creates between read and write", interleave: g7, replaces: "none", record: sibling8,
					wantExit: 75, wantHeld: g7},
				{name: "write landed, answer lost", held: g7, faults: []string{envFakeCLIFailAfter + "=" + failAfter[kind]},
					replaces: rev(g7), record: g8, wantHeld: g8},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					h := newStoreHelper(t, kind)
					if tt.held != "" {
						h.store(helperKey, tt.held)
					}
					if tt.interleave != "" {
						h.cli.interleave(tt.interleave)
					}
					r := h.put(tt.faults, tt.replaces, tt.record)
					if r.exit != tt.wantExit {
						t.Errorf("exit status: got %d; want %d (stderr: %s)", r.exit, tt.wantExit, r.stderr)
					}
					if r.stdout != "" {
						t.Errorf("stdout: got %q; want nothing", r.stdout)
					}
					if !strings.Contains(r.stderr, tt.wantStderr) {
						t.Errorf("stderr: got %q; want it to contain %q", r.stderr, tt.wantStderr)
					}
					if got, _ := h.entry(); strings.TrimSpace(got) != strings.TrimSpace(tt.wantHeld) {
						t.Errorf("entry after the put: got %.40q…; want %.40q…", got, tt.wantHeld)
					}
				})
			}
		})
	}
}

// TestExamples_storeHelpers_retryOfPartialPut covers a put that failed after the service kept part of it: Secrets
// Manager has the new version but AWSCURRENT did not move. The provider seals each try afresh, so the retry carries
// other bytes of the same record; it must finish the put, not fail on the version that exists, and a put by another
// runner meanwhile must still win.
func TestExamples_storeHelpers_retryOfPartialPut(t *testing.T) {
	t.Parallel()
	key := tokenstore.Key(helperKey)
	rec := func(gen int64) *tokenstore.Record {
		return &tokenstore.Record{RefreshToken: "rt", Generation: gen, ID: tokenstore.NewRecordID()}
	}
	seal := func(r *tokenstore.Record) string {
		env, err := tokenstore.Seal(key, "seed-for-helper-tests", r)
		if err != nil {
			t.Fatal(err)
		}
		return string(env)
	}
	g7, g8 := rec(7), rec(8)
	for _, another := range []bool{false, true} {
		t.Run(fmt.Sprintf("another runner first %t", another), func(t *testing.T) {
			t.Parallel()
			h := newStoreHelper(t, "aws")
			h.store(helperKey, seal(g7))
			// The service took the new version, then refused to move AWSCURRENT.
			partial := h.put([]string{envFakeCLIFailAfter + "=put-secret-value"}, revisionOf(t, seal(g7)), seal(g8))
			if partial.exit != 1 {
				t.Fatalf("put whose version landed but whose label did not move: exit %d; want 1 (stderr %q)", partial.exit, partial.stderr)
			}
			want := seal(g8)
			if another {
				want = seal(rec(8))
				if r := h.put(nil, revisionOf(t, seal(g7)), want); r.exit != 0 {
					t.Fatalf("the other runner's put: exit %d, stderr %q", r.exit, r.stderr)
				}
			}
			wantExit := map[bool]int{false: 0, true: 75}[another]
			if r := h.put(nil, revisionOf(t, seal(g7)), seal(g8)); r.exit != wantExit {
				t.Fatalf("retry with a fresh sealing: exit %d; want %d (stderr %q)", r.exit, wantExit, r.stderr)
			}
			if got, _ := h.entry(); revisionOf(t, got) != revisionOf(t, want) {
				t.Errorf("entry: got revision %s; want %s", revisionOf(t, got), revisionOf(t, want))
			}
		})
	}
}

// TestExamples_storeHelpers_race runs puts of eight runners at once, each replacing the same record with one of its
// own (the heads of a forked chain): exactly one succeeds, every other exits 75, and the entry holds the winner's.
func TestExamples_storeHelpers_race(t *testing.T) {
	t.Parallel()
	const runners = 8
	for _, kind := range storeHelperKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			h := newStoreHelper(t, kind)
			base := sealedRecord(t, 7)
			h.store(helperKey, base)
			records, revisions := make([]string, runners), make([]string, runners)
			for i := range records {
				records[i] = sealedRecord(t, 8)
				revisions[i] = revisionOf(t, records[i])
			}
			replaces := revisionOf(t, base)
			results := make([]helperRun, runners)
			var wg sync.WaitGroup
			for i := range runners {
				wg.Go(func() { results[i] = h.putRevision(nil, replaces, records[i], revisions[i]) })
			}
			wg.Wait()
			winner := -1
			for i, r := range results {
				switch r.exit {
				case 0:
					if winner >= 0 {
						t.Errorf("runners %d and %d both saved; want one", winner, i)
					}
					winner = i
				case 75:
				default:
					t.Errorf("runner %d: exit %d (stderr %q); want 0 or 75", i, r.exit, r.stderr)
				}
			}
			if winner < 0 {
				t.Fatal("no runner saved; want one")
			}
			if got, _ := h.entry(); strings.TrimSpace(got) != strings.TrimSpace(records[winner]) {
				t.Errorf("entry: got revision %s; want the winner's %s", revisionOf(t, got), revisionOf(t, records[winner]))
			}
		})
	}
}

// helperStore opens the provider's command store on a helper at protocol 2, with a lock directory of its own: each
// store is one machine.
func helperStore(t *testing.T, h *storeHelper, faults ...string) tokenstore.Store {
	t.Helper()
	st, err := tokenstore.NewCommand(tokenstore.CommandConfig{Argv: h.argv(faults), Protocol: tokenstore.ProtocolConditional,
		LockDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

const helperSeed = "def50200helperstoreseed-0123456789abcdef0123456789abcdef"

func helperChainKey() tokenstore.Key {
	return tokenstore.KeyFor("https://acme-api.bipsync.com/v1/oauth/token", testClientID, helperSeed)
}

func saveUnderLock(t *testing.T, st tokenstore.Store, rec *tokenstore.Record, replaces *tokenstore.Revision) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	unlock, err := st.Lock(ctx, helperChainKey())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := unlock(); err != nil {
			t.Errorf("unlock: %v", err)
		}
	}()
	return st.Save(ctx, helperChainKey(), helperSeed, rec, replaces)
}

func loadHelperRecord(t *testing.T, st tokenstore.Store) *tokenstore.Record {
	t.Helper()
	rec, err := st.Load(context.Background(), helperChainKey(), helperSeed)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestExamples_storeHelpers_commandStore drives each helper through the provider's command store at protocol 2, as two
// machines sharing one secret: both load one record and save the next (a forked chain, or two runners' exchanges);
// the second save is refused with a conflict and the first stays; a stale save is refused; repeating a save that
// landed succeeds; and a record that could not be saved is put back from its rescue file only in place of the record
// it replaced.
func TestExamples_storeHelpers_commandStore(t *testing.T) {
	t.Parallel()
	for _, kind := range storeHelperKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			h := newStoreHelper(t, kind)
			machineA, machineB := helperStore(t, h), helperStore(t, h)
			if got := loadHelperRecord(t, machineA); got != nil {
				t.Fatalf("load before any save: got %v; want no record", got)
			}
			g0 := &tokenstore.Record{RefreshToken: "seed", Generation: 0, ID: tokenstore.NewRecordID()}
			if err := saveUnderLock(t, machineA, g0, nil); err != nil {
				t.Fatalf("first save: %v", err)
			}
			loadedA, loadedB := loadHelperRecord(t, machineA), loadHelperRecord(t, machineB)
			if loadedA == nil || loadedB == nil || loadedA.ID != g0.ID || loadedB.ID != g0.ID {
				t.Fatalf("both machines load: got %v and %v; want generation 0", loadedA, loadedB)
			}
			nextA := &tokenstore.Record{RefreshToken: "head-a", Generation: 1, ID: tokenstore.NewRecordID()}
			nextB := &tokenstore.Record{RefreshToken: "head-b", Generation: 1, ID: tokenstore.NewRecordID()}
			if err := saveUnderLock(t, machineA, nextA, loadedA.Revision().Ptr()); err != nil {
				t.Fatalf("machine A's save: %v", err)
			}
			if err := saveUnderLock(t, machineB, nextB, loadedB.Revision().Ptr()); !errors.Is(err, tokenstore.ErrConflict) {
				t.Fatalf("machine B's save of the fork's other head: got %v; want ErrConflict", err)
			}
			if got := loadHelperRecord(t, machineB); got.RefreshToken != "head-a" {
				t.Fatalf("after the race: got head %q; want machine A's", got.RefreshToken)
			}
			if err := saveUnderLock(t, machineA, nextA, loadedA.Revision().Ptr()); err != nil {
				t.Errorf("repeating a save that landed: got %v; want nil", err)
			}
			stale := &tokenstore.Record{RefreshToken: "stale", Generation: 0, ID: tokenstore.NewRecordID()}
			if err := saveUnderLock(t, machineB, stale, nil); !errors.Is(err, tokenstore.ErrConflict) {
				t.Errorf("a save in place of no record over generation 1: got %v; want ErrConflict", err)
			}

			// A save that failed leaves a rescue file; restore puts it back once the store works, and only in place of
			// the record the failed save replaced.
			next2 := &tokenstore.Record{RefreshToken: "head-2", Generation: 2, ID: tokenstore.NewRecordID()}
			rescueDir := t.TempDir()
			broken := helperStore(t, h, envFakeCLIFail+"=503")
			if kind == "aws" {
				broken = helperStore(t, h, envFakeCLIFail+"=ServiceUnavailable")
			}
			if err := saveUnderLock(t, broken, next2, nextA.Revision().Ptr()); err == nil || errors.Is(err, tokenstore.ErrConflict) {
				t.Fatalf("save while the service fails: got %v; want a failure", err)
			}
			path, err := tokenstore.WriteRescue(rescueDir, broken, helperChainKey(), helperSeed, next2, nextA.Revision().Ptr())
			if err != nil {
				t.Fatal(err)
			}
			rescue, err := tokenstore.ReadRescue(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := tokenstore.Restore(context.Background(), machineB, rescue); err != nil {
				t.Fatalf("restore: got %v; want the rescued record saved", err)
			}
			if got := loadHelperRecord(t, machineA); got.RefreshToken != "head-2" {
				t.Fatalf("after the restore: got head %q; want the rescued one", got.RefreshToken)
			}
			if err := tokenstore.Restore(context.Background(), machineB, rescue); err != nil {
				t.Errorf("restoring again: got %v; want nil (the store holds the rescued record)", err)
			}
			next3 := &tokenstore.Record{RefreshToken: "head-3", Generation: 3, ID: tokenstore.NewRecordID()}
			if err := saveUnderLock(t, machineA, next3, next2.Revision().Ptr()); err != nil {
				t.Fatal(err)
			}
			if err := tokenstore.Restore(context.Background(), machineB, rescue); !errors.Is(err, tokenstore.ErrConflict) {
				t.Errorf("restoring a stale rescue: got %v; want ErrConflict", err)
			}
			if got := loadHelperRecord(t, machineA); got.RefreshToken != "head-3" {
				t.Errorf("after a stale restore: got head %q; want generation 3 kept", got.RefreshToken)
			}
		})
	}
}

// legacyEnvelope seals rec as providers did before records had IDs (bts1: no clear header, the chain key alone as
// additional data), so that the tests can hand a helper a record an older provider left.
func legacyEnvelope(t *testing.T, key tokenstore.Key, seed string, rec *tokenstore.Record) string {
	t.Helper()
	plain, err := json.Marshal(map[string]any{
		"v": 1, "refresh_token": rec.RefreshToken, "refresh_token_issued_at": rec.RefreshTokenIssuedAt,
		"access_token": rec.AccessToken, "token_type": rec.TokenType, "access_token_expires_at": rec.AccessTokenExpiresAt,
		"scopes": rec.Scopes, "rotated_at": rec.RotatedAt, "generation": rec.Generation,
	})
	if err != nil {
		t.Fatal(err)
	}
	salt, nonce := make([]byte, 16), make([]byte, 12)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(nonce)
	k, err := hkdf.Key(sha256.New, []byte(seed), salt, "terraform-provider-bipsync token store v1"+string(key), 32)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding
	ct := g.Seal(nil, nonce, plain, []byte(key))
	return "bts1." + b64.EncodeToString(salt) + "." + b64.EncodeToString(nonce) + "." + b64.EncodeToString(ct) + "\n"
}

// TestExamples_storeHelpers_legacyRecord gives each helper an entry an older provider wrote (bts1, no revision in
// clear): the command store reads it as the legacy revision, and its save replaces it through the helper; a save that
// expects no record is refused.
func TestExamples_storeHelpers_legacyRecord(t *testing.T) {
	t.Parallel()
	for _, kind := range storeHelperKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			h := newStoreHelper(t, kind)
			h.store(string(helperChainKey()), legacyEnvelope(t, helperChainKey(), helperSeed,
				&tokenstore.Record{RefreshToken: "old-head", TokenType: "Bearer", Generation: 12}))
			st := helperStore(t, h)
			old := loadHelperRecord(t, st)
			if old == nil || old.RefreshToken != "old-head" || old.Revision().Ptr().String() != "legacy" {
				t.Fatalf("load: got %v; want the legacy record", old)
			}
			next := &tokenstore.Record{RefreshToken: "new-head", Generation: 13, ID: tokenstore.NewRecordID()}
			if err := saveUnderLock(t, st, next, nil); !errors.Is(err, tokenstore.ErrConflict) {
				t.Errorf("a save in place of no record over the legacy one: got %v; want ErrConflict", err)
			}
			if err := saveUnderLock(t, st, next, old.Revision().Ptr()); err != nil {
				t.Fatalf("save in place of the legacy record: %v", err)
			}
			if got := loadHelperRecord(t, st); got.RefreshToken != "new-head" || got.ID != next.ID {
				t.Errorf("after the save: got %v; want the new record", got)
			}
		})
	}
}

// TestExamples_storeHelperVault_deletedEntry: a person who deletes the entry's current version (vault kv delete) to
// start the chain over gets no record from get, and the first save of the new chain succeeds over the deleted version.
func TestExamples_storeHelperVault_deletedEntry(t *testing.T) {
	t.Parallel()
	h := newStoreHelper(t, "vault")
	h.store(helperKey, sealedRecord(t, 4))
	if err := fakeVaultDelete(h.cli.dir, "secret", "terraform-provider-bipsync/"+helperKey); err != nil {
		t.Fatal(err)
	}
	if r := h.run(nil, nil, "", "get", helperKey); r.exit != 0 || r.stdout != "" {
		t.Fatalf("get of a deleted entry: exit %d, stdout %q; want 0 and nothing", r.exit, r.stdout)
	}
	g0 := sealedRecord(t, 0)
	if r := h.put(nil, "none", g0); r.exit != 0 {
		t.Fatalf("first put after the delete: exit %d, stderr %q", r.exit, r.stderr)
	}
	if got, _ := h.entry(); strings.TrimSpace(got) != strings.TrimSpace(g0) {
		t.Errorf("entry: got revision %s; want %s", revisionOf(t, got), revisionOf(t, g0))
	}
}

// TestFakeCLIs_contract checks the stand-ins themselves on the service behaviour the helpers rely on, so that a broken
// stand-in cannot make a broken helper look right: Secrets Manager refuses to move AWSCURRENT from a version that no
// longer has it, moves it on a put without staging labels, keeps it on a put with a label of its own, and takes a
// repeated client request token only with the same value; Vault refuses a check-and-set write whose version is not the
// current one, and -cas=0 once the entry exists.
func TestFakeCLIs_contract(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("the stand-ins run as POSIX programs on PATH")
	}
	run := func(t *testing.T, c *fakeCLI, stdin string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(c.bin, c.kind), args...)
		cmd.Env = append(os.Environ(), c.env()...)
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), stdout.String(), stderr.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, stdout.String(), stderr.String()
	}
	t.Run("aws", func(t *testing.T) {
		t.Parallel()
		c := newFakeCLI(t, "aws")
		sm := func(args ...string) (int, string, string) {
			return run(t, c, "", append([]string{"secretsmanager"}, args...)...)
		}
		current := func() string {
			_, out, _ := sm("get-secret-value", "--secret-id", "s", "--query", "VersionId", "--output", "text")
			return strings.TrimSpace(out)
		}
		const v1, v2, v3 = "11111111111111111111111111111111", "22222222222222222222222222222222", "33333333333333333333333333333333"
		if code, _, stderr := sm("get-secret-value", "--secret-id", "s", "--query", "SecretString", "--output", "text"); code != 254 ||
			!strings.Contains(stderr, "ResourceNotFoundException") {
			t.Errorf("get of a missing secret: got %d %q; want 254 and ResourceNotFoundException", code, stderr)
		}
		if code, _, stderr := sm("create-secret", "--name", "s", "--secret-string", "one", "--client-request-token", v1); code != 0 {
			t.Fatalf("create: %d %s", code, stderr)
		}
		if code, _, stderr := sm("create-secret", "--name", "s", "--secret-string", "again"); code != 254 || !strings.Contains(stderr, "ResourceExistsException") {
			t.Errorf("second create: got %d %q; want ResourceExistsException", code, stderr)
		}
		sm("put-secret-value", "--secret-id", "s", "--secret-string", "two", "--client-request-token", v2, "--version-stages", "MINE")
		if got := current(); got != v1 {
			t.Errorf("put with a label of its own: AWSCURRENT on %s; want it left on %s", got, v1)
		}
		if code, _, stderr := sm("put-secret-value", "--secret-id", "s", "--secret-string", "other", "--client-request-token", v2, "--version-stages", "MINE"); code != 254 ||
			!strings.Contains(stderr, "ResourceExistsException") {
			t.Errorf("a token again with another value: got %d %q; want ResourceExistsException", code, stderr)
		}
		if code, _, _ := sm("put-secret-value", "--secret-id", "s", "--secret-string", "two", "--client-request-token", v2, "--version-stages", "MINE"); code != 0 {
			t.Errorf("a token again with the same value: got %d; want 0 (ignored)", code)
		}
		sm("put-secret-value", "--secret-id", "s", "--secret-string", "three", "--client-request-token", v3)
		if got := current(); got != v3 {
			t.Errorf("put without labels: AWSCURRENT on %s; want it moved to %s", got, v3)
		}
		if code, _, stderr := sm("update-secret-version-stage", "--secret-id", "s", "--version-stage", "AWSCURRENT",
			"--move-to-version-id", v2, "--remove-from-version-id", v1); code != 254 || !strings.Contains(stderr, "InvalidParameterException") {
			t.Errorf("moving AWSCURRENT from a version that lost it: got %d %q; want InvalidParameterException", code, stderr)
		}
		if got := current(); got != v3 {
			t.Errorf("after a refused move: AWSCURRENT on %s; want %s", got, v3)
		}
		if code, _, stderr := sm("update-secret-version-stage", "--secret-id", "s", "--version-stage", "AWSCURRENT",
			"--move-to-version-id", v2, "--remove-from-version-id", v3); code != 0 || current() != v2 {
			t.Errorf("moving AWSCURRENT from its version: got %d %q, current %s; want it on %s", code, stderr, current(), v2)
		}
		if code, _, _ := sm("put-secret-value", "--secret-id", "s", "--secret-string", "x", "--client-request-token", "short"); code != 252 {
			t.Errorf("a client request token under 32 characters: got %d; want 252 (the CLI's own validation)", code)
		}
	})
	t.Run("vault", func(t *testing.T) {
		t.Parallel()
		c := newFakeCLI(t, "vault")
		v := func(stdin string, args ...string) (int, string, string) { return run(t, c, stdin, args...) }
		if code, _, stderr := v("", "read", "-field=current_version", "secret/metadata/p"); code != 2 || !strings.HasPrefix(stderr, "No value found at secret/metadata/p") {
			t.Errorf("metadata of a missing entry: got %d %q; want 2 and No value found", code, stderr)
		}
		if code, _, stderr := v("one", "kv", "put", "-mount=secret", "-cas=0", "p", "record=-"); code != 0 {
			t.Fatalf("first put with -cas=0: %d %s", code, stderr)
		}
		if code, _, stderr := v("two", "kv", "put", "-mount=secret", "-cas=0", "p", "record=-"); code != 2 ||
			!strings.Contains(stderr, "check-and-set parameter did not match the current version") {
			t.Errorf("-cas=0 over an entry: got %d %q; want the check-and-set refusal", code, stderr)
		}
		if code, _, _ := v("two", "kv", "put", "-mount=secret", "-cas=1", "p", "record=-"); code != 0 {
			t.Errorf("-cas=1 over version 1: got %d; want 0", code)
		}
		if code, _, _ := v("three", "kv", "put", "-mount=secret", "-cas=1", "p", "record=-"); code != 2 {
			t.Errorf("-cas=1 over version 2: got %d; want 2", code)
		}
		if _, out, _ := v("", "read", "-field=current_version", "secret/metadata/p"); out != "2" {
			t.Errorf("current_version: got %q; want 2", out)
		}
		if _, out, _ := v("", "kv", "get", "-mount=secret", "-version=1", "-field=record", "p"); out != "one" {
			t.Errorf("version 1: got %q; want one, without a newline", out)
		}
		if code, _, stderr := v("", "kv", "get", "-mount=secret", "-field=nothing", "p"); code != 1 || !strings.Contains(stderr, "not present") {
			t.Errorf("a missing field: got %d %q; want 1", code, stderr)
		}
	})
}

// hclList writes a list of strings as an HCL tuple (JSON's syntax for it is HCL's too).
func hclList(items []string) string {
	b, err := json.Marshal(items)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// helperEngineCase is a helper run end to end through the engine.
type helperEngineCase struct {
	kind     string
	protocol string   // token_store.command_protocol
	options  []string // the helper's own options
	entry    func(h *storeHelper, key tokenstore.Key) (string, bool)
}

// runHelperThroughEngine runs a helper as the provider's command store, end to end: the first plan and apply exchange
// the chain once and save it through the helper, a second run reuses the stored token, and the entry holds only the
// encrypted record, of the chain's latest revision. It returns the stand-in's call log.
func runHelperThroughEngine(t *testing.T, c helperEngineCase) []string {
	t.Helper()
	f := newFixture(t)
	h := newStoreHelper(t, c.kind)
	seed := f.seed()
	config := fmt.Sprintf(`
provider "bipsync" {
  base_url      = %q
  client_id     = %q
  client_secret = %q
  token_store {
    backend          = "command"
    command          = %s
    command_protocol = %q
  }
}

ephemeral "bipsync_access_token" "api" {
  refresh_token = %q
}

provider "echo" {
  data = ephemeral.bipsync_access_token.api
}

resource "echo" "token" {}
`, f.baseURL, testClientID, testClientSecret, hclList(h.argv(nil, c.options...)), c.protocol, seed)

	var accessToken string
	captureToken := statecheck.ExpectKnownValue("echo.token", tfjsonpath.New("data").AtMapKey("access_token"),
		acctest.Capture(&accessToken))
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f.factories(),
		PreCheck:                 f.ledger.Reset,
		Steps: []resource.TestStep{
			{Config: config, ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.token"), captureToken}},
			{
				PreConfig:         f.ledger.Expect(1, "first plan and apply, chain kept by the "+c.kind+" helper"),
				Config:            config,
				ConfigStateChecks: []statecheck.StateCheck{f.echoToken("echo.token")},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			f.ledger.Expect(0, "second run and destroy, token reused from the "+c.kind+" helper")()
			return nil
		},
	})

	key := tokenstore.KeyFor(f.baseURL+bipsync.TokenPath, testClientID, seed)
	record, ok := c.entry(h, key)
	if !ok {
		t.Fatalf("the %s stand-in holds no entry for the chain under the configured names", c.kind)
	}
	if !strings.HasPrefix(record, "bts2.") {
		t.Errorf("entry: got %.12q…; want an encrypted record (bts2.…)", record)
	}
	for name, secret := range map[string]string{"the seed": seed, "the access token": accessToken} {
		if secret == "" || strings.Contains(record, secret) {
			t.Errorf("entry holds %s in clear; want only the encrypted record", name)
		}
	}
	if refreshTokenShape.MatchString(record) {
		t.Errorf("entry holds a refresh token in clear; want only the encrypted record")
	}
	st, err := tokenstore.NewCommand(tokenstore.CommandConfig{Argv: h.argv(nil, c.options...), LockDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.Load(context.Background(), key, seed)
	if err != nil || rec == nil {
		t.Fatalf("loading the chain through the helper: got %v, %v; want its record", rec, err)
	}
	if rec.Generation != 1 || rec.RefreshToken == seed {
		t.Errorf("the stored record: got generation %d; want the one exchange's record (generation 1)", rec.Generation)
	}
	return h.cli.calls()
}

// TestAccExamples_storeHelperAWS runs the guide's AWS Secrets Manager helper as the provider's command store, at both
// protocol levels, with a prefix of its own.
func TestAccExamples_storeHelperAWS(t *testing.T) {
	t.Parallel()
	entry := func(h *storeHelper, key tokenstore.Key) (string, bool) {
		v, ok, err := fakeAWSCurrent(h.cli.dir, "ci/bipsync/"+string(key))
		if err != nil {
			t.Fatal(err)
		}
		return v, ok
	}
	for _, protocol := range []string{"1", "2"} {
		t.Run("protocol "+protocol, func(t *testing.T) {
			t.Parallel()
			calls := runHelperThroughEngine(t, helperEngineCase{kind: "aws", protocol: protocol,
				options: []string{"--prefix=ci/bipsync/"}, entry: entry})
			if n := strings.Count(strings.Join(calls, "\n"), "create-secret"); n != 1 {
				t.Errorf("create-secret calls: got %d; want 1\ncalls:\n%s", n, strings.Join(calls, "\n"))
			}
			// The provider says what each put replaces at both levels, so the helper's puts after the first are
			// conditional at both: a new version, then AWSCURRENT moved to it.
			if moves := strings.Count(strings.Join(calls, "\n"), "update-secret-version-stage"); moves == 0 {
				t.Errorf("label moves: got none; want the puts after the first to move AWSCURRENT\ncalls:\n%s",
					strings.Join(calls, "\n"))
			}
		})
	}
}

// TestAccExamples_storeHelperVault runs the guide's Vault KV v2 helper as the provider's command store at protocol 2,
// on a mount of its own.
func TestAccExamples_storeHelperVault(t *testing.T) {
	t.Parallel()
	calls := runHelperThroughEngine(t, helperEngineCase{kind: "vault", protocol: "2", options: []string{"--mount=kv"},
		entry: func(h *storeHelper, key tokenstore.Key) (string, bool) {
			v, ok, err := fakeVaultCurrent(h.cli.dir, "kv", "terraform-provider-bipsync/"+string(key))
			if err != nil {
				t.Fatal(err)
			}
			return v, ok
		}})
	if !slices.Contains(calls, "kv put") {
		t.Errorf("calls: got %v; want kv put", calls)
	}
}

// TestExamples_storeHelperAWS_prefixFromEnvironment: the AWS helper's BIPSYNC_STORE_PREFIX, which earlier versions of
// the guide documented, reaches it through the command store (the helpers' own BIPSYNC_STORE_* namespace is not
// scrubbed with the provider's secrets), so an existing set-up finds its secrets under the same names.
func TestExamples_storeHelperAWS_prefixFromEnvironment(t *testing.T) { // not parallel: it sets the environment
	h := newStoreHelper(t, "aws")
	st, err := tokenstore.NewCommand(tokenstore.CommandConfig{Argv: h.argv(nil), LockDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("BIPSYNC_STORE_PREFIX", "team-a/bipsync/")
	rec := &tokenstore.Record{RefreshToken: "def50200aa", ID: tokenstore.NewRecordID()}
	if err := saveUnderLock(t, st, rec, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := fakeAWSCurrent(h.cli.dir, "team-a/bipsync/"+string(helperChainKey())); err != nil || !ok {
		t.Fatalf("secret under the prefix from BIPSYNC_STORE_PREFIX: got (found %t, %v); want it there", ok, err)
	}
}
