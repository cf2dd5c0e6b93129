package checks

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/composeci/composeci/greenwave"
	"github.com/composeci/composeci/openqa"
)

func distri(d string) func(*openqa.Job) { return func(j *openqa.Job) { j.Settings["DISTRI"] = d } }

// req builds an unsatisfied requirement of a compose test.
func req(typ, test, scenario string) greenwave.Requirement {
	return greenwave.Requirement{Type: typ, Testcase: "compose." + test, Scenario: scenario, SubjectType: "compose"}
}

func TestGating(t *testing.T) {
	const dvd = "fedora.Server-dvd-iso.x86_64.64bit"
	jobs := []openqa.Job{
		j(1, "server_cockpit_default", "failed", distri("fedora")),
		// Restarted: the clone stands for the scenario.
		j(2, "base_selinux", "failed", distri("fedora"), clonedTo(3)),
		j(3, "base_selinux", "failed", distri("fedora"), originOf(2)),
		// The same test on two arches: a requirement without a scenario
		// maps to neither.
		j(4, "install_default", "failed", distri("fedora")),
		j(5, "install_default", "passed", distri("fedora"), arch("aarch64"), machine("aarch64")),
		// A flavor with a dot, and a job that says no DISTRI.
		j(6, "install_minimal", "failed", distri("fedora"), flavor("Minimal-raw_xz-raw.xz"), arch("aarch64"), machine("aarch64")),
		j(7, "desktop_login", "failed"),
	}
	passed := greenwave.Requirement{Type: greenwave.TypePassed, Testcase: "compose.desktop_terminal", Scenario: dvd}
	type row struct {
		Type, Test, Scenario string
		JobID                int64
	}
	tests := []struct {
		name      string
		in        *GatingInput
		outcome   string
		counts    [3]int
		errText   string
		unsatisfy []row
	}{
		{name: "not asked", in: nil},
		{
			name: "passed",
			in: &GatingInput{Decision: &greenwave.Decision{PoliciesSatisfied: true, Summary: "All required tests passed",
				SatisfiedRequirements: []greenwave.Requirement{passed, {Type: "test-result-failed-waived", Testcase: "compose.base_selinux", Scenario: dvd}}}},
			outcome: GatingPassed, counts: [3]int{2, 0, 0}, unsatisfy: []row{},
		},
		{
			name: "failed, each requirement on its job",
			in: &GatingInput{Decision: &greenwave.Decision{Summary: "5 of 7 required tests failed, 1 result missing",
				SatisfiedRequirements: []greenwave.Requirement{passed},
				UnsatisfiedRequirements: []greenwave.Requirement{
					req(greenwave.TypeFailed, "server_cockpit_default", dvd),
					req(greenwave.TypeFailed, "base_selinux", dvd),
					req(greenwave.TypeFailed, "install_default", ""),
					req(greenwave.TypeErrored, "install_minimal", "fedora.Minimal-raw_xz-raw.xz.aarch64.aarch64"),
					req(greenwave.TypeFailed, "desktop_login", dvd),
					req(greenwave.TypeMissing, "server_realmd_join_kickstart", dvd),
					// Listed unsatisfied by an older Greenwave, but waived.
					req("test-result-missing-waived", "server_database_client", dvd),
					{Type: "invalid-gating-yaml", Testcase: "invalid-gating-yaml"},
				}}},
			outcome: GatingFailed, counts: [3]int{9, 6, 1},
			unsatisfy: []row{
				{"test-result-failed", "base_selinux", dvd, 3},
				{"test-result-failed", "desktop_login", dvd, 7},
				{"test-result-failed", "install_default", "", 0},
				{"test-result-errored", "install_minimal", "fedora.Minimal-raw_xz-raw.xz.aarch64.aarch64", 6},
				{"test-result-failed", "server_cockpit_default", dvd, 1},
				{"test-result-missing", "server_realmd_join_kickstart", dvd, 0},
				{"invalid-gating-yaml", "", "", 0},
			},
		},
		{
			name:    "a scenario of another distri maps to nothing",
			in:      &GatingInput{Decision: &greenwave.Decision{UnsatisfiedRequirements: []greenwave.Requirement{req(greenwave.TypeFailed, "server_cockpit_default", "fedora-coreos.Server-dvd-iso.x86_64.64bit")}}},
			outcome: GatingFailed, counts: [3]int{1, 1, 0},
			unsatisfy: []row{{"test-result-failed", "server_cockpit_default", "fedora-coreos.Server-dvd-iso.x86_64.64bit", 0}},
		},
		{
			name:    "no policy",
			in:      &GatingInput{Err: fmt.Errorf("asking: %w", &greenwave.APIError{StatusCode: 404, Message: "Found no applicable policies for compose subjects at gating point(s) c in fedora-44"})},
			outcome: GatingNoPolicy, errText: "Found no applicable policies for compose subjects at gating point(s) c in fedora-44", unsatisfy: []row{},
		},
		{
			name:    "Greenwave down",
			in:      &GatingInput{Err: errors.New("greenwave: POST x: connection refused")},
			outcome: GatingError, errText: "greenwave: POST x: connection refused", unsatisfy: []row{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.in != nil {
				tt.in.Context, tt.in.ProductVersion = "c", "fedora-rawhide"
			}
			f := Run(Input{Compose: cur, Jobs: jobs, Gating: tt.in})
			g := f.Gating
			if tt.in == nil {
				if g != nil {
					t.Fatalf("not asked, yet %+v", g)
				}
				return
			}
			if g.Outcome != tt.outcome || g.Error != tt.errText || g.Context != "c" || g.ProductVersion != "fedora-rawhide" {
				t.Errorf("outcome %q, error %q, %s %s", g.Outcome, g.Error, g.Context, g.ProductVersion)
			}
			if got := [3]int{g.Required, g.Failed, g.Missing}; got != tt.counts {
				t.Errorf("required, failed, missing = %v, want %v", got, tt.counts)
			}
			got := []row{}
			for _, r := range g.Unsatisfied {
				got = append(got, row{r.Type, r.Test, r.Scenario, r.JobID})
				if r.JobID != 0 && r.URL != fmt.Sprintf("https://openqa.example/tests/%d", r.JobID) {
					t.Errorf("%s: URL %q", r.Testcase, r.URL)
				}
			}
			if !reflect.DeepEqual(got, tt.unsatisfy) {
				t.Errorf("unsatisfied\n%v\nwant\n%v", got, tt.unsatisfy)
			}
			if g.Passed() != (tt.outcome == GatingPassed) {
				t.Errorf("Passed() = %v", g.Passed())
			}
			if Run(Input{Compose: cur, Gating: tt.in}).Problem() {
				t.Error("a gating check alone made a problem")
			}
		})
	}
}
