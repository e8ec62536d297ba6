package provider

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/bipsync/terraform-provider-bipsync/internal/acctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// httpStateBackend is the state server of Terraform's http backend: GET returns the state, POST stores it. failing
// makes every POST fail, as a state backend that refuses a write does.
type httpStateBackend struct {
	*httptest.Server
	mu      sync.Mutex
	state   []byte
	failing atomic.Bool
	refused atomic.Int64
}

func newHTTPStateBackend(t *testing.T) *httpStateBackend {
	t.Helper()
	b := &httpStateBackend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch r.Method {
		case http.MethodGet:
			if b.state == nil {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			_, _ = w.Write(b.state)
		case http.MethodPost:
			body, err := io.ReadAll(r.Body)
			if err != nil || b.failing.Load() {
				b.refused.Add(1)
				http.Error(w, "state storage unavailable", http.StatusServiceUnavailable)
				return
			}
			b.state = body
		case http.MethodDelete:
			b.state = nil
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *httpStateBackend) block() string {
	return fmt.Sprintf(`
terraform {
  backend "http" {
    address = %q
  }
}
`, b.URL+"/state")
}

func (b *httpStateBackend) stored() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.state)
}

// TestAccRefreshGrant_lostStateWriteIsRecoveredFromTheJournal rotates a grant in an apply whose state write the state
// backend refuses (the engine keeps nothing but errored.tfstate): state still holds the head that rotation spent. The
// next run adopts the rotated head from the token store's journal, names the recovery, exchanges nothing, and the
// chain goes on rotating without a reauthorization.
func TestAccRefreshGrant_lostStateWriteIsRecoveredFromTheJournal(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	backend := newHTTPStateBackend(t)
	w := f.workspace("TF_VAR_seed=" + f.seed())
	w.writeConfig(backend.block() + grantConfig(f, 1))
	w.mustRun("init")
	w.mustRun("apply", "-auto-approve")
	f.ledger.Expect(1, "create")()
	var spentHead string
	w.checkState(statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), acctest.Capture(&spentHead)))

	// 50 minutes in, the rotation window is open; the state backend refuses the apply's write.
	f.clock.Advance(50 * time.Minute)
	backend.failing.Store(true)
	stdout, stderr, err := w.run("apply", "-auto-approve")
	if err == nil || backend.refused.Load() == 0 {
		t.Fatalf("apply with the state write refused: got error %v (%d writes refused)\nstdout:\n%s\nstderr:\n%s\nwant the apply to fail on the state write",
			err, backend.refused.Load(), stdout, stderr)
	}
	f.ledger.Expect(1, "rotation whose state write was lost")()
	if !strings.Contains(backend.stored(), spentHead) || f.server.RefreshTokenLive(spentHead) {
		t.Fatal("state backend: want it to hold the head the lost rotation spent, revoked at Bipsync")
	}

	// The next run: the plan names the recovery, and the apply adopts the journal's head without an exchange (its
	// access token is fresh) and without any human step.
	backend.failing.Store(false)
	plan := w.mustRun("plan")
	if !words("Warning: Bipsync Grant Recovered From Journal").MatchString(plan) || !strings.Contains(plan, "will be updated in-place") {
		t.Fatalf("plan after the lost write: got\n%s\nwant the recovery named, as an in-place update", plan)
	}
	f.ledger.Expect(0, "plan")()
	w.mustRun("apply", "-auto-approve")
	f.ledger.Expect(0, "recovery apply: the journal's token is fresh")()
	var head string
	w.checkState(
		statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.LiveAccessToken(f.server)),
		statecheck.ExpectKnownValue(grantAddr, attrPath("refresh_token"), acctest.Capture(&head)),
	)
	if head == spentHead || !f.server.RefreshTokenLive(head) {
		t.Fatal("state after recovery: want the live head the lost rotation issued")
	}
	// Nothing more to recover; the chain rotates on as usual.
	if out := w.mustRun("plan"); strings.Contains(out, "Recovered From Journal") {
		t.Errorf("second plan: got\n%s\nwant no recovery any more", out)
	}
	f.clock.Advance(50 * time.Minute)
	w.mustRun("apply", "-auto-approve")
	f.ledger.Expect(1, "the next rotation")()
	w.checkState(statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.LiveAccessToken(f.server)))
	w.mustRun("destroy", "-auto-approve")
}

// TestAccRefreshGrant_lostCreateWriteIsRecoveredFromTheSeedJournal creates a grant whose state write is refused:
// state holds nothing, and the seed is spent. The next run's create finds the head that exchange journaled under the
// seed, instead of exchanging the spent seed and asking for a reauthorization.
func TestAccRefreshGrant_lostCreateWriteIsRecoveredFromTheSeedJournal(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	backend := newHTTPStateBackend(t)
	seed := f.seed()
	w := f.workspace("TF_VAR_seed=" + seed)
	w.writeConfig(backend.block() + grantConfig(f, 1))
	w.mustRun("init")
	backend.failing.Store(true)
	if _, _, err := w.run("apply", "-auto-approve"); err == nil {
		t.Fatal("create with the state write refused: got success; want the apply to fail")
	}
	f.ledger.Expect(1, "create whose state write was lost")()
	if f.server.RefreshTokenLive(seed) {
		t.Fatal("seed: live; want it spent by the lost create")
	}
	backend.failing.Store(false)
	w.mustRun("apply", "-auto-approve")
	f.ledger.Expect(0, "create again: the seed's journal has a fresh token")()
	w.checkState(statecheck.ExpectKnownValue(grantAddr, attrPath("access_token"), acctest.LiveAccessToken(f.server)))
	w.mustRun("destroy", "-auto-approve")
}

// TestRefreshGrant_rotate_journalsWhenCancelled: an apply that Terraform cancels while the grant rotates still ends
// with the new head in the journal. The exchange runs to its answer whatever the cancellation, and from then on the
// head exists only in that answer; a runner stopped at that moment is what the journal is there for.
func TestRefreshGrant_rotate_journalsWhenCancelled(t *testing.T) {
	t.Parallel()
	clock := bipsynctest.NewClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	srv := bipsynctest.NewServer(bipsynctest.Options{Now: clock.Now})
	srv.AddClient(testClientID, testClientSecret)
	baseURL := srv.Start()
	t.Cleanup(srv.Close)
	client, err := bipsync.New(bipsync.Config{BaseURL: baseURL, ClientID: testClientID, ClientSecret: testClientSecret, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	store, err := tokenstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	source, err := tokensource.New(tokensource.Options{Client: client, Store: store, ClientSecret: testClientSecret, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	r := &refreshGrantResource{data: &providerData{client: client, source: source, store: store, now: clock.Now,
		clientSecret: testClientSecret}}

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Terraform cancelled the apply
	seed := srv.IssueRefreshToken(testClientID, []string{"read"})
	plan := refreshGrantModel{ID: types.StringValue("grant-cancelled")}
	j := newJournalData()
	var diags diag.Diagnostics
	if !r.rotate(ctx, opCreate, &tokenstore.Record{RefreshToken: seed}, &plan, &plan, j, &diags) {
		t.Fatalf("rotate: got no new head; want one (diagnostics: %v)", diags)
	}
	if len(diags) != 0 {
		t.Errorf("rotate: got diagnostics %v; want none", diags)
	}
	head := plan.RefreshToken.ValueString()
	if !srv.RefreshTokenLive(head) {
		t.Fatal("rotate: the head in the model is not live at the fake")
	}
	for name, jr := range map[string]struct {
		key    tokenstore.Key
		secret string
	}{
		"grant journal": {r.grantJournalKey("grant-cancelled"), j.Secret},
		"seed journal":  {r.seedJournalKey(seed), seed},
	} {
		rec, err := store.Load(context.Background(), jr.key, jr.secret)
		if err != nil || rec == nil || rec.RefreshToken != head {
			t.Errorf("%s: got a record %v, %v; want one holding the rotated head", name, rec != nil, err)
		}
	}
}
