package bipsync

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// closedPortURL returns a loopback URL on which nothing listens.
func closedPortURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return "http://" + addr
}

func TestClient_transportFailures(t *testing.T) {
	t.Parallel()

	t.Run("dial refused is retried then retryable later", func(t *testing.T) {
		t.Parallel()
		c, sleeps := newTestClient(t, closedPortURL(t), nil)
		_, err := c.Refresh(context.Background(), testRefreshToken, nil)
		e := mustError(t, err)
		if got := predicatesOf(err); got != (predicates{Retryable: true}) {
			t.Errorf("predicates: got %+v; want retryable later only", got)
		}
		if e.Sent || e.StatusCode != 0 || e.Attempts != DefaultMaxAttempts {
			t.Errorf("got Sent=%t status %d attempts %d; want false, 0, %d", e.Sent, e.StatusCode, e.Attempts, DefaultMaxAttempts)
		}
		var opErr *net.OpError
		if !errors.As(err, &opErr) || opErr.Op != "dial" {
			t.Errorf("cause: got %v; want a dial *net.OpError in the chain", e.Err)
		}
		if got := len(sleeps.Waits()); got != DefaultMaxAttempts-1 {
			t.Errorf("waits: got %d; want %d", got, DefaultMaxAttempts-1)
		}
		assertNoSecrets(t, err, testClientSecret, testRefreshToken)
	})

	t.Run("a host name that does not resolve is not retried", func(t *testing.T) {
		t.Parallel()
		var dials atomic.Int32
		c, sleeps := newTestClient(t, "https://no-such-tenant-api.bipsync.com", func(cfg *Config) {
			cfg.HTTPClient = &http.Client{Transport: &http.Transport{
				DialContext: func(context.Context, string, string) (net.Conn, error) {
					dials.Add(1)
					return nil, &net.DNSError{Err: "no such host", Name: "no-such-tenant-api.bipsync.com", IsNotFound: true}
				},
			}}
		})
		_, err := c.Refresh(context.Background(), testRefreshToken, nil)
		e := mustError(t, err)
		if got := predicatesOf(err); got != (predicates{}) || !IsHostNotFound(err) {
			t.Errorf("predicates: got %+v, host not found %t; want none, host not found true", got, IsHostNotFound(err))
		}
		if e.Sent || e.Attempts != 1 || len(sleeps.Waits()) != 0 || dials.Load() != 1 {
			t.Errorf("got Sent=%t attempts %d waits %v dials %d; want false, 1, none, 1", e.Sent, e.Attempts, sleeps.Waits(), dials.Load())
		}
		if IsHostNotFound(&Error{StatusCode: 400}) {
			t.Error("got IsHostNotFound for an answered request; want false")
		}
		assertNoSecrets(t, err, testClientSecret, testRefreshToken)
	})

	t.Run("certificate error is not retried", func(t *testing.T) {
		t.Parallel()
		var hits atomic.Int32
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
		// The failed handshakes are the point of the test; keep them out of the output.
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		t.Cleanup(srv.Close)
		c, sleeps := newTestClient(t, srv.URL, nil)
		_, err := c.Refresh(context.Background(), testRefreshToken, nil)
		e := mustError(t, err)
		if got := predicatesOf(err); got != (predicates{}) || !IsCertificateError(err) {
			t.Errorf("predicates: got %+v, certificate %t; want none, certificate true", got, IsCertificateError(err))
		}
		if e.Sent || e.Attempts != 1 || len(sleeps.Waits()) != 0 || hits.Load() != 0 {
			t.Errorf("got Sent=%t attempts %d waits %v handler hits %d; want false, 1, none, 0", e.Sent, e.Attempts, sleeps.Waits(), hits.Load())
		}
	})

	t.Run("TLS handshake failure is retried", func(t *testing.T) {
		t.Parallel()
		// A peer that hangs up during the handshake: the request was never written.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		t.Cleanup(func() { _ = l.Close() })
		var accepted atomic.Int32
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				_ = conn.Close()
			}
		}()
		c, sleeps := newTestClient(t, "https://"+l.Addr().String(), nil)
		_, err = c.Refresh(context.Background(), testRefreshToken, nil)
		e := mustError(t, err)
		if got := predicatesOf(err); got != (predicates{Retryable: true}) || IsCertificateError(err) {
			t.Errorf("predicates: got %+v, certificate %t; want retryable later only", got, IsCertificateError(err))
		}
		if e.Sent || e.Attempts != DefaultMaxAttempts || len(sleeps.Waits()) != DefaultMaxAttempts-1 {
			t.Errorf("got Sent=%t attempts %d waits %v; want false, %d, %d waits", e.Sent, e.Attempts, sleeps.Waits(), DefaultMaxAttempts, DefaultMaxAttempts-1)
		}
		if got := accepted.Load(); got != DefaultMaxAttempts {
			t.Errorf("connections: got %d; want %d", got, DefaultMaxAttempts)
		}
	})

	t.Run("timeout after sending is outcome unknown", func(t *testing.T) {
		t.Parallel()
		var hits atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			_, _ = io.ReadAll(r.Body)
			<-r.Context().Done()
		}))
		t.Cleanup(srv.Close)
		c, sleeps := newTestClient(t, srv.URL, func(cfg *Config) { cfg.Timeout = 100 * time.Millisecond })
		_, err := c.Refresh(context.Background(), testRefreshToken, nil)
		e := mustError(t, err)
		if got := predicatesOf(err); got != (predicates{Unknown: true}) {
			t.Errorf("predicates: got %+v; want outcome unknown only", got)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("cause: got %v; want context.DeadlineExceeded in the chain", e.Err)
		}
		if !e.Sent || e.Attempts != 1 || len(sleeps.Waits()) != 0 || hits.Load() != 1 {
			t.Errorf("got Sent=%t attempts %d waits %v handler hits %d; want true, 1, none, 1", e.Sent, e.Attempts, sleeps.Waits(), hits.Load())
		}
	})

	t.Run("connection closed after the request is outcome unknown", func(t *testing.T) {
		t.Parallel()
		var hits atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			_, _ = io.ReadAll(r.Body)
			hj, ok := w.(http.Hijacker)
			if !ok {
				t.Errorf("got ResponseWriter %T; want an http.Hijacker to drop the connection", w)
				return
			}
			conn, _, err := hj.Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}))
		t.Cleanup(srv.Close)
		c, sleeps := newTestClient(t, srv.URL, nil)
		_, err := c.Refresh(context.Background(), testRefreshToken, nil)
		e := mustError(t, err)
		if got := predicatesOf(err); got != (predicates{Unknown: true}) {
			t.Errorf("predicates: got %+v; want outcome unknown only", got)
		}
		if !e.Sent || e.Attempts != 1 || len(sleeps.Waits()) != 0 || hits.Load() != 1 {
			t.Errorf("got Sent=%t attempts %d waits %v handler hits %d; want true, 1, none, 1", e.Sent, e.Attempts, sleeps.Waits(), hits.Load())
		}
		assertNoSecrets(t, err, testClientSecret, testRefreshToken)
	})

	t.Run("caller cancel after sending is outcome unknown", func(t *testing.T) {
		t.Parallel()
		arrived := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			close(arrived)
			<-r.Context().Done()
		}))
		t.Cleanup(srv.Close)
		c, _ := newTestClient(t, srv.URL, nil)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-arrived; cancel() }()
		_, err := c.Refresh(ctx, testRefreshToken, nil)
		e := mustError(t, err)
		if got := predicatesOf(err); got != (predicates{Unknown: true}) || !e.Sent || !errors.Is(err, context.Canceled) {
			t.Errorf("got predicates %+v Sent=%t cause %v; want outcome unknown, sent, context.Canceled", got, e.Sent, e.Err)
		}
	})

	t.Run("slow dial then success is retried", func(t *testing.T) {
		t.Parallel()
		srv, count := serveAnswers(t, answer{status: 200, body: tokenBody("Bearer", "3600", true)})
		var dials atomic.Int32
		tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials.Add(1) == 1 {
				return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connect: connection refused")}
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
		t.Cleanup(tr.CloseIdleConnections)
		c, sleeps := newTestClient(t, srv.URL, func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: tr} })
		tok, err := c.Refresh(context.Background(), testRefreshToken, nil)
		if err != nil {
			t.Fatalf("got error %v; want a token after one retry", err)
		}
		if tok.RefreshToken != testNewRefresh || count() != 1 || dials.Load() != 2 || len(sleeps.Waits()) != 1 {
			t.Errorf("got requests %d dials %d waits %v; want 1, 2, one wait", count(), dials.Load(), sleeps.Waits())
		}
	})
}
