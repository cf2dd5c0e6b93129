package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/internal/fakefedora"
)

func TestResultsCommand(t *testing.T) {
	root := demoRoot(t)
	const id = "Fedora-Rawhide-20261122.n.0"
	tests := []struct {
		name string
		// setup scripts the fake after the compose was scheduled.
		setup  func(srv *fakefedora.OpenQA)
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{
			name:   "all passed",
			setup:  func(srv *fakefedora.OpenQA) { srv.Settle() },
			code:   0,
			stdout: []string{id + " on http://127.0.0.1:", "22 jobs", "passed", "/tests/", "Summary: 22 passed; all finished.", "Overview: "},
		},
		{
			name: "a failure, an incomplete re-run and a softfail",
			setup: func(srv *fakefedora.OpenQA) {
				srv.SetOutcome(id, "KDE-live-iso", "x86_64", "desktop_terminal", "failed")
				srv.SetOutcome(id, "universal", "x86_64", "install_asian_language", "incomplete", "softfailed")
				srv.Settle()
			},
			code:   1,
			stdout: []string{"Summary: 1 failed, 20 passed, 1 softfailed; all finished."},
		},
		{
			name:   "still running",
			setup:  func(srv *fakefedora.OpenQA) { srv.Advance() },
			code:   3,
			stdout: []string{"running", "Summary: 22 pending."},
		},
		{
			name:   "a stream is resolved through the compose tree",
			setup:  func(srv *fakefedora.OpenQA) { srv.Settle() },
			args:   []string{"rawhide"},
			code:   0,
			stdout: []string{id, "22 jobs"},
		},
		{
			name:   "a build with no jobs",
			args:   []string{"Fedora-Rawhide-20261121.n.1"},
			code:   4,
			stdout: []string{"Summary: no jobs for this build."},
		},
		{
			name:   "--wait gives up at --timeout and shows what it has",
			args:   []string{id, "--wait", "--interval", "5ms", "--timeout", "100ms"},
			code:   3,
			stdout: []string{"Summary: 22 pending."},
			stderr: []string{"waiting for " + id + ": 0/22 finished, 0 failed so far\n", "--timeout 100ms passed"},
		},
		{
			name: "--wait follows the jobs to the end",
			setup: func(srv *fakefedora.OpenQA) {
				srv.SetOutcome(id, "Cloud_Base-qcow2-qcow2", "", "", "incomplete", "passed")
				ctx, cancel := context.WithCancel(context.Background())
				srv.AutoAdvance(ctx, 2*time.Millisecond)
				go func() { time.Sleep(10 * time.Second); cancel() }()
			},
			args:   []string{id, "--wait", "--interval", "2ms", "--grace", "20ms", "--timeout", "20s"},
			code:   0,
			stdout: []string{"Summary: 22 passed; all finished."},
			stderr: []string{"22/22 finished"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, env := openqaEnv(t)
			if code, out, errOut := runCLI(t, env, "schedule", id, "--compose-root", root); code != 0 {
				t.Fatalf("schedule: exit %d\n%s\n%s", code, out, errOut)
			}
			if tt.setup != nil {
				tt.setup(srv)
			}
			args := tt.args
			if len(args) == 0 {
				args = []string{id}
			}
			code, out, errOut := runCLI(t, env, append(append([]string{"results"}, args...), "--compose-root", root)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

func TestResultsCommandJSON(t *testing.T) {
	root := demoRoot(t)
	const id = "Fedora-Rawhide-20261122.n.0"
	srv, env := openqaEnv(t)
	if code, _, errOut := runCLI(t, env, "schedule", id, "--compose-root", root); code != 0 {
		t.Fatal(errOut)
	}
	srv.SetOutcome(id, "Server-dvd-iso", "x86_64", "install_default", "incomplete", "failed")
	srv.Settle()
	code, out, errOut := runCLI(t, env, "results", id, "--json")
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc struct {
		Build       string `json:"build"`
		Version     string `json:"version"`
		OverviewURL string `json:"overview_url"`
		Jobs        []struct {
			ID                                              int64
			Test, Flavor, Arch, Machine, State, Result, URL string
		} `json:"jobs"`
		Summary struct {
			Total    int            `json:"total"`
			Pending  int            `json:"pending"`
			ByResult map[string]int `json:"by_result"`
			OK       int            `json:"ok"`
			NotOK    int            `json:"not_ok"`
			AllFinal bool           `json:"all_final"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if doc.Build != id || doc.Version != "Rawhide" || !strings.HasSuffix(doc.OverviewURL, "/tests/overview?distri=fedora&version=Rawhide&build="+id) {
		t.Errorf("%+v", doc)
	}
	if s := doc.Summary; s.Total != 22 || s.NotOK != 1 || s.OK != 21 || !s.AllFinal || s.ByResult["failed"] != 1 {
		t.Errorf("summary %+v", s)
	}
	for _, j := range doc.Jobs {
		if j.Flavor == "Server-dvd-iso" && j.Test == "install_default" {
			if j.Result != "failed" || j.State != "done" || j.Machine != "uefi" || j.URL != srv.URL()+"/tests/23" {
				t.Errorf("the re-run job: %+v", j)
			}
		}
	}
	for _, k := range []string{`"id"`, `"test"`, `"flavor"`, `"arch"`, `"state"`, `"result"`, `"url"`} {
		if !strings.Contains(out, k) {
			t.Errorf("--json lacks %s", k)
		}
	}
}

// TestResultsWaitRidesOutOutages: results --wait survives openQA failing
// for a while (each failed poll is five failed requests, asked again at once
// by Retry-After: 0) and says so once per outage, and once when openQA
// answers again; an answer that will not change ends it at once.
func TestResultsWaitRidesOutOutages(t *testing.T) {
	root := demoRoot(t)
	const id = "Fedora-Rawhide-20261122.n.0"
	jobs := "/api/v1/jobs"
	tests := []struct {
		name   string
		faults []fakefedora.OpenQAFault
		args   []string
		code   int
		// outages and recoveries: how many times stderr says openQA is not
		// answering, and that it answers again.
		outages, recoveries int
		stderr              []string
	}{
		{"503s for two polls", []fakefedora.OpenQAFault{{Method: "GET", Path: jobs, Status: 503, RetryAfter: "0", Times: 10}}, nil, 0, 1, 1,
			[]string{"composeci: openQA is not answering (openqa: GET /api/v1/jobs?build=" + id, "HTTP 503",
				"); still waiting: polling again every 5ms until --timeout 30s\n", "composeci: openQA answers again, after ", "(2 polls failed)", "22/22 finished"}},
		{"two outages, each told", []fakefedora.OpenQAFault{
			{Method: "GET", Path: jobs, Status: 503, RetryAfter: "0", Times: 5},
			{Method: "GET", Path: jobs, Status: 429, RetryAfter: "0", Skip: 1, Times: 5},
		}, []string{"--grace", "50ms"}, 0, 2, 2, []string{"HTTP 503", "HTTP 429", "(1 poll failed)"}},
		{"a refusal ends the wait", []fakefedora.OpenQAFault{{Method: "GET", Path: jobs, Status: 400}}, nil, 2, 0, 0,
			[]string{"composeci: openqa: GET /api/v1/jobs", "HTTP 400"}},
		{"an outage past the --timeout", []fakefedora.OpenQAFault{{Method: "GET", Path: jobs, Status: 503, RetryAfter: "0", Times: 1000000}},
			[]string{"--timeout", "300ms"}, 2, 1, 0, []string{"composeci: --timeout 300ms passed without an answer from openQA", "the last poll failed", "HTTP 503"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, env := openqaEnv(t)
			if code, out, errOut := runCLI(t, env, "schedule", id, "--compose-root", root); code != 0 {
				t.Fatalf("schedule: exit %d\n%s\n%s", code, out, errOut)
			}
			srv.Settle()
			for _, f := range tt.faults {
				srv.InjectFault(f)
			}
			args := append([]string{"results", id, "--wait", "--interval", "5ms", "--grace", "0", "--timeout", "30s", "--compose-root", root}, tt.args...)
			code, out, errOut := runCLI(t, env, args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			down, up := strings.Count(errOut, "openQA is not answering"), strings.Count(errOut, "openQA answers again")
			if down != tt.outages || up != tt.recoveries {
				t.Errorf("stderr tells of %d outages and %d recoveries, want %d and %d:\n%s", down, up, tt.outages, tt.recoveries, errOut)
			}
			for _, w := range tt.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}
