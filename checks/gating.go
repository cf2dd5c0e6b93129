package checks

import (
	"cmp"
	"errors"
	"slices"
	"strings"

	"github.com/composeci/composeci/greenwave"
	"github.com/composeci/composeci/openqa"
)

// GatingInput is Greenwave's decision on a compose at a gating point, or
// why there is none: what the gating check looks at.
type GatingInput struct {
	// Context is the decision context asked about, ProductVersion the
	// product version.
	Context, ProductVersion string
	// Decision is Greenwave's answer; nil when there is none, and then Err
	// says why: it matches greenwave.ErrNoPolicy when no policy applies.
	Decision *greenwave.Decision
	Err      error
}

// The outcomes of the gating check.
const (
	// GatingPassed: every requirement is satisfied (passed or waived).
	GatingPassed = "passed"
	// GatingFailed: a required test failed or has no result.
	GatingFailed = "failed"
	// GatingNoPolicy: no policy of the decision context applies to the
	// compose: nothing gates it there.
	GatingNoPolicy = "no-policy"
	// GatingError: Greenwave could not be asked, or its answer not read.
	GatingError = "error"
)

// Gating is the gating check: whether the compose would pass the gating
// of its decision context, and which requirements it fails.
type Gating struct {
	Context, ProductVersion string
	// Outcome is GatingPassed, GatingFailed, GatingNoPolicy or GatingError.
	Outcome string
	// Summary is Greenwave's own line.
	Summary string
	// Error is, with GatingNoPolicy, Greenwave's message; with
	// GatingError, what went wrong.
	Error string
	// Required is the number of required tests; Failed of them failed
	// (or errored), Missing have no result: as greenwave.Decision.Counts.
	Required, Failed, Missing int
	// Unsatisfied are the requirements not met (waived ones are met),
	// sorted by test case, scenario and type.
	Unsatisfied []GatingRequirement
}

// GatingRequirement is one requirement the compose does not meet.
type GatingRequirement struct {
	// Type is Greenwave's: test-result-failed, test-result-missing,
	// test-result-errored, invalid-gating-yaml, ...
	Type     string
	Testcase string
	// Scenario is "<DISTRI>.<FLAVOR>.<ARCH>.<MACHINE>"; "" when Greenwave
	// gave none.
	Scenario    string
	ErrorReason string
	// Test is the openQA test the test case names ("compose.<test>"); ""
	// for a test case of another kind.
	Test string
	// JobID and URL are the compose's newest openQA job of that test and
	// scenario; zero when there is none, or (no scenario given) more than
	// one scenario of the test.
	JobID int64
	URL   string
}

// Passed reports whether the compose passes the gating check.
func (g *Gating) Passed() bool { return g != nil && g.Outcome == GatingPassed }

// JobIDs returns the openQA jobs the unsatisfied requirements map to.
func (g *Gating) JobIDs() map[int64]bool {
	out := map[int64]bool{}
	if g == nil {
		return out
	}
	for _, r := range g.Unsatisfied {
		if r.JobID != 0 {
			out[r.JobID] = true
		}
	}
	return out
}

// gatingOf makes the gating check of in, mapping each unsatisfied
// requirement to the newest job of its test and scenario among jobs.
func gatingOf(in *GatingInput, jobs []openqa.Job) *Gating {
	if in == nil {
		return nil
	}
	g := &Gating{Context: in.Context, ProductVersion: in.ProductVersion, Unsatisfied: []GatingRequirement{}}
	d := in.Decision
	switch {
	case d == nil && errors.Is(in.Err, greenwave.ErrNoPolicy):
		g.Outcome = GatingNoPolicy
		var ae *greenwave.APIError
		if errors.As(in.Err, &ae) {
			g.Error = ae.Message
		}
		return g
	case d == nil:
		g.Outcome = GatingError
		g.Error = "no answer"
		if in.Err != nil {
			g.Error = in.Err.Error()
		}
		return g
	}
	g.Outcome, g.Summary = GatingFailed, d.Summary
	if d.PoliciesSatisfied {
		g.Outcome = GatingPassed
	}
	g.Required, g.Failed, g.Missing = d.Counts()
	latest, _, _, _, _ := latestJobs(jobs)
	for _, r := range d.UnsatisfiedRequirements {
		if r.Waived() {
			continue // an older Greenwave's way of listing a waiver
		}
		gr := GatingRequirement{Type: r.Type, Testcase: r.Testcase, Scenario: r.Scenario, ErrorReason: r.ErrorReason}
		if test, ok := r.ComposeTest(); ok {
			gr.Test = test
			if j := jobOf(latest, test, r.Scenario); j != nil {
				gr.JobID, gr.URL = j.ID, j.URL
			}
		}
		g.Unsatisfied = append(g.Unsatisfied, gr)
	}
	slices.SortFunc(g.Unsatisfied, func(a, b GatingRequirement) int {
		return cmp.Or(cmp.Compare(a.Testcase, b.Testcase), cmp.Compare(a.Scenario, b.Scenario), cmp.Compare(a.Type, b.Type))
	})
	return g
}

// jobOf finds the newest job of test whose scenario is scenario
// ("<DISTRI>.<FLAVOR>.<ARCH>.<MACHINE>"; any when ""): nil when there is
// none, or when several scenarios match.
func jobOf(latest map[Scenario]*openqa.Job, test, scenario string) *openqa.Job {
	var found *openqa.Job
	for s, j := range latest {
		if s.Test != test || (scenario != "" && !sameScenario(*j, s, scenario)) {
			continue
		}
		if found != nil {
			return nil // ambiguous
		}
		found = j
	}
	return found
}

// sameScenario reports whether ResultsDB's scenario of a compose result,
// as fedora_openqa writes it, names the job's scenario s. The flavor may
// hold dots (Minimal-raw_xz-raw.xz), so the job's scenario is written out
// and compared whole, never split; a job without DISTRI matches on the
// rest.
func sameScenario(j openqa.Job, s Scenario, scenario string) bool {
	rest := "." + s.Flavor + "." + s.Arch + "." + s.Machine
	if d := j.Settings["DISTRI"]; d != "" {
		return scenario == d+rest
	}
	return strings.HasSuffix(scenario, rest)
}
