package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/checks/checkstest"
	"github.com/composeci/composeci/greenwave"
)

// gatingWith is the example report with a gating check made of g (nil:
// Greenwave not asked).
func gatingWith(t testing.TB, g *checks.GatingInput) Report {
	t.Helper()
	in := checkstest.Example()
	if g != nil {
		g.Context, g.ProductVersion = greenwave.DefaultContext, "fedora-rawhide"
	}
	in.Gating = g
	return Build(checks.Run(in), Meta{Status: "FINISHED", GeneratedAt: generatedAt})
}

// TestGatingSection renders each outcome of the gating check: the line
// near the top of the text and HTML reports, the requirements not met
// listed, the failures they are marked GATING, and no section at all when
// Greenwave was not asked.
func TestGatingSection(t *testing.T) {
	const head = "\n\nGating check (rawhide_compose_sync_to_mirrors, fedora-rawhide):\n  "
	passed := &greenwave.Decision{PoliciesSatisfied: true, Summary: "All required tests passed",
		SatisfiedRequirements: []greenwave.Requirement{{Type: greenwave.TypePassed, Testcase: "compose.install_default"}, {Type: greenwave.TypePassed, Testcase: "compose.base_selinux"}}}
	missingOnly := &greenwave.Decision{Summary: "1 of 2 required test results missing",
		SatisfiedRequirements:   []greenwave.Requirement{{Type: greenwave.TypePassed, Testcase: "compose.install_default"}},
		UnsatisfiedRequirements: []greenwave.Requirement{{Type: greenwave.TypeMissing, Testcase: "compose.base_selinux"}}}
	noPolicy := &greenwave.APIError{StatusCode: 404, Message: "Found no applicable policies for compose subjects at gating point(s) rawhide_compose_sync_to_mirrors in fedora-rawhide"}
	tests := []struct {
		name     string
		in       *checks.GatingInput
		text     []string // in the text report
		html     []string // in the HTML report
		outcome  string
		marked   int // jobs marked GATING
		notInAll []string
	}{
		{name: "not asked", in: nil, notInAll: []string{"Gating check", "GATING"}},
		{name: "passed", in: &checks.GatingInput{Decision: passed},
			text:    []string{head + "PASSES: 2 required tests passed or were waived\n\nMissing expected images"},
			html:    []string{`<h2 id="gating">Gating check</h2>`, `<span class="good">PASSES: 2 required tests passed or were waived</span>`},
			outcome: "passed", notInAll: []string{"GATING"}},
		{name: "failed", in: &checks.GatingInput{Decision: gatingDecision()},
			text: []string{head + "FAILS: 3 of 7 required tests failed, 1 missing\n    missing  base_selinux fedora.Server-dvd-iso.x86_64.64bit\n",
				"    server_cockpit_default@64bit GATING (previous: job 903, passed)"},
			html:    []string{`<span class="bad">FAILS: 3 of 7 required tests failed, 1 missing</span>`, `server_cockpit_default@64bit</a> <span class="bad">GATING</span>`},
			outcome: "failed", marked: 3},
		{name: "missing only", in: &checks.GatingInput{Decision: missingOnly},
			text:    []string{head + "FAILS: 1 of 2 required test results missing\n    missing  base_selinux\n\n"},
			outcome: "failed", notInAll: []string{"GATING"}},
		{name: "no policy", in: &checks.GatingInput{Err: noPolicy},
			text:    []string{head + "no gating policy applies\n\nMissing"},
			html:    []string{"<p>rawhide_compose_sync_to_mirrors, fedora-rawhide: no gating policy applies</p>"},
			outcome: "no-policy", notInAll: []string{"GATING", "<table class=\"gating\">"}},
		{name: "Greenwave down, its error hostile", in: &checks.GatingInput{Err: errors.New("greenwave: POST x: <script>alert(1)</script>\nForged: line")},
			text:    []string{head + "Greenwave could not be asked: greenwave: POST x: <script>alert(1)</script>\n  Forged: line\n"},
			html:    []string{"Greenwave could not be asked: greenwave: POST x: &lt;script&gt;alert(1)&lt;/script&gt;\nForged: line</p>"},
			outcome: "error", notInAll: []string{"GATING", "<script>alert"}},
	}
	rd, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := gatingWith(t, tt.in)
			out, err := rd.Render(r)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.text {
				if !bytes.Contains(out.Text, []byte(want)) {
					t.Errorf("text report lacks %q:\n%s", want, out.Text)
				}
			}
			for _, want := range tt.html {
				if !bytes.Contains(out.HTML, []byte(want)) {
					t.Errorf("HTML report lacks %q", want)
				}
			}
			for _, no := range tt.notInAll {
				if (bytes.Contains(out.Text, []byte(no)) && !strings.HasPrefix(no, "<")) || bytes.Contains(out.HTML, []byte(no)) {
					t.Errorf("report holds %q", no)
				}
			}
			var doc map[string]json.RawMessage
			if err := json.Unmarshal(out.JSON, &doc); err != nil {
				t.Fatal(err)
			}
			if _, ok := doc["gating"]; ok != (tt.in != nil) {
				t.Errorf("gating key present %v, want %v", ok, tt.in != nil)
			}
			if tt.in == nil {
				return
			}
			if r.Gating.Outcome != tt.outcome || r.Gating.Passed != (tt.outcome == "passed") {
				t.Errorf("outcome %q, passed %v", r.Gating.Outcome, r.Gating.Passed)
			}
			marked := 0
			for _, list := range [][]Job{r.OpenQA.NewFailures, r.OpenQA.KnownFailures, r.OpenQA.Incomplete, r.OpenQA.Fixed, r.OpenQA.SoftFailures} {
				for _, j := range list {
					if j.Gating {
						marked++
					}
				}
			}
			if marked != tt.marked {
				t.Errorf("%d jobs marked GATING, want %d", marked, tt.marked)
			}
			// The archive's JSON reads back to the same report.
			back, err := ParseReport(out.JSON)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := back.JSON(); !bytes.Equal(b, out.JSON) {
				t.Errorf("round trip changed the JSON:\n%s", firstDiff(out.JSON, b))
			}
		})
	}
}

// TestGatingContentKey: the gating check's outcome and the requirements
// not met make a new version of the report; Greenwave's wording and an
// error's text do not, and a report without a gating check keeps its key.
func TestGatingContentKey(t *testing.T) {
	none := gatingWith(t, nil)
	if ContentKey(none) != ContentKey(exampleReportWithStatus(t, "FINISHED")) {
		t.Error("a report without a gating check changed its key")
	}
	failed := gatingWith(t, &checks.GatingInput{Decision: gatingDecision()})
	reworded := gatingWith(t, &checks.GatingInput{Decision: gatingDecision()})
	reworded.Gating.Summary = "something else"
	down1 := gatingWith(t, &checks.GatingInput{Err: errors.New("connection refused")})
	down2 := gatingWith(t, &checks.GatingInput{Err: errors.New("HTTP 503")})
	fewer := gatingWith(t, &checks.GatingInput{Decision: gatingDecision()})
	fewer.Gating.Unsatisfied = fewer.Gating.Unsatisfied[1:]
	for _, tt := range []struct {
		name string
		a, b Report
		same bool
	}{
		{"asked or not", none, failed, false},
		{"reworded", failed, reworded, true},
		{"two outages", down1, down2, true},
		{"an outage, then a decision", down1, failed, false},
		{"a requirement met since", failed, fewer, false},
	} {
		if got := ContentKey(tt.a) == ContentKey(tt.b); got != tt.same {
			t.Errorf("%s: same key %v, want %v", tt.name, got, tt.same)
		}
	}
}

// exampleReportWithStatus is the example report as gatingWith builds it,
// without the gating input at all.
func exampleReportWithStatus(t testing.TB, status string) Report {
	t.Helper()
	return Build(checks.Run(checkstest.Example()), Meta{Status: status, GeneratedAt: generatedAt})
}
