package stages

import (
	"context"
	"fmt"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/openqa"
)

const (
	defaultResultsPoll    = time.Minute
	defaultResultsGrace   = 2 * time.Minute
	defaultResultsTimeout = 8 * time.Hour
)

// AwaitResults waits until every openQA job of the build is final and has
// stayed so for Grace: openQA clones an incomplete job a moment after
// finishing it, and the clone must not be missed.
type AwaitResults struct {
	// OpenQA is nil to leave openQA out: the stage then passes at once.
	OpenQA *openqa.Client
	// Poll is how long to wait before asking again (default 1 minute).
	Poll time.Duration
	// Grace is how long every job must have stayed final (default 2
	// minutes).
	Grace time.Duration
	// Timeout bounds the wait (default 8 hours from the stage's first
	// run, check-compose's "wait"): a job stuck on a worker must not keep
	// a compose from its report. The stage then goes on with the jobs
	// still pending, and the report lists them as pending. Negative: wait
	// for ever.
	Timeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Results reads the build's jobs, re-runs followed to the newest: what
// `composeci results` prints.
func (a AwaitResults) Results(ctx context.Context, build string) (*openqa.Results, error) {
	return a.OpenQA.Results(ctx, build)
}

func (a AwaitResults) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Run advances once every job is final and has stayed so for Grace.
func (a AwaitResults) Run(ctx context.Context, cm *fedfind.Compose, st State) (Outcome, error) {
	if a.OpenQA == nil {
		return Outcome{Advance: true, Note: "openQA not configured"}, nil
	}
	return a.untilFinal(ctx, cm, st, DataResultsSince, DataFinalSince)
}

// untilFinal waits until every job of the build is final and has stayed
// so for Grace, or Timeout has passed since the wait began; startKey keeps,
// in the workflow, when the wait began, and sinceKey when the jobs were
// first seen final.
func (a AwaitResults) untilFinal(ctx context.Context, cm *fedfind.Compose, st State, startKey, sinceKey string) (Outcome, error) {
	r, err := a.Results(ctx, cm.ID.String())
	if err != nil {
		return Outcome{}, err
	}
	sum := r.Summary
	now := a.now()
	start, ok := parseStamp(st.Data[startKey])
	if !ok {
		start = now
	}
	if timeout := orDefault(a.Timeout, defaultResultsTimeout); a.Timeout >= 0 && !sum.AllFinal && now.Sub(start) >= timeout {
		note := fmt.Sprintf("openQA: %d of %s still pending after %s; reported as pending", sum.Pending, plural(sum.Total, "job", "jobs"), timeout)
		if sum.Total == 0 {
			note = fmt.Sprintf("openQA: no job of the build appeared in %s; reported without test results", timeout)
		}
		// The wait's start is cleared with its end: a workflow sent back
		// here later (re-runs asked for) waits afresh.
		return Outcome{Advance: true, Data: map[string]string{DataResultsGaveUp: "true", startKey: ""}, Note: note}, nil
	}
	out, err := a.final(sum, st, now, sinceKey)
	if err != nil {
		return out, err
	}
	if out.Data == nil {
		out.Data = map[string]string{}
	}
	switch {
	case out.Advance:
		out.Data[startKey] = ""
	case !ok:
		out.Data[startKey] = stamp(start)
	}
	return out, nil
}

// final is untilFinal's verdict on the jobs' summary.
func (a AwaitResults) final(sum openqa.Summary, st State, now time.Time, sinceKey string) (Outcome, error) {
	if sum.Total == 0 && st.Data[DataJobs] == "0" {
		// The schedule stage created no job (no image to test, no
		// job templates in openQA) and none has appeared: there is
		// nothing to wait for.
		return Outcome{Advance: true, Note: "openQA: no jobs for this build"}, nil
	}
	if !sum.AllFinal {
		return Outcome{RetryAfter: orDefault(a.Poll, defaultResultsPoll),
			Note: fmt.Sprintf("openQA: %d of %s pending", sum.Pending, plural(sum.Total, "job", "jobs")),
			Data: map[string]string{sinceKey: ""}}, nil
	}
	grace := orDefault(a.Grace, defaultResultsGrace)
	since, err := time.Parse(time.RFC3339Nano, st.Data[sinceKey])
	if err != nil {
		// First seen final: look again after the grace period.
		return Outcome{RetryAfter: grace, Note: fmt.Sprintf("openQA: %s final; waiting %s for late re-runs", allJobs(sum.Total), grace),
			Data: map[string]string{sinceKey: now.UTC().Format(time.RFC3339Nano)}}, nil
	}
	if wait := grace - now.Sub(since); wait > 0 {
		return Outcome{RetryAfter: wait, Note: fmt.Sprintf("openQA: %s final; waiting %s more for late re-runs", allJobs(sum.Total), wait.Round(time.Second))}, nil
	}
	return Outcome{Advance: true, Note: fmt.Sprintf("openQA: %s final (%d ok, %d not ok)", plural(sum.Total, "job", "jobs"), sum.OK, sum.NotOK)}, nil
}

// allJobs is "the 1 job" or "all 12 jobs".
func allJobs(n int) string {
	if n == 1 {
		return "the 1 job"
	}
	return fmt.Sprintf("all %d jobs", n)
}
