package acctest

import (
	"sync"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// Reporter is the part of testing.TB the ledger reports through.
type Reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// Ledger asserts how many refresh exchanges each test step caused, counted by the fake server: how many a step costs
// is part of the provider's contract (every exchange revokes the tokens before it). A step's count includes every
// plan, apply, refresh and the final destroy walk, so it is checked at the start of the next step (PreConfig) and,
// for the last step, in CheckDestroy.
type Ledger struct {
	t      Reporter
	server *bipsynctest.Server
	mu     sync.Mutex
	mark   int
}

// NewLedger returns a ledger of s's refresh exchanges, marked at the current count.
func NewLedger(t Reporter, s *bipsynctest.Server) *Ledger {
	return &Ledger{t: t, server: s, mark: s.Stats().RefreshExchanges}
}

// Expect returns a function asserting that want exchanges happened since the previous mark; then it marks.
func (l *Ledger) Expect(want int, what string) func() {
	return func() {
		l.t.Helper()
		l.mu.Lock()
		defer l.mu.Unlock()
		now := l.server.Stats().RefreshExchanges
		if got := now - l.mark; got != want {
			l.t.Errorf("%s: got %d refresh exchanges; want %d", what, got, want)
		}
		l.mark = now
	}
}

// Reset marks the current count without asserting.
func (l *Ledger) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mark = l.server.Stats().RefreshExchanges
}
