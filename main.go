// Command terraform-provider-bipsync is the Bipsync provider for Terraform and OpenTofu. The CLI starts it as a plugin,
// with no arguments (or with -debug, which serves it for a debugger and prints the TF_REATTACH_PROVIDERS value to give
// the CLI). Its first argument may instead name a subcommand for people and scheduled jobs (authorize, status, rotate,
// help: see internal/cli).
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/bipsync/terraform-provider-bipsync/internal/cli"
	"github.com/bipsync/terraform-provider-bipsync/internal/pluginlog"
	"github.com/bipsync/terraform-provider-bipsync/internal/provider"
	"github.com/bipsync/terraform-provider-bipsync/internal/provideraddr"
)

// version is set at release time through -ldflags by .goreleaser.yml, so
// that a build from source says plainly that it is one.
var version = "dev"

func main() {
	if len(os.Args) > 1 && cli.IsCommand(os.Args[1]) {
		os.Exit(runCommand(os.Args[1:]))
	}

	var debug bool
	flag.BoolVar(&debug, "debug", false, "start the provider with support for debuggers like delve")
	flag.Parse()
	pluginlog.QuietUnlessAsked()

	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: provideraddr.Address,
		Debug:   debug,
	})
	if err != nil {
		log.Fatal(err.Error())
	}
}

// runCommand runs a subcommand until it ends or the person interrupts it.
func runCommand(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Run(ctx, args, cli.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, cli.Options{Version: version})
}
