package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/composeci/composeci/triage"
	"github.com/composeci/composeci/web"
)

type rerunJSON struct {
	Restarted []triage.Restarted `json:"restarted"`
	Skipped   []triage.Skipped   `json:"skipped"`
}

// TestTriageCommands: a new failure re-run by hand with an audit trail,
// confirmed in the report; then registered as a known issue, which the
// check reports as known; the registry's history; the errors a user meets.
func TestTriageCommands(t *testing.T) {
	w, _ := checkWorld(t)
	flags := w.flags()
	cli := func(args ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, map[string]string{"USER": "tester"}, append(args, flags...)...)
	}

	if code, out, errOut := cli("known", "list"); code != 0 || !strings.Contains(out, "No known issues.") {
		t.Fatalf("known list: %d\n%s%s", code, out, errOut)
	}

	// A dry run restarts nothing and says what it would.
	code, out, errOut := cli("rerun", demoRawhide, "--new-failures", "--dry-run", "--json")
	var dry rerunJSON
	if err := json.Unmarshal([]byte(out), &dry); err != nil || code != 0 || len(dry.Restarted) != 1 || dry.Restarted[0].Test != "desktop_terminal" {
		t.Fatalf("rerun --dry-run: %d %v\n%s%s", code, err, out, errOut)
	}
	jobs := len(w.oq.Jobs())

	// The re-run, recorded; asked again, nothing is restarted twice.
	code, out, errOut = cli("rerun", demoRawhide, "--new-failures", "--reason", "the mirror was down", "--json")
	var done rerunJSON
	if err := json.Unmarshal([]byte(out), &done); err != nil || code != 0 || len(done.Restarted) != 1 || done.Restarted[0].RerunJobID == 0 {
		t.Fatalf("rerun: %d %v\n%s%s", code, err, out, errOut)
	}
	if got := len(w.oq.Jobs()); got != jobs+1 {
		t.Errorf("%d jobs after the re-run, want %d", got, jobs+1)
	}
	code, out, _ = cli("rerun", demoRawhide, "--new-failures")
	if code != 0 || !strings.Contains(out, "Nothing to re-run") || !strings.Contains(out, "Skipped job") || len(w.oq.Jobs()) != jobs+1 {
		t.Errorf("rerun again: %d, %d jobs\n%s", code, len(w.oq.Jobs()), out)
	}
	w.oq.Settle()

	// The check reports the failure confirmed, and the trail.
	code, out, errOut = cli("check", demoRawhide, "--json")
	var r struct {
		OpenQA struct {
			NewFailures []struct {
				Test       string
				Confirmed  *bool `json:"confirmed"`
				RerunJobID int64 `json:"rerun_job_id"`
			} `json:"new_failures"`
			KnownFailures []struct {
				Test       string
				KnownIssue *struct {
					ID     int64
					Reason string
				} `json:"known_issue"`
			} `json:"known_failures"`
		} `json:"openqa"`
		Reruns []struct{ By, Reason, Scope string } `json:"reruns"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 1 {
		t.Fatalf("check: %d %v\n%s%s", code, err, out, errOut)
	}
	if len(r.OpenQA.NewFailures) != 1 || r.OpenQA.NewFailures[0].Confirmed == nil || !*r.OpenQA.NewFailures[0].Confirmed ||
		r.OpenQA.NewFailures[0].RerunJobID != done.Restarted[0].RerunJobID {
		t.Errorf("new failures %+v", r.OpenQA.NewFailures)
	}
	if len(r.Reruns) != 1 || r.Reruns[0].By != "tester" || r.Reruns[0].Reason != "the mirror was down" || r.Reruns[0].Scope != "new-failures" {
		t.Errorf("re-runs %+v", r.Reruns)
	}

	// Registered as a known issue, it is known, not new.
	code, out, errOut = cli("known", "add", "--test", "desktop_terminal", "--flavor", "KDE-live-iso", "--reason", "the terminal font is missing",
		"--bug", "https://bugzilla.redhat.com/show_bug.cgi?id=2000", "--expires", "30d", "--by", "bob")
	if code != 0 || !strings.Contains(out, "Known issue 1 registered: desktop_terminal KDE-live-iso") {
		t.Fatalf("known add: %d\n%s%s", code, out, errOut)
	}
	code, out, _ = cli("check", demoRawhide, "--json")
	r.OpenQA.NewFailures, r.OpenQA.KnownFailures = nil, nil
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.OpenQA.NewFailures) != 0 {
		t.Errorf("check after known add: %d %v %+v", code, err, r.OpenQA.NewFailures)
	}
	found := false
	for _, k := range r.OpenQA.KnownFailures {
		if k.Test == "desktop_terminal" && k.KnownIssue != nil && k.KnownIssue.ID == 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("known failures %+v lack the known issue", r.OpenQA.KnownFailures)
	}
	if _, out, _ := cli("check", demoRawhide); !strings.Contains(out, "the terminal font is missing") {
		t.Errorf("the text report does not give the known issue's reason:\n%s", out)
	}

	code, out, _ = cli("known", "list", "--json")
	var listed struct {
		Entries []struct {
			ID        int64  `json:"id"`
			CreatedBy string `json:"created_by"`
			Expired   bool   `json:"expired"`
		} `json:"known_issues"`
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil || code != 0 || len(listed.Entries) != 1 || listed.Entries[0].CreatedBy != "bob" || listed.Entries[0].Expired {
		t.Errorf("known list --json: %d %v %s", code, err, out)
	}
	if code, out, _ := cli("known", "rm", "1"); code != 0 || !strings.Contains(out, "Known issue 1 removed") {
		t.Errorf("known rm: %d %s", code, out)
	}
	if code, out, _ := cli("known", "list", "--all"); code != 0 || !strings.Contains(out, "remove #1 desktop_terminal by tester") {
		t.Errorf("known list --all: %d\n%s", code, out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"known", "rm", "1"}, "no such known issue"},
		{[]string{"known", "rm", "first"}, "want its number"},
		{[]string{"known", "add", "--test", "x"}, "reason"},
		{[]string{"known", "add", "--test", "x", "--reason", "y", "--expires", "soon"}, "--expires"},
		{[]string{"known", "add", "--test", "x", "--reason", "y", "--bug", "file:///etc/passwd"}, "bug"},
		{[]string{"rerun", demoRawhide}, "exactly one of"},
		{[]string{"rerun", demoRawhide, "--failed", "--test", "x"}, "exactly one of"},
		{[]string{"rerun", "Fedora-Rawhide-20990101.n.0", "--failed"}, "Fedora-Rawhide-20990101.n.0"},
	} {
		code, out, errOut := runCLI(t, map[string]string{"USER": "tester"}, append(tc.args, flags...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, want 2 with %q\n%s%s", tc.args, code, tc.want, out, errOut)
		}
	}
	// Without openQA credentials, a re-run says what it needs.
	code, _, errOut = runCLI(t, nil, "rerun", demoRawhide, "--failed", "--compose-root", w.root, "--openqa", w.oq.URL(), "--data", w.dir)
	if code != 2 || !strings.Contains(errOut, "needs openQA credentials") {
		t.Errorf("rerun without credentials: %d %s", code, errOut)
	}
}

// TestTriageThroughTheAPI: with --server, known and rerun ask a running
// service, with its token.
func TestTriageThroughTheAPI(t *testing.T) {
	data := t.TempDir()
	reg := triage.FileRegistry{Dir: data}
	srv := httptest.NewServer(web.NewHandler(web.Options{Workflows: nil, Known: reg, APIToken: "token-0123456789abcdef"}))
	defer srv.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("token-0123456789abcdef\n"), 0o600)
	wrong := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrong, []byte("wrong-0123456789abcdef\n"), 0o600)
	remote := []string{"--server", srv.URL, "--api-token-file", tokenFile, "--data", t.TempDir()}

	code, out, errOut := runCLI(t, map[string]string{"USER": "carol"}, append([]string{"known", "add", "--test", "install_default", "--reason", "firmware", "--expires", "2099-01-01"}, remote...)...)
	if code != 0 || !strings.Contains(out, "Known issue 1 registered") {
		t.Fatalf("known add --server: %d\n%s%s", code, out, errOut)
	}
	if l, _ := reg.List(t.Context()); len(l) != 1 || l[0].CreatedBy != "carol" || l[0].Expires.Year() != 2099 {
		t.Errorf("the service's registry: %+v", l)
	}
	if code, out, _ := runCLI(t, nil, append([]string{"known", "list"}, remote...)...); code != 0 || !strings.Contains(out, "install_default") {
		t.Errorf("known list --server: %d\n%s", code, out)
	}
	code, _, errOut = runCLI(t, nil, "known", "rm", "1", "--server", srv.URL, "--api-token-file", wrong)
	if code != 2 || !strings.Contains(errOut, "API token") {
		t.Errorf("a wrong token: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, nil, append([]string{"known", "rm", "2"}, remote...)...); code != 2 || !strings.Contains(errOut, "no such known issue") {
		t.Errorf("rm of an unknown issue: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, nil, append([]string{"rerun", demoRawhide, "--failed"}, remote...)...); code != 2 || !strings.Contains(errOut, "does not re-run") {
		t.Errorf("rerun against a service that cannot: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, nil, "known", "list", "--server", "ftp://x"); code != 2 || !strings.Contains(errOut, "--server") {
		t.Errorf("a bad --server: %d %s", code, errOut)
	}
}
