package provider

import (
	"bytes"
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
