package tokenstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
)

// probeKey is the entry a protocol-2 helper is probed with: a 64-hex key like a chain's, derived from a fixed string,
// so that it is never the key (or claim key) of a chain and a helper needs no rule of its own for it.
var probeKey = func() Key {
	sum := sha256.Sum256([]byte("terraform-provider-bipsync conditional put probe v1"))
	return Key(hex.EncodeToString(sum[:]))
}()

// probeSeed seals the probe's record. The record holds no token; the seed only makes it a well-formed envelope.
const probeSeed = "terraform-provider-bipsync conditional put probe"

// probes remembers, per helper (its argv) in this process, that it answered the probe: nil when it writes
// conditionally, else the refusal. Failures to run it are not remembered.
var probes sync.Map // string -> *probeResult

type probeResult struct {
	mu   sync.Mutex
	done bool
	err  error
}

// checkConditional makes sure, once per process and helper, that a helper the store speaks protocol 2 to really writes
// conditionally: it puts a record under probeKey with BIPSYNC_STORE_REPLACES naming a revision that nobody ever wrote
// (a fresh ID), which a conditional helper refuses with ExitConflict, writing nothing. A helper that exits 0 has written
// without the check, and would let a runner overwrite another machine's newer head: the store refuses to work with it
// before anything is exchanged. At protocol 1 there is nothing to check.
func (s *commandStore) checkConditional(ctx context.Context) error {
	if s.protocol != ProtocolConditional {
		return nil
	}
	v, _ := probes.LoadOrStore(strings.Join(s.argv, "\x00"), &probeResult{})
	p, ok := v.(*probeResult)
	if !ok {
		return fmt.Errorf("token store command %q: probe cache holds a %T (a bug in the provider)", s.argv[0], v)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return p.err
	}
	rec := &Record{ID: NewRecordID()}
	data, err := Seal(probeKey, probeSeed, rec)
	if err != nil {
		return err
	}
	never := Revision{Generation: 0, ID: NewRecordID()}
	_, err = s.run(ctx, "put", probeKey, data, []string{
		EnvStoreReplaces + "=" + never.Ptr().String(),
		EnvStoreRevision + "=" + rec.Revision().Ptr().String(),
	})
	switch {
	case helperExitCode(err) == ExitConflict:
		p.done, p.err = true, nil
		return nil
	case err != nil:
		return fmt.Errorf("token store command %q: checking that it writes conditionally (command_protocol = \"%d\"): %w",
			s.argv[0], ProtocolConditional, err)
	}
	p.done = true
	p.err = fmt.Errorf("token store command %q does not write conditionally, but command_protocol is \"%d\": it stored a "+
		"put whose %s named a revision its entry cannot hold, where a conditional helper exits %d and writes nothing. "+
		"With it, a runner could overwrite the newer record another runner saved, and the chain would be lost. Set "+
		"command_protocol = \"%d\" (or BIPSYNC_TOKEN_STORE_COMMAND_PROTOCOL=%d) for a get/put helper, or make its put "+
		"conditional (see the helper protocol in the guide). Nothing was exchanged; the helper's entry %s holds only this "+
		"check's empty record and can be deleted",
		s.argv[0], ProtocolConditional, EnvStoreReplaces, ExitConflict, ProtocolGetPut, ProtocolGetPut, probeKey)
	return p.err
}
