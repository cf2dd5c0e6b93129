package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/reports"
)

// checkWorld is the demo's world with today's nightlies finished and
// tested, plus a mail relay.
func checkWorld(t *testing.T) (*demoWorld, *fakefedora.MailServer) {
	t.Helper()
	w, mail := mailWorld(t, t.TempDir())
	w.mirror.SetStatus(demoRawhide, "FINISHED_INCOMPLETE")
	w.mirror.SetStatus(demoBranched, "FINISHED")
	for _, id := range []string{demoPrevRawhide, demoRawhide, demoBranched} {
		if code, out, errOut := runCLI(t, nil, append([]string{"schedule", id}, w.flags()...)...); code != 0 {
			t.Fatalf("schedule %s: %d\n%s%s", id, code, out, errOut)
		}
	}
	w.oq.Settle()
	return w, mail
}

func TestCheckCommand(t *testing.T) {
	w, _ := checkWorld(t)
	flags := w.flags()

	code, out, errOut := runCLI(t, nil, append([]string{"check", demoRawhide}, flags...)...)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (missing image, new failure)\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"Missing expected images (1):", "New failures (1)", "KDE-live-iso", "Known failures (1)", "server_cockpit_default",
		"Fixed (1)", "Soft failures (1)", "silverblue_rebase", "Added (1):", "Budgie-live-iso", "Report archived in",
		"Overview:  " + w.oq.URL() + "/tests/overview?distri=fedora&version=Rawhide&build=" + demoRawhide,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q", want)
		}
	}
	dir := filepath.Join(w.dir, "reports", "rawhide", demoRawhide)
	for _, f := range []string{"report.json", "report.txt", "report.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("not archived: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(w.dir, "reports", "rawhide", "index.json")); err != nil {
		t.Errorf("no index: %v", err)
	}

	// --json prints the report for scripts, with the documented keys.
	code, out, errOut = runCLI(t, nil, append([]string{"check", demoRawhide, "--json"}, flags...)...)
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 1 {
		t.Fatalf("check --json: exit %d, %v\n%s", code, err, out)
	}
	for _, k := range []string{"schema_version", "compose_id", "previous_compose_id", "missing_expected", "diff", "openqa"} {
		if _, ok := r[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	oq := r["openqa"].(map[string]any)
	for _, k := range []string{"new_failures", "known_failures", "fixed", "soft_failures"} {
		list, ok := oq[k].([]any)
		if !ok || len(list) != 1 {
			t.Errorf("openqa.%s = %v, want one entry", k, oq[k])
			continue
		}
		for _, f := range []string{"test", "flavor", "arch", "job_id", "url"} {
			if _, ok := list[0].(map[string]any)[f]; !ok {
				t.Errorf("openqa.%s[0] lacks %q", k, f)
			}
		}
	}
	if r["previous_compose_id"] != demoPrevRawhide || !strings.Contains(errOut, "Report archived") {
		t.Errorf("previous %v; stderr %q", r["previous_compose_id"], errOut)
	}

	// --output FILE writes the JSON there and prints the text; with
	// --previous and --no-openqa.
	jf := filepath.Join(t.TempDir(), "r.json")
	code, out, errOut = runCLI(t, nil, append([]string{"check", demoRawhide, "--output", jf, "--no-openqa", "--previous", "Fedora-Rawhide-20261121.n.0"}, flags...)...)
	if code != 1 || !strings.Contains(out, "Missing expected images (1):") {
		t.Errorf("--output --no-openqa: exit %d:\n%s%s", code, out, errOut)
	}
	b, _ := os.ReadFile(jf)
	if !strings.Contains(string(b), `"previous_compose_id": "Fedora-Rawhide-20261121.n.0"`) || strings.Contains(string(b), "server_cockpit_default") {
		t.Errorf("--output FILE --no-openqa --previous: %s", b)
	}
	if code, out, errOut := runCLI(t, nil, append([]string{"check", demoBranched}, flags...)...); code != 0 {
		t.Errorf("clean Branched: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, _ := runCLI(t, nil, append([]string{"check", "Fedora-Rawhide-20261123.n.0/../../x"}, flags...)...); code != 2 {
		t.Errorf("hostile ID: exit %d", code)
	}
	// A "previous" compose that is not older is refused, before anything is checked.
	code, out, errOut = runCLI(t, nil, append([]string{"check", "Fedora-Rawhide-20261121.n.0", "--no-openqa", "--previous", demoRawhide}, flags...)...)
	if code != 2 || out != "" || !strings.Contains(errOut, "--previous "+demoRawhide+" is not older than Fedora-Rawhide-20261121.n.0") {
		t.Errorf("a newer --previous: exit %d\n%s%s", code, out, errOut)
	}
}

// TestCheckEmailOnce mails a report through a real SMTP server, and checks
// that running check again does not mail the same people twice.
func TestCheckEmailOnce(t *testing.T) {
	w, mail := checkWorld(t)
	mailFlags := []string{"--email", "--smtp", mail.Addr(), "--smtp-tls", "none", "--mail-from", "composeci@example.org",
		"--mail-to", "test-reports@example.org", "--mail-to", "QA <qa@example.org>"}
	args := append(append([]string{"check", demoRawhide}, mailFlags...), w.flags()...)
	code, _, errOut := runCLI(t, nil, args...)
	if code != 1 || !strings.Contains(errOut, "Mailed to") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	msgs := mail.Messages()
	if len(msgs) != 1 || len(msgs[0].To) != 2 || msgs[0].From != "composeci@example.org" {
		t.Fatalf("received %+v", msgs)
	}
	data := string(msgs[0].Data)
	for _, want := range []string{"Subject: " + demoRawhide, "multipart/alternative", "text/plain", "text/html", "Message-ID: <"} {
		if !strings.Contains(data, want) {
			t.Errorf("message lacks %q", want)
		}
	}
	// Again: recognised, not sent. Another recipient list is another mail.
	if code, _, errOut := runCLI(t, nil, args...); code != 1 || !strings.Contains(errOut, "Already mailed") || len(mail.Messages()) != 1 {
		t.Errorf("second run: exit %d, %d messages: %s", code, len(mail.Messages()), errOut)
	}
	if code, _, _ := runCLI(t, nil, append(args, "--force-email")...); code != 1 || len(mail.Messages()) != 2 {
		t.Errorf("--force-email: %d messages", len(mail.Messages()))
	}
	other := append(append([]string{"check", demoRawhide}, mailFlags[:len(mailFlags)-4]...), append([]string{"--mail-to", "other@example.org"}, w.flags()...)...)
	if code, _, errOut := runCLI(t, nil, other...); code != 1 || len(mail.Messages()) != 3 {
		t.Errorf("other recipients: %d messages: %s", len(mail.Messages()), errOut)
	}
	// Misconfigured mail fails before any work is done (the demo's config
	// names a sender: an empty --mail-from overrides it).
	if code, _, errOut := runCLI(t, nil, append([]string{"check", demoRawhide, "--email", "--mail-to", "x@example.org", "--mail-from", "", "--smtp", mail.Addr()}, w.flags()...)...); code != 2 || !strings.Contains(errOut, "--mail-from") {
		t.Errorf("no --mail-from: exit %d: %s", code, errOut)
	}
	if code, _, _ := runCLI(t, nil, append([]string{"check", demoRawhide, "--email", "--mail-from", "a@example.org", "--smtp", "nohostport"}, w.flags()...)...); code != 2 {
		t.Errorf("bad --smtp: exit %d", code)
	}
}

// TestCheckNeverArchivesLess: a check that knows less than the archived
// report — run without openQA, or while results are pending — is kept as
// a version but replaces nothing, and a check with pending results is not
// "clean": it exits 3.
func TestCheckNeverArchivesLess(t *testing.T) {
	w, _ := mailWorld(t, t.TempDir())
	w.mirror.SetStatus(demoBranched, "FINISHED")
	flags := w.flags()
	if code, out, errOut := runCLI(t, nil, append([]string{"schedule", demoBranched}, flags...)...); code != 0 {
		t.Fatalf("schedule: %d\n%s%s", code, out, errOut)
	}
	archived := func() reports.Report {
		t.Helper()
		r, err := reports.DataArchive(w.dir).Read(context.Background(), demoBranched)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	// Every result pending: not clean.
	code, out, errOut := runCLI(t, nil, append([]string{"check", demoBranched}, flags...)...)
	if code != 3 || !strings.Contains(out, "pending") {
		t.Fatalf("check with pending results: exit %d, want 3\n%s%s", code, out, errOut)
	}
	w.oq.Settle()
	if code, out, errOut := runCLI(t, nil, append([]string{"check", demoBranched}, flags...)...); code != 0 {
		t.Fatalf("check with every result: exit %d\n%s%s", code, out, errOut)
	}
	complete := archived()
	if !complete.Summary.ResultsComplete || complete.Summary.Jobs == 0 {
		t.Fatalf("the complete report was not archived: %+v", complete.Summary)
	}

	// Without openQA: kept apart, the archive keeps its openQA results.
	code, out, errOut = runCLI(t, nil, append([]string{"check", demoBranched, "--no-openqa"}, flags...)...)
	if code != 0 || !strings.Contains(errOut+out, "the archived report stays the one before") || !strings.Contains(out, "openQA:    left out") ||
		strings.Contains(out, "has no openQA results") {
		t.Errorf("check --no-openqa: exit %d\n%s%s", code, out, errOut)
	}
	if r := archived(); r.Summary.Jobs != complete.Summary.Jobs || r.OpenQA.LeftOut {
		t.Errorf("check --no-openqa replaced the archived report: %d jobs, left out %v", r.Summary.Jobs, r.OpenQA.LeftOut)
	}

	// Someone restarts a job in openQA: while it runs, a check is pending,
	// exits 3 and replaces nothing.
	if _, err := w.oq.Restart(w.oq.Jobs()[len(w.oq.Jobs())-1].ID); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, nil, append([]string{"check", demoBranched}, flags...)...)
	if code != 3 || !strings.Contains(errOut+out, "its openQA results are incomplete") {
		t.Errorf("check while a re-run is pending: exit %d\n%s%s", code, out, errOut)
	}
	if r := archived(); !r.Summary.ResultsComplete {
		t.Errorf("a pending check replaced the complete report")
	}
	vs, err := reports.DataArchive(w.dir).Versions(context.Background(), demoBranched)
	if err != nil || len(vs) != 4 {
		t.Errorf("versions %+v %v, want the 4 checks", vs, err)
	}
}

// TestCheckJSONSwitch: --json means one thing everywhere — the JSON on
// stdout — however it is given; a file is --output FILE.
func TestCheckJSONSwitch(t *testing.T) {
	w, _ := mailWorld(t, t.TempDir())
	w.mirror.SetStatus(demoRawhide, "FINISHED_INCOMPLETE")
	t.Chdir(t.TempDir()) // where a stray file named after a value would land
	out := filepath.Join(t.TempDir(), "report.json")
	for _, tc := range []struct {
		name     string
		env      map[string]string
		args     []string
		code     int
		json     bool   // stdout is the JSON report
		file     string // written with the JSON report
		stderr   string
		noFileIn []string // names that must not appear in the working directory
	}{
		{name: "environment", env: map[string]string{"COMPOSECI_JSON": "true"}, args: []string{"check", demoRawhide}, code: 1, json: true, noFileIn: []string{"true"}},
		{name: "before the command", args: []string{"--json", "check", demoRawhide}, code: 1, json: true},
		{name: "after the command", args: []string{"check", demoRawhide, "--json"}, code: 1, json: true},
		{name: "text", args: []string{"check", demoRawhide}, code: 1},
		{name: "output", args: []string{"check", demoRawhide, "--output", out}, code: 1, file: out},
		{name: "output and json", args: []string{"check", demoRawhide, "--output", out, "--json"}, code: 1, json: true, file: out},
		{name: "the old --json FILE", args: []string{"check", demoRawhide, "--json", "r.json"}, code: 2, stderr: "--output r.json writes it to a file", noFileIn: []string{"r.json"}},
		{name: "the old --json -", args: []string{"check", demoRawhide, "--json", "-"}, code: 2, stderr: "--json takes no value"},
		{name: "output to stdout", args: []string{"check", demoRawhide, "--output", "-"}, code: 2, stderr: "--json prints the JSON report", noFileIn: []string{"-"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(out)
			code, stdout, stderr := runCLI(t, tc.env, append(tc.args, append(w.flags(), "--no-openqa")...)...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d, want %d; stderr %q lacks %q\n%s", code, tc.code, stderr, tc.stderr, stdout)
			}
			var r map[string]any
			isJSON := json.Unmarshal([]byte(stdout), &r) == nil && r["compose_id"] == demoRawhide
			if code != 2 && isJSON != tc.json {
				t.Errorf("stdout is the JSON report: %v, want %v:\n%s", isJSON, tc.json, stdout)
			}
			if code != 2 && !tc.json && !strings.Contains(stdout, "Missing expected images (1):") {
				t.Errorf("stdout is not the text report:\n%s", stdout)
			}
			if tc.json && !strings.Contains(stderr, "Report archived in") {
				t.Errorf("with --json, where the report was archived goes to stderr: %q", stderr)
			}
			if tc.file != "" {
				b, err := os.ReadFile(tc.file)
				if err != nil || json.Unmarshal(b, &r) != nil || r["compose_id"] != demoRawhide {
					t.Errorf("--output wrote %v: %.200s", err, b)
				}
			} else if _, err := os.Stat(out); err == nil {
				t.Errorf("%s written without --output", out)
			}
			for _, name := range tc.noFileIn {
				if _, err := os.Stat(name); err == nil {
					t.Errorf("a file named %q was written", name)
					os.Remove(name)
				}
			}
		})
	}
}

// TestCheckEmailFailureIsOneLine: a mail that cannot go is one line on
// stderr, naming the server as given (HOST:PORT) and, for a relay that
// offers no STARTTLS under the default --smtp-tls starttls, what to set.
func TestCheckEmailFailureIsOneLine(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // nobody listens there any more
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"a relay without STARTTLS, the default policy", []string{"--smtp", "RELAY", "--smtp-tls", "starttls"},
			[]string{"via RELAY: ", "does not offer STARTTLS", "use --smtp-tls none (or opportunistic)"}},
		{"nobody listening", []string{"--smtp", dead, "--smtp-tls", "none"},
			[]string{"via " + dead + ": ", "connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A world of its own: the ledger keeps the intent of a send
			// that failed, and the next check says it sends it again.
			w, mail := checkWorld(t)
			relay := strings.NewReplacer("RELAY", mail.Addr())
			args := []string{"check", demoRawhide, "--email", "--mail-to", "test@example.org"}
			for _, a := range tt.args {
				args = append(args, relay.Replace(a))
			}
			args = append(args, w.flags()...)
			code, _, errOut := runCLI(t, nil, args...)
			if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "composeci: ") {
				t.Errorf("exit %d, want 2 and one line on stderr; stderr:\n%s", code, errOut)
			}
			for _, want := range tt.want {
				if want = relay.Replace(want); !strings.Contains(errOut, want) {
					t.Errorf("stderr lacks %q:\n%s", want, errOut)
				}
			}
			if len(mail.Messages()) != 0 {
				t.Errorf("the relay got %d mails", len(mail.Messages()))
			}
		})
	}
}

// TestCheckGreenwave runs check with --greenwave against a fake Greenwave:
// the Rawhide report says the compose FAILS the gating check, marks the
// failures it names GATING, and its JSON carries the gating section;
// Branched is not asked about unless --greenwave-streams names it, and
// then no policy applies; the environment sets the flags as any other.
func TestCheckGreenwave(t *testing.T) {
	w, _ := checkWorld(t)
	g := fakefedora.NewGreenwave()
	defer g.Close()
	g.SetDecision("compose", demoRawhide, "rawhide_compose_sync_to_mirrors", fakefedora.GreenwaveDecision{
		Requirements: []fakefedora.GreenwaveRequirement{
			{Testcase: "compose.desktop_terminal", Scenario: "fedora.KDE-live-iso.x86_64.64bit", Outcome: fakefedora.GreenwaveFailed, ResultID: 11},
			{Testcase: "compose.server_cockpit_default", Scenario: "fedora.Server-dvd-iso.x86_64.64bit", Outcome: fakefedora.GreenwaveFailed, ResultID: 12},
			{Testcase: "compose.base_selinux", Scenario: "fedora.Server-dvd-iso.x86_64.64bit", Outcome: fakefedora.GreenwaveMissing},
			{Testcase: "compose.install_default", Scenario: "fedora.Server-dvd-iso.x86_64.64bit", Outcome: fakefedora.GreenwavePassed, ResultID: 13},
		}})
	tests := []struct {
		name     string
		id       string
		args     []string
		env      map[string]string
		code     int
		text     []string // in the text report
		no       []string // not in it
		outcome  string   // of the JSON's gating section; "": none
		requests int      // decisions asked, in all, after this case
	}{
		{
			name: "Rawhide fails the gating check", id: demoRawhide, args: []string{"--greenwave", g.URL()}, code: 1,
			text: []string{"Gating check (rawhide_compose_sync_to_mirrors, fedora-rawhide):\n  FAILS: 2 of 4 required tests failed, 1 missing\n",
				"    failed   desktop_terminal fedora.KDE-live-iso.x86_64.64bit\n             " + w.oq.URL() + "/tests/",
				"    missing  base_selinux fedora.Server-dvd-iso.x86_64.64bit\n",
				"desktop_terminal@64bit GATING", "server_cockpit_default@64bit GATING"},
			outcome: "failed", requests: 1,
		},
		{
			name: "Branched is not asked about by default", id: demoBranched, args: []string{"--greenwave", g.URL()}, code: 0,
			no: []string{"Gating check", "GATING"}, requests: 1,
		},
		{
			name: "Branched asked about: no policy applies", id: demoBranched, args: []string{"--greenwave", g.URL(), "--greenwave-streams", "rawhide,branched"}, code: 0,
			text: []string{"Gating check (rawhide_compose_sync_to_mirrors, fedora-44):\n  no gating policy applies\n"}, no: []string{"GATING"},
			outcome: "no-policy", requests: 2,
		},
		{
			name: "from the environment, another context", id: demoRawhide, code: 1,
			env:  map[string]string{"COMPOSECI_GREENWAVE": g.URL(), "COMPOSECI_GREENWAVE_CONTEXT": "bodhi_update_push_stable"},
			text: []string{"Gating check (bodhi_update_push_stable, fedora-rawhide):\n  no gating policy applies\n"}, outcome: "no-policy", requests: 3,
		},
		{
			name: "not a stream", id: demoRawhide, args: []string{"--greenwave", g.URL(), "--greenwave-streams", "rawhid"}, code: 2, requests: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"check", tt.id}, tt.args...), w.flags()...)
			code, out, errOut := runCLI(t, tt.env, args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			for _, want := range tt.text {
				if !strings.Contains(out, want) {
					t.Errorf("text report lacks %q:\n%s", want, out)
				}
			}
			for _, no := range tt.no {
				if strings.Contains(out, no) {
					t.Errorf("text report holds %q", no)
				}
			}
			if n := g.Decisions(); n != tt.requests {
				t.Errorf("%d decisions asked in all, want %d", n, tt.requests)
			}
			if code == 2 {
				return
			}
			// The archived JSON, as --json prints it.
			r, err := reports.DataArchive(w.dir).Read(context.Background(), tt.id)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.outcome == "" && r.Gating != nil:
				t.Errorf("gating section %+v", r.Gating)
			case tt.outcome == "":
			case r.Gating == nil || r.Gating.Outcome != tt.outcome:
				t.Errorf("gating section %+v, want outcome %s", r.Gating, tt.outcome)
			case tt.outcome == "failed":
				mapped := 0
				for _, u := range r.Gating.Unsatisfied {
					if u.JobID != 0 && u.URL == w.oq.URL()+"/tests/"+strconv.FormatInt(u.JobID, 10) {
						mapped++
					}
				}
				if mapped != 2 || r.Gating.Required != 4 || r.Gating.Failed != 2 || r.Gating.Missing != 1 {
					t.Errorf("gating section %+v: %d requirements mapped to jobs, want 2", r.Gating, mapped)
				}
			}
		})
	}
	// --json carries the section too.
	code, out, _ := runCLI(t, nil, append([]string{"check", demoRawhide, "--json", "--greenwave", g.URL()}, w.flags()...)...)
	var doc struct {
		Gating map[string]any `json:"gating"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 1 || doc.Gating["outcome"] != "failed" || doc.Gating["passed"] != false {
		t.Errorf("check --json: exit %d, %v, gating %v", code, err, doc.Gating)
	}
}
