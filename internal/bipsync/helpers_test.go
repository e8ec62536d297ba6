package bipsync

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testClientID     = "cli-conf"
	testClientSecret = "sec-conf-9f2c4e1a7b"
	testRefreshToken = "def50200a1b2c3d4e5f60718293a4b5c6d7e8f90aabbccddeeff00112233445566778899"
	testAccessToken  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJjbGktY29uZiJ9.c2lnbmF0dXJl"
	testNewRefresh   = "def50200ffeeddccbbaa99887766554433221100fedcba9876543210fedcba98765432"
)

var testStart = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// sleepRecorder stands in for Config.Sleep: it records each wait and returns at once, so retry tests take no time.
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *sleepRecorder) Sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.waits = append(r.waits, d)
	r.mu.Unlock()
	return ctx.Err()
}

func (r *sleepRecorder) Waits() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.waits...)
}

// newTestClient returns a client for baseURL with a fixed clock and a recording sleep.
func newTestClient(t *testing.T, baseURL string, mod func(*Config)) (*Client, *sleepRecorder) {
	t.Helper()
	rec := &sleepRecorder{}
	cfg := Config{
		BaseURL:      baseURL,
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		Timeout:      5 * time.Second,
		Now:          func() time.Time { return testStart },
		Sleep:        rec.Sleep,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: got error %v; want nil", err)
	}
	return c, rec
}

// answer is a canned HTTP answer of an inline handler.
type answer struct {
	status int
	header map[string]string
	body   string
}

// serveAnswers starts a loopback server that gives the answers in order (the last one repeats) and counts requests.
func serveAnswers(t *testing.T, answers ...answer) (*httptest.Server, func() int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		a := answers[min(n, len(answers)-1)]
		n++
		mu.Unlock()
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	return srv, func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

func tokenBody(tokenType string, expiresIn string, withRefresh bool) string {
	b := fmt.Sprintf(`{"token_type":%q,"expires_in":%s,"access_token":%q`, tokenType, expiresIn, testAccessToken)
	if withRefresh {
		b += fmt.Sprintf(`,"refresh_token":%q`, testNewRefresh)
	}
	return b + "}"
}

// assertNoSecrets fails when any secret appears in any rendering of err or of the errors it wraps.
func assertNoSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	texts := []string{err.Error(), fmt.Sprintf("%v|%+v|%#v|%s|%q", err, err, err, err, err)}
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
		texts = append(texts, u.Error(), fmt.Sprintf("%+v", u))
	}
	var e *Error
	if errors.As(err, &e) {
		texts = append(texts, fmt.Sprintf("%v %+v %#v", *e, *e, *e))
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, txt := range texts {
			if strings.Contains(txt, s) {
				t.Errorf("error text %q contains a secret (%d chars); want it redacted", txt, len(s))
			}
		}
	}
}

// predicates is what the provider branches on, in one comparable value.
type predicates struct {
	Reauth    bool
	Cause     ReauthCause
	Client    bool
	Unknown   bool
	Retryable bool
}

func predicatesOf(err error) predicates {
	return predicates{
		Reauth:    NeedsReauthorization(err),
		Cause:     ReauthorizationCause(err),
		Client:    IsInvalidClient(err),
		Unknown:   IsOutcomeUnknown(err),
		Retryable: IsRetryableLater(err),
	}
}

func mustError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *bipsync.Error", err, err)
	}
	return e
}
