package bipsynctest

// How league/oauth2-server 9.4.1 on PHP sees a request, and how PHP writes its answers. Bipsync's client code
// meets these quirks on the wire (trimmed parameters, last duplicate wins, JSON numbers cast to strings, "/"
// escaped in JSON), so the fake reproduces them rather than Go's own conventions.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// phpPostMaxSize is PHP's default post_max_size. PHP drops the whole parsed body of a larger request.
const phpPostMaxSize = 8 << 20

// param is one entry of the PSR-7 parsed body. league rejects a non-scalar (array or object) value with
// invalid_request for that parameter, but only when it reads the parameter.
type param struct {
	value     string // the scalar cast to a string, as PHP's (string) cast does
	nonScalar bool
}

// params is the parsed body: what PHP put in $_POST, or what a JSON-decoding front end put there.
type params map[string]param

// get mirrors league's AbstractGrant::getRequestParameter (parseParam): the value is trimmed; a missing, null,
// false or blank value falls back to def, trimmed too. An empty result stands for PHP's null.
func (p params) get(name, def string) (string, *oauthError) {
	v := p[name]
	if v.nonScalar {
		return "", errInvalidRequest(name)
	}
	if t := phpTrim(v.value); t != "" {
		return t, nil
	}
	return phpTrim(def), nil
}

// grantIs mirrors canRespondToAccessTokenRequest: an exact, untrimmed string comparison.
func (p params) grantIs(grant string) bool {
	v, ok := p["grant_type"]
	return ok && !v.nonScalar && v.value == grant
}

// raw returns a scalar parameter untrimmed, for the request log.
func (p params) raw(name string) string {
	if v := p[name]; !v.nonScalar {
		return v.value
	}
	return ""
}

// readParams reads the whole body (so a client always finishes sending) and parses it the way PHP fills the
// parsed body: only for POST, only form and multipart bodies, plus JSON when a JSON-decoding front end is
// modelled. Anything else gives an empty body, which league answers with unsupported_grant_type.
func readParams(r *http.Request, acceptJSON bool) params {
	body, err := io.ReadAll(io.LimitReader(r.Body, phpPostMaxSize+1))
	if err != nil || len(body) > phpPostMaxSize || r.Method != http.MethodPost {
		return params{}
	}
	ct := r.Header.Get("Content-Type")
	mediaType, ctParams, err := mime.ParseMediaType(ct)
	if err != nil {
		mediaType, _, _ = strings.Cut(ct, ";")
		mediaType = strings.ToLower(strings.TrimSpace(mediaType))
	}
	switch {
	case mediaType == "application/x-www-form-urlencoded":
		return parseForm(string(body))
	case mediaType == "multipart/form-data":
		return parseMultipart(body, ctParams["boundary"])
	case acceptJSON && (mediaType == "application/json" || strings.HasSuffix(mediaType, "+json")):
		return parseJSONBody(body)
	}
	return params{}
}

// parseForm parses an x-www-form-urlencoded body as PHP does: "&" separates pairs, a pair without "=" has an
// empty value, bad percent escapes stay literal, and the last duplicate wins.
func parseForm(body string) params {
	out := params{}
	for pair := range strings.SplitSeq(body, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		out.register(phpURLDecode(k), phpURLDecode(v))
	}
	return out
}

// parseMultipart keeps the non-file fields of a multipart/form-data body; PHP puts file parts in $_FILES.
func parseMultipart(body []byte, boundary string) params {
	out := params{}
	if boundary == "" {
		return out
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		part, err := mr.NextPart()
		if err != nil {
			return out
		}
		name := part.FormName()
		if name == "" || part.FileName() != "" {
			continue
		}
		value, err := io.ReadAll(part)
		if err != nil {
			return out
		}
		out.register(name, string(value))
	}
}

// register stores one form field under the name PHP would give it. PHP turns "a[]" or "a[x]" into an array
// (so league answers invalid_request for it) and rewrites spaces and dots in names to underscores.
func (p params) register(key, value string) {
	name, isArray := phpVarName(key)
	if name == "" {
		return
	}
	if isArray {
		p[name] = param{nonScalar: true}
		return
	}
	p[name] = param{value: value}
}

func phpVarName(key string) (name string, isArray bool) {
	if i := strings.IndexByte(key, 0); i >= 0 {
		key = key[:i]
	}
	key = strings.TrimLeft(key, " ")
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		switch c := key[i]; c {
		case ' ', '.':
			b.WriteByte('_')
		case '[':
			if strings.IndexByte(key[i+1:], ']') >= 0 {
				return b.String(), true
			}
			// An unclosed bracket becomes "_" and ends the rewriting, as in php_register_variable_ex.
			b.WriteByte('_')
			b.WriteString(key[i+1:])
			return b.String(), false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), false
}

func phpURLDecode(s string) string {
	if !strings.ContainsAny(s, "+%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b.WriteByte(byte(v))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// parseJSONBody models a front end that json_decode()s the body into the parsed body. Anything but a JSON
// object (malformed, an array, a scalar, invalid UTF-8) leaves the parsed body empty.
func parseJSONBody(body []byte) params {
	out := params{}
	if !utf8.Valid(body) {
		return out
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return out
	}
	for k, raw := range fields {
		out[k] = jsonParam(raw)
	}
	return out
}

// jsonParam casts a decoded JSON value the way PHP's (string) cast does: true is "1", false and null are ""
// (so they count as missing), numbers keep PHP's number formatting.
func jsonParam(raw json.RawMessage) param {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return param{}
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return param{}
		}
		return param{value: s}
	case 't':
		return param{value: "1"}
	case 'f', 'n':
		return param{}
	case '{', '[':
		return param{nonScalar: true}
	}
	return param{value: phpNumberString(string(raw))}
}

// phpNumberString formats a JSON number as PHP 8 prints it after json_decode: integers that fit 64 bits as
// written, everything else as a float with precision 14 ("1.5", "1.0E+20").
func phpNumberString(lit string) string {
	if !strings.ContainsAny(lit, ".eE") {
		if i, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return strconv.FormatInt(i, 10)
		}
	}
	f, _ := strconv.ParseFloat(lit, 64) // overflow gives ±Inf, as PHP's json_decode does
	switch {
	case math.IsInf(f, 1):
		return "INF"
	case math.IsInf(f, -1):
		return "-INF"
	}
	s := strconv.FormatFloat(f, 'G', 14, 64)
	mantissa, exp, found := strings.Cut(s, "E")
	if !found {
		return s
	}
	if !strings.Contains(mantissa, ".") {
		mantissa += ".0"
	}
	sign, digits := exp[:1], strings.TrimLeft(exp[1:], "0")
	return mantissa + "E" + sign + digits
}

// phpTrim is PHP's trim() with its default character list.
func phpTrim(s string) string {
	return strings.Trim(s, " \t\n\r\x00\x0b")
}

// basicAuth mirrors league's getBasicAuthCredentials: the first Authorization header, "Basic " in any case,
// strict base64, a colon required, and an empty user name ignored. Credentials are not URL-decoded.
func basicAuth(h http.Header) (user, pass string) {
	vals := h.Values("Authorization")
	if len(vals) == 0 || len(vals[0]) < 6 || !strings.EqualFold(vals[0][:6], "Basic ") {
		return "", ""
	}
	decoded, ok := phpBase64DecodeStrict(vals[0][6:])
	if !ok {
		return "", ""
	}
	user, pass, found := strings.Cut(decoded, ":")
	if !found || user == "" {
		return "", ""
	}
	return user, pass
}

// phpBase64DecodeStrict follows PHP's base64_decode($s, true): whitespace is skipped, padding is optional but
// must be consistent, and any other character outside the alphabet fails.
func phpBase64DecodeStrict(s string) (string, bool) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
	data := strings.TrimRight(s, "=")
	padding := len(s) - len(data)
	if strings.Contains(data, "=") || padding > 2 || padding > 0 && (len(data)+padding)%4 != 0 {
		return "", false
	}
	out, err := base64.RawStdEncoding.DecodeString(data)
	if err != nil {
		return "", false
	}
	return string(out), true
}

// phpJSONString encodes s as PHP's json_encode does with no flags: "/" becomes "\/" and every non-ASCII
// character a lower-case \u escape (UTF-16 surrogate pairs beyond the BMP). Callers pass valid UTF-8.
func phpJSONString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '/':
			b.WriteString(`\/`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			switch {
			case r < 0x20:
				fmt.Fprintf(&b, `\u%04x`, r)
			case r < utf8.RuneSelf:
				b.WriteRune(r)
			case r > 0xFFFF:
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
			default:
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// phpJSONStrings encodes a list of strings as a compact JSON array, PHP style.
func phpJSONStrings(list []string) string {
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = phpJSONString(s)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// phpHTMLSpecialChars is htmlspecialchars($s, ENT_QUOTES, 'UTF-8', false), which league applies to the scope
// it names in an invalid_scope hint. Invalid UTF-8 gives "" (PHP without ENT_SUBSTITUTE). With double_encode
// off, entities already present are kept; the fake knows the numeric ones and the four that
// htmlspecialchars itself writes, which is enough to keep the escaping idempotent.
func phpHTMLSpecialChars(s string) string {
	if !utf8.ValidString(s) {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			if n := entityLen(s[i:]); n > 0 {
				b.WriteString(s[i : i+n])
				i += n - 1
				continue
			}
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&#039;")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// entityLen returns the length of the character reference at the start of s ("&amp;", "&#38;", "&#x26;"),
// or 0 when s does not start with one.
func entityLen(s string) int {
	semi := strings.IndexByte(s, ';')
	if semi < 2 {
		return 0
	}
	name := s[1:semi]
	if name[0] != '#' {
		switch name {
		case "amp", "lt", "gt", "quot":
			return semi + 1
		}
		return 0
	}
	digits, base := name[1:], 10
	if len(digits) > 0 && (digits[0] == 'x' || digits[0] == 'X') {
		digits, base = digits[1:], 16
	}
	if digits == "" || strings.ContainsAny(digits, "+-") {
		return 0
	}
	if v, err := strconv.ParseUint(digits, base, 32); err != nil || v > utf8.MaxRune {
		return 0
	}
	return semi + 1
}
