package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Store keeps chain records between processes. Callers take Lock, then Load, exchange, Save, unlock: the
// record must be read under the lock because another process may have rotated the chain meanwhile.
type Store interface {
	// Lock takes the exclusive cross-process lock for one chain, waiting (polling, context-aware) while another
	// process holds it. Independent chains never wait for each other. The returned unlock is idempotent.
	Lock(ctx context.Context, key Key) (unlock func() error, err error)
	// Load returns the record, or (nil, nil) when there is none. A record that cannot be decrypted with seed or
	// is malformed gives an error satisfying errors.Is(err, ErrCorrupt) that says where it is and what to do,
	// never its content.
	Load(ctx context.Context, key Key, seed string) (*Record, error)
	// Save durably stores the record: it survives a crash right after Save returns.
	Save(ctx context.Context, key Key, seed string, rec *Record) error
	// Kind is "file", "command" or "none".
	Kind() string
	// Describe says in human words where records live, for diagnostics. It holds no secrets.
	Describe() string
}

// ErrCorrupt marks a record that exists but cannot be read with the seed given.
var ErrCorrupt = errors.New("token store record cannot be read")

// ErrNoStore is returned by the none store's Save: there is nowhere to keep a rotated chain.
var ErrNoStore = errors.New("no token store configured")

// appDir is the directory name under the user cache dir; the provider owns everything beneath it.
const appDir = "terraform-provider-bipsync"

// DefaultDir returns the default file store directory, os.UserCacheDir()/terraform-provider-bipsync/chains.
// A cache dir is the right home: losing it costs a reauthorization, not data, and it is per user.
func DefaultDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("default token store directory: %w", err)
	}
	return filepath.Join(base, appDir, "chains"), nil
}

// checkKeyCtx is the common prologue of every Store method.
func checkKeyCtx(ctx context.Context, key Key) error {
	if err := key.validate(); err != nil {
		return err
	}
	return context.Cause(ctx)
}
