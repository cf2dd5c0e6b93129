package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/testenv"
)

// runCLI runs composeci with args (plus --compose-root of the demo tree)
// and returns exit code, stdout and stderr.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb, getenv)
	return code, out.String(), errb.String()
}

// testTree is a few Rawhide and Branched nightlies. The newest Rawhide lacks
// an expected image (Server boot on aarch64), has a new one (Budgie live) and
// a much larger KDE live image, and changed source packages
// (rawhidePackages); yesterday's first respin was DOOMED.
func testTree() *fakefedora.Mirror {
	m := fakefedora.NewMirror()
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261120.n.0", Status: "FINISHED"})
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261121.n.0", Status: "DOOMED"})
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261121.n.1", Status: "FINISHED", Packages: rawhidePackages(false)})
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261122.n.0", Status: "FINISHED_INCOMPLETE", Images: troubledImages("Fedora-Rawhide-20261122.n.0"), Packages: rawhidePackages(true)})
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-44-20261121.n.0", Status: "FINISHED"})
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-44-20261122.n.0", Status: "FINISHED"})
	return m
}

// rawhidePackages are the source packages of Fedora-Rawhide-20261121.n.1
// (old) and Fedora-Rawhide-20261122.n.0 (newer): dnf5 added, yum removed;
// bash, kernel (by release), python3.14 (past its ~rc3) and vim (to a ^
// snapshot) upgraded, glibc (by release) and libfoo (its epoch dropped)
// downgraded; grub2 upgraded on x86_64 only; mover moved from Everything to
// Server; zsh unchanged though its epoch is written differently.
func rawhidePackages(newer bool) []fakefedora.PackageSpec {
	if !newer {
		return fakefedora.Packages(
			"bash-5.2.37-3.fc44", "kernel-6.18.0-0.rc6.50.fc44", "glibc-2.42.9000-5.fc44",
			"python3.14-3.14.0~rc3-1.fc44", "libfoo-1:1.0-1.fc44", "vim-2:9.1.1-1.fc44",
			"yum-4.0-1.fc44", "zsh-0:5.9-1.fc44", "grub2-1:2.12-10.fc44", "mover-1.0-1.fc44",
		)
	}
	p := fakefedora.Packages(
		"bash-5.3.0-1.fc44", "kernel-6.18.0-1.fc44", "glibc-2.42.9000-4.fc44",
		"python3.14-3.14.0-1.fc44", "libfoo-2.0-1.fc44", "vim-2:9.1.1^20261122git1-1.fc44",
		"dnf5-5.3.0-1.fc44", "zsh-5.9-1.fc44", "grub2-1:2.12-11.fc44", "grub2-1:2.12-10.fc44",
		"mover-1.0-1.fc44",
	)
	p[8].Arches, p[9].Arches, p[10].Variants = []string{"x86_64"}, []string{"aarch64"}, []string{"Server"}
	return p
}

func demoRoot(t *testing.T) string {
	t.Helper()
	m := testTree()
	root := m.Start()
	t.Cleanup(m.Close)
	return root
}

func TestFedfindCommands(t *testing.T) {
	root := demoRoot(t)
	tests := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"images table", []string{"images", "rawhide", "--arch", "aarch64", "--type", "RAW-XZ"}, 0,
			[]string{"Fedora-Rawhide-20261122.n.0: 21 images, 4 match", "Workstation-raw-xz-raw.xz", "Minimal-raw-xz-raw.xz"}},
		{"images search", []string{"images", "Fedora-44-20261122.n.0", "--search", "netinst", "--subvariant", "server"}, 0,
			[]string{"3 match", "Fedora-Server-netinst-ppc64le"}},
		{"expected missing", []string{"expected", "Fedora-Rawhide-20261122.n.0"}, 1, []string{"1 of 10 expected images missing", "  aarch64  Server-boot-iso\n"}},
		{"expected complete", []string{"expected", "branched"}, 0, []string{"all 10 expected images are present"}},
		{"previous", []string{"previous", "Fedora-Rawhide-20261122.n.0"}, 0, []string{"Fedora-Rawhide-20261121.n.1\n"}},
		{"previous none", []string{"previous", "Fedora-Rawhide-20261120.n.0", "--max-days", "2"}, 1, nil},
		{"diff two", []string{"diff", "Fedora-Rawhide-20261120.n.0", "Fedora-Rawhide-20261122.n.0"}, 1, []string{"+ x86_64   Budgie-live-iso", "(+15.0%)"}},
		{"diff none", []string{"diff", "Fedora-44-20261121.n.0", "Fedora-44-20261122.n.0"}, 0, []string{"No image differences"}},
		{"pkgdiff previous", []string{"pkgdiff", "Fedora-Rawhide-20261122.n.0"}, 1, []string{
			"Source packages from Fedora-Rawhide-20261121.n.1 to Fedora-Rawhide-20261122.n.0: 1 added, 1 removed, 5 upgraded, 2 downgraded, 2 unchanged.",
			"Added (1):\n  + dnf5", "Removed (1):\n  - yum", "  ^ python3.14  3.14.0~rc3-1.fc44", "-> 3.14.0-1.fc44",
			"  v libfoo  1:1.0-1.fc44      -> 2.0-1.fc44", "-> 2:9.1.1^20261122git1-1.fc44", "trees changed; they are listed with --trees"}},
		{"pkgdiff trees", []string{"pkgdiff", "Fedora-Rawhide-20261121.n.1", "Fedora-Rawhide-20261122.n.0", "--arch", "AARCH64", "--trees"}, 1, []string{
			"4 upgraded", "Everything/aarch64: 1 added, 2 removed, 4 upgraded, 2 downgraded, 2 unchanged.", "    - mover", "Server/aarch64: 1 added, 0 removed"}},
		{"pkgdiff one variant", []string{"pkgdiff", "Fedora-Rawhide-20261121.n.1", "Fedora-Rawhide-20261122.n.0", "--variant", "server"}, 1, []string{
			"1 added, 0 removed, 0 upgraded", "+ mover  1.0-1.fc44"}},
		{"pkgdiff none", []string{"pkgdiff", "Fedora-44-20261121.n.0", "Fedora-44-20261122.n.0"}, 0, []string{"No source package changes from Fedora-44-20261121.n.0 to Fedora-44-20261122.n.0 (20 packages)."}},
		{"pkgdiff no such variant", []string{"pkgdiff", "Fedora-Rawhide-20261122.n.0", "--variant", "Nope"}, 2, nil},
		{"pkgdiff missing compose", []string{"pkgdiff", "Fedora-Rawhide-20250101.n.0", "Fedora-Rawhide-20261122.n.0"}, 2, nil},
		{"pkgdiff no args", []string{"pkgdiff"}, 2, nil},
		{"bad id", []string{"images", "Fedora-Rawhide-2026.n.0"}, 2, nil},
		{"missing compose", []string{"images", "Fedora-Rawhide-20250101.n.0"}, 2, nil},
		{"doomed compose", []string{"images", "Fedora-Rawhide-20261121.n.0"}, 2, nil},
		{"no args", []string{"images"}, 2, nil},
		{"unknown flag", []string{"images", "rawhide", "--nope"}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, append(tt.args, "--compose-root", root)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			for _, c := range tt.contains {
				if !strings.Contains(out, c) {
					t.Errorf("stdout lacks %q:\n%s", c, out)
				}
			}
			if code == 2 && !strings.HasPrefix(errOut, "composeci: ") {
				t.Errorf("error exit without a message on stderr: %q", errOut)
			}
		})
	}
}

// TestImagesFiltersSayWhatMatchesNothing: a filter value no image has is
// named on stderr with the values there are; fedfind's netinst is boot;
// --urls prints URLs alone.
func TestImagesFiltersSayWhatMatchesNothing(t *testing.T) {
	root := demoRoot(t)
	const id = "Fedora-44-20261122.n.0"
	code, out, errOut := runCLI(t, nil, "images", id, "--type", "netinst", "--arch", "bogus,x86_64", "--compose-root", root)
	if code != 0 || !strings.Contains(out, "21 images, 2 match") || !strings.Contains(out, "Server-boot-iso") {
		t.Errorf("exit %d\n%s", code, out)
	}
	for _, w := range []string{"--type netinst: the network installer's productmd type is boot",
		"--arch bogus: no image of " + id + " has it (it has: aarch64, ppc64le, x86_64)"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
	if strings.Contains(errOut, "--arch x86_64") {
		t.Errorf("a value that matches was warned about:\n%s", errOut)
	}
	code, out, errOut = runCLI(t, nil, "images", id, "--type", "netinst", "--arch", "x86_64", "--urls", "--compose-root", root)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[1], root+"/branched/"+id+"/compose/") || !strings.HasSuffix(lines[1], "-netinst-x86_64-44-20261122.n.0.iso") {
		t.Errorf("--urls: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestErrorMessages(t *testing.T) {
	root := demoRoot(t)
	for args, want := range map[string]string{
		"images Fedora-Rawhide-20261121.n.0":                 "Fedora-Rawhide-20261121.n.0 ended DOOMED without images",
		"images Fedora-Rawhide-20250101.n.0":                 "compose not found: Fedora-Rawhide-20250101.n.0 is not in",
		"images Fedora-Rawhide-2026.n.0":                     "is not a compose ID",
		"images https://evil.example/x/compose":              "outside the compose root",
		"pkgdiff Fedora-Rawhide-20261122.n.0 --variant Nope": "has packages of variant Nope (they have Everything/aarch64, Everything/x86_64, Server/aarch64, Server/x86_64)",
		"pkgdiff Fedora-Rawhide-20250101.n.0 rawhide":        "compose not found: Fedora-Rawhide-20250101.n.0 is not in",
	} {
		_, _, errOut := runCLI(t, nil, append(strings.Fields(args), "--compose-root", root)...)
		if !strings.Contains(errOut, want) {
			t.Errorf("%s: stderr %q lacks %q", args, errOut, want)
		}
	}
}

func TestJSONInterfaces(t *testing.T) {
	root := demoRoot(t)
	_, out, _ := runCLI(t, nil, "images", "Fedora-Rawhide-20261122.n.0", "--json", "--compose-root", root)
	var images []map[string]any
	if err := json.Unmarshal([]byte(out), &images); err != nil || len(images) != 21 {
		t.Fatalf("images --json: %v, %d images", err, len(images))
	}
	for _, k := range []string{"variant", "arch", "type", "format", "subvariant", "path", "url", "size", "checksums", "identity"} {
		if _, ok := images[0][k]; !ok {
			t.Errorf("images --json lacks %q: %v", k, images[0])
		}
	}

	_, out, _ = runCLI(t, nil, "expected", "Fedora-Rawhide-20261122.n.0", "--json", "--compose-root", root)
	var missing []map[string]string
	if err := json.Unmarshal([]byte(out), &missing); err != nil || len(missing) != 1 ||
		missing[0]["subvariant"] != "server" || missing[0]["type"] != "boot" || missing[0]["arch"] != "aarch64" {
		t.Errorf("expected --json = %s (%v)", out, err)
	}
	_, out, _ = runCLI(t, nil, "expected", "branched", "--json", "--compose-root", root)
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("expected --json with nothing missing = %q, want []", out)
	}

	_, out, _ = runCLI(t, nil, "diff", "Fedora-Rawhide-20261122.n.0", "--json", "--compose-root", root)
	var d map[string][]map[string]any
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if len(d["added"]) != 1 || d["added"][0]["identity"] != "Budgie-live-iso" || d["added"][0]["arch"] != "x86_64" ||
		len(d["removed"]) != 1 || len(d["changed"]) != 1 {
		t.Errorf("diff --json = %s", out)
	}

	_, out, _ = runCLI(t, nil, "pkgdiff", "Fedora-Rawhide-20261122.n.0", "--json", "--compose-root", root)
	var pd struct {
		Old, New       string
		Added, Removed []map[string]string
		Upgraded       []map[string]string
		Downgraded     []map[string]string
		Unchanged      int
		Trees          []map[string]any
	}
	if err := json.Unmarshal([]byte(out), &pd); err != nil {
		t.Fatal(err)
	}
	if pd.Old != "Fedora-Rawhide-20261121.n.1" || pd.New != "Fedora-Rawhide-20261122.n.0" || pd.Unchanged != 2 || len(pd.Trees) != 4 ||
		!reflect.DeepEqual(pd.Added, []map[string]string{{"name": "dnf5", "nevr": "dnf5-5.3.0-1.fc44"}}) ||
		!reflect.DeepEqual(pd.Removed, []map[string]string{{"name": "yum", "nevr": "yum-4.0-1.fc44"}}) ||
		!reflect.DeepEqual(pd.Downgraded[1], map[string]string{"name": "libfoo", "from": "1:1.0-1.fc44", "to": "2.0-1.fc44"}) ||
		len(pd.Upgraded) != 5 || pd.Upgraded[0]["name"] != "bash" {
		t.Errorf("pkgdiff --json = %s", out)
	}
	for _, k := range []string{"variant", "arch", "added", "removed", "upgraded", "downgraded", "unchanged"} {
		if _, ok := pd.Trees[0][k]; !ok {
			t.Errorf("pkgdiff --json: a tree lacks %q: %v", k, pd.Trees[0])
		}
	}

	_, out, _ = runCLI(t, nil, "previous", "Fedora-Rawhide-20261122.n.0", "--json", "--compose-root", root)
	var p map[string]any
	if err := json.Unmarshal([]byte(out), &p); err != nil || p["previous_compose_id"] != "Fedora-Rawhide-20261121.n.1" || p["requests"].(float64) != 2 {
		t.Errorf("previous --json = %s", out)
	}
}

func TestConfigAndEnvironment(t *testing.T) {
	root := demoRoot(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "composeci.toml")
	os.WriteFile(cfg, []byte("compose-root = \""+root+"\"\njson = true\n"), 0o644)

	// From the file.
	code, out, errOut := runCLI(t, nil, "previous", "Fedora-Rawhide-20261122.n.0", "--config", cfg)
	if code != 0 || !strings.Contains(out, `"previous_compose_id"`) {
		t.Errorf("config file not applied: %d %s %s", code, out, errOut)
	}
	// The environment wins over the file; the command line over both.
	env := map[string]string{"COMPOSECI_CONFIG": cfg, "COMPOSECI_JSON": "false"}
	if _, out, _ = runCLI(t, env, "previous", "Fedora-Rawhide-20261122.n.0"); out != "Fedora-Rawhide-20261121.n.1\n" {
		t.Errorf("env did not override the file: %q", out)
	}
	if _, out, _ = runCLI(t, env, "previous", "Fedora-Rawhide-20261122.n.0", "--json"); !strings.Contains(out, "{") {
		t.Errorf("flag did not override env: %q", out)
	}
	// A table prefixes the flag name; an unknown key is an error.
	os.WriteFile(cfg, []byte("[compose]\nroot = \""+root+"\"\n"), 0o644)
	if code, _, errOut := runCLI(t, nil, "previous", "Fedora-Rawhide-20261122.n.0", "--config", cfg); code != 0 {
		t.Errorf("[compose] root not applied: %s", errOut)
	}
	os.WriteFile(cfg, []byte("compose-rot = \"x\"\n"), 0o644)
	if code, _, errOut := runCLI(t, nil, "images", "rawhide", "--config", cfg); code != 2 || !strings.Contains(errOut, `unknown key "compose-rot"`) {
		t.Errorf("unknown key: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, map[string]string{"COMPOSECI_JSON": "maybe"}, "images", "rawhide"); code != 2 || !strings.Contains(errOut, "COMPOSECI_JSON") {
		t.Errorf("bad env value: %d %s", code, errOut)
	}
}

func TestDemo(t *testing.T) {
	data := t.TempDir()
	code, out, errOut := runCLI(t, nil, "demo", "--data", data)
	if code != 0 {
		t.Fatalf("demo exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"== Step 1", "Fedora-Rawhide-20261123.n.0: done", "Fedora-44-20261123.n.0: done",
		"  aarch64  Server-boot-iso\n", `"previous_compose_id": "Fedora-Rawhide-20261122.n.1"`, "+ x86_64   Budgie-live-iso",
		"New failures (2)", "New failures (1)", "Flaky (1)", "Known issue 1 registered: desktop_terminal KDE-live-iso", "known issue #1: konsole crashes at start",
		"Re-run job", "Known failures (1)", "Fixed (1)", "Report archived in", "Summary:   no missing images, no failures",
		"confirm: re-running", "flaky", "upgraded in KDE/x86_64: gnome-terminal", "^ gnome-terminal  3.58.0-1.fc44      -> 3.58.1-1.fc44",
		"0 posted, 10 already scheduled", "[exit 0]",
		"* check done:", "* report mailed to 1 recipient", "The mail relay received 1 mail about it",
		"Subject:    Fedora-Rawhide-20261124.n.0 compose check: FINISHED", "| Fedora-Rawhide-20261124.n.0 compose check report",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	for _, f := range []string{"reports/rawhide/Fedora-Rawhide-20261123.n.0/report.html", "reports/44/Fedora-44-20261123.n.0/report.html"} {
		if _, err := os.Stat(filepath.Join(data, "demo", f)); err != nil {
			t.Errorf("demo did not archive %s: %v", f, err)
		}
	}
	// A second run tells the same story: the listener starts afresh, on
	// its own port, and mails once again.
	code, again, errOut := runCLI(t, nil, "demo", "--data", data)
	if code != 0 {
		t.Fatalf("second demo exit %d: %s", code, errOut)
	}
	if stories(out) != stories(again) {
		t.Errorf("the second demo told another story:\nfirst:\n%s\nsecond:\n%s", stories(out), stories(again))
	}
	// A directory the demo did not make is left alone.
	other := t.TempDir()
	os.MkdirAll(filepath.Join(other, "demo"), 0o755)
	os.WriteFile(filepath.Join(other, "demo", "precious"), nil, 0o644)
	if code, _, errOut := runCLI(t, nil, "demo", "--data", other); code != 2 || !strings.Contains(errOut, "not made by composeci demo") {
		t.Errorf("demo over a foreign directory: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(other, "demo", "precious")); err != nil {
		t.Errorf("the demo removed a directory it did not make: %v", err)
	}
}

// TestDemoScheduleReleaseNumbers: the demo's openQA posts carry the release
// numbers of its simulated release data (Fedora 42 and 43 stable, 44
// Branched), not the rules': its Branched 44 and Rawhide nightlies get
// CURRREL=43 and RAWREL=45.
func TestDemoScheduleReleaseNumbers(t *testing.T) {
	w, err := startDemoWorld(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	w.mirror.SetStatus(demoBranched, "FINISHED")
	w.mirror.SetStatus(demoRawhide, "FINISHED_INCOMPLETE")
	for _, id := range []string{demoBranched, demoRawhide} {
		if code, out, errOut := runCLI(t, nil, append(w.flags(), "schedule", id)...); code != 0 {
			t.Fatalf("schedule %s: exit %d\n%s\n%s", id, code, out, errOut)
		}
	}
	want := map[string]map[string]string{
		demoBranched: {"VERSION": "44", "CURRREL": "43", "RAWREL": "45", "UP1REL": "43", "UP2REL": "42"},
		demoRawhide:  {"VERSION": "Rawhide", "CURRREL": "43", "RAWREL": "45", "UP1REL": "44", "UP2REL": "43"},
	}
	posts := w.oq.Posts()
	if len(posts) == 0 {
		t.Fatal("nothing posted")
	}
	for _, p := range posts {
		for k, v := range want[p.Params["BUILD"]] {
			if p.Params[k] != v {
				t.Errorf("%s %s: %s=%s, want %s", p.Params["BUILD"], p.Params["FLAVOR"], k, p.Params[k], v)
			}
		}
	}
	if w.releases.Requests() != 2 {
		t.Errorf("the release data was read %d times by two commands", w.releases.Requests())
	}
}

// stories keeps what a demo run says about its workflow and mail, without
// what differs by run (ports, times, ids).
func stories(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "* ") || strings.HasPrefix(l, "Subject:") || strings.HasPrefix(l, "The mail relay") || strings.Contains(l, " is done; ") {
			keep = append(keep, regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(l, "ADDR"))
		}
	}
	return strings.Join(keep, "\n")
}

// TestExampleConfig keeps docs/config.example.toml valid: every key in it
// names a flag, and its values parse.
func TestExampleConfig(t *testing.T) {
	root := demoRoot(t)
	code, out, errOut := runCLI(t, nil, "previous", "Fedora-Rawhide-20261122.n.0", "--config", "../../docs/config.example.toml",
		"--compose-root", root, "--log-level", "error")
	if code != 0 || out != "Fedora-Rawhide-20261121.n.1\n" {
		t.Errorf("exit %d: %q %s", code, out, errOut)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.toml")
	os.WriteFile(cfg, []byte("koji = \"http://a\"\nkoji-url = \"http://b\"\n"), 0o644)
	if code, _, errOut := runCLI(t, nil, "images", "rawhide", "--config", cfg); code != 2 || !strings.Contains(errOut, `both "koji" and "koji-url"`) {
		t.Errorf("koji twice: exit %d: %s", code, errOut)
	}
}

// shellWords splits a command line as a POSIX shell does for the words the
// demo and the help's examples print: blanks separate, single quotes quote
// ('\” is a quote), and so do double quotes (in which \ escapes " and \).
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord, quoted, dquoted, escaped := false, false, false, false
	for _, r := range line {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped, inWord = false, true
		case quoted && r == '\'':
			quoted = false
		case quoted:
			cur.WriteRune(r)
		case dquoted && r == '"':
			dquoted = false
		case dquoted && r == '\\':
			escaped = true
		case dquoted:
			cur.WriteRune(r)
		case r == '\'':
			quoted, inWord = true, true
		case r == '"':
			dquoted, inWord = true, true
		case r == '\\':
			escaped = true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted || dquoted || escaped {
		t.Fatalf("an unterminated quote or escape in %q", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func TestShellQuoteRoundTrips(t *testing.T) {
	for _, w := range []string{"plain", "with space", "it's", "a?b=c&d", "", "--reason", "https://example.org/x?id=1"} {
		if got := shellWords(t, shellQuote(w)); len(got) != 1 || got[0] != w {
			t.Errorf("shellQuote(%q) = %s, read back as %q", w, shellQuote(w), got)
		}
	}
}

// TestDemoCommandsWorkAsPrinted runs `composeci demo --keep` and pastes every
// command it printed — each "$ composeci …" and "$ curl …" line and the
// commands it suggests to try — while it keeps running: none is refused.
// Then it runs every example of every command's --help in the world the
// demo keeps (see helpExamples): none is refused either.
func TestDemoCommandsWorkAsPrinted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo")
	}
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--keep", "--data", data}, strings.NewReader(""), out, out, func(string) string { return "" })
	}()
	testenv.WaitFor(t, 90*time.Second, "the demo to keep running", func() error {
		select {
		case code := <-done:
			t.Fatalf("demo exited %d:\n%s", code, out.String())
		default:
		}
		if !strings.Contains(out.String(), "until you press Ctrl-C") {
			return errors.New("not yet")
		}
		return nil
	})
	var commands, urls []string
	trying := false
	for _, line := range strings.Split(out.String(), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "$ composeci "):
			commands = append(commands, strings.TrimPrefix(line, "$ composeci "))
		case strings.HasPrefix(line, "$ curl "):
			urls = append(urls, strings.TrimPrefix(line, "$ curl "))
		case strings.HasPrefix(line, "Try, in another shell:"):
			trying = true
		case trying && strings.HasPrefix(trimmed, "composeci "):
			commands = append(commands, strings.TrimPrefix(trimmed, "composeci "))
		case trying && strings.HasPrefix(trimmed, "curl "):
			urls = append(urls, strings.TrimPrefix(trimmed, "curl "))
		}
	}
	if len(commands) < 12 || len(urls) < 3 {
		t.Fatalf("found %d commands and %d URLs in the demo's output:\n%s", len(commands), len(urls), out.String())
	}
	for _, c := range commands {
		code, stdout, stderr := runCLI(t, nil, shellWords(t, c)...)
		if code == exitError {
			t.Errorf("composeci %s: exit %d\n%s%s", c, code, stdout, stderr)
		}
	}
	for _, u := range urls {
		method, header := http.MethodGet, ""
		if rest, ok := strings.CutPrefix(u, "-X POST "); ok {
			method, u = http.MethodPost, rest
		}
		if rest, ok := strings.CutPrefix(u, "-H '"); ok {
			header, u, _ = strings.Cut(rest, "' ")
		}
		req, _ := http.NewRequest(method, u, nil)
		if name, value, ok := strings.Cut(header, ": "); ok {
			req.Header.Set(name, value)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("curl %s: %v", u, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Errorf("curl %s %s: HTTP %d", method, u, resp.StatusCode)
		}
	}
	runHelpExamples(t, filepath.Join(data, "demo", "composeci.toml"), out.String())
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("demo --keep exited %d after the interrupt", code)
	}
}

// TestNoFlagShadowsAGlobal: a command's own flag named like a global one
// (check's --json FILE once) gives one name two meanings, and the
// environment and config file the wrong one.
func TestNoFlagShadowsAGlobal(t *testing.T) {
	root := newRootCmd(&app{})
	global := root.PersistentFlags()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if g := global.Lookup(f.Name); g != nil && g != f {
				t.Errorf("%s --%s shadows the global --%s", c.CommandPath(), f.Name, f.Name)
			}
		})
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

// TestMistypedStream: a stream typed wrong is named with the closest one
// and the list of streams, wherever a stream is read.
func TestMistypedStream(t *testing.T) {
	root := demoRoot(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"images", "rawhid"}, `"rawhid" is not a stream: did you mean rawhide? The streams are rawhide, branched, branched:44, eln,`},
		{[]string{"diff", "brnached:44"}, "did you mean branched:44?"},
		{[]string{"check", "updates-testin:44", "--no-openqa"}, "did you mean updates-testing:44?"},
		{[]string{"listen", "--watch", "rawhide,clod:44"}, `--watch: invalid input: "clod:44" is not a stream: did you mean cloud:44?`},
		{[]string{"listen", "--watch", "Fedora-44"}, `--watch "Fedora-44": not a stream (rawhide, branched,`},
	} {
		code, out, errOut := runCLI(t, nil, append(tc.args, "--compose-root", root, "--data", t.TempDir())...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q lacks %q\n%s", tc.args, code, errOut, tc.want, out)
		}
	}
}

// TestNegativeDurations walks every command and refuses a negative value
// of each of its duration flags — on the command line and from the
// environment — before any work, but for the flags where a negative value
// means something (said in their help).
func TestNegativeDurations(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // were a value let through, the command stops at its first I/O
	cli := func(env map[string]string, args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(ctx, args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
		return code, errb.String()
	}
	var walk func(c *cobra.Command)
	checked := 0
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			walk(s)
		}
		if !c.Runnable() {
			return
		}
		var args []string
		for n := 0; n < 3 && c.ValidateArgs(args) != nil; n++ {
			args = append(args, "Fedora-Rawhide-20261122.n.0")
		}
		path := strings.Fields(c.CommandPath())[1:]
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Value.Type() != "duration" {
				return
			}
			if negativeMeansSomething(f.Name) {
				if !strings.Contains(f.Usage, "negative: ") {
					t.Errorf("%s --%s takes a negative value; its help does not say what it means: %q", c.CommandPath(), f.Name, f.Usage)
				}
				return
			}
			checked++
			common := []string{"--compose-root", "http://127.0.0.1:1", "--data", t.TempDir()}
			if c.Flags().Lookup("koji") != nil {
				common = append(common, "--koji", "http://127.0.0.1:1")
			}
			want := "--" + f.Name + " -1m0s: must not be negative"
			code, errOut := cli(nil, append(append(append(path, args...), "--"+f.Name, "-1m"), common...)...)
			if code != exitError || !strings.Contains(errOut, want) {
				t.Errorf("%s --%s -1m: exit %d, stderr %q lacks %q", c.CommandPath(), f.Name, code, errOut, want)
			}
			env := "COMPOSECI_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
			if code, errOut := cli(map[string]string{env: "-1m"}, append(append(path, args...), common...)...); code != exitError || !strings.Contains(errOut, want) {
				t.Errorf("%s with %s=-1m: exit %d, stderr %q lacks %q", c.CommandPath(), env, code, errOut, want)
			}
		})
	}
	walk(newRootCmd(&app{}))
	if checked < 10 {
		t.Errorf("only %d duration flags checked", checked)
	}

	// The exception: listen --poll-interval -1s never polls.
	listen := newListenCmd(&app{})
	if err := listen.Flags().Set("poll-interval", "-1s"); err != nil {
		t.Fatal(err)
	}
	if err := checkDurations(listen.Flags()); err != nil {
		t.Errorf("listen --poll-interval -1s refused: %v", err)
	}
	if err := listen.Flags().Set("poll-lookback", "-1s"); err != nil {
		t.Fatal(err)
	}
	if err := checkDurations(listen.Flags()); err == nil || !strings.Contains(err.Error(), "--poll-lookback -1s: must not be negative") {
		t.Errorf("listen --poll-lookback -1s: %v", err)
	}
}

// TestExpectedAndDiffNameImagesAlike: the image expected names missing is
// the one diff names removed, in the same words: arch and identity.
func TestExpectedAndDiffNameImagesAlike(t *testing.T) {
	root := demoRoot(t)
	const id = "Fedora-Rawhide-20261122.n.0"
	_, expOut, _ := runCLI(t, nil, "expected", id, "--compose-root", root)
	_, diffOut, _ := runCLI(t, nil, "diff", id, "--compose-root", root)
	const name = "aarch64  Server-boot-iso\n"
	if !strings.Contains(expOut, "\n  "+name) || !strings.Contains(diffOut, "\n  - "+name) {
		t.Errorf("expected and diff do not both name %q:\nexpected:\n%s\ndiff:\n%s", name, expOut, diffOut)
	}

	_, expOut, _ = runCLI(t, nil, "expected", id, "--json", "--compose-root", root)
	_, diffOut, _ = runCLI(t, nil, "diff", id, "--json", "--compose-root", root)
	var missing []map[string]string
	var d struct{ Removed []map[string]any }
	if err := json.Unmarshal([]byte(expOut), &missing); err != nil || len(missing) != 1 {
		t.Fatalf("expected --json: %v\n%s", err, expOut)
	}
	if err := json.Unmarshal([]byte(diffOut), &d); err != nil || len(d.Removed) != 1 {
		t.Fatalf("diff --json: %v\n%s", err, diffOut)
	}
	if missing[0]["identity"] != d.Removed[0]["identity"] || missing[0]["arch"] != d.Removed[0]["arch"] ||
		missing[0]["identity"] != "Server-boot-iso" || missing[0]["subvariant"] != "server" || missing[0]["type"] != "boot" {
		t.Errorf("expected --json names %v, diff --json %v", missing[0], d.Removed[0])
	}
}

// TestExampleConfigComplete keeps docs/config.example.toml showing every
// key: each flag of each command must be set in it, or mentioned in a
// comment — as --flag, or as a commented-out key.
func TestExampleConfigComplete(t *testing.T) {
	const path = "../../docs/config.example.toml"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	set, err := readConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	covered := func(name string) bool {
		for _, k := range []string{name, name + "-url", name + "-server"} {
			if _, ok := set[k]; ok {
				return true
			}
		}
		mention := regexp.MustCompile(`(?m)(--` + regexp.QuoteMeta(name) + `([^a-z0-9-]|$))|(^\s*#\s*` + regexp.QuoteMeta(name) + `\s*=)`)
		return mention.MatchString(text)
	}
	missing := map[string][]string{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		visit := func(f *pflag.Flag) {
			if f.Name != "help" && f.Name != "version" && !covered(f.Name) {
				missing[f.Name] = append(missing[f.Name], c.CommandPath())
			}
		}
		c.LocalFlags().VisitAll(visit)
		c.PersistentFlags().VisitAll(visit)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	root := newRootCmd(&app{})
	walk(root)
	for _, name := range slices.Sorted(maps.Keys(missing)) {
		t.Errorf("%s neither sets nor mentions --%s (of %s)", path, name, strings.Join(slices.Compact(missing[name]), ", "))
	}

	// What it sets, every command that has the flag takes; and so it does
	// with every commented-out key and table uncommented.
	uncommented := filepath.Join(t.TempDir(), "uncommented.toml")
	keyOrTable := regexp.MustCompile(`(?m)^#\s*([a-z][a-z0-9-]*\s*=|\[[a-z]+\])`)
	if err := os.WriteFile(uncommented, []byte(keyOrTable.ReplaceAllString(text, "$1")), 0o644); err != nil {
		t.Fatal(err)
	}
	if u, err := readConfig(uncommented); err != nil || len(u) < len(set)+40 {
		t.Errorf("uncommented, the example sets %d keys (%v), commented %d", len(u), err, len(set))
	}
	var load func(c *cobra.Command)
	load = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			load(s)
		}
		if !c.Runnable() {
			return
		}
		for _, cfg := range []string{path, uncommented} {
			if err := c.ParseFlags([]string{"--config", cfg}); err != nil {
				t.Fatal(err)
			}
			if err := applyConfig(root, c, func(string) string { return "" }); err != nil {
				t.Errorf("%s --config %s: %v", c.CommandPath(), cfg, err)
			}
		}
	}
	load(root)
}

// helpExample is one example line of a command's --help.
type helpExample struct {
	command string // the command's path, e.g. "composeci rerun"
	line    string
}

// helpExamples lists the example lines of every command that run composeci.
func helpExamples() []helpExample {
	var out []helpExample
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, l := range strings.Split(c.Example, "\n") {
			if l = strings.TrimSpace(l); strings.Contains(l, "composeci ") {
				out = append(out, helpExample{c.CommandPath(), l})
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRootCmd(&app{getenv: func(string) string { return "" }}))
	return out
}

// exampleAdaptations say how an example that needs more than the demo's
// config is run in the demo's world, or why it is not: the first entry
// whose text the example contains applies. Every other example runs as
// printed, with --config naming the demo's config file.
type exampleAdaptation struct {
	contains string
	skip     string            // why the example is not run
	replace  map[string]string // text of the example → what stands for it
}

func exampleAdaptations() []exampleAdaptation {
	return []exampleAdaptation{
		{contains: "composeci listen ", skip: "a service on a real broker; the demo runs its own listener"},
		{contains: "composeci worker ", skip: "needs a NATS server of its own"},
		{contains: "composeci serve ", skip: "needs a NATS server of its own"},
		{contains: "--publish-amqp", skip: "needs a Fedora Messaging broker"},
		// The demo's jobs are final: no need to watch them for late re-runs
		// for the default --grace of 10 s.
		{contains: "composeci results rawhide --wait", replace: map[string]string{"--wait": "--wait --grace 0"}},
		{contains: "--smtp mail.example.org:587", replace: map[string]string{"--smtp mail.example.org:587": ""}}, // the demo's relay, from its config
		{contains: "--job 4242", replace: map[string]string{
			"--job 4242": "--job JOB", // a job of the compose
			"--server http://127.0.0.1:8089 --api-token-file token": "--server LISTENER", // the token file is in the config
		}},
	}
}

// runHelpExamples runs every --help example against the world the demo
// keeps (its config file, and its output for the listener's address).
func runHelpExamples(t *testing.T, config, demoOut string) {
	t.Helper()
	examples := helpExamples()
	if len(examples) < 20 {
		t.Fatalf("found only %d examples in the commands' --help", len(examples))
	}
	listener := ""
	if _, rest, ok := strings.Cut(demoOut, "The dashboard: "); ok {
		listener, _, _ = strings.Cut(rest, "\n")
		listener = strings.TrimSuffix(listener, "/")
	}
	job := func() string {
		code, out, errOut := runCLI(t, nil, "results", demoRawhide, "--json", "--config", config)
		var r struct {
			Jobs []struct {
				ID     int64  `json:"id"`
				Result string `json:"result"`
			} `json:"jobs"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Jobs) == 0 {
			t.Fatalf("results --json: exit %d, %v\n%s", code, err, errOut)
		}
		for _, j := range r.Jobs {
			if j.Result == "failed" {
				return strconv.FormatInt(j.ID, 10)
			}
		}
		return strconv.FormatInt(r.Jobs[0].ID, 10)
	}
	for _, ex := range examples {
		line, skip := ex.line, ""
		for _, a := range exampleAdaptations() {
			if !strings.Contains(line, a.contains) {
				continue
			}
			skip = a.skip
			for from, to := range a.replace {
				to = strings.NewReplacer("JOB", job(), "LISTENER", listener).Replace(to)
				line = strings.Replace(line, from, to, 1)
			}
			break
		}
		if skip != "" {
			t.Logf("%s: not run (%s): %s", ex.command, skip, ex.line)
			continue
		}
		words := shellWords(t, line)
		if i := slices.Index(words, "|"); i >= 0 {
			words = words[:i] // what the output is piped to is not composeci's
		}
		for len(words) > 0 && strings.Contains(words[0], "=") {
			words = words[1:] // the environment's settings: the config has them
		}
		if len(words) == 0 || words[0] != "composeci" {
			t.Errorf("%s: cannot read the example %q", ex.command, ex.line)
			continue
		}
		code, stdout, stderr := runCLI(t, nil, append(words[1:], "--config", config)...)
		if code == exitError {
			t.Errorf("%s --help: the example\n  %s\nexits %d in the demo's world:\n%s%s", ex.command, ex.line, code, stdout, stderr)
		}
	}
}
