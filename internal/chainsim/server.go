package chainsim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
)

// Mode is how the simulated Bipsync treats overlapping and repeated exchanges of one refresh token.
type Mode int

const (
	// Strict is league/oauth2-server 9.4.1 as Bipsync runs it: an exchange checks and revokes in one step, a rotated
	// refresh token is refused as revoked, and nothing else happens.
	Strict Mode = iota
	// Fork splits an exchange into a check and a rotation with a yield point between them, so two overlapping
	// exchanges of one head can both succeed and fork the chain.
	Fork
	// Replay is Strict plus replay detection (RFC 9700 section 4.14.2): presenting a rotated refresh token revokes the
	// whole family.
	Replay
)

func (m Mode) String() string { return [...]string{"strict", "fork", "replay"}[m] }

const (
	// refreshLife is league's P1M as Bipsync configures it (tokensource.DefaultRefreshTokenLifetime).
	refreshLife = tokensource.DefaultRefreshTokenLifetime
	// accessLife is Bipsync's access token lifetime.
	accessLife = time.Hour
	// canonicalURL and legacyURL are two spellings of one token endpoint: chains saved by an older version under the
	// spelling's own key are found through tokenstore.LegacyKey.
	canonicalURL = "https://acme-api.bipsync.com/v1/oauth/token"
	legacyURL    = "https://ACME-api.bipsync.com:443/v1/oauth/token"
	clientID     = "sim-client"
	clientSecret = "CS-sim-client-secret-7f3a9c" //nolint:gosec // a simulated secret, checked never to leak
)

// family is one authorization: the seed and every refresh token rotated from it.
type family struct {
	id      int
	seed    string
	consent []string
	// revoked: Bipsync revoked the whole family (replay detection).
	revoked bool
	// lost says why the chain ended for a reason no code can help (an answer lost after Bipsync rotated, a process
	// killed between an exchange and its save); "" while it has not.
	lost string
	// exchanges are the steps at which Bipsync rotated this family.
	exchanges []int
	// refused counts exchanges refused because the head was rotated already (what replay detection punishes).
	refused int
}

type refreshToken struct {
	fam     *family
	gen     int
	issued  time.Time // global
	scopes  []string  // nil: the consent
	rotated bool
	rotStep int
	access  string
}

type accessToken struct {
	fam       *family // nil for client credentials
	revoked   bool
	revokedAt int // step
	expiry    time.Time
}

// server is the simulated Bipsync: league's rules as plain data.
type server struct {
	w        *world
	mode     Mode
	fams     []*family
	rts      map[string]*refreshToken
	ats      map[string]*accessToken
	secrets  []string
	counter  int
	exchangN int
}

func newServer(w *world, mode Mode) *server {
	return &server{w: w, mode: mode, rts: map[string]*refreshToken{}, ats: map[string]*accessToken{}}
}

func (s *server) token(prefix string) string {
	s.counter++
	t := fmt.Sprintf("%s%04d%012x", prefix, s.counter, s.w.rng.Uint64()>>16)
	s.secrets = append(s.secrets, t)
	return t
}

// authorize starts a family: the authorization code grant a human runs in a browser.
func (s *server) authorize(consent []string) *family {
	f := &family{id: len(s.fams) + 1, consent: consent}
	f.seed = s.token("SEED")
	s.rts[f.seed] = &refreshToken{fam: f, issued: s.w.now}
	s.fams = append(s.fams, f)
	return f
}

// live tells whether rt is a refresh token Bipsync would exchange now.
func (s *server) live(rt string) bool {
	t := s.rts[rt]
	return t != nil && !t.rotated && !t.fam.revoked && s.w.now.Before(t.issued.Add(refreshLife))
}

// liveHeads returns the refresh tokens of f that Bipsync would exchange now.
func (s *server) liveHeads(f *family) []string {
	var out []string
	for rt, t := range s.rts {
		if t.fam == f && s.live(rt) {
			out = append(out, rt)
		}
	}
	slices.Sort(out)
	return out
}

// accessRevoked tells whether Bipsync revoked the access token at.
func (s *server) accessRevoked(at string) (bool, int) {
	a := s.ats[at]
	if a == nil {
		return true, 0 // never issued
	}
	if a.fam != nil && a.fam.revoked {
		return true, 0
	}
	return a.revoked, a.revokedAt
}

// rotate consumes t and issues the next pair. Used by exchanges and by a scenario's history.
func (s *server) rotate(rt string, scopes []string) (string, string) {
	t := s.rts[rt]
	t.rotated, t.rotStep = true, s.w.step
	if a := s.ats[t.access]; a != nil && !a.revoked {
		a.revoked, a.revokedAt = true, s.w.step
	}
	if scopes == nil {
		scopes = t.scopes
	}
	next := s.token("RT")
	access := s.token("AT")
	s.rts[next] = &refreshToken{fam: t.fam, gen: t.gen + 1, issued: s.w.now, scopes: slices.Clone(scopes), access: access}
	s.ats[access] = &accessToken{fam: t.fam, expiry: s.w.now.Add(accessLife)}
	t.fam.exchanges = append(t.fam.exchanges, s.w.step)
	s.exchangN++
	return next, access
}

func (s *server) revokeFamily(f *family) {
	f.revoked = true
	for _, a := range s.ats {
		if a.fam == f && !a.revoked {
			a.revoked, a.revokedAt = true, s.w.step
		}
	}
}

func invalidGrant(hint string) error {
	return &bipsync.Error{Op: bipsync.OpRefresh, StatusCode: 400, Code: "invalid_grant",
		Description: "The refresh token is invalid.", Hint: hint}
}

// client is one process's view of the simulated Bipsync (a tokensource.Exchanger).
type client struct {
	p   *proc
	url string
}

func (c *client) TokenURL() string { return c.url }
func (c *client) ClientID() string { return clientID }

func (c *client) Refresh(_ context.Context, rt string, scopes []string) (*bipsync.Token, error) {
	p, s := c.p, c.p.w.bip
	if p.gone() {
		return nil, errGone
	}
	d := p.yield("exchange "+s.short(rt), nil, time.Time{})
	if d.fault == faultBusy {
		return nil, &bipsync.Error{Op: bipsync.OpRefresh, StatusCode: 503, Code: "temporarily_unavailable",
			Description: "The server is busy", RetryAfter: 2 * time.Second, Attempts: 3}
	}
	t := s.rts[rt]
	switch {
	case t == nil:
		return nil, invalidGrant("Cannot decrypt the refresh token")
	case !s.w.now.Before(t.issued.Add(refreshLife)):
		return nil, invalidGrant("Token has expired") // league checks expiry before revocation
	case t.fam.revoked:
		t.fam.refused++
		return nil, invalidGrant("Token has been revoked")
	case t.rotated:
		t.fam.refused++
		s.w.note("bipsync: refused rotated head %s (rotated at step %d)", s.short(rt), t.rotStep)
		s.w.refusedAttempt(p, t.fam, rt)
		if s.mode == Replay {
			s.revokeFamily(t.fam)
			s.w.note("bipsync: replay detected, family %d revoked", t.fam.id)
		}
		return nil, invalidGrant("Token has been revoked")
	}
	have := t.scopes
	if have == nil {
		have = t.fam.consent
	}
	for _, sc := range scopes {
		if !slices.Contains(have, sc) {
			return nil, &bipsync.Error{Op: bipsync.OpRefresh, StatusCode: 400, Code: "invalid_scope",
				Description: "The requested scope is invalid, unknown, or malformed", Hint: "Check the `" + sc + "` scope"}
		}
	}
	if s.mode == Fork {
		// league checks the token, then revokes it: another exchange of the same head may pass the check in between.
		p.yield("exchange-commit "+s.short(rt), nil, time.Time{})
		if t.fam.revoked || !s.w.now.Before(t.issued.Add(refreshLife)) {
			return nil, invalidGrant("Token has been revoked")
		}
		if t.rotated {
			s.w.note("bipsync: fork of head %s", s.short(rt))
			t.rotated = false // rotate marks it again; the first rotation's pair stays live: a fork
		}
	}
	var sc []string
	if len(scopes) > 0 {
		sc = slices.Clone(scopes)
		slices.Sort(sc)
	}
	next, access := s.rotate(rt, sc)
	if d.fault == faultLost {
		if t.fam.lost == "" {
			t.fam.lost = "Bipsync rotated and its answer was lost (outcome unknown)"
		}
		return nil, &bipsync.Error{Op: bipsync.OpRefresh, Sent: true, Err: errors.New("read tcp: connection reset by peer")}
	}
	p.inflight = append(p.inflight, next)
	now := p.now()
	return &bipsync.Token{AccessToken: access, TokenType: "Bearer", RefreshToken: next, ExpiresIn: int64(accessLife / time.Second),
		ReceivedAt: now, Expiry: now.Add(accessLife)}, nil
}

func (c *client) ClientCredentials(_ context.Context, _ []string) (*bipsync.Token, error) {
	p, s := c.p, c.p.w.bip
	if p.gone() {
		return nil, errGone
	}
	d := p.yield("client_credentials", nil, time.Time{})
	if d.fault == faultBusy {
		return nil, &bipsync.Error{Op: bipsync.OpClientCredentials, StatusCode: 429, Code: "too_many_requests", Attempts: 3}
	}
	access := s.token("CC")
	s.ats[access] = &accessToken{expiry: s.w.now.Add(accessLife)}
	now := p.now()
	return &bipsync.Token{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(accessLife / time.Second),
		ReceivedAt: now, Expiry: now.Add(accessLife)}, nil
}

// short names a token in a trace without its secret part.
func (s *server) short(tok string) string {
	t := s.rts[tok]
	if t == nil {
		return "?"
	}
	return fmt.Sprintf("f%d.g%d", t.fam.id, t.gen)
}
