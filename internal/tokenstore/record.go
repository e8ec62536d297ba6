package tokenstore

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Record is the state of one chain.
type Record struct {
	// RefreshToken is the current chain head (empty for client-credentials records).
	RefreshToken         string
	RefreshTokenIssuedAt time.Time
	AccessToken          string
	TokenType            string
	AccessTokenExpiresAt time.Time
	// Scopes are the scopes of the current access token and chain; nil means the original consent (not known).
	Scopes []string
	// RotatedAt is the time of the last exchange.
	RotatedAt time.Time
	// Generation counts the exchanges recorded on this chain.
	Generation int64
}

// redacted says whether a secret is present without showing any of it.
func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "[redacted]"
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return t.UTC().Format(time.RFC3339)
}

func scopesString(s []string) string {
	if s == nil {
		return "nil"
	}
	return "[" + strings.Join(s, " ") + "]"
}

// String describes the record with its tokens redacted, so a record that reaches a log or an error is harmless.
func (r Record) String() string {
	return fmt.Sprintf("{RefreshToken:%s RefreshTokenIssuedAt:%s AccessToken:%s TokenType:%s AccessTokenExpiresAt:%s Scopes:%s RotatedAt:%s Generation:%d}",
		redacted(r.RefreshToken), timeString(r.RefreshTokenIssuedAt), redacted(r.AccessToken), r.TokenType,
		timeString(r.AccessTokenExpiresAt), scopesString(r.Scopes), timeString(r.RotatedAt), r.Generation)
}

// GoString keeps %#v from printing the tokens, which it would do field by field otherwise.
func (r Record) GoString() string {
	return "tokenstore.Record" + r.String()
}

// LogValue keeps slog from printing the tokens field by field.
func (r Record) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("refresh_token", redacted(r.RefreshToken)),
		slog.Time("refresh_token_issued_at", r.RefreshTokenIssuedAt),
		slog.String("access_token", redacted(r.AccessToken)),
		slog.String("token_type", r.TokenType),
		slog.Time("access_token_expires_at", r.AccessTokenExpiresAt),
		slog.String("scopes", scopesString(r.Scopes)),
		slog.Time("rotated_at", r.RotatedAt),
		slog.Int64("generation", r.Generation),
	)
}
