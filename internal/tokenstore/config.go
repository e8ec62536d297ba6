package tokenstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Backends are the token store backends a Config may name, the default first.
var Backends = []string{"file", "command", "postgres", "s3", "none"}

// CheckBackend refuses a backend that is not one of Backends; empty is the default, "file".
func CheckBackend(backend string) error {
	if backend == "" || slices.Contains(Backends, backend) {
		return nil
	}
	return fmt.Errorf("%q is not %s or %s", backend, strings.Join(Backends[:len(Backends)-1], ", "), Backends[len(Backends)-1])
}

// Config names a store the way the provider's token_store block and the BIPSYNC_TOKEN_STORE* variables do, so that the
// provider and the binary's subcommands open the same store from the same settings.
type Config struct {
	// Backend is "file" (the default when empty), "command", "postgres", "s3" or "none".
	Backend string
	// Path is the file store's directory; empty is DefaultDir.
	Path string
	// Command is the command store's program and fixed arguments.
	Command []string
	// Protocol is the command helper's protocol level: ProtocolGetPut (the default, when zero) or ProtocolConditional.
	Protocol int
	// ConnStr and SchemaName configure the postgres store (see PostgresConfig).
	ConnStr    string
	SchemaName string
	// S3 configures the s3 store.
	S3 S3Config
}

// New opens the store cfg names.
func New(cfg Config) (Store, error) {
	switch cfg.Backend {
	case "none":
		return NewNone(), nil
	case "command":
		if len(cfg.Command) == 0 {
			return nil, fmt.Errorf("the command backend needs a command: the program that keeps records")
		}
		return NewCommand(CommandConfig{Argv: cfg.Command, Protocol: cfg.Protocol})
	case "postgres":
		return NewPostgres(PostgresConfig{ConnStr: cfg.ConnStr, SchemaName: cfg.SchemaName})
	case "s3":
		return NewS3(context.Background(), cfg.S3)
	case "", "file":
		dir := cfg.Path
		if dir == "" {
			d, err := DefaultDir()
			if err != nil {
				return nil, err
			}
			dir = d
		}
		return NewFile(dir)
	default:
		return nil, fmt.Errorf("token store backend %w", CheckBackend(cfg.Backend))
	}
}
