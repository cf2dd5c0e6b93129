package checks

import (
	"cmp"
	"slices"
	"time"

	"github.com/composeci/composeci/openqa"
)

// Scenario names "the same test" across composes: openQA's TEST, FLAVOR,
// ARCH and MACHINE. (openQA's own scenario adds DISTRI and VERSION, which are
// the same for every compose of a stream, and BUILD, which is what differs.)
type Scenario struct {
	Test    string
	Flavor  string
	Arch    string
	Machine string
}

// ScenarioOf returns the scenario of a job.
func ScenarioOf(j openqa.Job) Scenario {
	test := j.Test
	if test == "" {
		test = j.Settings["TEST"]
	}
	return Scenario{Test: test, Flavor: j.Flavor(), Arch: j.Arch(), Machine: j.Machine()}
}

// compare orders scenarios the way a QA engineer reads a report: by arch,
// then flavor, then test, then machine.
func (s Scenario) compare(o Scenario) int {
	return cmp.Or(cmp.Compare(s.Arch, o.Arch), cmp.Compare(s.Flavor, o.Flavor),
		cmp.Compare(s.Test, o.Test), cmp.Compare(s.Machine, o.Machine))
}

// Class is what a scenario's outcome is in the report.
type Class string

// The classes of an outcome. Failures are split by the previous compose into
// new and known; the rest are listed apart.
const (
	// ClassPassed: result passed.
	ClassPassed Class = "passed"
	// ClassNewFailure: result failed, and the scenario did not fail in the
	// previous compose (it passed, soft-failed, did not complete, was absent,
	// or there is no previous compose).
	ClassNewFailure Class = "new_failure"
	// ClassKnownFailure: result failed, and it failed in the previous
	// compose too.
	ClassKnownFailure Class = "known_failure"
	// ClassSoftFailure: result softfailed.
	ClassSoftFailure Class = "soft_failure"
	// ClassIncomplete: result incomplete or timeout_exceeded (or a result
	// this code does not know): the test did not run to its end, usually for
	// reasons outside the compose. Never classed new or known, since there is
	// no verdict on the compose to compare.
	ClassIncomplete Class = "incomplete"
	// ClassSkipped: result skipped, parallel_failed, parallel_restarted or
	// user_restarted — openQA's ABORTED results that are not cancellations.
	// A parallel_failed job did not fail itself: its parallel partner did,
	// and that partner is reported as the failure, once.
	ClassSkipped Class = "skipped"
	// ClassCancelled: result obsoleted or user_cancelled. Someone or a newer
	// scheduling meant the job not to run; never a failure.
	ClassCancelled Class = "cancelled"
	// ClassFlaky: the scenario failed for the first time, composeci re-ran
	// it, and the re-run passed (or soft-failed): not a failure of the
	// compose, and listed apart with both jobs.
	ClassFlaky Class = "flaky"
	// ClassPending: the job is not final yet (scheduled, running, ...), or it
	// was restarted and the newest job of its clone chain is not among the
	// jobs given. Its outcome is unknown, and the report says its results
	// are incomplete.
	ClassPending Class = "pending"
)

// classOf maps a job's own outcome to its class, before the previous
// compose splits failures into new and known.
func classOf(j openqa.Job) Class {
	if !j.Final() {
		return ClassPending
	}
	switch j.Result {
	case openqa.ResultPassed:
		return ClassPassed
	case openqa.ResultFailed:
		return ClassNewFailure
	case openqa.ResultSoftfailed:
		return ClassSoftFailure
	case openqa.ResultSkipped, openqa.ResultParallelFailed, openqa.ResultParallelRestarted, openqa.ResultUserRestarted:
		return ClassSkipped
	case openqa.ResultObsoleted, openqa.ResultUserCancelled:
		return ClassCancelled
	}
	// incomplete, timeout_exceeded, none on a final job, or a result newer
	// than this code: the test did not give a verdict.
	return ClassIncomplete
}

// PreviousRestarted is the PreviousResult of a scenario whose previous job
// was restarted into a clone that is not among the previous jobs given.
const PreviousRestarted = "restarted"

// JobResult is the outcome of one scenario: its newest job.
type JobResult struct {
	Scenario
	JobID  int64
	URL    string
	State  string
	Result string
	// Clone is true when the job is a restart (origin_id set): a reader
	// then knows an earlier attempt did not count.
	Clone bool
	// PreviousJobID and PreviousResult are the same scenario's newest job
	// in the previous compose and its result; zero and "" when it had none.
	// PreviousResult is the job's state when it was not final there, and
	// PreviousRestarted when it was restarted and its clone is unknown.
	PreviousJobID  int64
	PreviousResult string
	PreviousURL    string
	// Seconds is how long the job ran (t_finished - t_started); zero when
	// either time is missing.
	Seconds int64
	// CloneMissing is true for a job that was restarted (clone_id set) whose
	// clone is not among the jobs given: its scenario's outcome is unknown.
	CloneMissing bool
	// RerunOf is, when this job descends from a re-run composeci made, the
	// job it re-ran (the first try), and RerunOfURL that job's page: a new
	// failure with RerunOf failed twice (it is confirmed); a flaky one
	// failed, then passed.
	RerunOf    int64
	RerunOfURL string
	// KnownIssue is the registry entry that matches this failure, if any.
	KnownIssue *KnownIssue
}

// Counts are the outcomes of a set of scenarios.
type Counts struct {
	Total      int
	Passed     int
	Failed     int // new + known failures
	SoftFailed int
	Incomplete int
	Skipped    int
	Cancelled  int
	Pending    int
	Flaky      int
}

func (c *Counts) add(cl Class) {
	c.Total++
	switch cl {
	case ClassPassed:
		c.Passed++
	case ClassNewFailure, ClassKnownFailure:
		c.Failed++
	case ClassSoftFailure:
		c.SoftFailed++
	case ClassIncomplete:
		c.Incomplete++
	case ClassSkipped:
		c.Skipped++
	case ClassCancelled:
		c.Cancelled++
	case ClassPending:
		c.Pending++
	case ClassFlaky:
		c.Flaky++
	}
}

// ArchCounts are the counts of one arch.
type ArchCounts struct {
	Arch string
	Counts
}

// FlavorCounts are the counts of one (arch, flavor) pair, the unit openQA
// schedules and check-compose groups failures by.
type FlavorCounts struct {
	Arch   string
	Flavor string
	Counts
}

// Durations are the running times of the scenarios' newest jobs, from their
// t_started and t_finished.
type Durations struct {
	// TotalSeconds adds up every timed job: the worker time the compose cost.
	TotalSeconds int64
	// LongestSeconds and LongestJobID name the slowest job.
	LongestSeconds int64
	LongestJobID   int64
	// FirstStarted and LastFinished bound the run (zero when no job is
	// timed); SpanSeconds is the time between them, what a person waited.
	FirstStarted time.Time
	LastFinished time.Time
	SpanSeconds  int64
	// Timed is the number of jobs with both times.
	Timed int
}

// OpenQA holds the openQA findings. The failure lists are sorted by arch,
// flavor, test and machine, so a reader (or a template) can group them by
// arch and flavor by walking them in order.
type OpenQA struct {
	// NewFailures failed now and did not fail in the previous compose.
	NewFailures []JobResult
	// KnownFailures failed now and in the previous compose.
	KnownFailures []JobResult
	// Fixed failed in the previous compose and passed or soft-failed now. A
	// scenario that went from failed to softfailed is both here and in
	// SoftFailures: its hard failure is fixed, its soft failure is still
	// worth reading. A scenario absent now is not "fixed": it was not run.
	Fixed []JobResult
	// SoftFailures soft-failed now.
	SoftFailures []JobResult
	Incomplete   []JobResult
	Skipped      []JobResult
	Cancelled    []JobResult
	// Pending have no final result yet; when non-empty, the results are
	// incomplete and the report says so.
	Pending []JobResult
	// Flaky failed for the first time and passed (or soft-failed) when
	// composeci re-ran them: JobID is the re-run, RerunOf the first try.
	Flaky []JobResult
	// ExpiredKnownIssues are registry entries that would have matched a
	// failure here had they not expired.
	ExpiredKnownIssues []KnownIssue

	Counts   Counts
	ByArch   []ArchCounts
	ByFlavor []FlavorCounts
	// Jobs is the number of distinct jobs given; Superseded of those were
	// not counted because a clone or a newer job of the same scenario
	// replaced them.
	Jobs       int
	Superseded int
	// PreviousJobs is the number of distinct jobs of the previous compose.
	PreviousJobs int
	Durations    Durations
}

// Complete reports whether every scenario has a final result.
func (o OpenQA) Complete() bool { return len(o.Pending) == 0 }

// latestJobs reduces jobs to the newest job of each scenario, as openQA's
// latest=1 does, after dropping every job superseded by a clone. Jobs may
// come in any order and more than once (overlapping pages). A job whose
// clone_id names a job that is not in the input was restarted but its
// restart is unknown: if nothing newer stands for its scenario, it is kept
// and marked, and counts as pending.
func latestJobs(jobs []openqa.Job) (latest map[Scenario]*openqa.Job, byID map[int64]*openqa.Job, cloneMissing map[int64]bool, distinct, superseded int) {
	// Pointers into jobs: a Job is large, and copying it into maps was most
	// of the cost of a check.
	byID = make(map[int64]*openqa.Job, len(jobs))
	for i := range jobs {
		byID[jobs[i].ID] = &jobs[i]
	}
	latest = make(map[Scenario]*openqa.Job, len(byID))
	cloneMissing = map[int64]bool{}
	// Two passes: live jobs first, so an orphaned superseded job only
	// stands in for a scenario nothing newer covers.
	var orphans []*openqa.Job
	for _, j := range byID {
		if j.CloneID != 0 {
			if _, ok := byID[j.CloneID]; ok {
				superseded++
			} else {
				orphans = append(orphans, j)
			}
			continue
		}
		s := ScenarioOf(*j)
		if cur, ok := latest[s]; ok {
			superseded++
			if cur.ID > j.ID {
				continue
			}
		}
		latest[s] = j
	}
	for _, j := range orphans {
		s := ScenarioOf(*j)
		cur, ok := latest[s]
		// The unknown clone is newer than anything else of the scenario
		// when its id is: then the scenario's outcome is unknown.
		if ok {
			newest := cur.ID
			if cloneMissing[cur.ID] {
				newest = cur.CloneID
			}
			superseded++
			if j.CloneID <= newest {
				continue
			}
			delete(cloneMissing, cur.ID)
		}
		latest[s] = j
		cloneMissing[j.ID] = true
	}
	return latest, byID, cloneMissing, len(byID), superseded
}

// sortResults orders results by arch, flavor, test and machine.
func sortResults(l []JobResult) {
	slices.SortFunc(l, func(a, b JobResult) int {
		return cmp.Or(a.Scenario.compare(b.Scenario), cmp.Compare(a.JobID, b.JobID))
	})
}

// parseTime reads openQA's t_started/t_finished: "2026-11-22T10:00:00"
// (UTC, no zone) as the API sends it, or RFC 3339.
func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if t, err := time.Parse("2006-01-02T15:04:05", s); err == nil {
		return t.UTC(), true
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), true
	}
	return time.Time{}, false
}

// classify compares the newest job of every scenario of cur with the same
// scenario in prev. havePrev says whether a previous compose exists at all;
// reruns are composeci's re-runs (first try → re-run).
func classify(cur, prev []openqa.Job, havePrev bool, reruns map[int64]int64) OpenQA {
	latest, byID, cloneMissing, distinct, superseded := latestJobs(cur)
	o := OpenQA{
		NewFailures: []JobResult{}, KnownFailures: []JobResult{}, Fixed: []JobResult{},
		SoftFailures: []JobResult{}, Incomplete: []JobResult{}, Skipped: []JobResult{},
		Cancelled: []JobResult{}, Pending: []JobResult{}, Flaky: []JobResult{}, ExpiredKnownIssues: []KnownIssue{},
		ByArch: []ArchCounts{}, ByFlavor: []FlavorCounts{},
		Jobs: distinct, Superseded: superseded,
	}
	var prevLatest map[Scenario]*openqa.Job
	var prevMissing map[int64]bool
	if havePrev {
		prevLatest, _, prevMissing, o.PreviousJobs, _ = latestJobs(prev)
	}
	byArch := map[string]*Counts{}
	type af struct{ arch, flavor string }
	byFlavor := map[af]*Counts{}

	for s, j := range latest {
		r := JobResult{Scenario: s, JobID: j.ID, URL: j.URL, State: j.State, Result: j.Result,
			Clone: j.OriginID != 0, CloneMissing: cloneMissing[j.ID]}
		start, okS := parseTime(j.TStarted)
		end, okE := parseTime(j.TFinished)
		if okS && okE && !end.Before(start) {
			r.Seconds = int64(end.Sub(start) / time.Second)
			d := &o.Durations
			d.Timed++
			d.TotalSeconds += r.Seconds
			if r.Seconds > d.LongestSeconds || (r.Seconds == d.LongestSeconds && (d.LongestJobID == 0 || j.ID < d.LongestJobID)) {
				d.LongestSeconds, d.LongestJobID = r.Seconds, j.ID
			}
			if d.FirstStarted.IsZero() || start.Before(d.FirstStarted) {
				d.FirstStarted = start
			}
			if end.After(d.LastFinished) {
				d.LastFinished = end
			}
		}
		prevFailed := false
		if p, ok := prevLatest[s]; ok {
			r.PreviousJobID, r.PreviousResult, r.PreviousURL = p.ID, p.Result, p.URL
			switch {
			case prevMissing[p.ID]:
				r.PreviousResult = PreviousRestarted
			case !p.Final():
				r.PreviousResult = p.State
			}
			prevFailed = !prevMissing[p.ID] && p.Final() && p.Result == openqa.ResultFailed
		}

		// A re-run composeci made of a first failure decides between
		// confirmed and flaky.
		firstTryFailed := false
		if orig, ok := rerunOrigin(j, byID, reruns); ok {
			r.RerunOf, r.RerunOfURL = orig.ID, orig.URL
			firstTryFailed = orig.Final() && orig.Result == openqa.ResultFailed
		}
		cl := ClassPending
		if !r.CloneMissing {
			cl = classOf(*j)
		}
		if (cl == ClassPassed || cl == ClassSoftFailure) && firstTryFailed && !prevFailed {
			cl = ClassFlaky
		}
		switch cl {
		case ClassFlaky:
			o.Flaky = append(o.Flaky, r)
		case ClassPassed:
			if prevFailed {
				o.Fixed = append(o.Fixed, r)
			}
		case ClassNewFailure:
			if prevFailed {
				cl = ClassKnownFailure
				o.KnownFailures = append(o.KnownFailures, r)
			} else {
				o.NewFailures = append(o.NewFailures, r)
			}
		case ClassSoftFailure:
			o.SoftFailures = append(o.SoftFailures, r)
			if prevFailed {
				o.Fixed = append(o.Fixed, r)
			}
		case ClassIncomplete:
			o.Incomplete = append(o.Incomplete, r)
		case ClassSkipped:
			o.Skipped = append(o.Skipped, r)
		case ClassCancelled:
			o.Cancelled = append(o.Cancelled, r)
		case ClassPending:
			o.Pending = append(o.Pending, r)
		}
		o.Counts.add(cl)
		ac := byArch[s.Arch]
		if ac == nil {
			ac = &Counts{}
			byArch[s.Arch] = ac
		}
		ac.add(cl)
		k := af{s.Arch, s.Flavor}
		fc := byFlavor[k]
		if fc == nil {
			fc = &Counts{}
			byFlavor[k] = fc
		}
		fc.add(cl)
	}
	if d := &o.Durations; !d.FirstStarted.IsZero() {
		d.SpanSeconds = int64(d.LastFinished.Sub(d.FirstStarted) / time.Second)
	}
	for _, l := range []*[]JobResult{&o.NewFailures, &o.KnownFailures, &o.Fixed, &o.SoftFailures,
		&o.Incomplete, &o.Skipped, &o.Cancelled, &o.Pending, &o.Flaky} {
		sortResults(*l)
	}
	for a, c := range byArch {
		o.ByArch = append(o.ByArch, ArchCounts{Arch: a, Counts: *c})
	}
	slices.SortFunc(o.ByArch, func(a, b ArchCounts) int { return cmp.Compare(a.Arch, b.Arch) })
	for k, c := range byFlavor {
		o.ByFlavor = append(o.ByFlavor, FlavorCounts{Arch: k.arch, Flavor: k.flavor, Counts: *c})
	}
	slices.SortFunc(o.ByFlavor, func(a, b FlavorCounts) int {
		return cmp.Or(cmp.Compare(a.Arch, b.Arch), cmp.Compare(a.Flavor, b.Flavor))
	})
	return o
}
