package bipsynctest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FaultKind says how an injected fault bends the next token request.
type FaultKind int

const (
	// FaultStatus answers Status, Body and Header without processing: nothing is consumed.
	FaultStatus FaultKind = iota
	// FaultCloseBeforeProcessing reads the request, then closes the connection without answering: nothing
	// is consumed.
	FaultCloseBeforeProcessing
	// FaultDropAfterProcessing processes the request fully (a refresh rotates the chain and revokes the old
	// pair), then closes the connection without answering: the client cannot know the outcome.
	FaultDropAfterProcessing
	// FaultDelay sleeps Delay (real time, to outlast a client timeout), then processes normally. When the
	// request's context ends first, the request is dropped unprocessed.
	FaultDelay
	// FaultNonJSON200 answers 200 with an HTML page: nothing is consumed.
	FaultNonJSON200
	// FaultMissingAccessToken200 processes the request (a refresh rotates!) and answers 200 with only
	// token_type and expires_in. A request that fails is answered with its error as usual.
	FaultMissingAccessToken200
	// FaultHugeBody answers 200 with a token-shaped JSON body larger than 1 MiB: nothing is consumed.
	FaultHugeBody
	// FaultRedirect answers 307 to Location (default: the token endpoint itself, so a client that follows
	// redirects makes a real exchange the counters show): nothing is consumed.
	FaultRedirect
	// FaultNoRefreshToken200 processes the request (a refresh rotates, a device code or authorization code is
	// used up) and answers 200 with the access token but no refresh token, as a server does for an application
	// that may not use the refresh token grant. A request that fails is answered with its error as usual.
	FaultNoRefreshToken200
)

var faultNames = [...]string{
	FaultStatus:                "status",
	FaultCloseBeforeProcessing: "close-before-processing",
	FaultDropAfterProcessing:   "drop-after-processing",
	FaultDelay:                 "delay",
	FaultNonJSON200:            "non-json-200",
	FaultMissingAccessToken200: "missing-access-token-200",
	FaultHugeBody:              "huge-body",
	FaultRedirect:              "redirect",
	FaultNoRefreshToken200:     "no-refresh-token-200",
}

// String returns the fault's name as it appears in the request log.
func (k FaultKind) String() string {
	if k >= 0 && int(k) < len(faultNames) {
		return faultNames[k]
	}
	return "fault(" + strconv.Itoa(int(k)) + ")"
}

// Fault is one injected misbehaviour of the token endpoint.
type Fault struct {
	Kind     FaultKind
	Status   int           // FaultStatus; default 500
	Body     string        // FaultStatus: literal body; empty gives league's error body for the status
	Header   http.Header   // extra headers on the answer (e.g. Retry-After), set as spelled
	Delay    time.Duration // FaultDelay
	Location string        // FaultRedirect target
}

// hugeBodySize exceeds the 1 MiB response cap the token client is meant to enforce.
const hugeBodySize = 1<<20 + 64<<10

const nonJSONPage = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>" +
	"<body><p>Please sign in to continue.</p></body></html>\n"

// InjectFault queues f for the next token request. Queued faults are consumed one per request to the token or the
// device authorization endpoint, in order.
func (s *Server) InjectFault(f Fault) {
	s.InjectFaults(1, f)
}

// InjectFaults queues n copies of f.
func (s *Server) InjectFaults(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

func (s *Server) nextFaultLocked() (Fault, bool) {
	if len(s.faults) == 0 {
		return Fault{}, false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	s.stats.FaultsInjected++
	return f, true
}

// answersInstead reports whether the fault answers in place of processing the request.
func (f Fault) answersInstead() bool {
	switch f.Kind {
	case FaultStatus, FaultCloseBeforeProcessing, FaultNonJSON200, FaultHugeBody, FaultRedirect:
		return true
	}
	return false
}

// status is what an answersInstead fault answers; 0 means no answer.
func (f Fault) status() int {
	switch f.Kind {
	case FaultStatus:
		if f.Status == 0 {
			return http.StatusInternalServerError
		}
		return f.Status
	case FaultNonJSON200, FaultHugeBody:
		return http.StatusOK
	case FaultRedirect:
		return http.StatusTemporaryRedirect
	}
	return 0
}

// answer writes an answersInstead fault.
func (f Fault) answer(w http.ResponseWriter) {
	if f.Kind == FaultCloseBeforeProcessing {
		abortConnection(w)
		return
	}
	h := w.Header()
	for k, v := range f.Header {
		h[k] = append([]string(nil), v...)
	}
	status := f.status()
	switch f.Kind {
	case FaultStatus:
		body := f.Body
		if body == "" {
			if e := leagueErrorFor(status); e != nil {
				body = e.body()
			}
		}
		if body != "" && f.Header.Get("Content-Type") == "" {
			setLeagueErrorHeaders(h)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	case FaultNonJSON200:
		if f.Header.Get("Content-Type") == "" {
			h.Set("Content-Type", "text/html; charset=UTF-8")
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(nonJSONPage))
	case FaultHugeBody:
		prefix := `{"token_type":"Bearer","expires_in":3600,"access_token":"`
		writeTokenJSON(w, prefix+strings.Repeat("A", hugeBodySize)+`"}`)
	case FaultRedirect:
		loc := f.Location
		if loc == "" {
			loc = TokenPath
		}
		h.Set("Location", loc)
		w.WriteHeader(status)
	}
}

// leagueErrorFor is the body an injected status gets when none is given: league's own error for the
// statuses league answers, and an error in league's shape for the ones only a front end would send.
func leagueErrorFor(status int) *oauthError {
	switch {
	case status == http.StatusBadRequest:
		return errUnsupportedGrantType()
	case status == http.StatusUnauthorized:
		return errInvalidClient(nil)
	case status == http.StatusInternalServerError:
		return errServerError("An unexpected error has occurred")
	case status >= 400 && http.StatusText(status) != "":
		text := http.StatusText(status)
		return &oauthError{status: status, code: strings.ReplaceAll(strings.ToLower(text), " ", "_"), description: text}
	}
	return nil
}

// abortConnection closes the client's connection without an answer.
func abortConnection(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
		return
	}
	// Without hijacking (HTTP/2), this panic makes net/http reset the stream without a response.
	panic(http.ErrAbortHandler)
}

// withLatency delays every request by d before h sees it, and drops the request when the client gives up first.
func withLatency(h http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// net/http watches the connection for a client that leaves only once the request body has been read, so read
		// it first (as far as the handlers would) and hand them a copy.
		body, err := io.ReadAll(io.LimitReader(r.Body, phpPostMaxSize+1))
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if sleepContext(r.Context(), d) {
			h.ServeHTTP(w, r)
		}
	})
}

// sleepContext sleeps d and reports whether it slept the whole time with ctx still live. When both are ready at once,
// select picks either: the context is looked at again, so a client that left is never served.
func sleepContext(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}
