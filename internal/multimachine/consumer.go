package multimachine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// ConsumeMode is the runner's first argument for a consumer.
const ConsumeMode = "consume"

// TokenEnv carries the handed-out access token into a consumer: the provisioner's environment block sets it from the
// ephemeral resource, so the token never appears on a command line or in a file.
const TokenEnv = "MULTIMACHINE_TOKEN"

// consumerTimeout bounds the consumer's one call.
const consumerTimeout = time.Minute

// Use is what one consumer saw when it used its token. It never holds the token.
type Use struct {
	// Status of GET /v1/me with the token: 200 when the token was live, 401 when it was not; 0 when the call failed
	// (Error says why).
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
	// Started and Used are fake times: when the consumer started (right after the hand-out) and when it used the token.
	Started time.Time `json:"started"`
	Used    time.Time `json:"used"`
}

// RunConsumer is a consumer of a handed-out token: args are RESULT BASEURL USEAFTER. It waits until USEAFTER (a Go
// duration, fake time) has passed since it started, calls GET BASEURL/v1/me with the token in TokenEnv, and appends
// the Use as one JSON line to the file RESULT. It returns the exit status: 0 whenever the Use was recorded, whatever
// the server said, so that the harness, not the engine, judges it.
func RunConsumer(args []string, stderr io.Writer, getenv func(string) string) int {
	if len(args) != 3 {
		fmt.Fprintf(stderr, "usage: %s RESULT BASEURL USEAFTER\n", ConsumeMode)
		return 2
	}
	result, baseURL := args[0], args[1]
	useAfter, err := time.ParseDuration(args[2])
	if err != nil {
		fmt.Fprintln(stderr, "consumer: USEAFTER:", err)
		return 2
	}
	clock, err := ReadClockFile(getenv(ClockFileEnv))
	if err != nil {
		fmt.Fprintln(stderr, "consumer:", err)
		return 1
	}
	u := Use{Started: clock.Now()}
	for {
		left := useAfter - clock.Now().Sub(u.Started)
		if left <= 0 {
			break
		}
		time.Sleep(clock.Real(left) + time.Millisecond)
	}
	u.Used = clock.Now()
	u.Status, err = callMe(baseURL, getenv(TokenEnv))
	if err != nil {
		u.Error = err.Error()
	}
	line, err := json.Marshal(u)
	if err == nil {
		err = appendLine(result, line)
	}
	if err != nil {
		fmt.Fprintln(stderr, "consumer: record the use:", err)
		return 1
	}
	return 0
}

func callMe(baseURL, token string) (int, error) {
	if token == "" {
		return 0, fmt.Errorf("no token in %s", TokenEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), consumerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+bipsynctest.ProtectedPath, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func appendLine(path string, line []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
