package main

import (
	"fmt"
	"strings"

	"github.com/bipsync/terraform-provider-bipsync/internal/provideraddr"
)

// tfConfig describes a benchmark configuration. Seeds come from the ephemeral, sensitive list variable "seeds":
// grants take seeds[0:Grants], tokens the ones after.
type tfConfig struct {
	// BaseURL, StorePath: the provider block; empty BaseURL means no provider at all (the engine alone).
	BaseURL   string
	StorePath string

	Grants       int
	RotateBefore string // empty: the provider's default

	Tokens int
	// SharedChain makes every token use the first token seed: one chain opened Tokens times.
	SharedChain bool
	MinValidity string // empty: the provider's default
}

// seedCount is how many seeds the configuration reads.
func (c tfConfig) seedCount() int {
	n := c.Grants
	switch {
	case c.Tokens > 0 && c.SharedChain:
		n++
	default:
		n += c.Tokens
	}
	return n
}

// hcl renders the configuration. Every configuration has one terraform_data; with tokens, its precondition reads
// every access token, so the engine has a consumer for each ephemeral resource in both the plan and the apply walk.
func (c tfConfig) hcl() string {
	var b strings.Builder
	if c.BaseURL != "" {
		fmt.Fprintf(&b, `terraform {
  required_providers {
    bipsync = {
      source = "%s"
    }
  }
}

provider "bipsync" {
  base_url  = %q
  client_id = %q
  token_store {
    path = %q
  }
}

variable "seeds" {
  type      = list(string)
  sensitive = true
  ephemeral = true
}
`, provideraddr.Source, c.BaseURL, benchClientID, c.StorePath)
	}
	if c.Grants > 0 {
		fmt.Fprintf(&b, `
resource "bipsync_refresh_grant" "g" {
  count                    = %d
  refresh_token_wo         = var.seeds[count.index]
  refresh_token_wo_version = 1
%s}
`, c.Grants, optionalLine("rotate_before", c.RotateBefore))
	}
	if c.Tokens > 0 {
		seed := fmt.Sprintf("var.seeds[%d + count.index]", c.Grants)
		if c.SharedChain {
			seed = fmt.Sprintf("var.seeds[%d]", c.Grants)
		}
		fmt.Fprintf(&b, `
ephemeral "bipsync_access_token" "t" {
  count         = %d
  refresh_token = %s
%s}

resource "terraform_data" "use" {
  lifecycle {
    precondition {
      condition     = alltrue([for t in ephemeral.bipsync_access_token.t : t.access_token != ""])
      error_message = "Every bipsync_access_token must hand out a token."
    }
  }
}
`, c.Tokens, seed, optionalLine("min_validity", c.MinValidity))
	} else {
		b.WriteString("\nresource \"terraform_data\" \"use\" {}\n")
	}
	return b.String()
}

func optionalLine(name, value string) string {
	if value == "" {
		return ""
	}
	return fmt.Sprintf("  %s = %q\n", name, value)
}
