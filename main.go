// Command terraform-provider-bipsync is the Bipsync provider for Terraform
// and OpenTofu. The CLI starts it as a plugin; it is not meant to be run by
// hand except with -debug, which serves it for a debugger and prints the
// TF_REATTACH_PROVIDERS value to give the CLI.
package main

import (
	"context"
	"flag"
	"log"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/bipsync/terraform-provider-bipsync/internal/provider"
)

// version is set at release time through -ldflags by .goreleaser.yml, so
// that a build from source says plainly that it is one.
var version = "dev"

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "start the provider with support for debuggers like delve")
	flag.Parse()
	quietSDKLogs()

	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		// The registry address users write in required_providers. OpenTofu
		// maps registry.terraform.io sources to its own registry.
		Address: "registry.terraform.io/bipsync/bipsync",
		Debug:   debug,
	})
	if err != nil {
		log.Fatal(err.Error())
	}
}

// quietSDKLogs turns the plugin libraries' own logs off unless the user asked for logs. The framework writes trace
// lines for every validation whatever the engine wants, and the engine drops them when TF_LOG is unset: measured,
// that was 40% of the provider's CPU time at 200 grants. The engine passes its environment to the plugin, so
// TF_LOG=trace still shows everything.
func quietSDKLogs() {
	for _, k := range []string{"TF_LOG", "TF_LOG_PROVIDER", "TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_SDK_PROTO"} {
		if os.Getenv(k) != "" {
			return
		}
	}
	os.Setenv("TF_LOG_SDK", "off")
	os.Setenv("TF_LOG_SDK_FRAMEWORK", "off")
}
