package bipsynctest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// exchangeAtOnce sends n exchanges of the fixture token name at the same moment and returns the answers in order.
func (f *fixture) exchangeAtOnce(name string, n int) []response {
	f.t.Helper()
	var (
		wg    sync.WaitGroup
		ready = make(chan struct{})
		got   = make([]response, n)
	)
	for i := range n {
		req := f.request(reqSpec{body: refreshForm(name)})
		wg.Go(func() {
			<-ready
			resp, err := f.client.Do(req)
			if err != nil {
				f.t.Errorf("request %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			got[i] = response{status: resp.StatusCode, body: string(b)}
		})
	}
	close(ready)
	wg.Wait()
	return got
}

// TestRefresh_revokePauseForksChain: with a pause between the checks and the revocation (league checks, then revokes,
// without a lock), simultaneous exchanges of one head all succeed. Each leaves a live head and a live access token of
// its own: the chain has forked. An exchange that arrives once the pause is over is refused as revoked.
func TestRefresh_revokePauseForksChain(t *testing.T) {
	t.Parallel()
	const n = 3
	f := newFixture(t, bipsynctest.Options{RevokePause: 300 * time.Millisecond})
	at0, rt0 := f.srv.IssueTokenPair("cli-conf", []string{"read", "write"})
	f.tok["rt0"] = rt0

	got := f.exchangeAtOnce("rt0", n)
	heads := map[string]bool{}
	var accessTokens []string
	for i, r := range got {
		m := successRT.FindStringSubmatch(r.body)
		if r.status != http.StatusOK || m == nil {
			t.Fatalf("exchange %d: got %d %s; want 200 S-RT (the pause lets every simultaneous exchange pass)", i, r.status, r.body)
		}
		accessTokens = append(accessTokens, m[1])
		heads[m[2]] = true
	}
	if len(heads) != n {
		t.Fatalf("got %d distinct new heads from %d exchanges; want %d", len(heads), n, n)
	}
	for _, at := range accessTokens {
		if r := f.me(at); r.status != http.StatusOK {
			t.Errorf("access token of a fork: got %d %s; want 200", r.status, r.body)
		}
	}
	if r := f.me(at0); r.status != http.StatusUnauthorized || r.body != eAD("Access token has been revoked") {
		t.Errorf("the access token issued with the consumed head: got %d %s; want 401 revoked", r.status, r.body)
	}
	if f.srv.RefreshTokenLive(rt0) {
		t.Error("the consumed head is still live")
	}
	for rt := range heads {
		if !f.srv.RefreshTokenLive(rt) {
			t.Error("a fork's head is not live")
		}
	}
	if s := f.srv.Stats(); s.RefreshExchanges != n || s.RefreshForked != n-1 || s.RefreshRevoked != 0 {
		t.Errorf("stats: got %+v; want %d exchanges, %d forked, 0 revoked", s, n, n-1)
	}

	// Each fork goes on by itself: exchanging one head revokes only that fork's pair.
	var first string
	for rt := range heads {
		first = rt
		break
	}
	f.tok["fork"] = first
	f.refresh("fork", "")
	for rt := range heads {
		if got, want := f.srv.RefreshTokenLive(rt), rt != first; got != want {
			t.Errorf("after exchanging one fork's head: a head (the exchanged one: %v) live %v; want %v", rt == first, got, want)
		}
	}

	// Once the pause is over, the spent head is refused as before.
	if r := f.do(reqSpec{body: refreshForm("rt0")}); r.status != 400 || r.body != eRT("Token has been revoked") {
		t.Errorf("exchange of the consumed head after the pause: got %d %s; want 400 revoked", r.status, r.body)
	}
	if s := f.srv.Stats(); s.RefreshRevoked != 1 {
		t.Errorf("RefreshRevoked: got %d; want 1", s.RefreshRevoked)
	}
}

// TestRefresh_revokePauseSequential: with a pause, exchanges that do not overlap still revoke as usual: the second
// exchange of a head is refused. The pause widens a race; it makes none.
func TestRefresh_revokePauseSequential(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{RevokePause: 50 * time.Millisecond})
	start := time.Now()
	f.refresh("rt", "")
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("the exchange took %s; want at least the 50ms pause", took)
	}
	if r := f.do(reqSpec{body: refreshForm("rt")}); r.status != 400 || r.body != eRT("Token has been revoked") {
		t.Errorf("second exchange: got %d %s; want 400 revoked", r.status, r.body)
	}
	if s := f.srv.Stats(); s.RefreshExchanges != 1 || s.RefreshForked != 0 || s.RefreshRevoked != 1 {
		t.Errorf("stats: got %+v; want 1 exchange, 0 forked, 1 revoked", s)
	}
}

// TestServer_adminRevokePause: POST /_fake/revoke-pause switches fork mode on and off for a fake in another process.
func TestServer_adminRevokePause(t *testing.T) {
	t.Parallel()
	f := newFixture(t, bipsynctest.Options{Admin: true})
	post := func(query string) response {
		return f.do(reqSpec{path: bipsynctest.AdminPrefix + "revoke-pause", query: query, ct: "application/x-www-form-urlencoded"})
	}
	for _, bad := range []string{"d=soon", "d=-1s", ""} {
		if r := post(bad); r.status != 400 {
			t.Errorf("revoke-pause?%s: got %d %s; want 400", bad, r.status, r.body)
		}
	}

	r := post("d=300ms")
	var set struct {
		RevokePause string `json:"revoke_pause"`
	}
	if err := json.Unmarshal([]byte(r.body), &set); r.status != 200 || err != nil || set.RevokePause != "300ms" {
		t.Fatalf("revoke-pause?d=300ms: got %d %s; want 200 {\"revoke_pause\":\"300ms\"}", r.status, r.body)
	}
	ok := 0
	for _, r := range f.exchangeAtOnce("rt", 2) {
		if r.status == http.StatusOK {
			ok++
		}
	}
	if ok != 2 {
		t.Errorf("with the pause on: %d of 2 simultaneous exchanges succeeded; want 2", ok)
	}

	if r := post("d=0"); r.status != 200 {
		t.Fatalf("revoke-pause?d=0: got %d %s; want 200", r.status, r.body)
	}
	ok, revoked := 0, 0
	for _, r := range f.exchangeAtOnce("rtRead", 8) {
		switch {
		case r.status == http.StatusOK:
			ok++
		case r.body == eRT("Token has been revoked"):
			revoked++
		}
	}
	if ok != 1 || revoked != 7 {
		t.Errorf("with the pause off: %d successes and %d revoked of 8; want 1 and 7", ok, revoked)
	}
}

// TestServer_latency: every request waits Options.Latency before the server looks at it, and one whose client gives
// up meanwhile is dropped unprocessed: nothing is consumed.
func TestServer_latency(t *testing.T) {
	t.Parallel()
	const latency = 400 * time.Millisecond // the abandoned request's client leaves after a tenth of it
	f := newFixture(t, bipsynctest.Options{Latency: latency})

	start := time.Now()
	at, _ := f.refresh("rt", "")
	if took := time.Since(start); took < latency {
		t.Errorf("token request took %s; want at least %s", took, latency)
	}
	start = time.Now()
	if r := f.me(at); r.status != http.StatusOK {
		t.Errorf("protected endpoint: got %d %s; want 200", r.status, r.body)
	}
	if took := time.Since(start); took < latency {
		t.Errorf("protected request took %s; want at least %s", took, latency)
	}

	ctx, cancel := context.WithTimeout(context.Background(), latency/10)
	defer cancel()
	req := f.request(reqSpec{body: refreshForm("rtRead")}).WithContext(ctx)
	if resp, err := f.client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a request abandoned within the latency got an answer: %d", resp.StatusCode)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("abandoned request: %v; want the deadline", err)
	}
	// Had the server gone on with it, it would have done so once the latency was over.
	time.Sleep(2 * latency)
	if s := f.srv.Stats(); s.TokenRequests != 1 || s.RefreshExchanges != 1 {
		t.Errorf("stats: got %+v; want only the first request processed", s)
	}
	if !f.srv.RefreshTokenLive(f.tok["rtRead"]) {
		t.Error("the abandoned request consumed its refresh token")
	}
}
