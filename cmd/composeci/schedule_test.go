package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/openqa"
)

const cliKey, cliSecret = "CLIKEY", "CLISECRET"

// openqaEnv starts a fake openQA and Fedora QA's release data (Fedora 42
// and 43 stable, 44 Branched) and returns the openQA with the environment
// that points composeci at both, with credentials as a user would set them.
func openqaEnv(t *testing.T) (*fakefedora.OpenQA, map[string]string) {
	t.Helper()
	return openqaEnvWith(t, fakefedora.OpenQAOptions{})
}

// openqaEnvWith is openqaEnv with an openQA of these options (its keys
// set here).
func openqaEnvWith(t *testing.T, opts fakefedora.OpenQAOptions) (*fakefedora.OpenQA, map[string]string) {
	t.Helper()
	opts.Keys = []fakefedora.OpenQAKey{{Key: cliKey, Secret: cliSecret, Operator: true}}
	srv := fakefedora.NewOpenQA(opts)
	t.Cleanup(srv.Close)
	releases := fakefedora.NewReleaseData([]int{42, 43}, []int{44})
	releaseData := releases.Start()
	t.Cleanup(releases.Close)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(cliSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, map[string]string{
		"COMPOSECI_OPENQA":             srv.URL(),
		"COMPOSECI_OPENQA_KEY":         cliKey,
		"COMPOSECI_OPENQA_SECRET_FILE": secret,
		"COMPOSECI_RELEASE_DATA":       releaseData,
	}
}

type scheduledJSON struct {
	Flavor  string  `json:"flavor"`
	Arch    string  `json:"arch"`
	JobIDs  []int64 `json:"job_ids"`
	Skipped bool    `json:"skipped"`
	Error   string  `json:"error"`
}

func TestScheduleCommand(t *testing.T) {
	root := demoRoot(t)
	srv, env := openqaEnv(t)
	const id = "Fedora-Rawhide-20261122.n.0"

	code, out, errOut := runCLI(t, env, "schedule", id, "--compose-root", root, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var first []scheduledJSON
	if err := json.Unmarshal([]byte(out), &first); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var flavors []string
	for _, s := range first {
		if s.Skipped || len(s.JobIDs) == 0 {
			t.Errorf("first run: %+v", s)
		}
		flavors = append(flavors, s.Flavor)
	}
	want := []string{"Everything-boot-iso", "Server-boot-iso", "Server-dvd-iso", "Workstation-live-iso", "KDE-live-iso",
		"i3-live-iso", "Silverblue-dvd_ostree-iso", "Cloud_Base-qcow2-qcow2", "Workstation-upgrade", "universal"}
	slices.Sort(want)
	slices.Sort(flavors)
	if !slices.Equal(flavors, want) {
		t.Errorf("flavors %v, want %v", flavors, want)
	}
	posts := srv.Requests("POST", "/api/v1/isos")
	for _, p := range srv.Posts() {
		if p.Params["BUILD"] != id || p.Params["LOCATION"] != root+"/rawhide/"+id+"/compose" || p.Params["VERSION"] != "Rawhide" {
			t.Errorf("posted %v", p.Params)
		}
	}

	// Again, as a table: nothing is posted.
	code, out, _ = runCLI(t, env, "schedule", id, "--compose-root", root)
	if code != 0 || srv.Requests("POST", "/api/v1/isos") != posts {
		t.Errorf("second run: exit %d, %d POSTs (was %d)\n%s", code, srv.Requests("POST", "/api/v1/isos"), posts, out)
	}
	for _, w := range []string{"already scheduled", "0 posted, 10 already scheduled, 0 failed.", "Overview: " + srv.URL() + "/tests/overview?distri=fedora&version=Rawhide&build=" + id} {
		if !strings.Contains(out, w) {
			t.Errorf("table lacks %q:\n%s", w, out)
		}
	}
}

// TestScheduleCommandWithoutTemplates: an openQA set up for some flavors
// only answers "no products found" for the others; schedule lists them as
// such and exits 0, and says what to check when openQA tests none.
func TestScheduleCommandWithoutTemplates(t *testing.T) {
	root := demoRoot(t)
	const id = "Fedora-Rawhide-20261122.n.0"
	for _, tt := range []struct {
		name      string
		templates []fakefedora.OpenQATemplate
		want      []string
	}{
		{"one flavor", []fakefedora.OpenQATemplate{{Flavor: "Server-dvd-iso", Arch: "x86_64", Tests: []string{"install_default"}}},
			[]string{"1 posted, 0 already scheduled, 0 failed, 9 without job templates in openQA."}},
		{"none", []fakefedora.OpenQATemplate{},
			[]string{"0 posted, 0 already scheduled, 0 failed, 10 without job templates in openQA.", "has job templates for none of these products: check its job groups"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, env := openqaEnvWith(t, fakefedora.OpenQAOptions{Templates: tt.templates})
			code, out, errOut := runCLI(t, env, "schedule", id, "--compose-root", root)
			if code != 0 {
				t.Errorf("exit %d, want 0\n%s\n%s", code, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if n := srv.Requests("POST", "/api/v1/isos"); n != 10 {
				t.Errorf("%d POSTs, want 10", n)
			}
			if n := strings.Count(out, "no job templates in openQA"); n != 10-len(tt.templates) {
				t.Errorf("%d products marked without job templates, want %d:\n%s", n, 10-len(tt.templates), out)
			}
		})
	}
}

func TestScheduleCommandOptionsAndErrors(t *testing.T) {
	root := demoRoot(t)
	const id = "Fedora-Rawhide-20261122.n.0"
	rules := filepath.Join(t.TempDir(), "rules.toml")
	if err := os.WriteFile(rules, []byte("arches = [\"aarch64\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		env      func(map[string]string)
		code     int
		stdout   []string
		stderr   string
		posts    int
		wantJobs bool
		// oneLine: stderr is one line and stdout empty.
		oneLine bool
	}{
		{name: "dry run shows the parameters and posts nothing", args: []string{"--dry-run", "--openqa-rawhide-release", "50"}, code: 0, posts: 0,
			stdout: []string{"dry run, nothing posted", "would post", "RAWREL=50", "UP1REL=49", "TOOLBOX_IMAGE=", "10 would be posted"}},
		{name: "dry run needs no key", args: []string{"--dry-run"}, env: func(e map[string]string) {
			delete(e, "COMPOSECI_OPENQA_KEY")
			delete(e, "COMPOSECI_OPENQA_SECRET_FILE")
		}, code: 0},
		{name: "rules file and --openqa-arch", args: []string{"--openqa-rules", rules, "--json"}, code: 0, posts: 7, stdout: []string{`"arch": "aarch64"`}},
		{name: "--openqa-arch overrides the rules", args: []string{"--openqa-arch", "ppc64le", "--dry-run"}, code: 0, stdout: []string{"Server-dvd-iso", "ppc64le", "universal"}},
		{name: "wrong secret: the first refusal ends the run", args: []string{"--openqa-secret", "wrong"}, code: 2, posts: 1, oneLine: true,
			stderr: "openQA at OPENQA refused the API key (HTTP 403: unknown error (wrong secret?)): check --openqa-key and the secret"},
		{name: "wrong secret with --json: no JSON, the same line", args: []string{"--openqa-secret", "wrong", "--json"}, code: 2, posts: 1, oneLine: true,
			stderr: "refused the API key"},
		{name: "no key: openQA refuses and the error says what to set", args: []string{"--json"},
			env: func(e map[string]string) {
				delete(e, "COMPOSECI_OPENQA_KEY")
				delete(e, "COMPOSECI_OPENQA_SECRET_FILE")
			},
			code: 2, posts: 1, oneLine: true, stderr: "openQA at OPENQA refused to schedule without an API key (HTTP 403: no api key): set --openqa-key and --openqa-secret-file"},
		{name: "a user's key, not an operator's", env: func(e map[string]string) { e["COMPOSECI_OPENQA_KEY"] = "USERKEY" },
			code: 2, posts: 1, oneLine: true, stderr: "(HTTP 403: Administrator level required): scheduling needs the key of an operator"},
		{name: "key without secret is an input error", args: []string{}, env: func(e map[string]string) { delete(e, "COMPOSECI_OPENQA_SECRET_FILE") }, code: 2, stderr: "no secret"},
		{name: "a bad rules file", args: []string{"--openqa-rules", "/nonexistent.toml"}, code: 2, stderr: "openqa rules"},
		{name: "a bad openQA URL", args: []string{"--openqa", "openqa.example"}, code: 2, stderr: "--openqa"},
		{name: "a compose with no tested image", args: []string{"--openqa-arch", "s390x"}, code: 2, stderr: "no available images"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, env := openqaEnv(t)
			srv.AddKey("USERKEY", cliSecret, false)
			if tt.env != nil {
				tt.env(env)
			}
			code, out, errOut := runCLI(t, env, append([]string{"schedule", id, "--compose-root", root}, tt.args...)...)
			tt.stderr = strings.ReplaceAll(tt.stderr, "OPENQA", srv.URL())
			if tt.oneLine && (out != "" || strings.Count(errOut, "\n") != 1) {
				t.Errorf("want one line on stderr and nothing on stdout; got\nstdout: %s\nstderr: %s", out, errOut)
			}
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if !strings.Contains(errOut, tt.stderr) {
				t.Errorf("stderr %q lacks %q", errOut, tt.stderr)
			}
			if n := srv.Requests("POST", "/api/v1/isos"); n != tt.posts {
				t.Errorf("%d POSTs, want %d", n, tt.posts)
			}
			if strings.Contains(out+errOut, cliSecret) {
				t.Error("the secret was printed")
			}
		})
	}
}

// TestScheduleFromConfigFile sets the openQA flags the way a config file
// does: the [openqa] table, with url for --openqa.
func TestScheduleFromConfigFile(t *testing.T) {
	root := demoRoot(t)
	srv, env := openqaEnv(t)
	cfg := filepath.Join(t.TempDir(), "composeci.toml")
	text := "compose-root = \"" + root + "\"\n[openqa]\nurl = \"" + srv.URL() + "\"\nkey = \"" + cliKey + "\"\n" +
		"secret-file = \"" + env["COMPOSECI_OPENQA_SECRET_FILE"] + "\"\narch = [\"x86_64\"]\n" +
		"[release]\ndata = \"" + env["COMPOSECI_RELEASE_DATA"] + "\"\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "schedule", "Fedora-Rawhide-20261122.n.0", "--config", cfg)
	if code != 0 || srv.Requests("POST", "/api/v1/isos") != 10 {
		t.Errorf("exit %d, %d POSTs\n%s\n%s", code, srv.Requests("POST", "/api/v1/isos"), out, errOut)
	}
}

// TestScheduleReleaseData: CURRREL and RAWREL come from Fedora QA's release
// data (current = the highest stable release, Rawhide = the highest release
// + 1); from the rules without it (--release-data "") or when it cannot be
// read, with one warning; the flags win over both.
func TestScheduleReleaseData(t *testing.T) {
	root := demoRoot(t)
	const branched = "Fedora-44-20261122.n.0"
	rules := openqa.DefaultRules().Releases
	broken := fakefedora.NewReleaseData(nil, nil)
	brokenURL := broken.Start()
	defer broken.Close()
	broken.SetBroken(http.StatusNotFound, "not found")
	tests := []struct {
		name             string
		args             []string
		current, rawhide int
		warn             bool
	}{
		{name: "release data", current: 43, rawhide: 45},
		{name: "flags win", args: []string{"--openqa-current-release", "50", "--openqa-rawhide-release", "52"}, current: 50, rawhide: 52},
		{name: "a flag wins over its part", args: []string{"--openqa-rawhide-release", "52"}, current: 43, rawhide: 52},
		{name: "no release data: the rules", args: []string{"--release-data", ""}, current: rules.Current, rawhide: rules.Rawhide},
		{name: "unreadable: the rules, with a warning", args: []string{"--release-data", brokenURL}, current: rules.Current, rawhide: rules.Rawhide, warn: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, env := openqaEnv(t)
			code, out, errOut := runCLI(t, env, append([]string{"schedule", branched, "--compose-root", root, "--dry-run"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			for _, w := range []string{"CURRREL=" + strconv.Itoa(tt.current), "RAWREL=" + strconv.Itoa(tt.rawhide), "UP1REL=43", "UP2REL=42"} {
				if strings.Count(out, w) != 10 {
					t.Errorf("not every product posts %s:\n%s", w, out)
				}
			}
			if n := strings.Count(errOut, "release data unreadable"); n != map[bool]int{true: 1}[tt.warn] {
				t.Errorf("%d warnings about the release data:\n%s", n, errOut)
			}
		})
	}
	if code, _, errOut := runCLI(t, nil, "schedule", branched, "--compose-root", root, "--dry-run", "--release-data", "release.json"); code != 2 || !strings.Contains(errOut, "--release-data") {
		t.Errorf("a bad --release-data: exit %d: %s", code, errOut)
	}
}

func TestIDRanges(t *testing.T) {
	for _, tt := range []struct {
		ids  []int64
		want string
	}{{nil, "-"}, {[]int64{3}, "3"}, {[]int64{4, 1, 2, 3, 7, 9, 10}, "1-4,7,9-10"}} {
		if got := idRanges(tt.ids); got != tt.want {
			t.Errorf("idRanges(%v) = %q, want %q", tt.ids, got, tt.want)
		}
	}
}
