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
	"strconv"
	"time"
)

// The envelope is ASCII so that a secret manager that only holds text can keep it:
//
//	bts2.<generation>.<id>.<base64url salt>.<base64url nonce>.<base64url AES-256-GCM ciphertext>\n
//
// The AES key is HKDF-SHA256(seed, salt, info || key). A fresh salt per Seal gives a fresh AES key per record,
// so a random nonce can never repeat under one key. The chain key and the clear header (generation and record ID)
// are the additional data: a record copied to another chain's slot, or whose header was edited, fails
// authentication instead of resurrecting a foreign chain or posing as another revision.
//
// The generation and ID travel in clear so that a store can compare revisions without the seed: a command helper
// does a conditional write with its secret manager by comparing them, and never decrypts anything. They reveal how
// often a chain was exchanged, nothing more.
//
// Envelopes written before records had IDs start with bts1 and have no clear header (bts1.<salt>.<nonce>.<ct>,
// with the chain key alone as additional data). Open still reads them; Seal writes bts2 only.
const (
	envelopePrefix       = "bts2"
	legacyEnvelopePrefix = "bts1"
	hkdfInfo             = "terraform-provider-bipsync token store v1"
	saltSize             = 16
	nonceSize            = 12
	// maxEnvelope bounds what Open reads, what Seal writes and what a backend accepts. The token client accepts
	// answers up to 1 MiB; JSON may escape each byte of a token into six (\u003c), and base64 adds a third, so the
	// largest record an accepted answer can make stays under 9 MiB. A bound keeps a wrong file or a chatty helper
	// from exhausting memory, and Seal refusing what Open would refuse means no saved record is ever unreadable.
	maxEnvelope = 16 << 20
)

var b64 = base64.RawURLEncoding.Strict()

// wireRecord is the sealed JSON. It is separate from Record so that the format is fixed here, whatever
// happens to Record's Go shape, and so that Record itself never needs JSON tags that would invite marshalling
// tokens in clear elsewhere.
type wireRecord struct {
	Version              int         `json:"v"`
	RefreshToken         string      `json:"refresh_token,omitempty"`
	RefreshTokenIssuedAt time.Time   `json:"refresh_token_issued_at"`
	AccessToken          string      `json:"access_token,omitempty"`
	TokenType            string      `json:"token_type,omitempty"`
	AccessTokenExpiresAt time.Time   `json:"access_token_expires_at"`
	Scopes               []string    `json:"scopes"` // null (not known) and [] (none) differ
	RotatedAt            time.Time   `json:"rotated_at"`
	Generation           int64       `json:"generation"`
	Asks                 []wireAsk   `json:"asks,omitempty"`
	Leases               []wireLease `json:"leases,omitempty"`
	Dead                 *wireDeath  `json:"dead,omitempty"`
	// Claim is set, and nothing else but Generation, in a claim's envelope (see Claimer): a claim and a chain record
	// never open as each other.
	Claim *wireClaim `json:"claim,omitempty"`
}

type wireClaim struct {
	HeadID string    `json:"head_id"`
	Holder string    `json:"holder"`
	At     time.Time `json:"at"`
	TTL    int64     `json:"ttl_ns"`
}

type wireDeath struct {
	At     time.Time `json:"at"`
	Cause  string    `json:"cause"`
	Detail string    `json:"detail,omitempty"`
	By     string    `json:"by,omitempty"`
}

type wireLease struct {
	ID          string    `json:"id"`
	Until       time.Time `json:"until"`
	MinValidity int64     `json:"min_validity_ns"`
	At          time.Time `json:"at"`
}

type wireAsk struct {
	Scopes []string  `json:"scopes"`
	At     time.Time `json:"at"`
}

const wireVersion = 1

// header is the clear part of a bts2 envelope that is authenticated with the ciphertext.
func header(rev Revision) string {
	return envelopePrefix + "." + strconv.FormatInt(rev.Generation, 10) + "." + rev.ID
}

func additionalData(key Key, hdr string) []byte {
	if hdr == "" {
		return []byte(key) // legacy bts1
	}
	return []byte(string(key) + "." + hdr)
}

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
// An empty seed is refused: the derived key would be public, and the record as good as clear text. rec.ID must be a
// record ID (NewRecordID): it is part of the envelope's clear header.
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
	if !validID(rec.ID) {
		return nil, errors.New("seal token store record: the record has no valid ID (a bug in the provider)")
	}
	if rec.Generation < 0 {
		return nil, errors.New("seal token store record: negative generation (a bug in the provider)")
	}
	w := wireRecord{
		Version:              wireVersion,
		RefreshToken:         rec.RefreshToken,
		RefreshTokenIssuedAt: rec.RefreshTokenIssuedAt.UTC(),
		AccessToken:          rec.AccessToken,
		TokenType:            rec.TokenType,
		AccessTokenExpiresAt: rec.AccessTokenExpiresAt.UTC(),
		Scopes:               rec.Scopes,
		RotatedAt:            rec.RotatedAt.UTC(),
		Generation:           rec.Generation,
	}
	for _, a := range rec.Asks {
		w.Asks = append(w.Asks, wireAsk{Scopes: a.Scopes, At: a.At.UTC()})
	}
	for _, l := range rec.Leases {
		w.Leases = append(w.Leases, wireLease{ID: l.ID, Until: l.Until.UTC(), MinValidity: int64(l.MinValidity), At: l.At.UTC()})
	}
	if d := rec.Dead; d != nil {
		w.Dead = &wireDeath{At: d.At.UTC(), Cause: d.Cause, Detail: d.Detail, By: d.By}
	}
	return sealWire(key, seed, rec.Revision(), &w)
}

// sealWire encrypts w under the chain key and seed, with rev as the envelope's clear header.
func sealWire(key Key, seed string, rev Revision, w *wireRecord) ([]byte, error) {
	plain, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("seal token store record: %w", err)
	}
	var salt [saltSize]byte
	var nonce [nonceSize]byte
	_, _ = rand.Read(salt[:])
	_, _ = rand.Read(nonce[:])
	g, err := aead(key, seed, salt[:])
	if err != nil {
		return nil, fmt.Errorf("seal token store record: %w", err)
	}
	hdr := header(rev)
	ct := g.Seal(nil, nonce[:], plain, additionalData(key, hdr))
	clear(plain)

	out := make([]byte, 0, len(hdr)+3+b64.EncodedLen(saltSize)+b64.EncodedLen(nonceSize)+b64.EncodedLen(len(ct))+1)
	out = append(out, hdr...)
	out = append(out, '.')
	out = b64.AppendEncode(out, salt[:])
	out = append(out, '.')
	out = b64.AppendEncode(out, nonce[:])
	out = append(out, '.')
	out = b64.AppendEncode(out, ct)
	out = append(out, '\n')
	if len(out) > maxEnvelope {
		return nil, fmt.Errorf("seal token store record: the record is %d bytes, more than the %d a store accepts", len(out), maxEnvelope)
	}
	return out, nil
}

// isEnvelopeRune reports whether r may appear in an envelope (before its final newline).
func isEnvelopeRune(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}

func corrupt(reason string) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, reason)
}

// envelope is an envelope split into its parts, not yet decrypted.
type envelope struct {
	rev                Revision // ID "" for a legacy bts1 envelope
	hdr                string   // "" for a legacy bts1 envelope
	salt, nonce, ctext []byte
}

// parseEnvelope splits an envelope without the seed. Errors satisfy errors.Is(err, ErrCorrupt).
func parseEnvelope(data []byte) (*envelope, error) {
	if len(data) > maxEnvelope {
		return nil, corrupt(fmt.Sprintf("%d bytes is larger than any record", len(data)))
	}
	// Secret managers and editors may add a trailing newline or CRLF; nothing else is tolerated.
	data = bytes.TrimRight(data, "\r\n")
	parts := bytes.Split(data, []byte("."))
	var e envelope
	switch {
	case len(parts) == 4 && string(parts[0]) == legacyEnvelopePrefix:
	case len(parts) == 6 && string(parts[0]) == envelopePrefix:
		gen, err := strconv.ParseInt(string(parts[1]), 10, 64)
		if err != nil || gen < 0 || strconv.FormatInt(gen, 10) != string(parts[1]) {
			return nil, corrupt("bad generation in the header")
		}
		if !validID(string(parts[2])) {
			return nil, corrupt("bad record ID in the header")
		}
		e.rev = Revision{Generation: gen, ID: string(parts[2])}
		e.hdr = string(bytes.Join(parts[:3], []byte(".")))
		parts = parts[2:]
	default:
		return nil, corrupt("not a token store envelope (want bts2.<generation>.<id>.<salt>.<nonce>.<ciphertext>)")
	}
	var err error
	if e.salt, err = b64.AppendDecode(nil, parts[1]); err != nil || len(e.salt) != saltSize {
		return nil, corrupt("bad salt")
	}
	if e.nonce, err = b64.AppendDecode(nil, parts[2]); err != nil || len(e.nonce) != nonceSize {
		return nil, corrupt("bad nonce")
	}
	if e.ctext, err = b64.AppendDecode(nil, parts[3]); err != nil {
		return nil, corrupt("bad ciphertext encoding")
	}
	return &e, nil
}

// EnvelopeRevision returns the revision an envelope's clear header names, without the seed. A legacy envelope (bts1)
// has the revision {ID: ""}, whose generation is known only once it is opened.
func EnvelopeRevision(data []byte) (Revision, error) {
	e, err := parseEnvelope(data)
	if err != nil {
		return Revision{}, err
	}
	return e.rev, nil
}

// Open decrypts an envelope made by Seal for the same key and seed. Anything else (another seed, another key,
// a damaged or foreign file, an edited header) gives an error that satisfies errors.Is(err, ErrCorrupt) and names the
// reason, never the content.
func Open(key Key, seed string, data []byte) (*Record, error) {
	w, e, err := openWire(key, seed, data)
	if err != nil {
		return nil, err
	}
	if w.Claim != nil {
		return nil, corrupt("a claim, not a chain record")
	}
	rec := &Record{
		RefreshToken:         w.RefreshToken,
		RefreshTokenIssuedAt: w.RefreshTokenIssuedAt,
		AccessToken:          w.AccessToken,
		TokenType:            w.TokenType,
		AccessTokenExpiresAt: w.AccessTokenExpiresAt,
		Scopes:               w.Scopes,
		RotatedAt:            w.RotatedAt,
		Generation:           w.Generation,
		ID:                   e.rev.ID,
	}
	for _, a := range w.Asks {
		rec.Asks = append(rec.Asks, ScopeAsk(a))
	}
	for _, l := range w.Leases {
		rec.Leases = append(rec.Leases, Lease{ID: l.ID, Until: l.Until, MinValidity: time.Duration(l.MinValidity), At: l.At})
	}
	if d := w.Dead; d != nil {
		rec.Dead = &Death{At: d.At, Cause: d.Cause, Detail: d.Detail, By: d.By}
	}
	return rec, nil
}

// decodeWire parses the plaintext of envelope e and checks it against its header.
func decodeWire(plain []byte, e *envelope) (*wireRecord, error) {
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
	if e.hdr != "" && w.Generation != e.rev.Generation {
		return nil, corrupt("the header's generation differs from the record's")
	}
	return &w, nil
}

// openWire decrypts and decodes an envelope made by sealWire for key and seed.
func openWire(key Key, seed string, data []byte) (*wireRecord, *envelope, error) {
	if err := key.validate(); err != nil {
		return nil, nil, err
	}
	e, err := parseEnvelope(data)
	if err != nil {
		return nil, nil, err
	}
	g, err := aead(key, seed, e.salt)
	if err != nil {
		return nil, nil, corrupt(err.Error())
	}
	if len(e.ctext) < g.Overhead() {
		return nil, nil, corrupt("ciphertext too short")
	}
	plain, err := g.Open(e.ctext[:0], e.nonce, e.ctext, additionalData(key, e.hdr))
	if err != nil {
		return nil, nil, corrupt("authentication failed (another seed or chain, or damaged)")
	}
	defer clear(plain)
	w, err := decodeWire(plain, e)
	if err != nil {
		return nil, nil, err
	}
	return w, e, nil
}
