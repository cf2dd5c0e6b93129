package openqa

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Results are the current jobs of one build: for every test scenario the
// newest job, restarted and auto-cloned jobs followed to their last clone.
type Results struct {
	Build string `json:"build"`
	// Version is the VERSION of the build's jobs ("" when it has none).
	Version string `json:"version,omitempty"`
	// OverviewURL is the build's overview page.
	OverviewURL string `json:"overview_url,omitempty"`
	// Jobs are sorted by flavor, arch, test and machine.
	Jobs    []Job   `json:"jobs"`
	Summary Summary `json:"summary"`
	// Superseded counts the jobs left out: cloned, or replaced by a newer
	// run of the same scenario (a forced re-post).
	Superseded int `json:"superseded"`
}

// Summary counts a build's current jobs.
type Summary struct {
	Total int `json:"total"`
	// Pending jobs are not final yet (scheduled ... uploading).
	Pending int `json:"pending"`
	// ByResult counts the final jobs by openQA result.
	ByResult map[string]int `json:"by_result"`
	// OK counts passed and softfailed jobs; NotOK every other final one.
	OK    int `json:"ok"`
	NotOK int `json:"not_ok"`
	// AllFinal: there are jobs and none is pending.
	AllFinal bool `json:"all_final"`
}

// Summarize counts jobs.
func Summarize(jobs []Job) Summary {
	s := Summary{Total: len(jobs), ByResult: map[string]int{}}
	for _, j := range jobs {
		if !j.Final() {
			s.Pending++
			continue
		}
		s.ByResult[j.Result]++
		if j.OK() {
			s.OK++
		} else {
			s.NotOK++
		}
	}
	s.AllFinal = s.Total > 0 && s.Pending == 0
	return s
}

// Latest reduces a build's jobs to the current ones: each job is followed
// along clone_id to the last clone present (openQA lists restarted jobs next
// to their clones), and of several runs of one scenario only the newest is
// kept. It returns them sorted by flavor, arch, test and machine, and the
// number left out.
func Latest(jobs []Job) ([]Job, int) {
	byID := make(map[int64]Job, len(jobs))
	for _, j := range jobs {
		byID[j.ID] = j
	}
	newest := map[string]Job{}
	for _, j := range jobs {
		head := j
		for steps := 0; head.CloneID != 0 && steps < len(jobs); steps++ {
			next, ok := byID[head.CloneID]
			if !ok {
				break
			}
			head = next
		}
		k := head.Scenario()
		if cur, ok := newest[k]; !ok || head.ID > cur.ID {
			newest[k] = head
		}
	}
	out := make([]Job, 0, len(newest))
	for _, j := range newest {
		out = append(out, j)
	}
	slices.SortFunc(out, func(a, b Job) int {
		return cmp.Or(
			cmp.Compare(a.Flavor(), b.Flavor()),
			cmp.Compare(a.Arch(), b.Arch()),
			cmp.Compare(a.Test, b.Test),
			cmp.Compare(a.Machine(), b.Machine()),
			cmp.Compare(a.ID, b.ID),
		)
	})
	return out, len(jobs) - len(out)
}

// Results reads every job of a build and reduces it to the current ones
// (see Latest). A clone that is missing from the listing, because it was
// made while the pages were read, is fetched with ?follow=1.
func (c *Client) Results(ctx context.Context, build string) (*Results, error) {
	jobs, err := c.BuildJobs(ctx, build)
	if err != nil {
		return nil, err
	}
	have := make(map[int64]bool, len(jobs))
	for _, j := range jobs {
		have[j.ID] = true
	}
	var extra []Job
	for i, j := range jobs {
		if j.CloneID == 0 || have[j.CloneID] {
			continue
		}
		clone, err := c.Job(ctx, j.CloneID, true)
		if errors.Is(err, ErrNotFound) {
			continue // the clone is gone (deleted): keep what we have
		}
		if err != nil {
			return nil, fmt.Errorf("openqa: following clone %d of job %d: %w", j.CloneID, j.ID, err)
		}
		// Point the job straight at the newest clone so Latest reaches it.
		jobs[i].CloneID = clone.ID
		if !have[clone.ID] {
			have[clone.ID] = true
			extra = append(extra, clone)
		}
	}
	jobs = append(jobs, extra...)
	latest, superseded := Latest(jobs)
	r := &Results{Build: build, Jobs: latest, Summary: Summarize(latest), Superseded: superseded}
	for _, j := range latest {
		if v := j.Version(); v != "" {
			r.Version = v
			break
		}
	}
	if r.Version != "" {
		r.OverviewURL = c.OverviewURL(r.Version, build)
	}
	return r, nil
}

// WaitOptions tune Wait.
type WaitOptions struct {
	// Interval between polls. Default 30s.
	Interval time.Duration
	// Grace is how long every job must stay final before Wait believes
	// it: openQA clones an incomplete job a moment after marking it done,
	// so a build can look finished just before a clone appears. Default
	// 10s; negative means no grace.
	Grace time.Duration
	// Progress, if set, is called with each poll's results.
	Progress func(*Results)
	// Retrying, if set, makes Wait ride out failures that may pass
	// (IsTemporary: openQA down, overloaded or slow): it is called with
	// each such error, and Wait polls again after Interval until ctx ends.
	// Without it, such a failure ends Wait as any other error does.
	Retrying func(err error)
}

// Wait polls a build's results until every current job is final and stays
// so for the grace period, or ctx ends. The jobs API is the truth: job
// messages on the bus only say when it is worth polling. On an error it
// returns the last results it had (nil if none) with the error; see
// WaitOptions.Retrying for the errors it can wait out.
func (c *Client) Wait(ctx context.Context, build string, opts WaitOptions) (*Results, error) {
	if opts.Interval <= 0 {
		opts.Interval = 30 * time.Second
	}
	if opts.Grace == 0 {
		opts.Grace = 10 * time.Second
	}
	var finalSince time.Time
	var last *Results
	var failed error // the failure of the last poll, waited out
	for {
		r, err := c.Results(ctx, build)
		switch {
		case err != nil && ctx.Err() != nil && failed != nil:
			return last, fmt.Errorf("openqa: waiting for %s: %w (the last poll failed: %v)", build, ctx.Err(), failed)
		case err != nil && ctx.Err() == nil && opts.Retrying != nil && IsTemporary(err):
			opts.Retrying(err)
			failed, finalSince = err, time.Time{} // the jobs may have changed meanwhile
			if serr := sleepCtx(ctx, opts.Interval); serr != nil {
				return last, fmt.Errorf("openqa: waiting for %s: %w (the last poll failed: %v)", build, serr, err)
			}
			continue
		case err != nil:
			return last, err
		}
		failed = nil
		last = r
		if opts.Progress != nil {
			opts.Progress(r)
		}
		now := time.Now()
		switch {
		case !r.Summary.AllFinal:
			finalSince = time.Time{}
		case opts.Grace < 0 || (!finalSince.IsZero() && now.Sub(finalSince) >= opts.Grace):
			return r, nil
		case finalSince.IsZero():
			finalSince = now
		}
		wait := opts.Interval
		if !finalSince.IsZero() && opts.Grace > 0 {
			wait = min(wait, opts.Grace-now.Sub(finalSince))
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return r, fmt.Errorf("openqa: waiting for %s: %w", build, err)
		}
	}
}
