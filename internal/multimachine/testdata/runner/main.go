// Command runner is the one program a simulated machine of package multimachine runs, installed as
// terraform-provider-bipsync in a dev_overrides directory:
//
//	runner                                      the Bipsync provider, served to the engine that started it, with its
//	                                            clock read from the file named by MULTIMACHINE_CLOCK_FILE
//	runner store-getput|store-conditional DIR get|put KEY
//	                                            the token store helper over a shared directory (see RunStoreHelper)
//	runner consume RESULT BASEURL USEAFTER      a consumer of a handed-out token (see RunConsumer)
//
// The provider is the real one (provider.NewWithOptions); only its clock is injected, so that a harness can make a
// round of many machines due for rotation without waiting an hour.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/bipsync/terraform-provider-bipsync/internal/multimachine"
	"github.com/bipsync/terraform-provider-bipsync/internal/pluginlog"
	"github.com/bipsync/terraform-provider-bipsync/internal/provider"
	"github.com/bipsync/terraform-provider-bipsync/internal/provideraddr"
)

func main() {
	if len(os.Args) > 1 {
		switch mode := os.Args[1]; mode {
		case multimachine.HelperGetPut, multimachine.HelperConditional:
			os.Exit(multimachine.RunStoreHelper(mode, os.Args[2:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
		case multimachine.ConsumeMode:
			os.Exit(multimachine.RunConsumer(os.Args[2:], os.Stderr, os.Getenv))
		default:
			fmt.Fprintf(os.Stderr, "runner: unknown mode %q\n", mode)
			os.Exit(2)
		}
	}
	clock, err := multimachine.ReadClockFile(os.Getenv(multimachine.ClockFileEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "runner:", err)
		os.Exit(1)
	}
	pluginlog.QuietUnlessAsked()
	err = providerserver.Serve(context.Background(), provider.NewWithOptions("multimachine", provider.Options{Now: clock.Now}),
		providerserver.ServeOpts{Address: provideraddr.Address})
	if err != nil {
		fmt.Fprintln(os.Stderr, "runner:", err)
		os.Exit(1)
	}
}
