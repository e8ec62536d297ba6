package provider

import (
	"bytes"
	"os/exec"
	"strconv"
	"sync"
	"testing"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/storetest"
)

// helperBackend is the guide's helper of kind at protocol, run by the command store against its stand-in CLI (no Vault
// server or AWS runs here: see fakecli_test.go; the AWS helper also runs against moto in internal/tokenstore/storetest).
// Handles of a get/put helper share a lock directory (one machine); those of a conditional helper do not.
func helperBackend(kind string, protocol int) storetest.Backend {
	var mu sync.Mutex
	helpers := map[tokenstore.Store]*storeHelper{}
	b := storetest.Backend{
		New: func(tb testing.TB) (tokenstore.Store, func(testing.TB) tokenstore.Store) {
			t, ok := tb.(*testing.T)
			if !ok {
				tb.Fatalf("the helper backend needs a *testing.T; got %T", tb)
			}
			h, lockDir := newStoreHelper(t, kind), t.TempDir()
			open := func(t testing.TB) tokenstore.Store {
				ld := lockDir
				if protocol == tokenstore.ProtocolConditional {
					ld = t.TempDir()
				}
				st, err := tokenstore.NewCommand(tokenstore.CommandConfig{Argv: h.argv(nil), Protocol: protocol, LockDir: ld})
				if err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				helpers[st] = h
				mu.Unlock()
				return st
			}
			return open(t), open
		},
		WriteRaw: func(t testing.TB, st tokenstore.Store, key tokenstore.Key, data []byte) {
			mu.Lock()
			h := helpers[st]
			mu.Unlock()
			// A put by hand (no BIPSYNC_STORE_REPLACES) writes unconditionally.
			argv := h.argv(nil)
			cmd := exec.Command(argv[0], append(argv[1:], "put", string(key))...)
			cmd.Stdin = bytes.NewReader(data)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("writing by hand: %v: %s", err, out)
			}
		},
	}
	if kind == "aws" {
		b.MaxRecord = 65536 // Secrets Manager's bound on a secret value
	}
	return b
}

// The guide's helpers pass the token store's conformance suite at both protocol levels, against their stand-ins.
func TestExamples_storeHelpers_conformance(t *testing.T) {
	t.Parallel()
	for _, kind := range storeHelperKinds {
		for _, protocol := range []int{tokenstore.ProtocolGetPut, tokenstore.ProtocolConditional} {
			t.Run(kind+" protocol "+strconv.Itoa(protocol), func(t *testing.T) {
				t.Parallel()
				storetest.Run(t, helperBackend(kind, protocol))
			})
		}
	}
}
