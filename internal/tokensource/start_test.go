package tokensource

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
)

// firstToken is what an authorization answers: the seed and the access token issued with it.
func firstToken(clk *clock) *bipsync.Token {
	return &bipsync.Token{AccessToken: "at-0", TokenType: "Bearer", RefreshToken: "seed", ExpiresIn: 3600,
		ReceivedAt: clk.Now(), Expiry: clk.Now().Add(time.Hour)}
}

func TestSource_Start_firstUseNeedsNoExchange(t *testing.T) {
	t.Parallel()
	src, srv, st, clk := fixture(t)
	ctx := context.Background()
	res, err := src.Start(ctx, "seed", firstToken(clk), []string{"write", "read"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Exchanged || res.AccessToken != "at-0" || res.Generation != 0 {
		t.Fatalf("start: got %v; want at-0 at generation 0, no exchange", res)
	}
	rec := st.recs[src.Key("seed")]
	if rec == nil || rec.RefreshToken != "seed" || rec.ID == "" || !rec.RotatedAt.IsZero() ||
		!slices.Equal(rec.Scopes, []string{"read", "write"}) || !rec.RefreshTokenIssuedAt.Equal(clk.Now()) {
		t.Fatalf("stored record: got %v; want the seed as head, an ID, sorted scopes, issued now, never rotated", rec)
	}

	got, err := src.Token(ctx, refreshReq(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got.Exchanged || got.AccessToken != "at-0" {
		t.Fatalf("first use: got %v; want the started chain's at-0 reused", got)
	}
	if n := srv.exchanges.Load(); n != 0 {
		t.Fatalf("exchanges: got %d; want 0", n)
	}
	clk.Advance(50 * time.Minute)
	if got, err := src.Token(ctx, refreshReq(15*time.Minute)); err != nil || !got.Exchanged || got.Generation != 1 {
		t.Fatalf("use after 50 minutes: got %v, %v; want an exchange of the seed to generation 1", got, err)
	}

	if _, err := src.Start(ctx, "seed", firstToken(clk), nil); !errors.Is(err, ErrChainExists) {
		t.Fatalf("start again: got %v; want ErrChainExists", err)
	}
}

func TestSource_Start_noScopesIsAKnownEmptyConsent(t *testing.T) {
	t.Parallel()
	src, _, st, clk := fixture(t)
	if _, err := src.Start(context.Background(), "seed", firstToken(clk), nil); err != nil {
		t.Fatal(err)
	}
	if rec := st.recs[src.Key("seed")]; rec.Scopes == nil || len(rec.Scopes) != 0 {
		t.Fatalf("scopes: got %#v; want an empty, non-nil list", rec.Scopes)
	}
}

func TestSource_Start_refusals(t *testing.T) {
	t.Parallel()
	src, _, st, clk := fixture(t)
	ctx := context.Background()
	if _, err := src.Start(ctx, "", firstToken(clk), nil); err == nil {
		t.Error("empty seed: got no error")
	}
	if _, err := src.Start(ctx, "seed", &bipsync.Token{}, nil); err == nil {
		t.Error("no access token: got no error")
	}
	st.saveErr = errors.New("disk full")
	var se *StoreError
	if _, err := src.Start(ctx, "seed", firstToken(clk), nil); !errors.As(err, &se) {
		t.Errorf("failed save: got %v; want a StoreError", err)
	}
	st.kind = "none"
	if _, err := src.Start(ctx, "seed", firstToken(clk), nil); !errors.Is(err, ErrStoreRequired) {
		t.Errorf("none store: got %v; want ErrStoreRequired", err)
	}
}
