// Command terraform-provider-bipsync is the Bipsync provider for Terraform
// and OpenTofu. The CLI starts it as a plugin; it is not meant to be run by
// hand except with -debug, which serves it for a debugger and prints the
// TF_REATTACH_PROVIDERS value to give the CLI.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/bipsync/terraform-provider-bipsync/internal/pluginlog"
	"github.com/bipsync/terraform-provider-bipsync/internal/provider"
	"github.com/bipsync/terraform-provider-bipsync/internal/provideraddr"
)

// version is set at release time through -ldflags by .goreleaser.yml, so
// that a build from source says plainly that it is one.
var version = "dev"

func main() {
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
