// Command engine prints the absolute path of the OpenTofu the provider is
// tested against, building it into a per-user cache the first time:
//
//	TF_ACC_TERRAFORM_PATH=$(go run ./internal/tools/engine) go test ./internal/provider/...
//
// The OpenTofu used is, in order: $BIPSYNC_TOFU; the cached build under
// ${BIPSYNC_CACHE_DIR:-<user cache dir>/terraform-provider-bipsync}/tofu-<version>/
// when it reports that version (tfcli.TofuVersion); a new build from the Go
// module proxy. Progress goes to stderr so that stdout carries only the path.
//
// With -terraform it prints the path of a terraform >= 1.11 on PATH instead,
// or exits with status 3 when there is none.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
)

// exitNoTerraform tells callers that the optional Terraform leg cannot run,
// as opposed to a failure of the tool itself (1) or bad usage (2).
const exitNoTerraform = 3

func main() {
	terraform := flag.Bool("terraform", false, "print the path of a terraform >= "+tfcli.MinTerraformVersion+" on PATH instead; exit 3 if there is none")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./internal/tools/engine [-terraform]\n\n"+
			"Prints the path of OpenTofu %s, building it into the cache on first use.\n"+
			"Environment: %s (use this binary), %s (cache location).\n\n",
			tfcli.TofuVersion, tfcli.TofuEnv, tfcli.CacheDirEnv)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg := tfcli.Config{Log: os.Stderr}

	if *terraform {
		p, err := tfcli.Terraform(ctx, cfg)
		if errors.Is(err, tfcli.ErrNoTerraform) {
			fmt.Fprintf(os.Stderr, "engine: %v\n", err)
			os.Exit(exitNoTerraform)
		}
		exitOn(err)
		fmt.Println(p)
		return
	}

	p, err := tfcli.Tofu(ctx, cfg)
	exitOn(err)
	fmt.Println(p)
}

func exitOn(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "engine: %v\n", err)
		os.Exit(1)
	}
}
