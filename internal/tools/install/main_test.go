package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/bipsync/terraform-provider-bipsync/internal/provideraddr"
	"github.com/bipsync/terraform-provider-bipsync/internal/tfcli"
)

// fakeBuild stands for go build: it writes a recognisable file, so the test checks that every destination got this
// build, without compiling the provider.
func fakeBuild(content string) func(context.Context, string) error {
	return func(_ context.Context, dst string) error {
		return os.WriteFile(dst, []byte(content), 0o755)
	}
}

// TestRun_installsPluginsAndCommand checks that one run puts the same build under both registries' names in the
// plugin directory and in the command directory, executable, and says whether the command directory is on PATH.
func TestRun_installsPluginsAndCommand(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		onPath     bool
		wantOutput string
	}{
		{"command directory on PATH", true, "is on PATH: run it as " + provideraddr.Binary},
		{"command directory not on PATH", false, "is NOT on PATH"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			plugins, bin := t.TempDir(), t.TempDir()
			path := strings.Join([]string{"/usr/bin", t.TempDir()}, string(os.PathListSeparator))
			if tt.onPath {
				path += string(os.PathListSeparator) + bin + string(filepath.Separator)
			}
			var out bytes.Buffer
			err := run(context.Background(), options{pluginDir: plugins, version: "0.0.7", binDir: bin,
				build: fakeBuild("build-1"), path: path, out: &out})
			if err != nil {
				t.Fatal(err)
			}
			wantFiles := []string{
				tfcli.MirrorBinary(plugins, tfcli.TerraformRegistry, provideraddr.Source, "0.0.7"),
				tfcli.MirrorBinary(plugins, tfcli.OpenTofuRegistry, provideraddr.Source, "0.0.7"),
				filepath.Join(bin, tfcli.ProviderBinary()),
			}
			for _, f := range wantFiles {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatalf("want %s installed: %v", f, err)
				}
				if string(b) != "build-1" {
					t.Errorf("%s holds %q; want the build", f, b)
				}
				if fi, _ := os.Stat(f); runtime.GOOS != "windows" && fi.Mode().Perm()&0o111 == 0 {
					t.Errorf("%s has mode %v; want it executable", f, fi.Mode())
				}
				if !strings.Contains(out.String(), f) {
					t.Errorf("output does not say where %s went:\n%s", f, out.String())
				}
			}
			if !strings.Contains(out.String(), tt.wantOutput) {
				t.Errorf("output lacks %q:\n%s", tt.wantOutput, out.String())
			}
			if !tt.onPath && !strings.Contains(out.String(), "export PATH=\""+bin) {
				t.Errorf("output does not say how to put %s on PATH:\n%s", bin, out.String())
			}
		})
	}
}

// TestRun_skipsCommand checks that -bin-dir=- installs the plugins only.
func TestRun_skipsCommand(t *testing.T) {
	t.Parallel()
	plugins := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), options{pluginDir: plugins, version: "0.0.1", binDir: noBinDir,
		build: fakeBuild("b"), out: &out}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "command "+provideraddr.Binary) {
		t.Errorf("output mentions the command although it was skipped:\n%s", out.String())
	}
	if _, err := os.Stat(tfcli.MirrorBinary(plugins, tfcli.OpenTofuRegistry, provideraddr.Source, "0.0.1")); err != nil {
		t.Error(err)
	}
}

// TestRun_replacesCommand checks that a second install replaces the command with the new build.
func TestRun_replacesCommand(t *testing.T) {
	t.Parallel()
	plugins, bin := t.TempDir(), t.TempDir()
	for _, build := range []string{"old", "new"} {
		if err := run(context.Background(), options{pluginDir: plugins, version: "0.0.1", binDir: bin,
			build: fakeBuild(build), out: &bytes.Buffer{}}); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(bin, tfcli.ProviderBinary())); string(b) != "new" {
		t.Errorf("the command holds %q; want the second build", b)
	}
}

func TestOnPath(t *testing.T) {
	t.Parallel()
	sep := string(os.PathListSeparator)
	for _, tt := range []struct {
		dir, path string
		want      bool
	}{
		{"/a/bin", "/usr/bin" + sep + "/a/bin", true},
		{"/a/bin", "/usr/bin" + sep + "/a/bin/", true},
		{"/a/bin/", "/a/bin", true},
		{"/a/bin", "/a/bin2" + sep + "/a", false},
		{"/a/bin", "", false},
	} {
		if got := onPath(tt.dir, tt.path); got != tt.want {
			t.Errorf("onPath(%q, %q) = %t; want %t", tt.dir, tt.path, got, tt.want)
		}
	}
}
