package tokenstore

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDefaultDir(t *testing.T) {
	t.Parallel()
	base, err := os.UserCacheDir()
	if err != nil {
		t.Skipf("no user cache dir here: %v", err)
	}
	got, err := DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(base, "terraform-provider-bipsync", "chains"); got != want {
		t.Fatalf("got %q; want %q", got, want)
	}
}
