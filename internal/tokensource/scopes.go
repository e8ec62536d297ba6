package tokensource

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// NarrowingError says that a request asked a chain whose scopes are known for fewer of them without
// Request.AllowNarrowing. Bipsync narrows the new refresh token too, so the exchange would take the other scopes away
// from every consumer of the chain for good. Nothing was exchanged.
type NarrowingError struct {
	// Held are the chain's scopes; Requested the request's.
	Held, Requested []string
}

func (e *NarrowingError) Error() string {
	return fmt.Sprintf("the refresh chain holds scopes %s and this request asks for %s, which would narrow the chain for good, and narrowing was not allowed",
		DescribeScopes(e.Held), DescribeScopes(e.Requested))
}

// checkNarrowing refuses, before anything is exchanged or handed out, a request that would narrow a chain whose scopes
// are known unless it allows narrowing. A plan must never take scopes away from a chain on its own: another consumer
// of the chain (another configuration, alias or runner) may need them, and only a new authorization gives them back.
// A chain whose scopes are not known (nil: the original consent of a seed not recorded by authorize) cannot be told
// apart, so it passes.
func checkNarrowing(rec *tokenstore.Record, req Request) error {
	if req.AllowNarrowing || !narrowed(rec.Scopes, req.Scopes) {
		return nil
	}
	return &NarrowingError{Held: normalizeScopes(rec.Scopes), Requested: normalizeScopes(req.Scopes)}
}

func (s *Source) checkScopes(key tokenstore.Key, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	first, ok := s.requested[key]
	if !ok || slices.Equal(first, normalizeScopes(scopes)) {
		return nil
	}
	return &ScopeConflictError{First: first, Second: normalizeScopes(scopes)}
}

func (s *Source) rememberScopes(key tokenstore.Key, scopes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.requested[key]; !ok {
		s.requested[key] = normalizeScopes(scopes)
	}
}

// effectiveScopes returns the scopes of a token exchanged with requested from a chain holding current.
func effectiveScopes(current, requested []string) []string {
	if len(requested) == 0 {
		return current
	}
	return normalizeScopes(requested)
}

// narrowed tells whether requesting scopes narrows a chain known to hold current. A nil current is the original
// consent, which the provider cannot see, so it cannot tell and says nothing (the docs explain narrowing).
func narrowed(current, requested []string) bool {
	if len(requested) == 0 || current == nil {
		return false
	}
	for _, sc := range current {
		if !slices.Contains(requested, sc) {
			return true
		}
	}
	return false
}

// NormalizeScopes returns scopes sorted and without repeats, nil for none: the form scopes are compared and shown in.
func NormalizeScopes(scopes []string) []string { return normalizeScopes(scopes) }

func normalizeScopes(scopes []string) []string {
	if len(scopes) == 0 {
		return nil
	}
	out := slices.Clone(scopes)
	slices.Sort(out)
	return slices.Compact(out)
}

// DescribeScopes writes a scope set for people: "[a b]", or "(the original consent)" for none.
func DescribeScopes(scopes []string) string {
	if len(scopes) == 0 {
		return "(the original consent)"
	}
	return "[" + strings.Join(scopes, " ") + "]"
}
