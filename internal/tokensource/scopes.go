package tokensource

import (
	"slices"
	"strings"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// recordAsk notes in rec that this request's scope set was asked now, and forgets asks older than the conflict window.
func (s *Source) recordAsk(rec *tokenstore.Record, scopes []string) {
	now := s.now()
	want := normalizeScopes(scopes)
	kept := rec.Asks[:0:0]
	for _, a := range rec.Asks {
		if now.Sub(a.At) < ScopeConflictWindow && !slices.Equal(a.Scopes, want) {
			kept = append(kept, a)
		}
	}
	rec.Asks = append(kept, tokenstore.ScopeAsk{Scopes: want, At: now})
}

// crossProcessScopeConflict refuses an exchange that would narrow the chain below a scope set another process asked of
// it within ScopeConflictWindow: the chain keeps the narrower scopes for good, and the other consumer would need a
// new authorization. (Within this process the stricter checkScopes applies.)
func (s *Source) crossProcessScopeConflict(rec *tokenstore.Record, scopes []string) error {
	want := normalizeScopes(scopes)
	if want == nil {
		return nil // the chain's current scopes: narrows nothing
	}
	now := s.now()
	for _, a := range rec.Asks {
		if now.Sub(a.At) >= ScopeConflictWindow || slices.Equal(a.Scopes, want) {
			continue
		}
		other := a.Scopes
		if other == nil {
			other = rec.Scopes // the chain's current scopes when that ask was made, as far as the provider knows
		}
		if other == nil || !isSubset(other, want) {
			return &ScopeConflictError{First: a.Scopes, Second: want, FirstAt: a.At, CrossProcess: true,
				Clears: a.At.Add(ScopeConflictWindow)}
		}
	}
	return nil
}

func isSubset(sub, set []string) bool {
	for _, x := range sub {
		if !slices.Contains(set, x) {
			return false
		}
	}
	return true
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
