package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// dueChains is how many chains the due-rotation runs rotate, to show the count is per chain.
const dueChains = 10

// dueMinValidity is the tokens' min_validity in the due-token run; the fake's token lifetime is this plus the slack.
const dueMinValidity = 30 * time.Second

// exchanges counts the refresh exchanges of typical runs. Every run is `plan -out` then `apply` of that plan.
func (b *bench) exchanges(ctx context.Context, w io.Writer) error {
	f, err := startFake(0, 0)
	if err != nil {
		return err
	}
	defer f.close()

	t := newTable("Run", "Chains", "Exchanges", "Per chain", "Target per chain", "Met")
	var runs, missed []string
	row := func(name string, chains, n, want int) {
		met := n == want*chains
		t.add(name, fmt.Sprint(chains), fmt.Sprint(n), fmt.Sprintf("%.1f", float64(n)/float64(chains)), fmt.Sprint(want), yesNo(met))
		runs = append(runs, name)
		if !met {
			missed = append(missed, name)
		}
	}
	count := func(fn func() error) (int, error) {
		before := f.exchanges()
		err := fn()
		return f.exchanges() - before, err
	}
	planApply := func(ws *workspace) func() error {
		return func() error { _, _, err := b.planApply(ctx, ws); return err }
	}

	// One ephemeral token, then ten on the same chain: Terraform opens each in the plan and again in the apply.
	for _, n := range []int{1, 10} {
		ws, err := b.workspace(fmt.Sprintf("tokens-%d", n), bipsyncProvider, tfConfig{Tokens: n, SharedChain: true}, f, f.seeds(1))
		if err != nil {
			return err
		}
		got, err := count(planApply(ws))
		if err != nil {
			return err
		}
		name := "1 ephemeral token: first plan + apply"
		if n > 1 {
			name = fmt.Sprintf("%d ephemeral tokens on one chain: first plan + apply", n)
		}
		row(name, 1, got, 1)
		if n == 10 {
			if got, err = count(planApply(ws)); err != nil {
				return err
			}
			row("the same, second plan + apply within the token's life", 1, got, 0)
		}
	}

	// A grant: created in the apply; a later plan-only run never rotates a chain kept in state.
	ws, err := b.workspace("grant", bipsyncProvider, tfConfig{Grants: 1}, f, f.seeds(1))
	if err != nil {
		return err
	}
	got, err := count(planApply(ws))
	if err != nil {
		return err
	}
	row("1 grant: first plan + apply (create)", 1, got, 1)
	if got, err = count(func() error { _, err := b.eng.run(ctx, ws, "plan"); return err }); err != nil {
		return err
	}
	row("the same, plan only", 1, got, 0)

	// Grants whose rotation is due at every plan: rotate_before is longer than the token's life.
	ws, err = b.workspace("grants-due", bipsyncProvider, tfConfig{Grants: dueChains, RotateBefore: "2h"}, f, f.seeds(dueChains))
	if err != nil {
		return err
	}
	if _, err := count(planApply(ws)); err != nil {
		return err
	}
	if got, err = count(planApply(ws)); err != nil {
		return err
	}
	row(fmt.Sprintf("%d grants, rotation due (rotate_before 2h > 1h token): plan + apply", dueChains), dueChains, got, 1)

	if err := b.dueTokens(ctx, row); err != nil {
		return err
	}

	measured := fmt.Sprintf("%d of %d runs at target", len(runs)-len(missed), len(runs))
	if len(missed) > 0 {
		measured += "; missed: " + strings.Join(missed, "; ")
	}
	b.addTarget("Exchanges per run (table below)", "1 first run, 0 within the token's life, 0 plan-only, 1 per due chain",
		measured, len(missed) == 0)

	fmt.Fprintln(w)
	fmt.Fprintln(w, "### Token exchanges per run")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Counted by the fake server. Each run is `plan -out`, then `apply` of that plan: two engine commands, so "+
		"the token store or the state carries the chain from one provider process to the next.")
	fmt.Fprintln(w)
	t.write(w)
	return nil
}

// dueTokens runs ephemeral tokens whose stored access token falls below min_validity between two runs: the fake
// issues tokens that live min_validity plus the slack, and the second run starts once the slack has passed.
func (b *bench) dueTokens(ctx context.Context, row func(string, int, int, int)) error {
	f, err := startFake(dueMinValidity+b.opts.dueSlack, 0)
	if err != nil {
		return err
	}
	defer f.close()
	cfg := tfConfig{Tokens: dueChains, MinValidity: dueMinValidity.String()}
	ws, err := b.workspace("tokens-due", bipsyncProvider, cfg, f, f.seeds(dueChains))
	if err != nil {
		return err
	}
	if _, err := b.eng.run(ctx, ws, "plan", "-out=tfplan"); err != nil {
		return err
	}
	issued := time.Now() // no earlier than any exchange of the plan
	if _, err := b.eng.run(ctx, ws, "apply", "tfplan"); err != nil {
		return err
	}
	wait := time.Until(issued.Add(b.opts.dueSlack + time.Second))
	fmt.Fprintf(b.log, "    waiting %s for the tokens to fall due\n", wait.Round(time.Second))
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return ctx.Err()
	}
	before := f.exchanges()
	start := time.Now()
	if _, _, err := b.planApply(ctx, ws); err != nil {
		return err
	}
	if took := time.Since(start); took >= b.opts.dueSlack {
		return fmt.Errorf("the due-token run took %s, longer than -due-slack %s, so its fresh tokens fell due again; raise -due-slack", took.Round(time.Second), b.opts.dueSlack)
	}
	row(fmt.Sprintf("%d ephemeral tokens, token due (under min_validity left): plan + apply", dueChains), dueChains, f.exchanges()-before, 1)
	return nil
}
