package provider

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/bipsync/terraform-provider-bipsync/internal/acctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

// TestAccFaultMatrix runs every fault against the ephemeral resource and the grant, and logs the outcome table.
func TestAccFaultMatrix(t *testing.T) {
	t.Parallel()
	accPreCheck(t)
	cases := faultCases()
	var mu sync.Mutex
	results := map[string]*faultResult{}
	t.Run("faults", func(t *testing.T) {
		for _, fc := range cases {
			for _, kind := range []string{"ephemeral", "grant"} {
				t.Run(fc.name+"/"+kind, func(t *testing.T) {
					t.Parallel()
					res := &faultResult{outcome: describeOutcome(fc, fc.requests), chain: expectedChain(fc)}
					mu.Lock()
					results[fc.name+"/"+kind] = res
					mu.Unlock()
					// resource.UnitTest ends a failing test with t.FailNow: record the failure on the way out.
					defer func() { res.failed = t.Failed() }()
					if kind == "ephemeral" {
						runEphemeralFault(t, fc, res)
					} else {
						runGrantFault(t, fc, res)
					}
				})
			}
		}
	})

	var b strings.Builder
	b.WriteString("\n| fault | ephemeral outcome | grant outcome | chain intact |\n|---|---|---|---|\n")
	for _, fc := range cases {
		e, g := results[fc.name+"/ephemeral"], results[fc.name+"/grant"]
		if e == nil || g == nil {
			continue
		}
		chain := e.chain
		if g.chain != e.chain {
			chain = "ephemeral: " + e.chain + "; grant: " + g.chain
		}
		if e.failed || g.failed {
			chain += " (TEST FAILED)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", fc.name, e.outcome, g.outcome, chain)
	}
	t.Logf("fault matrix: %d faults × 2 consumers%s", len(cases), b.String())
}

// describeOutcome is the table's outcome cell.
func describeOutcome(fc faultCase, requests int) string {
	plural := func(n int) string {
		if n == 1 {
			return "1 request"
		}
		return fmt.Sprintf("%d requests", n)
	}
	if fc.want == nil {
		return "retried, succeeded (" + plural(requests) + ")"
	}
	summary := fc.want.String()
	for _, s := range []string{summaryUnavailable, summaryCertificate, summaryOutcomeUnknown, summaryReauth, summaryInvalidClient, summaryRejected} {
		if strings.Contains(summary, words(s).String()) {
			summary = s
			break
		}
	}
	if requests == 0 {
		return summary + " (nothing reached the server)"
	}
	return summary + " (" + plural(requests) + ")"
}

// expectedChain is the table's chain cell.
func expectedChain(fc faultCase) string {
	if fc.consumed {
		return "lost (" + fc.lostBecause + "): " + faultFollowUp + " says " + summaryReauth
	}
	return "intact: " + faultFollowUp + " succeeded"
}

const faultFollowUp = "the next run"

// rotationDelay puts the first exchange's access token inside both consumers' renewal margin (min_validity and
// rotate_before, 15 minutes of a 1-hour token), so the next run exchanges the chain again.
const rotationDelay = 50 * time.Minute

// runEphemeralFault opens the ephemeral token in plan-only runs: a plan opens it (and exchanges) as an apply would,
// and without state there is nothing to destroy, which keeps the matrix fast.
func runEphemeralFault(t *testing.T, fc faultCase, res *faultResult) {
	w := newFaultWorld(t, fc.tls)
	f := w.f
	seed := f.seed()
	vars := config.Variables{"seed": config.StringVariable(seed)}
	good := faultEphemeralConfig(w.providerBlock("", fc.extra))
	var marks requestMarks
	var steps []resource.TestStep
	var firstHead string
	if fc.rotation {
		steps = append(steps, resource.TestStep{
			Config:                   good,
			ConfigVariables:          vars,
			ProtoV6ProviderFactories: w.factories(true),
			PlanOnly:                 true,
			ExpectNonEmptyPlan:       true,
		})
	}
	faulted := resource.TestStep{
		PreConfig: func() {
			if fc.rotation {
				f.ledger.Expect(1, "first exchange")()
				firstHead = f.head(seed)
				f.clock.Advance(rotationDelay)
			}
			f.ledger.Reset()
			marks.set(&marks.fault, f)
			w.arm(fc)
		},
		Config:                   faultEphemeralConfig(w.providerBlock(w.faultBaseURL(t, fc), fc.extra)),
		ConfigVariables:          vars,
		ProtoV6ProviderFactories: w.factories(false),
		PlanOnly:                 true,
		ExpectNonEmptyPlan:       true,
		ExpectError:              fc.want,
	}
	faultExchanges, followExchanges := 0, 1
	if fc.consumed || fc.want == nil {
		faultExchanges = 1
	}
	if fc.want == nil {
		followExchanges = 0 // the token the faulted run got is reused
	}
	followUp := resource.TestStep{
		PreConfig: func() {
			f.ledger.Expect(faultExchanges, "faulted run")()
			if fc.rotation && fc.want != nil {
				// A failed exchange leaves the record alone: the store still holds the head it held before.
				if head := f.head(seed); head != firstHead {
					t.Error("chain head in the store after the failed rotation: changed; want the head from before")
				}
			}
			marks.set(&marks.followUp, f)
		},
		Config:                   good,
		ConfigVariables:          vars,
		ProtoV6ProviderFactories: w.factories(true),
		PlanOnly:                 true,
		ExpectNonEmptyPlan:       true,
	}
	switch {
	case fc.consumed:
		followUp.ExpectError = summaryWith(summaryReauth, "Hint: Token has been revoked")
		followExchanges = 0
	case fc.dies:
		// The faulted run recorded the refusal: the next one says so at once and asks Bipsync nothing.
		followUp.ExpectError = summaryWith(summaryReauth, "Nothing was sent to Bipsync this time")
		followExchanges = 0
	}
	steps = append(steps, faulted, followUp)
	resource.UnitTest(t, resource.TestCase{Steps: steps})
	f.ledger.Expect(followExchanges, faultFollowUp)()
	if !fc.consumed && !fc.dies {
		// The chain goes on from the head the store holds.
		if head := f.head(seed); head == seed || head == firstHead || !f.server.RefreshTokenLive(head) {
			t.Error("chain head in the store after the next run: not a new head, or not live at the fake; want the live new head")
		}
	}
	checkFaultLog(t, fc, w, &marks, res)
}

// runGrantFault meets the fault when the grant is created (the seed's exchange), or for rotation rows when an apply
// rotates the chain kept in state.
func runGrantFault(t *testing.T, fc faultCase, res *faultResult) {
	w := newFaultWorld(t, fc.tls)
	f := w.f
	vars := config.Variables{"seed": config.StringVariable(f.seed())}
	good := faultGrantConfig(w.providerBlock("", fc.extra))
	var marks requestMarks
	liveAccess := statecheck.ExpectKnownValue(grantAddr, tfjsonpath.New("access_token"), acctest.LiveAccessToken(f.server))
	liveHead := statecheck.ExpectKnownValue(grantAddr, tfjsonpath.New("refresh_token"), acctest.LiveRefreshToken(f.server))

	var steps []resource.TestStep
	if fc.rotation {
		steps = append(steps, resource.TestStep{
			Config:                   good,
			ConfigVariables:          vars,
			ProtoV6ProviderFactories: w.factories(true),
		})
	}
	faulted := resource.TestStep{
		PreConfig: func() {
			if fc.rotation {
				f.ledger.Expect(1, "create")()
				f.clock.Advance(rotationDelay)
			}
			f.ledger.Reset()
			marks.set(&marks.fault, f)
			w.arm(fc)
		},
		Config:                   faultGrantConfig(w.providerBlock(w.faultBaseURL(t, fc), fc.extra)),
		ConfigVariables:          vars,
		ProtoV6ProviderFactories: w.factories(false),
		ExpectError:              fc.want,
	}
	faultExchanges, followExchanges := 0, 1
	if fc.consumed || fc.want == nil {
		faultExchanges = 1
	}
	followUp := resource.TestStep{
		PreConfig: func() {
			f.ledger.Expect(faultExchanges, "faulted run")()
			marks.set(&marks.followUp, f)
		},
		Config:                   good,
		ConfigVariables:          vars,
		ProtoV6ProviderFactories: w.factories(true),
		// After a failed rotation the prior state, whose head is still live, is what this run rotates.
		ConfigStateChecks: []statecheck.StateCheck{liveAccess, liveHead},
	}
	switch {
	case fc.consumed:
		followUp.ConfigStateChecks = nil
		followUp.ExpectError = summaryWith(summaryReauth, "Hint: Token has been revoked")
		followExchanges = 0
	case fc.want == nil:
		faulted.ConfigStateChecks = []statecheck.StateCheck{liveAccess, liveHead}
		followExchanges = 0 // exchanged in the faulted run; nothing is due
	}
	steps = append(steps, faulted, followUp)
	resource.UnitTest(t, resource.TestCase{Steps: steps})
	f.ledger.Expect(followExchanges, faultFollowUp)()
	checkFaultLog(t, fc, w, &marks, res)
}

// requestMarks remembers where each step's token requests start in the fake's log.
type requestMarks struct {
	mu              sync.Mutex
	fault, followUp int
}

func (m *requestMarks) set(dst *int, f *fixture) {
	m.mu.Lock()
	defer m.mu.Unlock()
	*dst = len(f.server.Requests())
}

// refreshRequests returns the refresh-grant requests at the token endpoint, oldest first.
func refreshRequests(log []bipsynctest.LoggedRequest) []bipsynctest.LoggedRequest {
	var out []bipsynctest.LoggedRequest
	for _, r := range log {
		if r.Path == bipsynctest.TokenPath && r.GrantType == "refresh_token" {
			out = append(out, r)
		}
	}
	return out
}

// consumedBy tells whether the fake consumed the refresh token of r: it processed the request and issued a new pair,
// whether or not the answer reached the client.
func consumedBy(r bipsynctest.LoggedRequest) bool {
	if r.Error != "" {
		return false
	}
	switch r.Fault {
	case bipsynctest.FaultStatus.String(), bipsynctest.FaultCloseBeforeProcessing.String(), bipsynctest.FaultNonJSON200.String(),
		bipsynctest.FaultHugeBody.String(), bipsynctest.FaultRedirect.String():
		return false // answered in place of processing
	case bipsynctest.FaultDropAfterProcessing.String():
		return true // processed; the connection was closed instead of answering
	}
	return r.Status == http.StatusOK
}

// replays returns the log indexes (in the full log) of requests that presented a refresh token the fake had already
// consumed.
func replays(log []bipsynctest.LoggedRequest) []int {
	consumed := map[string]bool{}
	var out []int
	for i, r := range log {
		if r.Path != bipsynctest.TokenPath || r.GrantType != "refresh_token" || r.RefreshToken == "" {
			continue
		}
		if consumed[r.RefreshToken] {
			out = append(out, i)
		}
		if consumedBy(r) {
			consumed[r.RefreshToken] = true
		}
	}
	return out
}

// checkFaultLog asserts the request counts of the faulted step and that no consumed refresh token was sent again,
// except by the follow-up run of a chain the fault consumed (the honest "Token has been revoked").
func checkFaultLog(t *testing.T, fc faultCase, w *faultWorld, marks *requestMarks, res *faultResult) {
	t.Helper()
	log := w.f.server.Requests()
	marks.mu.Lock()
	from, to := marks.fault, marks.followUp
	marks.mu.Unlock()
	faulted := refreshRequests(log[from:to])
	res.outcome = describeOutcome(fc, len(faulted))
	if len(faulted) != fc.requests {
		t.Errorf("token requests in the faulted run: got %d; want %d", len(faulted), fc.requests)
	}
	again := replays(log)
	switch {
	case !fc.consumed && len(again) != 0:
		t.Errorf("refresh tokens sent again after the server consumed them: %d requests; want none", len(again))
	case fc.consumed && (len(again) != 1 || again[0] < to):
		t.Errorf("replays of the consumed refresh token: got log indexes %v (follow-up run starts at %d); want exactly one, "+
			"in the follow-up run", again, to)
	}
	if n := w.hits.Load(); n != 0 {
		t.Errorf("requests at the redirect target: got %d; want 0 (redirects are never followed)", n)
	}
}

// TestAccFaultMatrix_newHeadWithoutAccessToken: the server rotated the chain and answered 200 with the new refresh
// token but no access token (a broken front end could do that). The answer arrived and carried the chain's only live
// head, so it must be saved before anything else (a chain whose new head is lost is dead); the run may still fail for want of an access token, but the next run
// must go on from the saved head.
func TestAccFaultMatrix_newHeadWithoutAccessToken(t *testing.T) {
	t.Parallel()
	w := newFaultWorld(t, false)
	f := w.f
	seed := f.seed()
	vars := config.Variables{"seed": config.StringVariable(seed)}
	cfg := faultEphemeralConfig(w.providerBlock("", nil))
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: w.factories(true),
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					// What the server did: consume the seed and issue a new head, which the answer carries alone.
					next := f.seed()
					f.server.RevokeChain(seed)
					f.server.InjectFault(bipsynctest.Fault{Kind: bipsynctest.FaultStatus, Status: http.StatusOK,
						Header: http.Header{"Content-Type": {"application/json; charset=UTF-8"}},
						Body:   `{"token_type":"Bearer","expires_in":3600,"refresh_token":"` + next + `"}`})
				},
				Config:             cfg,
				ConfigVariables:    vars,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
				ExpectError:        words(summaryIncomplete),
			},
			{
				Config:             cfg,
				ConfigVariables:    vars,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}
