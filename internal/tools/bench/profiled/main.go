// Command profiled serves the Bipsync provider exactly as the provider's main package does, and writes a CPU
// profile of each process when $BENCH_PROVIDER_PROFILE_DIR is set. `go run ./internal/tools/bench -profile DIR`
// builds it in place of the provider; `go tool pprof -top DIR/bipsync/*.pprof` then shows where every provider
// process the engine started spent its time, merged.
package main

import (
	"context"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/bipsync/terraform-provider-bipsync/internal/pluginlog"
	"github.com/bipsync/terraform-provider-bipsync/internal/provider"
	"github.com/bipsync/terraform-provider-bipsync/internal/provideraddr"
	"github.com/bipsync/terraform-provider-bipsync/internal/tools/bench/internal/cpuprofile"
)

func main() {
	pluginlog.QuietUnlessAsked()
	stop := cpuprofile.Start()
	err := providerserver.Serve(context.Background(), provider.New("profiled"), providerserver.ServeOpts{
		Address: provideraddr.Address,
	})
	// Serve returns once the engine has shut the plugin down, so the profile covers the process's whole life.
	stop()
	if err != nil {
		log.Fatal(err.Error())
	}
}
