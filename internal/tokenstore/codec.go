package tokenstore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The envelope is ASCII so that a secret manager that only holds text can keep it:
//
//	bts1.<base64url salt>.<base64url nonce>.<base64url AES-256-GCM ciphertext>\n
//
// The AES key is HKDF-SHA256(seed, salt, info || key). A fresh salt per Seal gives a fresh AES key per record,
// so a random nonce can never repeat under one key. The chain key is also the additional data, so a record
// copied to another chain's slot fails authentication instead of resurrecting a foreign chain.
const (
	envelopePrefix = "bts1"
	hkdfInfo       = "terraform-provider-bipsync token store v1"
	saltSize       = 16
	nonceSize      = 12
	// maxEnvelope bounds what Open reads and what a backend accepts: a record is a few hundred bytes, and a
	// bound keeps a wrong file or a chatty helper from exhausting memory.
	maxEnvelope = 1 << 20
)

var b64 = base64.RawURLEncoding.Strict()

// wireRecord is the sealed JSON. It is separate from Record so that the format is fixed here, whatever
// happens to Record's Go shape, and so that Record itself never needs JSON tags that would invite marshalling
// tokens in clear elsewhere.
type wireRecord struct {
	Version              int       `json:"v"`
	RefreshToken         string    `json:"refresh_token,omitempty"`
	RefreshTokenIssuedAt time.Time `json:"refresh_token_issued_at"`
	AccessToken          string    `json:"access_token,omitempty"`
	TokenType            string    `json:"token_type,omitempty"`
	AccessTokenExpiresAt time.Time `json:"access_token_expires_at"`
	Scopes               []string  `json:"scopes"` // null (not known) and [] (none) differ
	RotatedAt            time.Time `json:"rotated_at"`
	Generation           int64     `json:"generation"`
}

const wireVersion = 1

func aead(key Key, seed string, salt []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, []byte(seed), salt, hkdfInfo+string(key), 32)
	if err != nil {
		return nil, fmt.Errorf("derive record key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("record cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// Seal encrypts rec for the chain key under seed and returns the ASCII envelope, newline terminated.
// An empty seed is refused: the derived key would be public, and the record as good as clear text.
func Seal(key Key, seed string, rec *Record) ([]byte, error) {
	if err := key.validate(); err != nil {
		return nil, err
	}
	if seed == "" {
		return nil, errors.New("seal token store record: empty seed")
	}
	if rec == nil {
		return nil, errors.New("seal token store record: nil record")
	}
	plain, err := json.Marshal(wireRecord{
		Version:              wireVersion,
		RefreshToken:         rec.RefreshToken,
		RefreshTokenIssuedAt: rec.RefreshTokenIssuedAt.UTC(),
		AccessToken:          rec.AccessToken,
		TokenType:            rec.TokenType,
		AccessTokenExpiresAt: rec.AccessTokenExpiresAt.UTC(),
		Scopes:               rec.Scopes,
		RotatedAt:            rec.RotatedAt.UTC(),
		Generation:           rec.Generation,
	})
	if err != nil {
		return nil, fmt.Errorf("seal token store record: %w", err)
	}
	var salt [saltSize]byte
	var nonce [nonceSize]byte
	rand.Read(salt[:])
	rand.Read(nonce[:])
	g, err := aead(key, seed, salt[:])
	if err != nil {
		return nil, fmt.Errorf("seal token store record: %w", err)
	}
	ct := g.Seal(nil, nonce[:], plain, []byte(key))
	clear(plain)

	out := make([]byte, 0, len(envelopePrefix)+3+b64.EncodedLen(saltSize)+b64.EncodedLen(nonceSize)+b64.EncodedLen(len(ct))+1)
	out = append(out, envelopePrefix...)
	out = append(out, '.')
	out = b64.AppendEncode(out, salt[:])
	out = append(out, '.')
	out = b64.AppendEncode(out, nonce[:])
	out = append(out, '.')
	out = b64.AppendEncode(out, ct)
	out = append(out, '\n')
	return out, nil
}

// isEnvelopeRune reports whether r may appear in an envelope (before its final newline).
func isEnvelopeRune(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}

func corrupt(reason string) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, reason)
}

// Open decrypts an envelope made by Seal for the same key and seed. Anything else (another seed, another key,
// a damaged or foreign file) gives an error that satisfies errors.Is(err, ErrCorrupt) and names the reason,
// never the content.
func Open(key Key, seed string, data []byte) (*Record, error) {
	if err := key.validate(); err != nil {
		return nil, err
	}
	if len(data) > maxEnvelope {
		return nil, corrupt(fmt.Sprintf("%d bytes is larger than any record", len(data)))
	}
	// Secret managers and editors may add a trailing newline or CRLF; nothing else is tolerated.
	data = bytes.TrimRight(data, "\r\n")
	parts := bytes.Split(data, []byte("."))
	if len(parts) != 4 || string(parts[0]) != envelopePrefix {
		return nil, corrupt("not a token store envelope (want bts1.<salt>.<nonce>.<ciphertext>)")
	}
	salt, err := b64.AppendDecode(nil, parts[1])
	if err != nil || len(salt) != saltSize {
		return nil, corrupt("bad salt")
	}
	nonce, err := b64.AppendDecode(nil, parts[2])
	if err != nil || len(nonce) != nonceSize {
		return nil, corrupt("bad nonce")
	}
	ct, err := b64.AppendDecode(nil, parts[3])
	if err != nil {
		return nil, corrupt("bad ciphertext encoding")
	}
	g, err := aead(key, seed, salt)
	if err != nil {
		return nil, corrupt(err.Error())
	}
	if len(ct) < g.Overhead() {
		return nil, corrupt("ciphertext too short")
	}
	plain, err := g.Open(ct[:0], nonce, ct, []byte(key))
	if err != nil {
		return nil, corrupt("authentication failed (another seed or chain, or damaged)")
	}
	defer clear(plain)
	var w wireRecord
	if err := json.Unmarshal(plain, &w); err != nil {
		// The JSON error may quote the plaintext, so only its kind is reported.
		return nil, corrupt("malformed record")
	}
	if w.Version != wireVersion {
		return nil, corrupt(fmt.Sprintf("record version %d; this provider reads version %d", w.Version, wireVersion))
	}
	if w.Generation < 0 {
		return nil, corrupt("negative generation")
	}
	return &Record{
		RefreshToken:         w.RefreshToken,
		RefreshTokenIssuedAt: w.RefreshTokenIssuedAt,
		AccessToken:          w.AccessToken,
		TokenType:            w.TokenType,
		AccessTokenExpiresAt: w.AccessTokenExpiresAt,
		Scopes:               w.Scopes,
		RotatedAt:            w.RotatedAt,
		Generation:           w.Generation,
	}, nil
}
