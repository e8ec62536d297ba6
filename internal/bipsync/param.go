package bipsync

import (
	"html"
	"strings"
)

// MissingParameter returns the request parameter Bipsync said was missing or empty: league answers invalid_request with
// the hint "Check the `x` parameter" (HTML-escaped, as it escapes every hint) before it looks at any token, so nothing
// was consumed. "" when err is no such answer.
func MissingParameter(err error) string {
	e, ok := asError(err)
	if !ok || e.Code != "invalid_request" || e.StatusCode < 400 || e.StatusCode >= 500 {
		return ""
	}
	const prefix, suffix = "Check the `", "` parameter"
	h := strings.TrimSpace(e.Hint)
	if !strings.HasPrefix(h, prefix) || !strings.HasSuffix(h, suffix) || len(h) <= len(prefix)+len(suffix) {
		return ""
	}
	return html.UnescapeString(h[len(prefix) : len(h)-len(suffix)])
}
