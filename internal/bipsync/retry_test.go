// Tests of the client's retries: Retry-After, the bounds on attempts and waiting, cancellation, the worst case.

package bipsync

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"
)

func TestClient_Refresh_retryAfterHTTPDate(t *testing.T) {
	t.Parallel()
	retryAt := testStart.Add(7 * time.Second).Format(http.TimeFormat)
	srv, count := serveAnswers(t,
		answer{status: 503, header: map[string]string{"Retry-After": retryAt}},
		answer{status: 200, body: tokenBody("Bearer", "3600", true)},
	)
	c, sleeps := newTestClient(t, srv.URL, nil)
	tok, err := c.Refresh(context.Background(), testRefreshToken, nil)
	if err != nil {
		t.Fatalf("got error %v; want a token", err)
	}
	if tok.RefreshToken != testNewRefresh {
		t.Errorf("refresh token: got %d chars; want the new one", len(tok.RefreshToken))
	}
	if got, want := sleeps.Waits(), []time.Duration{7 * time.Second}; !reflect.DeepEqual(got, want) {
		t.Errorf("waits: got %v; want %v", got, want)
	}
	if n := count(); n != 2 {
		t.Errorf("requests: got %d; want 2", n)
	}
}

func TestClient_retryBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		maxAttempts  int
		maxWait      time.Duration
		answers      []answer
		wantRequests int
		wantWaits    []time.Duration
		wantStatus   int
		wantAfter    time.Duration
	}{
		{
			name: "503 forever uses the default backoff", answers: []answer{{status: 503}},
			wantRequests: 4, wantWaits: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, wantStatus: 503,
		},
		{
			name: "MaxAttempts bounds", maxAttempts: 2, answers: []answer{{status: 429}},
			wantRequests: 2, wantWaits: []time.Duration{time.Second}, wantStatus: 429,
		},
		{
			name: "MaxRetryWait bounds the backoff", maxAttempts: 10, maxWait: 5 * time.Second, answers: []answer{{status: 503}},
			wantRequests: 3, wantWaits: []time.Duration{time.Second, 2 * time.Second}, wantStatus: 503,
		},
		{
			name: "a Retry-After beyond the budget stops at once", answers: []answer{{status: 429, header: map[string]string{"Retry-After": "120"}}},
			wantRequests: 1, wantStatus: 429, wantAfter: 120 * time.Second,
		},
		{
			name: "Retry-After counts against the budget", maxWait: 30 * time.Second,
			answers:      []answer{{status: 429, header: map[string]string{"Retry-After": "20"}}},
			wantRequests: 2, wantWaits: []time.Duration{20 * time.Second}, wantStatus: 429, wantAfter: 20 * time.Second,
		},
		{
			name: "Retry-After zero retries at once", maxAttempts: 3,
			answers:      []answer{{status: 503, header: map[string]string{"Retry-After": "0"}}},
			wantRequests: 3, wantWaits: []time.Duration{0, 0}, wantStatus: 503,
		},
		{
			name: "an unparsable Retry-After falls back to the backoff", maxAttempts: 2,
			answers:      []answer{{status: 503, header: map[string]string{"Retry-After": "soon"}}},
			wantRequests: 2, wantWaits: []time.Duration{time.Second}, wantStatus: 503,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, count := serveAnswers(t, tt.answers...)
			c, sleeps := newTestClient(t, srv.URL, func(cfg *Config) {
				cfg.MaxAttempts = tt.maxAttempts
				cfg.MaxRetryWait = tt.maxWait
			})
			_, err := c.Refresh(context.Background(), testRefreshToken, nil)
			e := mustError(t, err)
			if got := predicatesOf(err); got != (predicates{Retryable: true}) {
				t.Errorf("predicates: got %+v; want retryable later only", got)
			}
			if e.StatusCode != tt.wantStatus || e.RetryAfter != tt.wantAfter {
				t.Errorf("got status %d RetryAfter %s; want %d %s", e.StatusCode, e.RetryAfter, tt.wantStatus, tt.wantAfter)
			}
			if n := count(); n != tt.wantRequests || e.Attempts != tt.wantRequests {
				t.Errorf("requests: got %d (Attempts %d); want %d", n, e.Attempts, tt.wantRequests)
			}
			if got := sleeps.Waits(); !reflect.DeepEqual(got, tt.wantWaits) && (len(got) != 0 || len(tt.wantWaits) != 0) {
				t.Errorf("waits: got %v; want %v", got, tt.wantWaits)
			}
		})
	}
}

func TestClient_Refresh_cancelDuringRetryWait(t *testing.T) {
	t.Parallel()
	srv, count := serveAnswers(t, answer{status: 503, header: map[string]string{"Retry-After": "3600"}})
	// The default sleep, wrapped only to learn when the wait has begun: this test is about it honouring the context.
	waiting := make(chan struct{})
	var once sync.Once
	c, err := New(Config{
		BaseURL: srv.URL, ClientID: testClientID, ClientSecret: testClientSecret, MaxRetryWait: 2 * time.Hour,
		Sleep: func(ctx context.Context, d time.Duration) error {
			once.Do(func() { close(waiting) })
			return sleepContext(ctx, d)
		},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Refresh(ctx, testRefreshToken, nil)
		done <- err
	}()
	<-waiting
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Refresh returned %s after cancel; want promptly", d)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v; want context.Canceled in the chain", err)
		}
		e := mustError(t, err)
		if e.StatusCode != 503 || e.Attempts != 1 || e.RetryAfter != time.Hour {
			t.Errorf("got status %d attempts %d RetryAfter %s; want 503, 1, 1h", e.StatusCode, e.Attempts, e.RetryAfter)
		}
		if got := predicatesOf(err); got != (predicates{Retryable: true}) {
			t.Errorf("predicates: got %+v; want retryable later only (503: nothing processed)", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Refresh still waiting 10s after cancel; want a prompt return")
	}
	if n := count(); n != 1 {
		t.Errorf("requests: got %d; want 1", n)
	}
}

func TestSleepContext(t *testing.T) {
	t.Parallel()
	if err := sleepContext(context.Background(), 0); err != nil {
		t.Errorf("sleepContext(0): got %v; want nil", err)
	}
	if err := sleepContext(context.Background(), time.Millisecond); err != nil {
		t.Errorf("sleepContext(1ms): got %v; want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sleepContext(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleepContext(canceled, 1h): got %v; want context.Canceled", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := testStart
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"5", 5 * time.Second, true},
		{" 12 ", 12 * time.Second, true},
		{"99999999999999999999", maxRetryAfter, true},
		{"-3", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.Add(30 * time.Second).Format(time.RFC850), 30 * time.Second, true},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseRetryAfter(%q): got %s, %t; want %s, %t", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	for attempt, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 16 * time.Second, 1000: time.Second << 30} {
		if got := backoff(attempt); got != want {
			t.Errorf("backoff(%d): got %s; want %s", attempt, got, want)
		}
	}
}

func TestClient_WorstCase(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t, "https://acme-api.bipsync.com", func(cfg *Config) {
		cfg.Timeout, cfg.MaxAttempts, cfg.MaxRetryWait = 10*time.Second, 3, 7*time.Second
	})
	if got, want := c.WorstCase(), 37*time.Second; got != want {
		t.Fatalf("got %s; want %s (3 attempts of 10s and 7s of waiting)", got, want)
	}
}
