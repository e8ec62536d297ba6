package tokensource

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// These tests run the real token client against endpoints that never answer, and measure wall time: a hung
// Bipsync (or a proxy in front of it) must never hold a Terraform run, or the chain's lock, for longer than the
// configured bounds.

// slack is what a loaded test machine (2 cores, the race detector) may add to a measured bound.
const slack = 2 * time.Second

// hungEndpoint is a token endpoint that reads each request and never answers until the test ends.
type hungEndpoint struct {
	url      string
	requests atomic.Int64
	arrived  chan struct{} // receives once per request that reached the handler
}

func newHungEndpoint(t *testing.T) *hungEndpoint {
	t.Helper()
	h := &hungEndpoint{arrived: make(chan struct{}, 16)}
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		h.arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	h.url = srv.URL
	return h
}

// timeoutSource is a Source over a real client and a real file store.
func timeoutSource(t *testing.T, cfg bipsync.Config, completionBound time.Duration) (*Source, tokenstore.Store) {
	t.Helper()
	cfg.ClientID, cfg.ClientSecret = "cli-conf", "sec-conf"
	client, err := bipsync.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store, err := tokenstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src, err := New(Options{Client: client, Store: store, ClientSecret: "sec-conf", ExchangeBudget: completionBound})
	if err != nil {
		t.Fatal(err)
	}
	return src, store
}

// storedHead returns the chain head the store holds for seed, or "" when it holds no record.
func storedHead(t *testing.T, src *Source, store tokenstore.Store, seed string) string {
	t.Helper()
	rec, err := store.Load(context.Background(), src.Key(seed), seed)
	if err != nil {
		t.Fatalf("loading the record: %v", err)
	}
	if rec == nil {
		return ""
	}
	return rec.RefreshToken
}

func TestSource_Token_hungEndpointIsBoundedByTheRequestTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	h := newHungEndpoint(t)
	var waits []time.Duration
	var mu sync.Mutex
	cfg := bipsync.Config{
		BaseURL: h.url,
		Timeout: timeout,
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			waits = append(waits, d)
			mu.Unlock()
			return ctx.Err()
		},
	}
	src, store := timeoutSource(t, cfg, time.Minute)

	start := time.Now()
	_, err := src.Token(context.Background(), Request{RefreshToken: "seed-hung", MinValidity: time.Minute})
	elapsed := time.Since(start)

	// The worst case the configuration allows: every attempt times out and every retry waits its longest.
	worst := timeout*bipsync.DefaultMaxAttempts + bipsync.DefaultMaxRetryWait
	if elapsed >= worst {
		t.Fatalf("Token took %s; want less than request_timeout × attempts + retry waits = %s", elapsed, worst)
	}
	// The request was sent, so it is not retried: one attempt, one timeout.
	if elapsed < timeout || elapsed > timeout+slack {
		t.Errorf("Token took %s; want one request timeout (%s, up to %s of slack)", elapsed, timeout, slack)
	}
	if !bipsync.IsOutcomeUnknown(err) {
		t.Fatalf("got %v; want an outcome-unknown error (the request was sent)", err)
	}
	var be *bipsync.Error
	if !errors.As(err, &be) || !be.Sent || be.Attempts != 1 {
		t.Errorf("error: got %#v; want Sent and 1 attempt", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error: got %v; want the per-attempt deadline as the cause", err)
	}
	if got := h.requests.Load(); got != 1 {
		t.Errorf("requests at the endpoint: got %d; want 1 (a sent refresh is never replayed)", got)
	}
	if len(waits) != 0 {
		t.Errorf("retry waits: got %v; want none", waits)
	}
	if head := storedHead(t, src, store, "seed-hung"); head != "seed-hung" {
		t.Errorf("stored head after a failed exchange: got another head than the seed; want generation 0 only")
	}
}

// A listener that accepts connections and never speaks: an https client hangs in the TLS handshake, before the
// request is written. That is safe to retry, so the bound is every attempt's timeout plus the retry waits.
func TestSource_Token_hungHandshakeIsRetriedWithinBounds(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	var waited time.Duration
	cfg := bipsync.Config{
		BaseURL: "https://" + l.Addr().String(),
		Timeout: timeout,
		// The waits are what the client would sleep; the test records them instead of sleeping.
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			waited += d
			mu.Unlock()
			return ctx.Err()
		},
	}
	src, _ := timeoutSource(t, cfg, time.Minute)

	start := time.Now()
	_, err = src.Token(context.Background(), Request{RefreshToken: "seed-handshake", MinValidity: time.Minute})
	elapsed := time.Since(start)

	if !bipsync.IsRetryableLater(err) || bipsync.IsOutcomeUnknown(err) {
		t.Fatalf("got %v; want a retryable error (nothing was sent)", err)
	}
	var be *bipsync.Error
	if !errors.As(err, &be) || be.Sent || be.Attempts != bipsync.DefaultMaxAttempts {
		t.Errorf("error: got %#v; want not sent, %d attempts", err, bipsync.DefaultMaxAttempts)
	}
	if got := accepted.Load(); got != bipsync.DefaultMaxAttempts {
		t.Errorf("connections: got %d; want %d (one per attempt)", got, bipsync.DefaultMaxAttempts)
	}
	if bound := timeout * bipsync.DefaultMaxAttempts; elapsed < bound || elapsed > bound+slack {
		t.Errorf("Token took %s; want request_timeout × attempts = %s (up to %s of slack)", elapsed, bound, slack)
	}
	mu.Lock()
	defer mu.Unlock()
	if waited <= 0 || waited > bipsync.DefaultMaxRetryWait {
		t.Errorf("retry waits: got %s in all; want some, and at most %s", waited, bipsync.DefaultMaxRetryWait)
	}
}

func TestSource_Token_cancelledCallerIsHeldAtMostTheCompletionBound(t *testing.T) {
	t.Parallel()
	const bound = 300 * time.Millisecond
	h := newHungEndpoint(t)
	// The request timeout is far longer than the bound, so only the bound can end the wait.
	src, store := timeoutSource(t, bipsync.Config{BaseURL: h.url, Timeout: time.Minute}, bound)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type outcome struct {
		err     error
		elapsed time.Duration
	}
	done := make(chan outcome, 1)
	start := time.Now()
	go func() {
		_, err := src.Token(ctx, Request{RefreshToken: "seed-bound", MinValidity: time.Minute})
		done <- outcome{err, time.Since(start)}
	}()
	<-h.arrived
	cancel() // Terraform gives up while the exchange is in flight.
	cancelledAt := time.Since(start)
	got := <-done

	if got.elapsed < bound {
		t.Errorf("Token returned after %s (cancelled at %s); want it to keep waiting for the answer until the completion bound %s",
			got.elapsed, cancelledAt, bound)
	}
	if got.elapsed > bound+slack {
		t.Errorf("Token returned after %s; want the completion bound %s (up to %s of slack), not the request timeout",
			got.elapsed, bound, slack)
	}
	if !bipsync.IsOutcomeUnknown(got.err) {
		t.Fatalf("got %v; want an outcome-unknown error (the request was sent, no answer within the bound)", got.err)
	}
	if h.requests.Load() != 1 {
		t.Errorf("requests at the endpoint: got %d; want 1", h.requests.Load())
	}
	if head := storedHead(t, src, store, "seed-bound"); head != "seed-bound" {
		t.Errorf("stored head: got another head than the seed; want the chain's generation 0 only (no answer came)")
	}
}

func TestSource_Token_cancelledCallerStillSavesTheAnswer(t *testing.T) {
	t.Parallel()
	fake := bipsynctest.NewServer(bipsynctest.Options{})
	fake.AddClient("cli-conf", "sec-conf")
	seed := fake.IssueRefreshToken("cli-conf", []string{"read"})
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	// The fake Bipsync answers only once the test says so: after the caller has given up.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		fake.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	src, store := timeoutSource(t, bipsync.Config{BaseURL: srv.URL, Timeout: time.Minute}, time.Minute)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := src.Token(ctx, Request{RefreshToken: seed, MinValidity: time.Minute})
		done <- outcome{res, err}
	}()
	<-arrived
	cancel()
	close(release)
	got := <-done

	if got.err != nil {
		t.Fatalf("got %v; want the exchange to finish and be saved despite the cancellation", got.err)
	}
	if fake.Stats().RefreshExchanges != 1 {
		t.Fatalf("exchanges: got %d; want 1", fake.Stats().RefreshExchanges)
	}
	head := storedHead(t, src, store, seed)
	switch {
	case head == "":
		t.Fatal("stored head: no record; want the rotated refresh token saved")
	case head == seed:
		t.Fatal("stored head: still the seed; want the rotated refresh token")
	case !fake.RefreshTokenLive(head):
		t.Fatal("stored head: not live at the fake; want the chain's new head")
	}
	if fake.RefreshTokenLive(seed) {
		t.Error("seed: still live; want consumed by the exchange")
	}
	if !fake.AccessTokenLive(got.res.AccessToken) {
		t.Error("handed-out access token: not live")
	}
}
