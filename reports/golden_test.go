package reports

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/checks/checkstest"
	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/greenwave"
	"github.com/composeci/composeci/openqa"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// generatedAt is the fixed clock of every golden report.
var generatedAt = time.Date(2026, 11, 22, 18, 30, 0, 0, time.UTC)

const exampleLocation = "https://kojipkgs.fedoraproject.org/compose/rawhide/Fedora-Rawhide-20261122.n.0/compose"

// exampleReport is the report of checkstest.Example, with the source
// packages of examplePackages.
func exampleReport(t testing.TB) Report {
	t.Helper()
	in := checkstest.Example()
	return Build(checks.Run(in), Meta{Status: "FINISHED_INCOMPLETE", Location: exampleLocation, GeneratedAt: generatedAt,
		Packages: examplePackages(t, in)})
}

// firstReport is a report with no previous compose and tests still
// running: the "first compose of a stream" case.
func firstReport(t testing.TB) Report {
	t.Helper()
	in := checkstest.Example()
	in.Previous = nil
	in.Jobs[1].State, in.Jobs[1].Result, in.Jobs[1].TFinished = openqa.StateRunning, openqa.ResultNone, ""
	in.Jobs[5].State, in.Jobs[5].Result, in.Jobs[5].TStarted, in.Jobs[5].TFinished = openqa.StateScheduled, openqa.ResultNone, "", ""
	return Build(checks.Run(in), Meta{Status: "FINISHED", GeneratedAt: generatedAt, PackagesNote: "no previous compose to compare with"})
}

// doomedReport is the report of a compose that ended DOOMED, with Koji's
// evidence and the previous good compose.
func doomedReport(t testing.TB) Report {
	t.Helper()
	id, prev := fedfind.MustParseComposeID("Fedora-Rawhide-20261122.n.0"), fedfind.MustParseComposeID("Fedora-Rawhide-20261121.n.1")
	return BuildDoomed(id, prev, Doomed{
		Reasons: []string{"STATUS is DOOMED: the compose ended without a result",
			"Koji image tasks: 7 closed, 2 failed, 0 canceled, 0 unfinished (failed tasks: 1001, 1004)"},
		FailedTasks: []int{1001, 1004},
	}, Meta{Status: "DOOMED", Location: exampleLocation, GeneratedAt: generatedAt})
}

// triageReport is the example compose after triage: one new failure
// re-run and confirmed, one re-run that passed (flaky), one matched by the
// registry of known issues, one left new with an expired entry.
func triageReport(t testing.TB) Report {
	t.Helper()
	in := checkstest.Example()
	for i := range in.Jobs {
		switch in.Jobs[i].ID {
		case 1003:
			in.Jobs[i].CloneID = 1030
		case 1011:
			in.Jobs[i].CloneID = 1031
		}
	}
	rerun := func(id, of int64, result string) openqa.Job {
		var orig openqa.Job
		for _, j := range in.Jobs {
			if j.ID == of {
				orig = j
			}
		}
		j := checkstest.Job(id, orig.Test, orig.Flavor(), orig.Arch(), orig.Machine(), result)
		j.OriginID = of
		return j
	}
	in.Jobs = append(in.Jobs, rerun(1030, 1003, "failed"), rerun(1031, 1011, "passed"))
	in.Reruns = map[int64]int64{1003: 1030, 1011: 1031}
	in.Now = generatedAt
	in.KnownIssues = []checks.KnownIssue{
		{ID: 7, Test: "desktop_terminal", Reason: "terminal font missing since glibc 2.43", Bug: "https://bugzilla.redhat.com/show_bug.cgi?id=2300001"},
		{ID: 3, Test: "install_default", Arch: "aarch64", Reason: "aarch64 firmware", Expires: generatedAt.Add(-24 * time.Hour)},
	}
	at := generatedAt.Add(-2 * time.Hour)
	return Build(checks.Run(in), Meta{Status: "FINISHED_INCOMPLETE", Location: exampleLocation, GeneratedAt: generatedAt,
		Reruns: []Rerun{
			{At: at, By: "composeci", Reason: "confirm a new failure", Scope: "confirm", JobID: 1003, RerunJobID: 1030,
				Test: "server_cockpit_default", Flavor: "Server-dvd-iso", Arch: "x86_64"},
			{At: at, By: "composeci", Reason: "confirm a new failure", Scope: "confirm", JobID: 1011, RerunJobID: 1031,
				Test: "server_freeipa_replication_master", Flavor: "Server-dvd-iso", Arch: "x86_64"},
		}})
}

// gatingDecision is Greenwave's decision on the example compose: two
// failed requirements that are its new and known failures, one errored
// that is its incomplete job, one missing that has no job, and three
// satisfied, one of them waived.
func gatingDecision() *greenwave.Decision {
	const dvd = "fedora.Server-dvd-iso.x86_64.64bit"
	rq := func(typ, test, scenario string) greenwave.Requirement {
		return greenwave.Requirement{Type: typ, Testcase: "compose." + test, Scenario: scenario,
			SubjectType: "compose", SubjectIdentifier: checkstest.ExampleCompose}
	}
	errored := rq(greenwave.TypeErrored, "install_default", "fedora.Everything-boot-iso.aarch64.aarch64")
	errored.ErrorReason = "worker lost"
	return &greenwave.Decision{
		Summary:            "3 of 7 required tests failed, 1 result missing (1 error)",
		ApplicablePolicies: []string{"rawhide-compose-sync-to-mirrors"},
		SatisfiedRequirements: []greenwave.Requirement{
			rq(greenwave.TypePassed, "install_default", "fedora.Server-dvd-iso.x86_64.uefi"),
			rq(greenwave.TypePassed, "realmd_join_cockpit", dvd),
			rq("test-result-failed-waived", "install_blivet_lvm", dvd),
		},
		UnsatisfiedRequirements: []greenwave.Requirement{
			rq(greenwave.TypeFailed, "server_cockpit_default", dvd),
			rq(greenwave.TypeFailed, "install_default", dvd),
			errored,
			rq(greenwave.TypeMissing, "base_selinux", dvd),
		},
	}
}

// gatingReport is the example report with a failed gating check.
func gatingReport(t testing.TB) Report {
	t.Helper()
	in := checkstest.Example()
	in.Gating = &checks.GatingInput{Context: greenwave.DefaultContext, ProductVersion: "fedora-rawhide", Decision: gatingDecision()}
	return Build(checks.Run(in), Meta{Status: "FINISHED_INCOMPLETE", Location: exampleLocation, GeneratedAt: generatedAt,
		Packages: examplePackages(t, in)})
}

// candidateReport is the example findings as those of a candidate
// compose, Fedora 44 RC-1.2, checked against RC-1.1.
func candidateReport(t testing.TB) Report {
	t.Helper()
	in := checkstest.Example()
	in.Compose = fedfind.MustParseComposeID("Fedora-44-20261012.0")
	in.Previous.Compose = fedfind.MustParseComposeID("Fedora-44-20261010.0")
	return Build(checks.Run(in), Meta{Status: "FINISHED", Label: "RC-1.2", GeneratedAt: generatedAt,
		Location: "https://kojipkgs.fedoraproject.org/compose/44/Fedora-44-20261012.0/compose", PackagesNote: "not compared in this example"})
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reports -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test ./reports -update and review the diff):\n%s", name, firstDiff(want, got))
	}
}

// firstDiff shows the first line that differs.
func firstDiff(want, got []byte) string {
	wl, gl := bytes.Split(want, []byte("\n")), bytes.Split(got, []byte("\n"))
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g []byte
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if !bytes.Equal(w, g) {
			return "line " + strconv.Itoa(i+1) + ":\n want: " + string(w) + "\n got:  " + string(g)
		}
	}
	return "(no line differs)"
}

func TestGolden(t *testing.T) {
	rd, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]Report{"example": exampleReport(t), "first": firstReport(t), "doomed": doomedReport(t), "triage": triageReport(t),
		"gating": gatingReport(t), "candidate": candidateReport(t)} {
		t.Run(name, func(t *testing.T) {
			out, err := rd.Render(r)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".json", out.JSON)
			golden(t, name+".txt", out.Text)
			golden(t, name+".html", out.HTML)
			golden(t, name+".subject", []byte(Subject(r)+"\n"))
		})
	}
}

// TestJSONRoundTrip checks that a report survives the archive's JSON
// unchanged, so a re-rendered archived report equals the original.
func TestJSONRoundTrip(t *testing.T) {
	r := exampleReport(t)
	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseReport(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := back.JSON()
	if !bytes.Equal(b, b2) {
		t.Errorf("round trip changed the JSON:\n%s", firstDiff(b, b2))
	}
}

func TestParseReportRefusesNewerSchema(t *testing.T) {
	for _, doc := range []string{`{"schema_version": 3}`, `{"schema_version": 0}`, `{}`} {
		if _, err := ParseReport([]byte(doc)); err == nil {
			t.Errorf("%s: no error", doc)
		}
	}
}

func TestSubject(t *testing.T) {
	r := exampleReport(t)
	if got, want := Subject(r), "Fedora-Rawhide-20261122.n.0 compose check: FINISHED_INCOMPLETE, 2 missing images, 4 new failures"; got != want {
		t.Errorf("Subject = %q\nwant      %q", got, want)
	}
	r.Summary.MissingExpected, r.Summary.NewFailures, r.Status = 0, 1, "FINISHED\r\nBcc: victim@example.org"
	if got, want := Subject(r), "Fedora-Rawhide-20261122.n.0 compose check: FINISHEDBcc: victim@example.org, 1 new failure"; got != want {
		t.Errorf("Subject = %q\nwant      %q", got, want)
	}
	r.Status, r.Summary.NewFailures = "", 0
	r.Summary.ResultsComplete, r.Summary.Pending = false, 3
	if got, want := Subject(r), "Fedora-Rawhide-20261122.n.0 compose check: status unknown, 0 new failures (results incomplete: 3 tests pending)"; got != want {
		t.Errorf("Subject = %q\nwant      %q", got, want)
	}
}

// TestSchemaKeys pins the top-level and openqa keys that
// docs/report-schema.md documents: renaming one is a schema change.
func TestSchemaKeys(t *testing.T) {
	b, err := exampleReport(t).JSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	want := []string{"compose_id", "diff", "generated_at", "location", "missing_expected", "openqa", "packages",
		"previous_compose_id", "problem", "release", "reruns", "schema_version", "status", "stream", "subvariants", "summary"}
	if got := slices.Sorted(maps.Keys(doc)); !slices.Equal(got, want) {
		t.Errorf("top-level keys %v\nwant %v", got, want)
	}
	var oq map[string]json.RawMessage
	if err := json.Unmarshal(doc["openqa"], &oq); err != nil {
		t.Fatal(err)
	}
	wantOQ := []string{"by_arch", "by_flavor", "cancelled", "durations", "expired_known_issues", "fixed", "flaky", "incomplete", "known_failures",
		"new_failures", "pending", "previous_jobs", "skipped", "soft_failures"}
	if got := slices.Sorted(maps.Keys(oq)); !slices.Equal(got, wantOQ) {
		t.Errorf("openqa keys %v\nwant %v", got, wantOQ)
	}
	var diff map[string]json.RawMessage
	if err := json.Unmarshal(doc["diff"], &diff); err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(diff)); !slices.Equal(got, []string{"added", "changed", "removed"}) {
		t.Errorf("diff keys %v", got)
	}
	var jobs []map[string]any
	if err := json.Unmarshal(oq["new_failures"], &jobs); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"test", "flavor", "arch", "machine", "job_id", "url", "result", "confirmed", "upgraded_packages"} {
		if _, ok := jobs[0][k]; !ok {
			t.Errorf("a new failure lacks %q", k)
		}
	}
}

func TestSummaryLine(t *testing.T) {
	for _, tt := range []struct {
		s    Summary
		want string
	}{
		{Summary{Tests: 10, Passed: 10}, "no missing images, no failures"},
		{Summary{}, "no openQA results"},
		{Summary{MissingExpected: 1}, "1 missing image, no openQA results"},
		{Summary{Tests: 5, NewFailures: 1, KnownFailures: 2, Fixed: 1, Pending: 1}, "1 new failure, 2 known failures, 1 fixed, 1 pending"},
	} {
		if got := (Report{Summary: tt.s}).SummaryLine(); got != tt.want {
			t.Errorf("SummaryLine(%+v) = %q, want %q", tt.s, got, tt.want)
		}
	}
}
