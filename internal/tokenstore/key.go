package tokenstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
)

// Key names one chain: a fingerprint of (token endpoint URL, client_id, seed). It is 64 lower-case hex
// characters, so it is safe in file names and command arguments and reveals nothing about the seed.
type Key string

// keyDomain separates these fingerprints from any other SHA-256 over the same strings.
const keyDomain = "terraform-provider-bipsync chain key v1"

// KeyFor returns the key of the chain seeded with seed at tokenURL for clientID. The endpoint is canonical first
// (CanonicalEndpoint), so every spelling of one endpoint names one chain. Each field is length-prefixed so that no two
// different triples share an encoding ("a"+"bc" and "ab"+"c" differ).
func KeyFor(tokenURL, clientID, seed string) Key {
	return keyFor(CanonicalEndpoint(tokenURL), clientID, seed)
}

// LegacyKey returns the key that versions before endpoints were made canonical gave the chain, and whether it differs
// from KeyFor's: a record saved under it is the same chain, and must still be found.
func LegacyKey(tokenURL, clientID, seed string) (Key, bool) {
	if CanonicalEndpoint(tokenURL) == tokenURL {
		return "", false
	}
	return keyFor(tokenURL, clientID, seed), true
}

// CanonicalEndpoint returns the one spelling of a URL: scheme and host in lower case, no trailing dot on the host
// name, no port when it is the scheme's default. "https://ACME-api.bipsync.com.:443/v1/oauth/token" and
// "https://acme-api.bipsync.com/v1/oauth/token" are one endpoint, so one chain. A value that does not parse is
// returned as it is.
func CanonicalEndpoint(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	u.Scheme = strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	host = strings.TrimRight(host, ".")
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	u.Host = host
	if port != "" {
		u.Host += ":" + port
	}
	return u.String()
}

func keyFor(tokenURL, clientID, seed string) Key {
	h := sha256.New()
	var n [8]byte
	for _, s := range []string{keyDomain, tokenURL, clientID, seed} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return Key(hex.EncodeToString(h.Sum(nil)))
}

// validate rejects anything that is not a KeyFor result. Keys become file names and helper arguments, so a
// stray value must never reach the file system or a command line.
func (k Key) validate() error {
	if len(k) != 2*sha256.Size {
		return fmt.Errorf("invalid token store key: got %d characters; want %d", len(k), 2*sha256.Size)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("invalid token store key: character %d is not lower-case hex", i)
		}
	}
	return nil
}

// SeedJournalKey returns the key of a bipsync_refresh_grant's seed journal record: the record of the first exchange of
// seed by a grant, sealed with the seed. The grant writes it; the token source reads it to tell a user that the seed
// a refused chain started from was consumed by a grant.
func SeedJournalKey(tokenURL, clientID, seed string) Key {
	return KeyFor(tokenURL, clientID, "bipsync_refresh_grant seed\x00"+seed)
}
