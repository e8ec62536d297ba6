package bipsync

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Error is every failure of a token request.
type Error struct {
	// Op is "refresh" or "client_credentials".
	Op string
	// StatusCode is the HTTP status; 0 when there was no HTTP answer.
	StatusCode int
	// Code is the OAuth "error".
	Code string
	// Description is the OAuth "error_description".
	Description string
	// Hint is league 9's "hint".
	Hint string
	// Message is league 8's "message" (a copy of the description there).
	Message string
	// RetryAfter is the server's Retry-After, when given.
	RetryAfter time.Duration
	// Attempts is how many HTTP attempts were made.
	Attempts int
	// Sent tells that the request may have reached the server (its body was written).
	Sent bool
	// Err is the transport or decoding cause, already scrubbed of secrets.
	Err error

	class           errClass
	retryAfterGiven bool
	// newHead is the refresh token of a 2xx refresh answer that was unusable otherwise. It is behind a pointer so that
	// printing an Error by value (%v of *e) shows an address, never the token.
	newHead *rescued
}

// rescued holds a rescued refresh token; it formats as a redaction however it is printed.
type rescued struct{ token string }

func (r *rescued) String() string   { return redacted }
func (r *rescued) GoString() string { return redacted }

// RescuedRefreshToken returns the new refresh token of a refresh answer that carried one but was unusable otherwise
// (no valid access token, token type or expiry). Bipsync rotated the chain and revoked the old head, so the caller
// must keep this one: it is the chain now.
func RescuedRefreshToken(err error) (string, bool) {
	var e *Error
	if errors.As(err, &e) && e.newHead != nil && e.newHead.token != "" {
		return e.newHead.token, true
	}
	return "", false
}

// errClass is what the client knows about a failure. Errors built outside this package (tests of callers) leave it
// unset and are classified from their exported fields.
type errClass int

const (
	classUnset        errClass = iota
	classInput                 // refused before anything was sent
	classCanceled              // the caller's context ended before anything was sent
	classNotSent               // transport failure before the request was written: the server surely saw nothing
	classCertificate           // certificate verification failed: permanent until the trust or the URL is fixed
	classHostNotFound          // the host name does not resolve: nothing was sent, and retrying cannot help
	classRetryLater            // 429 or 503: the server said it did not process the request
	classAnswered              // an error answer: the server processed and refused; nothing was consumed
	classUnknown               // sent and no usable answer: the exchange may or may not have happened
)

func (e *Error) classify() errClass {
	if e.class != classUnset {
		return e.class
	}
	s := e.StatusCode
	switch {
	case s == 429 || s == 503:
		return classRetryLater
	case s >= 200 && s < 400, s >= 500:
		return classUnknown
	case s != 0:
		return classAnswered
	case e.Sent:
		return classUnknown
	case e.Err == nil:
		return classInput
	case isCertificateError(e.Err):
		return classCertificate
	case errors.Is(e.Err, context.Canceled):
		return classCanceled
	default:
		return classNotSent
	}
}

// Error describes the failure: operation, status, OAuth fields and cause. It never holds a token, the client secret
// or a raw body.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("bipsync: ")
	if e.Op != "" {
		b.WriteString(e.Op)
	} else {
		b.WriteString("token request")
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
	}
	if e.Code != "" {
		b.WriteString(": " + e.Code)
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	if e.Hint != "" {
		b.WriteString(" (hint: " + e.Hint + ")")
	}
	if e.Message != "" && e.Message != e.Description {
		b.WriteString(" (message: " + e.Message + ")")
	}
	if e.Err != nil {
		if e.StatusCode == 0 && e.Sent {
			b.WriteString(": request sent, no answer")
		}
		b.WriteString(": " + e.Err.Error())
	}
	var notes []string
	if e.Attempts > 1 {
		notes = append(notes, fmt.Sprintf("after %d attempts", e.Attempts))
	}
	if e.RetryAfter > 0 {
		notes = append(notes, "server asks to retry after "+e.RetryAfter.String())
	}
	if len(notes) > 0 {
		b.WriteString(" (" + strings.Join(notes, "; ") + ")")
	}
	return b.String()
}

// GoString keeps %#v from dumping the cause's internals; it shows the same scrubbed text as Error.
func (e *Error) GoString() string {
	if e == nil {
		return "(*bipsync.Error)(nil)"
	}
	cause := "<nil>"
	if e.Err != nil {
		cause = fmt.Sprintf("%q", e.Err.Error())
	}
	return fmt.Sprintf("&bipsync.Error{Op:%q, StatusCode:%d, Code:%q, Description:%q, Hint:%q, Message:%q, RetryAfter:%s, Attempts:%d, Sent:%t, Err:%s}",
		e.Op, e.StatusCode, e.Code, e.Description, e.Hint, e.Message, e.RetryAfter, e.Attempts, e.Sent, cause)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func asError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e) && e != nil
	return e, ok
}

// NeedsReauthorization reports a dead chain that only a new authorization code grant can replace: invalid_grant
// (any hint), invalid_scope on a refresh (scopes beyond the consent), and league 8's 401 invalid_request
// "The refresh token is invalid.".
func NeedsReauthorization(err error) bool {
	return ReauthorizationCause(err) != CauseNone
}

// IsInvalidClient reports that the server rejected the client id or secret (invalid_client, whatever the status).
func IsInvalidClient(err error) bool {
	e, ok := asError(err)
	return ok && e.Code == "invalid_client"
}

// IsOutcomeUnknown reports that the request was sent and no usable answer came back: a timeout or reset after
// sending, a 5xx other than 503, a redirect, or a 2xx that is not a valid token answer. A refresh may have rotated
// the chain, so the old refresh token must not be replayed blindly.
func IsOutcomeUnknown(err error) bool {
	e, ok := asError(err)
	return ok && e.classify() == classUnknown
}

// IsRetryableLater reports that the server surely did not process the request, so the same request can be made
// again later: 429 or 503 after the retries ran out, or a dial or TLS handshake failure. Certificate verification
// failures are not included: retrying cannot fix them (see IsCertificateError).
func IsRetryableLater(err error) bool {
	e, ok := asError(err)
	if !ok {
		return false
	}
	c := e.classify()
	return c == classRetryLater || c == classNotSent
}

// IsHostNotFound reports that the token endpoint's host name does not resolve (a DNS "no such host"); nothing was sent.
// It is not retried: the usual cause is a mistyped tenant or base URL.
func IsHostNotFound(err error) bool {
	e, ok := asError(err)
	return ok && (e.class == classHostNotFound || (e.class == classUnset && !e.Sent && e.StatusCode == 0 && isHostNotFound(e.Err)))
}

// isHostNotFound tells a lookup that found no such host from other dial failures, which may pass.
func isHostNotFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// IsCertificateError reports that the server's certificate failed verification; nothing was sent.
func IsCertificateError(err error) bool {
	e, ok := asError(err)
	return ok && e.classify() == classCertificate
}

// ReauthCause says why a chain needs reauthorization.
type ReauthCause string

// Causes of NeedsReauthorization, from league's hints.
const (
	CauseNone          ReauthCause = ""
	CauseExpired       ReauthCause = "expired"       // hint "Token has expired"
	CauseRevoked       ReauthCause = "revoked"       // hint "Token has been revoked"
	CauseNotLinked     ReauthCause = "not_linked"    // hint "Token is not linked to client"
	CauseUndecryptable ReauthCause = "undecryptable" // hint "Cannot decrypt the refresh token"
	CauseScope         ReauthCause = "scope"         // invalid_scope on refresh
	CauseInvalid       ReauthCause = "invalid"       // other invalid_grant, or the league 8 form without a known hint
)

// ReauthorizationCause returns why err needs reauthorization, or CauseNone when it does not.
func ReauthorizationCause(err error) ReauthCause {
	e, ok := asError(err)
	if !ok || e.StatusCode < 400 || e.StatusCode >= 500 {
		return CauseNone
	}
	switch {
	case e.Code == "invalid_grant":
		return causeFromHint(e.Hint)
	case e.Code == "invalid_scope" && e.Op == OpRefresh:
		return CauseScope
	case e.Code == "invalid_request" && e.StatusCode == 401 && e.Op == OpRefresh &&
		strings.EqualFold(strings.TrimSuffix(strings.TrimSpace(e.Description), "."), "The refresh token is invalid"):
		return causeFromHint(e.Hint)
	}
	return CauseNone
}

func causeFromHint(hint string) ReauthCause {
	h := strings.TrimSuffix(strings.TrimSpace(hint), ".")
	switch {
	case strings.EqualFold(h, "Token has expired"):
		return CauseExpired
	case strings.EqualFold(h, "Token has been revoked"):
		return CauseRevoked
	case strings.EqualFold(h, "Token is not linked to client"):
		return CauseNotLinked
	case strings.EqualFold(h, "Cannot decrypt the refresh token"):
		return CauseUndecryptable
	}
	return CauseInvalid
}

// ScopeFromHint returns the scope named by league's invalid_scope hint "Check the `x` scope", HTML-unescaped (league
// escapes it); "" when the hint has another form.
func ScopeFromHint(hint string) string {
	const prefix, suffix = "Check the `", "` scope"
	if !strings.HasPrefix(hint, prefix) || !strings.HasSuffix(hint, suffix) || len(hint) < len(prefix)+len(suffix) {
		return ""
	}
	return html.UnescapeString(hint[len(prefix) : len(hint)-len(suffix)])
}

// oauthFields is a decoded OAuth error body.
type oauthFields struct {
	Code, Description, Hint, Message string
}

// decodeErrorResponse reads the OAuth fields of an error body of any status (league 9: error, error_description,
// hint; league 8 adds message). Anything else, including a body that is not JSON, gives empty fields: the raw body is
// never kept.
func decodeErrorResponse(data []byte) oauthFields {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return oauthFields{}
	}
	var f oauthFields
	f.Code, _ = jsonString(m["error"])
	f.Description, _ = jsonString(m["error_description"])
	f.Hint, _ = jsonString(m["hint"])
	f.Message, _ = jsonString(m["message"])
	return f
}

// isCertificateError tells certificate verification failures, which no retry can fix, from handshake failures.
func isCertificateError(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		ua   x509.UnknownAuthorityError
		ci   x509.CertificateInvalidError
		he   x509.HostnameError
		sr   x509.SystemRootsError
		cv   x509.ConstraintViolationError
		uc   x509.UnhandledCriticalExtension
		ia   x509.InsecureAlgorithmError
	)
	return errors.As(err, &verr) || errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &he) ||
		errors.As(err, &sr) || errors.As(err, &cv) || errors.As(err, &uc) || errors.As(err, &ia)
}

const redacted = "<redacted>"

// maxField bounds each OAuth field taken from a body: they end up in diagnostics.
const maxField = 1024

// scrubber removes secrets from text that leaves the client. The server never echoes them as far as anyone knows;
// this is the defence for when one does (a proxy error page, a debugging server).
type scrubber struct {
	secrets []string
}

func newScrubber(secrets ...string) scrubber {
	seen := map[string]bool{}
	var out []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		j, _ := json.Marshal(s)
		for _, v := range []string{s, url.QueryEscape(s), url.PathEscape(s), string(j[1 : len(j)-1])} {
			if v != "" && !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	// Longest first, so that an encoded form is replaced whole before the plain secret inside it.
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return scrubber{secrets: out}
}

// text returns t with every secret replaced. A replacement can form a secret anew across its edge (only for secrets
// that overlap "<redacted>"); then nothing of t is kept.
func (s scrubber) text(t string) string {
	for _, sec := range s.secrets {
		t = strings.ReplaceAll(t, sec, redacted)
	}
	for _, sec := range s.secrets {
		if strings.Contains(t, sec) {
			return redacted
		}
	}
	return t
}

// field cleans an OAuth field from a body: valid UTF-8, bounded, scrubbed.
func (s scrubber) field(t string) string {
	// Scrub before cutting: a cut through a secret would leave a prefix that no longer matches it.
	t = s.text(strings.ToValidUTF8(t, "\uFFFD"))
	if !utf8.ValidString(t) {
		return redacted // a secret matched part of a character; real secrets are ASCII, so keep nothing
	}
	if len(t) > maxField {
		cut := maxField
		for cut > 0 && !utf8.RuneStart(t[cut]) {
			cut--
		}
		t = t[:cut] + "…"
	}
	return t
}

// err returns err itself when its text holds no secret (so errors.As keeps working), else an error with the scrubbed
// text that still matches the context errors.
func (s scrubber) err(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := s.text(msg)
	if clean == msg {
		return err
	}
	return &scrubbedError{
		msg:      clean,
		canceled: errors.Is(err, context.Canceled),
		deadline: errors.Is(err, context.DeadlineExceeded),
	}
}

type scrubbedError struct {
	msg                string
	canceled, deadline bool
}

func (e *scrubbedError) Error() string { return e.msg }

func (e *scrubbedError) Is(target error) bool {
	return (target == context.Canceled && e.canceled) || (target == context.DeadlineExceeded && e.deadline)
}
