// Command floor is the benchmark's floor: a terraform-plugin-framework provider that does nothing. It serves the
// same provider address, types and schemas as the Bipsync provider (bipsync_refresh_grant and the ephemeral
// bipsync_access_token), accepts the same configuration, and answers with canned values without any I/O, so the
// same configuration runs against either binary and the difference in time and memory is what the Bipsync
// provider's own work costs. `go run ./internal/tools/bench` builds it; it is not meant to be installed. With
// $BENCH_PROVIDER_PROFILE_DIR set (bench -profile) each process writes a CPU profile there.
package main

import (
	"context"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/bipsync/terraform-provider-bipsync/internal/pluginlog"
	"github.com/bipsync/terraform-provider-bipsync/internal/provideraddr"
	"github.com/bipsync/terraform-provider-bipsync/internal/tools/bench/internal/cpuprofile"
)

func main() {
	pluginlog.QuietUnlessAsked() // as the Bipsync provider's main does
	stop := cpuprofile.Start()
	err := providerserver.Serve(context.Background(), newProvider, providerserver.ServeOpts{
		// The Bipsync provider's address, so that a dev_overrides entry can point the same configuration at the floor.
		Address: provideraddr.Address,
	})
	stop()
	if err != nil {
		log.Fatal(err.Error())
	}
}
