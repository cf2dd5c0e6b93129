package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionLine(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build info", nil, false, "composeci version devel, commit unknown"},
		{"go run", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true, "composeci version devel, commit unknown"},
		{"tagged", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, true, "composeci version v1.4.0, commit unknown"},
		{"git checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: vcs("vcs", "git", "vcs.revision", "42284ac33b9a793ebee87403319b0ee26c7b923c", "vcs.time", "2026-11-25T03:32:33Z", "vcs.modified", "false")}, true,
			"composeci version devel, commit 42284ac33b9a793ebee87403319b0ee26c7b923c (2026-11-25T03:32:33Z)"},
		{"changed checkout", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261125033233-42284ac33b9a+dirty"},
			Settings: vcs("vcs.revision", "42284ac33b9a793ebee87403319b0ee26c7b923c", "vcs.time", "2026-11-25T03:32:33Z", "vcs.modified", "true")}, true,
			"composeci version v0.0.0-20261125033233-42284ac33b9a+dirty, commit 42284ac33b9a793ebee87403319b0ee26c7b923c (2026-11-25T03:32:33Z), with uncommitted changes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionLine(tc.bi, tc.ok); got != tc.want {
				t.Errorf("versionLine = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestVersionFlag: composeci --version prints one line and exits 0, before
// any config is read.
func TestVersionFlag(t *testing.T) {
	code, out, errOut := runCLI(t, map[string]string{"COMPOSECI_CONFIG": "/nonexistent.toml"}, "--version")
	if code != 0 || !strings.HasPrefix(out, "composeci version ") || strings.Count(out, "\n") != 1 || !strings.Contains(out, ", commit ") || errOut != "" {
		t.Errorf("--version: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestVersionIsNoConfigKey: --version and --help are actions, not
// settings; a config file naming them is refused like any unknown key.
func TestVersionIsNoConfigKey(t *testing.T) {
	for _, key := range []string{"version", "help"} {
		cfg := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(cfg, []byte(key+" = true\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _, errOut := runCLI(t, nil, "previous", "rawhide", "--config", cfg, "--compose-root", "http://127.0.0.1:1"); code != 2 || !strings.Contains(errOut, `unknown key "`+key+`"`) {
			t.Errorf("%s in the config: exit %d: %s", key, code, errOut)
		}
	}
}
