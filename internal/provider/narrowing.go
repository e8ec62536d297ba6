package provider

import (
	"context"
	"fmt"
	"slices"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokensource"
)

// narrowingDetail explains a request refused because it would narrow a chain whose scopes are known (held) to
// requested without allow_narrowing. Bipsync narrows the new refresh token too, so the narrowing would be for good, and
// every other consumer of the chain would lose the other scopes until a person authorizes anew.
func narrowingDetail(held, requested []string) string {
	return "This chain is known to hold scopes " + tokensource.DescribeScopes(held) + ", and scopes asks for " +
		tokensource.DescribeScopes(requested) + ". An exchange for fewer scopes narrows the chain for good (Bipsync narrows " +
		"the new refresh token too): every consumer of this chain would lose the other scopes, and only a new " +
		"authorization could give them back. Nothing was exchanged: the chain still holds " + tokensource.DescribeScopes(held) +
		".\n\nIf a consumer is meant to hold fewer scopes while others keep theirs, give it a chain of its own (its own " +
		"authorization with only those scopes, and its own seed). If this chain is meant to hold only " +
		tokensource.DescribeScopes(requested) + " from now on, set allow_narrowing = true and run again. To keep the " +
		"chain's scopes, unset scopes (or ask for " + tokensource.DescribeScopes(held) + ")."
}

// checkGrantNarrowing fails a plan that narrows a grant's chain whose scopes state knows, unless allow_narrowing is
// true, and warns when it is: the exchange in apply would narrow the chain for good. It never calls Bipsync.
func checkGrantNarrowing(ctx context.Context, plan, state *refreshGrantModel, diags *diag.Diagnostics) {
	if plan.Scopes.IsNull() || plan.Scopes.IsUnknown() || state.Scopes.IsNull() {
		return // unset keeps the chain's scopes; an unset state means the original consent, which the provider cannot see
	}
	var want, have []string
	diags.Append(plan.Scopes.ElementsAs(ctx, &want, false)...)
	diags.Append(state.Scopes.ElementsAs(ctx, &have, false)...)
	for _, s := range want {
		if !slices.Contains(have, s) {
			return // a widening: checkScopeWidening
		}
	}
	if len(want) >= len(have) {
		return
	}
	held, requested := tokensource.NormalizeScopes(have), tokensource.NormalizeScopes(want)
	if !plan.AllowNarrowing.ValueBool() {
		diags.AddAttributeError(path.Root("scopes"), summaryNoNarrowing, narrowingDetail(held, requested))
		return
	}
	diags.AddAttributeWarning(path.Root("scopes"), summaryChainNarrowed,
		fmt.Sprintf("This apply narrows the chain from %s to %s (allow_narrowing is true). Bipsync narrows the new refresh "+
			"token too, so asking for a scope outside %s later needs a new authorization.",
			tokensource.DescribeScopes(held), tokensource.DescribeScopes(requested), tokensource.DescribeScopes(requested)))
}
