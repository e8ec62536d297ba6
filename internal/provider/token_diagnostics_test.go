package provider

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// TestTokenErrorDiagnostic_words checks the diagnostics of the token source's failures: the summary, and that the
// detail names the remedy and what was (not) consumed.
func TestTokenErrorDiagnostic_words(t *testing.T) {
	t.Parallel()
	revoked := &bipsync.Error{Op: bipsync.OpRefresh, StatusCode: 400, Code: "invalid_grant", Sent: true,
		Description: "The refresh token is invalid.", Hint: "Token has been revoked"}
	ugt := &bipsync.Error{Op: bipsync.OpRefresh, StatusCode: 400, Code: "unsupported_grant_type", Sent: true,
		Description: "The authorization grant type is not supported by the authorization server.",
		Hint:        "Check that all required parameters have been provided"}
	when := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		err     error
		fc      failureContext
		summary string
		want    []string
	}{
		{
			name:    "host name that does not resolve names client and base_url",
			err:     &bipsync.Error{Op: bipsync.OpRefresh, Err: &net.DNSError{Err: "no such host", Name: "acmee-api.bipsync.com", IsNotFound: true}},
			summary: summaryUnavailable,
			want:    []string{"does not resolve", "client (the tenant name", "base_url", "nothing was sent"},
		},
		{
			name: "JSON body the server could not read points at request_encoding", err: ugt,
			fc:      failureContext{encoding: bipsync.EncodingJSON},
			summary: summaryRejected,
			want:    []string{`request_encoding = "form"`, "Nothing was exchanged", "unsupported_grant_type"},
		},
		{
			name: "the same answer with a form body is not about the encoding", err: ugt,
			summary: summaryRejected,
			want:    []string{"Bipsync refused the token request. Nothing was exchanged."},
		},
		{
			name: "a spent chain another runner was seen using",
			err: &tokensource.ChainSpentError{Err: revoked, OtherRunnerSeen: true, Waited: 90 * time.Second,
				LastRotation: when, Generation: 7},
			fc:      failureContext{clientID: "acme", steps: reseedEphemeral},
			summary: summaryReauth,
			want:    []string{"Another runner used this chain during this run", "watched for 1m30s", "generation 7", "2026-11-25T09:00:00Z", "authorize anew"},
		},
		{
			name: "a spent chain whose claim holder died after exchanging",
			err: &tokensource.ChainSpentError{Err: revoked, ClaimHolderDied: true, ClaimHolder: "0a1b", ClaimSeenAt: when,
				ClaimTTL: 4 * time.Minute},
			summary: summaryReauth,
			want:    []string{"Another runner (process 0a1b) claimed the chain's head", "from 2026-11-25T09:00:00Z", "(4m0s)", "lost with it", "authorize anew"},
		},
		{
			name:    "a spent chain whose death this run recorded",
			err:     &tokensource.ChainSpentError{Err: revoked, Recorded: true},
			summary: summaryReauth,
			want:    []string{"withdrew consent", "now records the chain as dead, so later runs fail at once"},
		},
		{
			name:    "a spent seed a grant exchanged",
			err:     &tokensource.ChainSpentError{Err: revoked, ConsumedByGrantAt: when, Recorded: true},
			fc:      failureContext{steps: reseedEphemeral},
			summary: summaryReauth,
			want: []string{"This refresh token was exchanged by a bipsync_refresh_grant on 2026-11-25T09:00:00Z; give this block " +
				"its own authorization", "authorize anew"},
		},
		{
			name: "a chain an earlier run recorded dead",
			err: &tokensource.ChainSpentError{Known: true, Generation: 3, Death: &tokenstore.Death{At: when, Cause: "revoked",
				By: "ci-runner-7, pid 4242", Detail: "bipsync: refresh: HTTP 400: invalid_grant (hint: Token has been revoked)"}},
			fc:      failureContext{clientID: "acme", steps: reseedEphemeral},
			summary: summaryReauth,
			want: []string{"at 2026-11-25T09:00:00Z, as a run on ci-runner-7, pid 4242 learned and recorded in the token store",
				"withdrew consent", "Nothing was sent to Bipsync this time", "authorize -client-id acme", "Generation: 3",
				"hint: Token has been revoked"},
		},
		{
			name: "a confidential client with no secret configured",
			err: &bipsync.Error{Op: bipsync.OpRefresh, StatusCode: 400, Code: "invalid_request", Sent: true,
				Hint: "Check the `client_secret` parameter"},
			fc:      failureContext{clientID: "acme", noSecret: true},
			summary: summaryMissingClientSecret,
			want: []string{"neither client_secret in the provider block nor the BIPSYNC_CLIENT_SECRET environment variable",
				"A public client needs no secret, so the OAuth application acme is a confidential one", "Nothing was exchanged"},
		},
		{
			name: "the same answer with a secret configured is not about a missing one",
			err: &bipsync.Error{Op: bipsync.OpRefresh, StatusCode: 400, Code: "invalid_request", Sent: true,
				Hint: "Check the `client_secret` parameter"},
			fc:      failureContext{clientID: "acme"},
			summary: summaryRejected,
			want:    []string{"Bipsync refused the token request"},
		},
		{
			name:    "a spent chain nobody else used",
			err:     &tokensource.ChainSpentError{Err: revoked, Waited: 90 * time.Second},
			summary: summaryReauth,
			want:    []string{"No other runner was seen using the chain", "watched for 1m30s"},
		},
		{
			name:    "a save that failed names the rescue file and the command that restores it",
			err:     &tokensource.SaveError{Store: "command store", Err: errors.New("exit status 1"), Rescue: "/home/u/.cache/terraform-provider-bipsync/rescue/k.3.x.rescue"},
			summary: summarySaveFailed,
			want:    []string{"terraform-provider-bipsync restore /home/u/.cache/terraform-provider-bipsync/rescue/k.3.x.rescue", "exit status 1"},
		},
		{
			name:    "a save that failed with no rescue file says the chain may be lost",
			err:     &tokensource.SaveError{Store: "command store", Err: errors.New("exit status 1"), RescueErr: errors.New("read-only file system")},
			summary: summarySaveFailed,
			want:    []string{"No rescue file could be written either (read-only file system)", "needs a new authorization"},
		},
		{
			name:    "a store that would not take the first record consumed nothing",
			err:     &tokensource.StoreError{Store: "command store", Op: "save", Err: errors.New("AccessDeniedException"), BeforeFirstExchange: true},
			summary: summaryStoreError,
			want:    []string{"did not exchange the refresh token: it is still valid, and nothing was consumed", "AccessDeniedException"},
		},
		{
			name:    "min_validity the tokens cannot meet",
			err:     &tokensource.MinValidityError{MinValidity: 90 * time.Minute, Lifetime: time.Hour},
			summary: summaryMinValidity,
			want:    []string{"min_validity (1h30m0s)", "Nothing was exchanged", "Lower min_validity below 1h0m0s"},
		},
		{
			name:    "narrowing a chain of known scopes without allow_narrowing",
			err:     &tokensource.NarrowingError{Held: []string{"read", "write"}, Requested: []string{"read"}},
			summary: summaryNoNarrowing,
			want: []string{"known to hold scopes [read write]", "Nothing was exchanged", "allow_narrowing = true",
				"a chain of its own (its own authorization"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			summary, detail := tokenErrorDiagnostic(tc.err, tc.fc)
			if summary != tc.summary {
				t.Errorf("summary: got %q; want %q", summary, tc.summary)
			}
			for _, w := range tc.want {
				if !strings.Contains(detail, w) {
					t.Errorf("detail: got\n%s\nwant it to contain %q", detail, w)
				}
			}
		})
	}
}

func TestWarningText_everyKind(t *testing.T) {
	t.Parallel()
	when := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		w       tokensource.Warning
		summary string
		want    string
	}{
		{tokensource.Warning{Kind: tokensource.WarnNarrowed, Scopes: []string{"read", "write"}, Requested: []string{"read"}},
			summaryChainNarrowed, "held scopes [read write] and was exchanged for [read]"},
		{tokensource.Warning{Kind: tokensource.WarnShortLifetime, ExpiresAt: when, MinValidity: 2 * time.Hour},
			summaryShorterThanValidity, "later runs fail"},
		{tokensource.Warning{Kind: tokensource.WarnNotCached, Store: "file store in /x", Err: errors.New("disk full")},
			summaryTokenNotCached, "disk full"},
		{tokensource.Warning{Kind: tokensource.WarnPromiseBroken, PromisedAt: when, PromisedUntil: when.Add(5 * time.Minute),
			PromisedMinValidity: 5 * time.Minute, MinValidity: 50 * time.Minute},
			summaryPromiseBroken, "handed out at 2026-11-25T09:00:00Z with min_validity 5m0s, and so promised to stay valid until 2026-11-25T09:05:00Z, because this request needed a token valid for 50m0s"},
		{tokensource.Warning{Kind: tokensource.WarnPromiseBroken, PromisedAt: when, PromisedUntil: when, Forced: true},
			summaryPromiseBroken, "because a rotation was asked for"},
		{tokensource.Warning{Kind: tokensource.WarnNoClaims, Store: "command store (helper /bin/get-put)"},
			summaryNoClaims, "through the command store (helper /bin/get-put), which has no conditional writes"},
	} {
		summary, detail := warningText(tc.w)
		if summary != tc.summary || !strings.Contains(detail, tc.want) {
			t.Errorf("kind %d: got (%q, %q); want (%q, …%q…)", tc.w.Kind, summary, detail, tc.summary, tc.want)
		}
	}
}
