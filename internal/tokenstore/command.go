package tokenstore

import (
	"bytes"
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

// commandStore is the store NewCommand returns.
type commandStore struct {
	argv    []string
	lockDir string
	timeout time.Duration
	env     []string // nil inherits the environment, which secret-manager CLIs need for their credentials
}

// NewCommand returns a store that keeps records with an external helper, for CI runners whose disk does not
// survive the job. argv[0] is the program and argv[1:] fixed arguments; each operation appends its own:
//
//	argv... get KEY   prints the envelope on stdout; empty output and exit 0 mean no record
//	argv... put KEY   reads the envelope on stdin and exits 0 only once it is stored durably
//
// The helper only ever sees sealed envelopes (see Seal), so the secret manager never holds a token in clear.
// Each run is bounded by the caller's context and by 60 s. A failure quotes the program, the exit status and
// the first 512 bytes of stderr, never stdin or stdout.
//
// Lock takes a file lock in os.TempDir()/terraform-provider-bipsync-locks, which serialises processes on
// this machine only. Serialising runs on different machines that share one secret-manager entry is the
// helper's job (or the pipeline's, for example a CI concurrency group); otherwise two runners may exchange
// one chain at once, and the loser's refresh token is dead.
func NewCommand(argv []string) (Store, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("token store command is empty")
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		return nil, fmt.Errorf("token store command: %w", err)
	}
	return &commandStore{
		argv:    slices.Clone(argv),
		lockDir: filepath.Join(os.TempDir(), appDir+"-locks"),
		timeout: commandTimeout,
	}, nil
}

func (s *commandStore) Kind() string { return "command" }

func (s *commandStore) Describe() string {
	// Only the program: fixed arguments may carry a credential of the secret manager.
	return fmt.Sprintf("command store running %q (locks in %s)", s.argv[0], s.lockDir)
}

func (s *commandStore) Lock(ctx context.Context, key Key) (func() error, error) {
	if err := checkKeyCtx(ctx, key); err != nil {
		return nil, err
	}
	// Checked on every Lock, not once: temp cleaners remove idle directories.
	if err := ensurePrivateDir(s.lockDir); err != nil {
		return nil, err
	}
	return lockFile(ctx, filepath.Join(s.lockDir, string(key)+".lock"))
}

func (s *commandStore) Load(ctx context.Context, key Key, seed string) (*Record, error) {
	if err := checkKeyCtx(ctx, key); err != nil {
		return nil, err
	}
	out, err := s.run(ctx, "get", key, nil)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return nil, nil
	}
	rec, err := Open(key, seed, out)
	if err != nil {
		return nil, fmt.Errorf("token store command %q get %s: %w; it was not written for this seed or is damaged: move it aside in the secret manager (or delete it), then seed the chain again", s.argv[0], key, err)
	}
	return rec, nil
}

func (s *commandStore) Save(ctx context.Context, key Key, seed string, rec *Record) error {
	if err := checkKeyCtx(ctx, key); err != nil {
		return err
	}
	data, err := Seal(key, seed, rec)
	if err != nil {
		return err
	}
	_, err = s.run(ctx, "put", key, data)
	return err
}

// run runs the helper once. Errors name the program, the operation, the exit status and the head of
// stderr; never stdin or stdout, which carry the record.
func (s *commandStore) run(ctx context.Context, op string, key Key, stdin []byte) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, s.argv[0], slices.Concat(s.argv[1:], []string{op, string(key)})...)
	cmd.Env = s.env
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
			return nil, fmt.Errorf("%s failed: %s%s", what, ee.ProcessState, stderrSuffix(stderr.Bytes()))
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
	const marker = envelopePrefix + "."
	var out strings.Builder
	for {
		i := strings.Index(s, marker)
		if i < 0 {
			out.WriteString(s)
			return out.String()
		}
		out.WriteString(s[:i])
		out.WriteString("[record redacted]")
		s = s[i+len(marker):]
		j := strings.IndexFunc(s, func(r rune) bool { return !isEnvelopeRune(r) })
		if j < 0 {
			return out.String()
		}
		s = s[j:]
	}
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
