package pluginlog

import (
	"os"
	"testing"
)

func TestQuietUnlessAsked(t *testing.T) {
	for _, tc := range []struct {
		name  string
		set   map[string]string
		quiet bool
	}{
		{"nothing asked", nil, true},
		{"TF_LOG asked", map[string]string{"TF_LOG": "trace"}, false},
		{"provider logs asked", map[string]string{"TF_LOG_PROVIDER": "debug"}, false},
		{"SDK logs asked", map[string]string{"TF_LOG_SDK_FRAMEWORK": "trace"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"TF_LOG", "TF_LOG_PROVIDER", "TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_SDK_PROTO"} {
				t.Setenv(k, tc.set[k])
			}
			QuietUnlessAsked()
			if got := os.Getenv("TF_LOG_SDK_FRAMEWORK") == "off"; got != tc.quiet {
				t.Errorf("framework logs off: got %t; want %t", got, tc.quiet)
			}
		})
	}
}
