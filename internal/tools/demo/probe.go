package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

const (
	// probeCommand is the sub-command the configuration's provisioners run.
	probeCommand = "probe"
	// probeTokenEnv carries the access token to the probe: the environment
	// of a provisioner is the one place a configuration may hand an
	// ephemeral value to a program without it reaching plan or state.
	probeTokenEnv = "BIPSYNC_ACCESS_TOKEN"
	probeTimeout  = 10 * time.Second
)

// probeResult is what a consumer's call to GET /v1/me got. It holds no token.
type probeResult struct {
	Label    string   `json:"label"`
	Status   int      `json:"status"`
	ClientID string   `json:"client_id,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
	Error    string   `json:"error,omitempty"`
	Hint     string   `json:"hint,omitempty"`
}

// String is the line the probe prints, such as "200 OK for client cli-demo,
// scopes [rest_api:read]".
func (r probeResult) String() string {
	if r.Status == http.StatusOK {
		return fmt.Sprintf("200 OK for client %s, scopes [%s]", r.ClientID, strings.Join(r.Scopes, " "))
	}
	s := fmt.Sprintf("%d %s", r.Status, http.StatusText(r.Status))
	if r.Status == 0 {
		s = "no answer"
	}
	if r.Error != "" {
		s += ": " + r.Error
	}
	if r.Hint != "" {
		s += " (" + r.Hint + ")"
	}
	return s
}

// probeMain is `demo probe [-report FILE] LABEL URL`: GET URL with the bearer
// token from $BIPSYNC_ACCESS_TOKEN, print the outcome, append it to FILE as a
// JSON line, and exit 0 only on 200.
func probeMain(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(probeCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	report := fs.String("report", "", "append the outcome to this file as a JSON line")
	if err := fs.Parse(args); err != nil || fs.NArg() != 2 {
		fmt.Fprintf(stderr, "usage: demo %s [-report FILE] LABEL URL (token in $%s)\n", probeCommand, probeTokenEnv)
		return exitUsage
	}
	label, url := fs.Arg(0), fs.Arg(1)
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()

	res, err := probe(ctx, http.DefaultTransport, url, getenv(probeTokenEnv))
	res.Label = label
	if err != nil {
		fmt.Fprintf(stderr, "probe %s: %v\n", label, err)
	} else {
		fmt.Fprintf(stdout, "%s's access token: GET /v1/me → %s\n", label, res)
	}
	if *report != "" {
		if err := appendReport(*report, res); err != nil {
			fmt.Fprintf(stderr, "probe %s: %v\n", label, err)
			return exitFailed
		}
	}
	if err != nil || res.Status != http.StatusOK {
		return exitFailed
	}
	return 0
}

// probe sends GET url with the bearer token. Redirects are not followed: a
// token goes to the host it was meant for or nowhere.
func probe(ctx context.Context, rt http.RoundTripper, url, token string) (probeResult, error) {
	if token == "" {
		return probeResult{}, errors.New("no access token in $" + probeTokenEnv)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return probeResult{}, fmt.Errorf("build the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		// The transport's errors name the URL, never the header.
		return probeResult{}, fmt.Errorf("call %s: %w", url, err)
	}
	defer resp.Body.Close()
	var body struct {
		ClientID string   `json:"client_id"`
		Scopes   []string `json:"scopes"`
		Error    string   `json:"error"`
		Hint     string   `json:"hint"`
	}
	// Only the fields the demo shows are kept; the raw body is never printed.
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body)
	return probeResult{
		Status:   resp.StatusCode,
		ClientID: body.ClientID,
		Scopes:   body.Scopes,
		Error:    body.Error,
		Hint:     body.Hint,
	}, nil
}

func appendReport(path string, res probeResult) error {
	line, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode the report: %w", err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("open the report: %w", err)
	}
	// One write of one line, so the two consumers, which may run at once,
	// never interleave.
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write the report: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	return nil
}

// readReports returns the probe results in path from line skip on, and the
// number of lines read in all.
func readReports(path string, skip int) ([]probeResult, int, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read the probe reports: %w", err)
	}
	defer f.Close()
	var out []probeResult
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		if n <= skip {
			continue
		}
		var r probeResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, 0, fmt.Errorf("read the probe reports: line %d: %w", n, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("read the probe reports: %w", err)
	}
	return out, n, nil
}
