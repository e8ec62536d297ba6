package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// A grant's chain lives in Terraform state, and after a rotation the new head exists only in the state the engine is
// about to write. A runner killed at that moment, or a state backend that refuses the write (the engine then leaves
// errored.tfstate on a runner that may be thrown away), leaves state holding a revoked head. So when the provider has a
// token store, every rotated head of a grant is also written, sealed, to a journal record in the store before the
// engine is answered, and the next plan adopts the journal's head when state's is older.
//
// The journal is no second owner of the chain: nothing exchanges from it but the grant, and only when state shows that
// its own last write was lost (the journal's generation is ahead of the one state records).
//
// Two journal records exist per grant: one keyed by the grant's ID, sealed with a random secret kept in the grant's
// private state (a state write that is lost loses its own copy, but the older state still holds the same secret), and
// one keyed by the seed, sealed with it, for the first exchange of a seed (a create, or a re-seed), when state holds
// no head yet.

// privateJournalKey names the grant's journal data in its private state.
const privateJournalKey = "journal"

// grantJournal is the grant's journal data kept in private state.
type grantJournal struct {
	// Secret seals the grant's journal record; 32 random bytes, hex.
	Secret string `json:"secret"`
	// Generation is the generation of the journal record this state holds the head of.
	Generation int64 `json:"generation"`
}

// privateData is what the framework's private state offers (its type is internal to the framework).
type privateData interface {
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
	SetKey(ctx context.Context, key string, value []byte) diag.Diagnostics
}

func readJournalData(ctx context.Context, p privateData) *grantJournal {
	if p == nil {
		return nil
	}
	b, _ := p.GetKey(ctx, privateJournalKey)
	var j grantJournal
	if len(b) == 0 || json.Unmarshal(b, &j) != nil || len(j.Secret) != 64 {
		return nil
	}
	return &j
}

func writeJournalData(ctx context.Context, p privateData, j *grantJournal, diags *diag.Diagnostics) {
	b, _ := json.Marshal(j) // a string and an integer: it cannot fail
	diags.Append(p.SetKey(ctx, privateJournalKey, b)...)
}

func newJournalData() *grantJournal {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return &grantJournal{Secret: hex.EncodeToString(b)}
}

// journalOn tells whether the provider has a store to journal in.
func (r *refreshGrantResource) journalOn() bool {
	return r.data != nil && r.data.store.Traits().Persistent
}

func (r *refreshGrantResource) grantJournalKey(id string) tokenstore.Key {
	return tokenstore.KeyFor(r.data.client.TokenURL(), r.data.client.ClientID(), "bipsync_refresh_grant journal\x00"+id)
}

// seedJournalKey is where the first exchange of seed by a grant is journaled. The token source reads it too, to name
// the grant when another block's use of the same seed is refused.
func (r *refreshGrantResource) seedJournalKey(seed string) tokenstore.Key {
	return tokenstore.SeedJournalKey(r.data.client.TokenURL(), r.data.client.ClientID(), seed)
}

// loadJournal reads a journal record; a failure to read it is no reason to fail a run, so it is logged and treated as
// no record.
func (r *refreshGrantResource) loadJournal(ctx context.Context, key tokenstore.Key, secret string) *tokenstore.Record {
	rec, err := r.data.store.Load(ctx, key, secret)
	if err != nil {
		tflog.Warn(ctx, "bipsync grant journal not readable", map[string]any{"cause": err.Error()})
		return nil
	}
	return rec
}

// writeJournal saves rec as the journal record under key, in place of whatever record is there: the grant is the only
// writer of its journal, and the state lock keeps two applies of one grant apart. A failure is a warning: the rotation
// itself succeeded, and only its protection against a lost state write is missing.
func (r *refreshGrantResource) writeJournal(ctx context.Context, key tokenstore.Key, secret string, rec *tokenstore.Record, diags *diag.Diagnostics) {
	err := func() error {
		unlock, err := r.data.store.Lock(ctx, key)
		if err != nil {
			return err
		}
		defer func() { _ = unlock() }()
		cur, err := r.data.store.Load(ctx, key, secret)
		if err != nil {
			return err
		}
		var replaces *tokenstore.Revision
		if cur != nil {
			replaces = cur.Revision().Ptr()
		}
		rec = rec.Clone()
		rec.ID = tokenstore.NewRecordID()
		rec.Leases, rec.Asks = nil, nil
		return r.data.store.Save(ctx, key, secret, rec, replaces)
	}()
	if err != nil {
		diags.AddWarning(summaryJournalNotWritten, "The chain was rotated and its new head is in this apply's state, but it "+
			"could not also be written to the token store's journal ("+r.data.store.Describe()+"). Should the engine fail to "+
			"save this state, the next run would need a new authorization. Fix the token store so that it can be written.\n\n"+
			"Cause: "+err.Error())
	}
}

// journalAhead returns the grant journal's record when it holds a newer head than state: state's last write was lost.
func (r *refreshGrantResource) journalAhead(ctx context.Context, p privateData, state *refreshGrantModel) (*tokenstore.Record, *grantJournal) {
	if !r.journalOn() {
		return nil, nil
	}
	j := readJournalData(ctx, p)
	if j == nil {
		return nil, nil
	}
	rec := r.loadJournal(ctx, r.grantJournalKey(state.ID.ValueString()), j.Secret)
	if rec == nil || rec.Generation <= j.Generation || rec.RefreshToken == "" || rec.RefreshToken == state.RefreshToken.ValueString() {
		return nil, j
	}
	return rec, j
}

// recoveryWarning names the recovery a plan or an apply makes from the journal.
func recoveryWarning(rec *tokenstore.Record, diags *diag.Diagnostics) {
	diags.AddWarning(summaryGrantRecovered, fmt.Sprintf("The refresh token in state was spent by a rotation at %s whose state "+
		"was never saved (the runner stopped, or the state backend refused the write; the engine may have left "+
		"errored.tfstate). The provider kept that rotation's head in the token store's journal, and this run adopts it as an "+
		"in-place update of the grant's token attributes, so no new authorization is needed.",
		rec.RotatedAt.UTC().Format(time.RFC3339)))
}

// recordToModel writes a chain record's tokens into the model.
func (r *refreshGrantResource) recordToModel(rec *tokenstore.Record, m *refreshGrantModel) {
	m.AccessToken = types.StringValue(rec.AccessToken)
	m.TokenType = types.StringValue(rec.TokenType)
	expiresAt := rec.AccessTokenExpiresAt
	if rec.AccessToken == "" {
		expiresAt = rec.RotatedAt // no usable access token: expired, so the next plan rotates
	}
	m.ExpiresAt = timetypes.NewRFC3339TimeValue(expiresAt.UTC())
	m.RefreshToken = types.StringValue(rec.RefreshToken)
	m.RefreshTokenExpiresAt = timetypes.NewRFC3339TimeValue(r.data.source.RefreshTokenExpiry(rec.RefreshTokenIssuedAt).UTC())
	m.RotatedAt = timetypes.NewRFC3339TimeValue(rec.RotatedAt.UTC())
}
