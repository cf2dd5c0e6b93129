package stages_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/greenwave"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/httpclient"
	"github.com/composeci/composeci/reports"
	"github.com/composeci/composeci/stages"
)

// TestCheckAsksGreenwave runs the check stage with a gating check against
// the fake Greenwave: the decision, mapped to today's failed openQA job,
// goes into the archived report; no policy, and Greenwave down, are said
// in the report and never fail the stage; a stream not gating-checked is
// not asked about.
func TestCheckAsksGreenwave(t *testing.T) {
	const scenario = "fedora.KDE-live-iso.x86_64.64bit"
	failed := fakefedora.GreenwaveDecision{Requirements: []fakefedora.GreenwaveRequirement{
		{Testcase: "compose.desktop_terminal", Scenario: scenario, Outcome: fakefedora.GreenwaveFailed, ResultID: 1},
		{Testcase: "compose.base_selinux", Scenario: scenario, Outcome: fakefedora.GreenwaveMissing},
		{Testcase: "compose.install_default", Scenario: "fedora.Server-dvd-iso.x86_64.64bit", Outcome: fakefedora.GreenwavePassed, ResultID: 2},
	}}
	tests := []struct {
		name     string
		decision *fakefedora.GreenwaveDecision
		fail     int // 503s first
		streams  []fedfind.StreamKind
		outcome  string // "": no gating section
		errHas   string
		requests int
	}{
		{name: "failed, mapped to the job", decision: &failed, outcome: "failed", requests: 1},
		{name: "no policy applies", outcome: "no-policy", errHas: "Found no applicable policies for compose subjects", requests: 1},
		{name: "an outage that passes", decision: &failed, fail: 2, outcome: "failed", requests: 3},
		{name: "Greenwave down", decision: &failed, fail: 100, outcome: "error", errHas: "HTTP 503", requests: 3},
		{name: "Rawhide not gating-checked", decision: &failed, streams: []fedfind.StreamKind{fedfind.StreamBranched}, requests: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := packagesWorld(t, nil, nil, false, false)
			g := fakefedora.NewGreenwave()
			defer g.Close()
			g.SetRetryAfter("0")
			if tt.decision != nil {
				g.SetDecision("compose", stToday, greenwave.DefaultContext, *tt.decision)
			}
			g.FailHTTP(tt.fail, http.StatusServiceUnavailable)
			gc, err := greenwave.New(greenwave.Options{BaseURL: g.URL(),
				HTTP: httpclient.Options{RetryMax: 2, RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			w.st.Check.Gating = &stages.Gating{Greenwave: gc, Streams: tt.streams, Timeout: 10 * time.Second}

			r := w.check(t) // the stage advances whatever Greenwave says
			if n := g.Decisions(); n != tt.requests {
				t.Errorf("%d decisions asked, want %d", n, tt.requests)
			}
			if tt.outcome == "" {
				if r.Gating != nil {
					t.Errorf("a gating section: %+v", r.Gating)
				}
				return
			}
			gr := r.Gating
			if gr == nil {
				t.Fatal("no gating section")
			}
			if gr.Outcome != tt.outcome || gr.DecisionContext != greenwave.DefaultContext || gr.ProductVersion != "fedora-rawhide" ||
				!strings.Contains(gr.Error, tt.errHas) {
				t.Errorf("gating %+v", gr)
			}
			if tt.outcome != "failed" {
				return
			}
			if gr.Required != 3 || gr.Failed != 1 || gr.Missing != 1 || len(gr.Unsatisfied) != 2 {
				t.Fatalf("gating counts %d/%d/%d, unsatisfied %+v", gr.Required, gr.Failed, gr.Missing, gr.Unsatisfied)
			}
			terminal := gr.Unsatisfied[1]
			i := slices.IndexFunc(r.OpenQA.NewFailures, func(j reports.Job) bool { return j.Test == "desktop_terminal" })
			if i < 0 || terminal.Testcase != "compose.desktop_terminal" || terminal.JobID != r.OpenQA.NewFailures[i].JobID ||
				terminal.URL == "" || !r.OpenQA.NewFailures[i].Gating {
				t.Errorf("desktop_terminal not mapped to its job: %+v, new failures %+v", terminal, r.OpenQA.NewFailures)
			}
			if gr.Unsatisfied[0].JobID != 0 {
				t.Errorf("base_selinux, which did not run, mapped to job %d", gr.Unsatisfied[0].JobID)
			}
		})
	}
}
