package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
)

// CommandRunner runs a command store's helper in place of exec, so that the real command store code runs against an
// in-process helper: the chain simulation (internal/chainsim) and tests use it. args are the helper's arguments after
// Argv[0] (Argv's fixed ones, then the operation and the key), env the environment the helper would get (scrubbed as
// for a real one, with the protocol's variables), stdin its input (nil for get). It returns what the helper printed on
// stdout and its exit status; err is a failure to run it at all, such as a timeout.
type CommandRunner func(ctx context.Context, args []string, env []string, stdin []byte) (stdout []byte, exitCode int, err error)

// exitStatusError is a nonzero exit status reported by a CommandRunner.
type exitStatusError struct{ code int }

func (e *exitStatusError) Error() string { return "exit status " + strconv.Itoa(e.code) }

// helperExitCode returns the exit status a helper run failed with (exec's or a CommandRunner's), or -1.
func helperExitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	var se *exitStatusError
	if errors.As(err, &se) {
		return se.code
	}
	return -1
}

// runWith is run through s.runner: the same arguments, environment, bound and error wording as an exec'd helper.
func (s *commandStore) runWith(ctx context.Context, op string, key Key, stdin []byte, extraEnv []string) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	args := slices.Concat(s.argv[1:], []string{op, string(key)})
	env := helperEnv(s.environ(), op, append([]string{EnvStoreProtocol + "=" + strconv.Itoa(s.protocol)}, extraEnv...))
	out, code, err := s.runner(rctx, args, env, stdin)
	what := fmt.Sprintf("token store command %q %s", s.argv[0], op)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("%s: %w", what, context.Cause(ctx))
	case err != nil:
		return nil, fmt.Errorf("%s: %w", what, err)
	case code != 0:
		return nil, fmt.Errorf("%s failed: %w", what, &exitStatusError{code: code})
	case len(out) > maxEnvelope:
		return nil, fmt.Errorf("%s printed more than %d bytes, more than any record; check the helper", what, maxEnvelope)
	}
	return out, nil
}
