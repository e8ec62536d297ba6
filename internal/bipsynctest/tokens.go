package bipsynctest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// refreshRecord is what league keeps encrypted inside a refresh token plus the repository's revoked flag. The
// fake keeps it server-side and hands out a random string of league's shape, so any string it did not issue,
// including a real token with one digit changed, "cannot be decrypted".
type refreshRecord struct {
	clientID    string
	userID      string
	scopes      []string
	expireTime  int64  // Unix seconds, league's expire_time
	accessToken string // the access token issued together with this one; consuming this token revokes it
	chain       int
	revoked     bool
	rotations   int // successful exchanges of this token: more than one only with a revoke pause (a fork)
}

// accessRecord is one issued access token. chain is 0 for client_credentials tokens.
type accessRecord struct {
	clientID  string
	scopes    []string
	issuedAt  time.Time
	expiresAt time.Time
	chain     int
	revoked   bool
}

// validAt mirrors lcobucci/jwt's LooseValidAt without leeway: iat <= now < exp.
func (a *accessRecord) validAt(now time.Time) bool {
	return !now.Before(a.issuedAt) && now.Before(a.expiresAt)
}

// liveAt reports whether the refresh token may still be exchanged at now. league compares expire_time with
// time(), both whole seconds, and rejects only when expire_time < time().
func (r *refreshRecord) liveAt(now time.Time) bool {
	return !r.revoked && r.expireTime >= now.Unix()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error; it crashes the program instead
	return b
}

// leagueIdentifier is league's generateUniqueIdentifier: bin2hex(random_bytes(40)).
func leagueIdentifier() string {
	return hex.EncodeToString(randomBytes(40))
}

// newRefreshTokenString returns a string shaped like league's defuse ciphertext of the payload: "def50200"
// and hex, 168 + 2×len(payload) characters long.
func newRefreshTokenString(clientID string, accessTokenID string, scopes []string, userID string, expireTime int64) string {
	payload := `{"client_id":` + phpJSONString(clientID) +
		`,"refresh_token_id":"` + leagueIdentifier() +
		`","access_token_id":"` + accessTokenID +
		`","scopes":` + phpJSONStrings(scopes) +
		`,"user_id":` + phpJSONString(userID) +
		`,"expire_time":` + strconv.FormatInt(expireTime, 10) + `}`
	return "def50200" + hex.EncodeToString(randomBytes(80+len(payload)))
}

// accessTokenClaims are league's JWT claims in league's order. aud is a plain string; iat, nbf and exp are
// microsecond numbers as lcobucci/jwt 5 writes them.
type accessTokenClaims struct {
	Aud    string      `json:"aud"`
	Jti    string      `json:"jti"`
	Iat    json.Number `json:"iat"`
	Nbf    json.Number `json:"nbf"`
	Exp    json.Number `json:"exp"`
	Sub    string      `json:"sub"`
	Scopes []string    `json:"scopes"`
}

// newAccessTokenString returns a JWT-shaped token with league's header and claims. The signature segment is
// random bytes of an RS256 signature's length: clients must treat the token as opaque, and the fake
// recognises its tokens by exact string.
func newAccessTokenString(clientID, subject string, scopes []string, issuedAt, expiresAt time.Time) (token, jti string) {
	jti = leagueIdentifier()
	if scopes == nil {
		scopes = []string{}
	}
	// lcobucci/jwt encodes with JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE: no HTML escaping either.
	var claims bytes.Buffer
	e := json.NewEncoder(&claims)
	e.SetEscapeHTML(false)
	_ = e.Encode(accessTokenClaims{
		Aud:    clientID,
		Jti:    jti,
		Iat:    jwtTime(issuedAt),
		Nbf:    jwtTime(issuedAt),
		Exp:    jwtTime(expiresAt),
		Sub:    subject,
		Scopes: scopes,
	})
	enc := base64.RawURLEncoding
	token = enc.EncodeToString([]byte(`{"typ":"JWT","alg":"RS256"}`)) + "." +
		enc.EncodeToString(bytes.TrimSuffix(claims.Bytes(), []byte("\n"))) + "." +
		enc.EncodeToString(randomBytes(256))
	return token, jti
}

// jwtTime writes a whole second as an integer and anything finer as seconds with a microsecond fraction.
func jwtTime(t time.Time) json.Number {
	sec, us := t.Unix(), t.Nanosecond()/1000
	if us == 0 {
		return json.Number(strconv.FormatInt(sec, 10))
	}
	f, _ := strconv.ParseFloat(fmt.Sprintf("%d.%06d", sec, us), 64)
	return json.Number(strconv.FormatFloat(f, 'f', -1, 64))
}

// dedupe keeps the first occurrence of each scope, as league's token entities (keyed by identifier) do.
func dedupe(scopes []string) []string {
	out := make([]string, 0, len(scopes))
	seen := make(map[string]bool, len(scopes))
	for _, s := range scopes {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
