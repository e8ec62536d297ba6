package tokenstore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// commandTimeout bounds one helper run when the caller's context does not bound it sooner; a secret
	// manager that hangs must not hang Terraform with a chain lock held.
	commandTimeout = 60 * time.Second
	// commandWaitDelay bounds the wait for a helper's pipes after it exits or is killed, in case it left a
	// child holding them.
	commandWaitDelay = 5 * time.Second
	// stderrQuote is how much of a failing helper's stderr an error quotes.
	stderrQuote = 512
)

// Command helper protocol levels.
const (
	// ProtocolGetPut is level 1: `get KEY` and `put KEY`, with no check at the helper. The provider reads the entry
	// before it writes, which keeps a stale record from replacing a newer one unless a runner on another machine writes
	// between that read and the write.
	ProtocolGetPut = 1
	// ProtocolConditional is level 2: `put KEY` writes only when the entry still holds the revision in
	// BIPSYNC_STORE_REPLACES (checked with the secret manager's own conditional write), and exits with
	// ExitConflict otherwise.
	ProtocolConditional = 2
)

// ExitConflict is the exit status with which a protocol-2 helper says "the entry holds another record than the one
// this put replaces": another runner saved first. Chosen from the sysexits range (EX_TEMPFAIL) so that it does not
// collide with the statuses of the usual CLIs a helper wraps.
const ExitConflict = 75

// Environment variables a helper receives.
const (
	// EnvStoreOperation is "get" or "put", as the first argument after the fixed ones.
	EnvStoreOperation = "BIPSYNC_STORE_OPERATION"
	// EnvStoreReplaces (put) is the revision the put replaces: "<generation>.<id>", "legacy" for an entry written
	// before records had IDs (an envelope starting bts1.), or "none" when the entry must not exist.
	EnvStoreReplaces = "BIPSYNC_STORE_REPLACES"
	// EnvStoreRevision (put) is the revision of the record on stdin, the same as its header's second and third
	// dot-separated fields. An entry that already holds it means an earlier put landed: exit 0.
	EnvStoreRevision = "BIPSYNC_STORE_REVISION"
	// EnvStoreProtocol is the protocol level the provider speaks to this helper.
	EnvStoreProtocol = "BIPSYNC_STORE_PROTOCOL"
)

// CommandConfig configures NewCommand.
type CommandConfig struct {
	// Argv is the program and its fixed arguments.
	Argv []string
	// Protocol is ProtocolGetPut (the default, when zero) or ProtocolConditional.
	Protocol int
	// LockDir holds the per-chain lock files; default the user cache directory's terraform-provider-bipsync/locks.
	LockDir string
	// Timeout bounds one helper run when the caller's context does not bound it sooner; 60 s when zero.
	Timeout time.Duration
	// Runner, when set, runs the helper in place of exec (see CommandRunner): for simulations and tests only.
	Runner CommandRunner
}

// commandStore is the store NewCommand returns.
type commandStore struct {
	argv     []string
	protocol int
	lockDir  string
	timeout  time.Duration
	environ  func() []string // the provider's environment, before scrubbing (os.Environ; tests inject)
	runner   CommandRunner   // nil: exec the helper
}

// NewCommand returns a store that keeps records with an external helper, for CI runners whose disk does not
// survive the job. Argv[0] is the program and Argv[1:] fixed arguments; each operation appends its own:
//
//	argv... get KEY   prints the envelope on stdout; empty output and exit 0 mean no record
//	argv... put KEY   reads the envelope on stdin and exits 0 only once it is stored durably
//
// The helper only ever sees sealed envelopes (see Seal), so the secret manager never holds a token in clear, and it
// runs with the provider's environment minus the provider's secrets (see helperEnv). Each run is bounded by the
// caller's context and by 60 s. A failure quotes the program, the exit status and the first 512 bytes of stderr,
// never stdin or stdout.
//
// Lock takes a file lock in a directory of this user's, which serialises processes on this machine only. Runners on
// other machines that share one secret-manager entry are kept apart by conditional saves instead: at protocol 2 the
// helper refuses a put whose BIPSYNC_STORE_REPLACES the entry no longer holds.
func NewCommand(cfg CommandConfig) (Store, error) {
	argv := cfg.Argv
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("token store command is empty")
	}
	if _, err := exec.LookPath(argv[0]); err != nil && cfg.Runner == nil {
		return nil, fmt.Errorf("token store command: %w", err)
	}
	protocol := cfg.Protocol
	switch protocol {
	case 0:
		protocol = ProtocolGetPut
	case ProtocolGetPut, ProtocolConditional:
	default:
		return nil, fmt.Errorf("token store command protocol %d: use %d (get/put) or %d (conditional put)", protocol, ProtocolGetPut, ProtocolConditional)
	}
	lockDir := cfg.LockDir
	if lockDir == "" {
		d, err := cacheSubdir("locks")
		if err != nil {
			return nil, fmt.Errorf("token store command lock directory: %w", err)
		}
		lockDir = d
	}
	return &commandStore{
		argv:     slices.Clone(argv),
		protocol: protocol,
		lockDir:  lockDir,
		timeout:  cmp.Or(cfg.Timeout, commandTimeout),
		environ:  os.Environ,
		runner:   cfg.Runner,
	}, nil
}

func (s *commandStore) Traits() Traits {
	conditional := s.protocol == ProtocolConditional
	return Traits{Persistent: true, AtomicSave: conditional, Claims: conditional}
}

// LoadClaim reads the chain's claim, an entry of its own (ClaimKey) that the helper keeps like any record.
func (s *commandStore) LoadClaim(ctx context.Context, key Key, seed string) (*Claim, error) {
	return loadClaim(ctx, s, key, seed)
}

// PutClaim writes a claim through the helper's conditional put (protocol 2 only: a get/put helper cannot refuse a
// put, so two runners could both believe they hold the claim).
func (s *commandStore) PutClaim(ctx context.Context, key Key, seed string, c, replaces *Claim) error {
	if s.protocol != ProtocolConditional {
		return fmt.Errorf("token store command %q: claims need protocol %d (a conditional put)", s.argv[0], ProtocolConditional)
	}
	return putClaim(ctx, s, key, seed, c, replaces)
}

func (s *commandStore) getEnvelope(ctx context.Context, key Key) ([]byte, error) {
	return s.get(ctx, key)
}

func (s *commandStore) Describe() string {
	// Only the program: fixed arguments may carry a credential of the secret manager.
	return fmt.Sprintf("command store running %q (protocol %d, locks in %s)", s.argv[0], s.protocol, s.lockDir)
}

func (s *commandStore) Lock(ctx context.Context, key Key) (func() error, error) {
	if err := checkKeyCtx(ctx, key); err != nil {
		return nil, err
	}
	// Before anything is exchanged under this lock: a protocol-2 helper must really write conditionally.
	if err := s.checkConditional(ctx); err != nil {
		return nil, err
	}
	// Checked on every Lock, not once: cache cleaners remove idle directories.
	if err := ensurePrivateDir(s.lockDir); err != nil {
		return nil, err
	}
	return lockFile(ctx, filepath.Join(s.lockDir, string(key)+".lock"))
}

func (s *commandStore) Load(ctx context.Context, key Key, seed string) (*Record, error) {
	if err := checkKeyCtx(ctx, key); err != nil {
		return nil, err
	}
	out, err := s.get(ctx, key)
	if out == nil || err != nil {
		return nil, err
	}
	return s.open(key, seed, out)
}

func (s *commandStore) open(key Key, seed string, env []byte) (*Record, error) {
	rec, err := Open(key, seed, env)
	if err != nil {
		return nil, fmt.Errorf("token store command %q get %s: %w; it was not written for this seed or is damaged: move it aside in the secret manager (or delete it), then seed the chain again", s.argv[0], key, err)
	}
	return rec, nil
}

// get runs `get KEY` and returns the envelope, or nil when the helper has no record.
func (s *commandStore) get(ctx context.Context, key Key) ([]byte, error) {
	out, err := s.run(ctx, "get", key, nil, nil)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return nil, nil
	}
	return out, nil
}

func (s *commandStore) Save(ctx context.Context, key Key, seed string, rec *Record, replaces *Revision) error {
	return sealAndPut(ctx, s, key, seed, rec, replaces)
}

func (s *commandStore) putEnvelope(ctx context.Context, key Key, data []byte, next Revision, replaces *Revision) error {
	if err := s.checkConditional(ctx); err != nil {
		return err
	}
	if s.protocol == ProtocolGetPut {
		// The helper cannot check, so the provider reads first. Only a writer on another machine between this read
		// and the put can defeat it; the token source's re-check after a refused exchange is the safety net.
		cur, err := s.get(ctx, key)
		if err != nil {
			return err
		}
		current, err := currentRevision(cur)
		if err != nil {
			return fmt.Errorf("token store command %q get %s: %w; it is left alone: move it aside in the secret manager if you are sure it is dead", s.argv[0], key, err)
		}
		if landed, err := checkReplace(current, replaces, next); landed || err != nil {
			return err // landed: an earlier put of this very record did
		}
	}
	_, err := s.run(ctx, "put", key, data, []string{
		EnvStoreReplaces + "=" + replaces.String(),
		EnvStoreRevision + "=" + next.Ptr().String(),
	})
	if s.protocol == ProtocolConditional && helperExitCode(err) == ExitConflict {
		return &ConflictError{Replaces: replaces}
	}
	return err
}

// helperEnv is the environment a helper runs with: the provider's, minus what carries the provider's secrets, plus
// the operation's variables. Kept: everything a secret manager's CLI needs (its credentials such as AWS_* or VAULT_*,
// HOME, PATH, proxies, CA bundles), and BIPSYNC_STORE_* (the helpers' own namespace, for their settings; the
// protocol's variables in it are the provider's to set). Removed: every other BIPSYNC_* (the provider's settings,
// among them the client secret and the seed), TF_VAR_* (input variables, which may carry the seed), TF_CLI_ARGS*
// (which may carry -var values) and TF_TOKEN_* (the engine's registry credentials). The seed is the key of the
// envelopes the helper stores, so a helper that could read it could read the records.
func helperEnv(environ []string, op string, extra []string) []string {
	out := make([]string, 0, len(environ)+len(extra)+2)
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		upper := strings.ToUpper(name) // Windows names are case-insensitive
		switch {
		case strings.HasPrefix(upper, "BIPSYNC_STORE_"):
			if protocolVariable(upper) {
				continue // set below, never inherited
			}
		case strings.HasPrefix(upper, "BIPSYNC_"), strings.HasPrefix(upper, "TF_VAR_"),
			strings.HasPrefix(upper, "TF_CLI_ARGS"), strings.HasPrefix(upper, "TF_TOKEN_"):
			continue
		}
		out = append(out, kv)
	}
	out = append(out, EnvStoreOperation+"="+op)
	return append(out, extra...)
}

// protocolVariable tells whether name is one of the variables the provider sets for a helper.
func protocolVariable(name string) bool {
	switch name {
	case EnvStoreOperation, EnvStoreReplaces, EnvStoreRevision, EnvStoreProtocol:
		return true
	}
	return false
}

// run runs the helper once. Errors name the program, the operation, the exit status and the head of
// stderr; never stdin or stdout, which carry the record.
func (s *commandStore) run(ctx context.Context, op string, key Key, stdin []byte, extraEnv []string) ([]byte, error) {
	if s.runner != nil {
		return s.runWith(ctx, op, key, stdin, extraEnv)
	}
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, s.argv[0], slices.Concat(s.argv[1:], []string{op, string(key)})...)
	cmd.Env = helperEnv(s.environ(), op, append([]string{EnvStoreProtocol + "=" + strconv.Itoa(s.protocol)}, extraEnv...))
	cmd.WaitDelay = commandWaitDelay
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	stdout := &capBuffer{max: maxEnvelope}
	stderr := &capBuffer{max: stderrQuote}
	cmd.Stdout, cmd.Stderr = stdout, stderr

	err := cmd.Run()
	what := fmt.Sprintf("token store command %q %s", s.argv[0], op)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s: %w", what, context.Cause(ctx))
	case rctx.Err() != nil:
		return nil, fmt.Errorf("%s: no answer within %s%s", what, s.timeout, stderrSuffix(stderr.Bytes()))
	default:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("%s failed: %w%s", what, ee, stderrSuffix(stderr.Bytes()))
		}
		// Start failures (not found, not executable) and I/O errors; they mention the program, not the
		// arguments or the data.
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if stdout.overflow {
		return nil, fmt.Errorf("%s printed more than %d bytes, more than any record; check the helper", what, maxEnvelope)
	}
	return stdout.Bytes(), nil
}

// stderrSuffix quotes the head of a helper's stderr. A helper that echoes its input could put the sealed
// record there; envelopes are cut out, since a diagnostic is no place even for ciphertext.
func stderrSuffix(b []byte) string {
	s := strings.TrimSpace(redactEnvelopes(string(b)))
	if s == "" {
		return ""
	}
	return "; stderr: " + strconv.Quote(s)
}

func redactEnvelopes(s string) string {
	var out strings.Builder
	for {
		i := indexEnvelope(s)
		if i < 0 {
			out.WriteString(s)
			return out.String()
		}
		out.WriteString(s[:i])
		out.WriteString("[record redacted]")
		s = s[i+len(envelopePrefix)+1:]
		j := strings.IndexFunc(s, func(r rune) bool { return !isEnvelopeRune(r) })
		if j < 0 {
			return out.String()
		}
		s = s[j:]
	}
}

// indexEnvelope returns the index of the first envelope marker (bts2. or bts1.) in s, or -1.
func indexEnvelope(s string) int {
	i, j := strings.Index(s, envelopePrefix+"."), strings.Index(s, legacyEnvelopePrefix+".")
	if i < 0 || (j >= 0 && j < i) {
		return j
	}
	return i
}

// capBuffer keeps the first max bytes written and swallows the rest, so a chatty helper never blocks on a
// full pipe and never fills memory. The buffer is a field, not embedded: an embedded bytes.Buffer would
// lend capBuffer its ReadFrom, and io.Copy would use that and bypass the cap.
type capBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		b.overflow = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *capBuffer) Bytes() []byte { return b.buf.Bytes() }
