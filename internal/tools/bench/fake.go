package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

const benchClientID = "bench-client"

// benchScopes is the consent every seeded chain carries. Neither the tokens nor the grants ask for scopes, so no
// exchange narrows a chain.
var benchScopes = []string{"read", "write"}

// fake is the in-process fake Bipsync server with a fixed added latency in front of it.
type fake struct {
	server *bipsynctest.Server
	hs     *http.Server
	url    string
	secret string
}

// startFake serves a fake Bipsync with a confidential client on 127.0.0.1. Every request waits latency before the
// fake sees it, as a round trip to a distant server would; ttl is the access token lifetime (0 for the fake's 1h).
func startFake(ttl, latency time.Duration) (*fake, error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	f := &fake{
		server: bipsynctest.NewServer(bipsynctest.Options{AccessTokenTTL: ttl}),
		secret: hex.EncodeToString(secret),
	}
	f.server.AddClient(benchClientID, f.secret)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	f.hs = &http.Server{
		Handler:           withLatency(f.server.Handler(), latency),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	f.url = "http://" + l.Addr().String()
	go func() {
		if err := f.hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("bench: fake server: %v", err)
		}
	}()
	return f, nil
}

// withLatency delays every request by d before h sees it, and drops the request when the client gives up first.
func withLatency(h http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		h.ServeHTTP(w, r)
	})
}

// seeds issues n independent chains, as n authorization code grants would.
func (f *fake) seeds(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f.server.IssueRefreshToken(benchClientID, benchScopes)
	}
	return out
}

// exchanges is the fake's count of successful refresh exchanges so far.
func (f *fake) exchanges() int { return f.server.Stats().RefreshExchanges }

func (f *fake) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = f.hs.Shutdown(ctx)
}
