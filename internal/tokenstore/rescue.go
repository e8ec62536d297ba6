package tokenstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Rescue is a sealed record that its store would not take, kept in a local file so that it can be put back once the
// store works again. It holds nothing in clear but the chain key and revisions: the envelope is sealed as in any store.
type Rescue struct {
	Key Key `json:"key"`
	// Replaces is the revision the failed save replaced, "none" for none: Restore puts the record back only over it.
	Replaces string `json:"replaces"`
	// Store describes the store the record belongs in.
	Store    string `json:"store"`
	Envelope string `json:"envelope"`
}

// DefaultRescueDir is where rescue files go: terraform-provider-bipsync/rescue under the user cache directory.
func DefaultRescueDir() (string, error) { return cacheSubdir("rescue") }

// WriteRescue seals rec and writes it with what Restore needs into a new file in dir (created 0700; the file is
// 0600), and returns the file's path. The name holds the chain key and revision, so rescues never overwrite each other.
func WriteRescue(dir string, st Store, key Key, seed string, rec *Record, replaces *Revision) (string, error) {
	if err := key.validate(); err != nil {
		return "", err
	}
	env, err := Seal(key, seed, rec)
	if err != nil {
		return "", err
	}
	if err := ensurePrivateDir(dir); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(Rescue{Key: key, Replaces: replaces.String(), Store: st.Describe(), Envelope: string(env)}, "", "  ")
	if err != nil {
		return "", err
	}
	name := string(key) + "." + strconv.FormatInt(rec.Generation, 10) + "." + rec.ID + ".rescue"
	path := filepath.Join(dir, name)
	if err := writeFileAtomic(dir, path, path+".tmp", append(data, '\n')); err != nil {
		return "", fmt.Errorf("write rescue file: %w", err)
	}
	return path, nil
}

// ReadRescue reads a file WriteRescue wrote.
func ReadRescue(path string) (*Rescue, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 2*maxEnvelope))
	if err != nil {
		return nil, err
	}
	var r Rescue
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s is not a rescue file: %w", path, errors.Unwrap(err))
	}
	if err := r.Key.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := EnvelopeRevision([]byte(r.Envelope)); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := parseRevision(r.Replaces); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// parseRevision reads what Revision.String wrote. A legacy revision parses as {ID: ""}.
func parseRevision(s string) (*Revision, error) {
	switch s {
	case "none":
		return nil, nil
	case "legacy":
		return &Revision{}, nil
	}
	g, id, ok := strings.Cut(s, ".")
	gen, err := strconv.ParseInt(g, 10, 64)
	if !ok || err != nil || gen < 0 || !validID(id) {
		return nil, fmt.Errorf("%q is not a revision", s)
	}
	return &Revision{Generation: gen, ID: id}, nil
}

// Restore puts a rescued record into st, under the chain's lock, in place of the revision the failed save replaced.
// It is refused with ErrConflict when the store has moved on meanwhile (another process saved a newer record, which is
// then the chain: the rescue is stale), and succeeds when the store already holds the rescued record.
func Restore(ctx context.Context, st Store, r *Rescue) error {
	p, ok := st.(envelopePutter)
	if !ok {
		return fmt.Errorf("the %s keeps nothing to restore into", st.Describe())
	}
	replaces, err := parseRevision(r.Replaces)
	if err != nil {
		return err
	}
	next, err := EnvelopeRevision([]byte(r.Envelope))
	if err != nil {
		return err
	}
	unlock, err := st.Lock(ctx, r.Key)
	if err != nil {
		return err
	}
	defer func() { _ = unlock() }()
	return p.putEnvelope(ctx, r.Key, []byte(r.Envelope), next, replaces)
}
