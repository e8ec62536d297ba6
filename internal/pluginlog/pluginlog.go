// Package pluginlog sets how much the plugin libraries log when the provider starts.
package pluginlog

import "os"

// QuietUnlessAsked turns the plugin libraries' own logs off unless the user asked for logs. The framework writes a
// trace line for every validation whatever the engine wants, and the engine drops them when TF_LOG is unset:
// measured, that was 40% of the provider's CPU time at 200 grants. The engine passes its environment to the plugin,
// so TF_LOG=trace still shows everything. The benchmark's floor provider calls it too, so that both are compared
// doing the same.
func QuietUnlessAsked() {
	for _, k := range []string{"TF_LOG", "TF_LOG_PROVIDER", "TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_SDK_PROTO"} {
		if os.Getenv(k) != "" {
			return
		}
	}
	os.Setenv("TF_LOG_SDK", "off")
	os.Setenv("TF_LOG_SDK_FRAMEWORK", "off")
}
