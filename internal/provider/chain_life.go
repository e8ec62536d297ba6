package provider

import (
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
)

// warnChainExpiring warns, when a token is handed out (ephemeral Open, data source Read), that the chain it came from
// ends within expiryWarningWindow. It is raised here, and not only in Renew, because Terraform before 1.17 drops the
// diagnostics of an ephemeral resource's Renew: a warning given only there is never seen. A call that has just
// exchanged the chain is not warned about: its month starts now, and nothing the user can do makes it longer.
func warnChainExpiring(diags *diag.Diagnostics, res *tokensource.Result, now time.Time) {
	end := res.RefreshTokenExpiresAt
	if res.Exchanged || end.IsZero() || !end.After(now) || !now.Add(expiryWarningWindow).After(end) {
		return
	}
	date := end.UTC().Format(time.RFC3339)
	diags.AddAttributeWarning(path.Root("refresh_token"), summaryChainExpiringSoon,
		"The refresh chain behind this bipsync_access_token ends at "+date+" unless it is exchanged before then. This "+
			"run reused the stored access token, which still had at least min_validity left, so it did not renew the "+
			"chain's month (the provider's refresh_token_lifetime).\n\n"+
			"Any run that exchanges the chain renews it. To renew it now, run `terraform-provider-bipsync rotate` with the "+
			"chain's seed in BIPSYNC_REFRESH_TOKEN and the provider's settings. If it is not exchanged by "+date+", the "+
			"chain dies and a person must authorize anew (`terraform-provider-bipsync authorize`).")
}

// failShortLifetime turns the token source's short-lifetime warning into an error at the first use, plan included,
// when the chain's tokens are no longer than min_validity: every later use would fail before exchanging (an exchange
// would revoke the token handed out before), so a plan that passed would have an apply that fails, for a setting the
// plan already knew. A token merely handed out a little short of min_validity (a slow answer) stays a warning: later
// uses can exchange. The exchange that found it is kept: the chain's head is saved, and nothing is lost. It reports
// whether it failed.
func failShortLifetime(diags *diag.Diagnostics, res *tokensource.Result, minValidity time.Duration, now time.Time) bool {
	var w *tokensource.Warning
	for i := range res.Warnings {
		if res.Warnings[i].Kind == tokensource.WarnShortLifetime {
			w = &res.Warnings[i]
		}
	}
	if w == nil || !res.Exchanged {
		return false
	}
	// Bipsync's expires_in is whole seconds: rounding takes the answer's latency back out of the token's lifetime.
	lifetime := w.ExpiresAt.Sub(now).Round(time.Second)
	if lifetime <= 0 || minValidity < lifetime {
		return false
	}
	suggest := (lifetime / 2).Round(time.Second)
	diags.AddAttributeError(path.Root("min_validity"), summaryMinValidity, fmt.Sprintf("Bipsync issued an access token "+
		"that lives %s, and min_validity is %s: no token of this chain can meet it. Every later use, the apply of this "+
		"plan included, would have to exchange the chain again and revoke the token handed out before, so it would fail; "+
		"this run fails now instead, at its first use.\n\n"+
		"Set min_validity below the token lifetime, for example min_validity = %q, and run again (the default, %s, "+
		"needs tokens that live longer than that). The exchange that found this was kept: the chain's new head is saved "+
		"in the token store and nothing is lost.\n\nToken lifetime: %s\nmin_validity: %s",
		lifetime, minValidity, suggest.String(), defaultMinValidity, lifetime, minValidity))
	return true
}
