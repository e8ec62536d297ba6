package tfcli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestTerraform(t *testing.T) {
	t.Parallel()
	needFakes(t)
	for _, tc := range []struct {
		name    string
		fake    string // linked as "terraform" on PATH; empty: none
		wantErr string // empty: found
	}{
		{name: "1.11.4", fake: "terraform-1.11.4"},
		{name: "2.0.0", fake: "terraform-2.0.0"},
		{name: "too old", fake: "terraform-1.10.5", wantErr: "is Terraform 1.10.5"},
		{name: "prerelease of the minimum", fake: "terraform-1.11.0-rc1", wantErr: "is Terraform 1.11.0-rc1"},
		{name: "tofu named terraform", fake: "opentofu-1.12.6-as-tf", wantErr: "is not Terraform"},
		{name: "fails to run", fake: "broken", wantErr: "exit status 7"},
		{name: "absent", wantErr: "not found on PATH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bindir := t.TempDir()
			if tc.fake != "" {
				link(t, tc.fake, filepath.Join(bindir, "terraform"))
			}
			env := append(testEnv(), "PATH="+filepath.Join(t.TempDir(), "empty")+string(os.PathListSeparator)+bindir)
			got, err := Terraform(context.Background(), Config{CacheDir: t.TempDir(), Env: env})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Terraform: %v", err)
				}
				if want := filepath.Join(bindir, "terraform"); got != want {
					t.Errorf("got %q; want %q", got, want)
				}
				return
			}
			if !errors.Is(err, ErrNoTerraform) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got error %v; want ErrNoTerraform containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestAtLeast(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v, floor string
		want     bool
		wantErr  bool
	}{
		{v: "1.11.4", floor: "1.11.0", want: true},
		{v: "1.11.0", floor: "1.11.0", want: true},
		{v: "v1.12.0", floor: "1.11.0", want: true},
		{v: "2.0.0", floor: "1.11.0", want: true},
		{v: "1.10.9", floor: "1.11.0", want: false},
		{v: "0.15.0", floor: "1.11.0", want: false},
		{v: "1.11.0-rc1", floor: "1.11.0", want: false},
		{v: "1.11.1-rc1", floor: "1.11.0", want: true},
		{v: "1.11.0-rc2", floor: "1.11.0-rc1", want: true},
		{v: "1.11", floor: "1.11.0", wantErr: true},
		{v: "1.x.0", floor: "1.11.0", wantErr: true},
		{v: "", floor: "1.11.0", wantErr: true},
	} {
		got, err := AtLeast(tc.v, tc.floor)
		if (err != nil) != tc.wantErr {
			t.Errorf("AtLeast(%q, %q): got error %v; want error %v", tc.v, tc.floor, err, tc.wantErr)
			continue
		}
		if got != tc.want {
			t.Errorf("AtLeast(%q, %q): got %v; want %v", tc.v, tc.floor, got, tc.want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, out string
		want      Engine
		wantErr   bool
	}{
		{name: "opentofu", out: "OpenTofu v1.12.6\non linux_amd64\n", want: Engine{OpenTofu: true, Version: "1.12.6"}},
		{name: "terraform", out: "Terraform v1.11.4\non linux_amd64\n", want: Engine{Version: "1.11.4"}},
		{name: "development build", out: "OpenTofu v1.12.6-dev\n", want: Engine{OpenTofu: true, Version: "1.12.6-dev"}},
		{name: "after a warning", out: "Warning: Unable to open CLI configuration file\n\nTerraform v1.11.4\n",
			want: Engine{Version: "1.11.4"}},
		{name: "json", out: `{"terraform_version":"1.11.4"}`, wantErr: true},
		{name: "another program", out: "Vault v1.15.0\n", wantErr: true},
		{name: "no version", out: "Terraform v\n", wantErr: true},
		{name: "empty", out: "", wantErr: true},
	} {
		got, err := parseVersion([]byte(tc.out))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: got (%+v, %v); want (%+v, error %v)", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestIdentify(t *testing.T) {
	t.Parallel()
	needFakes(t)
	for fake, want := range map[string]string{
		"opentofu-1.12.6":       "OpenTofu v1.12.6 registry.opentofu.org",
		"opentofu-1.12.6-as-tf": "OpenTofu v1.12.6 registry.opentofu.org",
		"terraform-1.11.4":      "Terraform v1.11.4 registry.terraform.io",
	} {
		bin := filepath.Join(t.TempDir(), "terraform")
		link(t, fake, bin)
		e, err := Identify(context.Background(), Config{CacheDir: t.TempDir(), Env: testEnv()}, bin)
		if err != nil {
			t.Errorf("%s: %v", fake, err)
			continue
		}
		if got := e.String() + " " + e.RegistryHost(); got != want || e.Path != bin {
			t.Errorf("%s: got %q at %s; want %q at %s", fake, got, e.Path, want, bin)
		}
	}
	if _, err := Identify(context.Background(), Config{CacheDir: t.TempDir(), Env: testEnv()}, filepath.Join(fakes, "broken")); err == nil {
		t.Error("a binary that fails: got no error; want one")
	}
}

func TestMirrorConfig(t *testing.T) {
	t.Parallel()
	want := "provider_installation {\n  filesystem_mirror {\n    path = \"/tmp/a \\\"b\\\"\"\n  }\n}\n"
	if got := MirrorConfig(`/tmp/a "b"`); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestMirrorBinary(t *testing.T) {
	t.Parallel()
	got := MirrorBinary("/m", "registry.opentofu.org", "bipsync/bipsync", "0.0.1")
	want := filepath.Join("/m", "registry.opentofu.org", "bipsync", "bipsync", "0.0.1", runtime.GOOS+"_"+runtime.GOARCH,
		exeName("terraform-provider-bipsync_v0.0.1"))
	if got != want {
		t.Errorf("got %s; want %s", got, want)
	}
}

func TestEngineEnv(t *testing.T) {
	t.Parallel()
	base := []string{"PATH=/bin", "HOME=/root", "TF_LOG=trace", "TF_CLI_ARGS_plan=-parallelism=1", "TF_VAR_seeds=[]",
		"BIPSYNC_BASE_URL=https://x", "CI=true", "CHECKPOINT_DISABLE=", "TF_CLI_CONFIG_FILE=/home/me/.terraformrc",
		"TF_IN_AUTOMATION=", "CIRCLECI=true"}
	got := EngineEnv(base, "/c/empty.tfrc", "BIPSYNC_CLIENT_SECRET=s", "TF_LOG=debug")
	want := []string{"PATH=/bin", "HOME=/root", "CIRCLECI=true", "TF_CLI_CONFIG_FILE=/c/empty.tfrc", "CHECKPOINT_DISABLE=1",
		"TF_IN_AUTOMATION=1", "TF_INPUT=0", "BIPSYNC_CLIENT_SECRET=s", "TF_LOG=debug"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestDevOverrides(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "cli.tfrc")
	if err := WriteDevOverrides(path, `/tmp/x "y"/provider`, map[string]string{"mastercard/restapi": "/tmp/stubs"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The CLI configuration is HCL 1, which no library here reads; the engine runs of the demo, the benchmarks and the
	// examples test prove that engines accept it.
	want := "provider_installation {\n  dev_overrides {\n" +
		"    \"bipsync/bipsync\" = \"/tmp/x \\\"y\\\"/provider\"\n" +
		"    \"mastercard/restapi\" = \"/tmp/stubs\"\n" +
		"  }\n  direct {}\n}\n"
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if fi, err := os.Stat(path); runtime.GOOS != "windows" && (err != nil || fi.Mode().Perm() != 0o600) {
		t.Errorf("mode: got %v, %v; want 0600", fi, err)
	}
}

func TestEmptyCLIConfig(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "new", "cache")
	p, err := EmptyCLIConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A config someone edited is reset: tests must not pick up settings.
	if err := os.WriteFile(p, []byte(`provider_installation { dev_overrides {} }`), 0o644); err != nil {
		t.Fatal(err)
	}
	p2, err := EmptyCLIConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p2)
	if err != nil {
		t.Fatal(err)
	}
	if p2 != p || fi.Size() != 0 {
		t.Errorf("got %q of %d bytes; want %q empty", p2, fi.Size(), p)
	}
}

func TestParseDownload(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, out, want string
		wantErr         string
	}{
		{name: "ok", out: `{"Path":"github.com/opentofu/opentofu","Version":"v1.12.6","Dir":"/m/opentofu@v1.12.6"}`, want: "/m/opentofu@v1.12.6"},
		{name: "proxy error", out: `{"Path":"github.com/opentofu/opentofu","Error":"403 Forbidden"}`, wantErr: "403 Forbidden"},
		{name: "no dir", out: `{"Path":"github.com/opentofu/opentofu"}`, wantErr: "no module directory"},
		{name: "empty", out: ``, wantErr: "decode"},
	} {
		got, err := parseDownload([]byte(tc.out))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: got error %v; want one containing %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got (%q, %v); want (%q, nil)", tc.name, got, err, tc.want)
		}
	}
}

func TestCopyTree_MakesWritableCopy(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "cmd", "tofu"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"go.mod": "module x\n", "cmd/tofu/main.go": "package main\n"}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "copy")
	if err := copyTree(src, dst); err != nil {
		t.Fatalf("copyTree: %v", err)
	}
	for name, body := range files {
		p := filepath.Join(dst, name)
		b, err := os.ReadFile(p)
		if err != nil || string(b) != body {
			t.Errorf("%s: got (%q, %v); want %q", name, b, err, body)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o200 == 0 {
			t.Errorf("%s: got mode %v; want owner-writable", name, fi.Mode())
		}
	}
}
