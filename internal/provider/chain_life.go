package provider

import (
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
