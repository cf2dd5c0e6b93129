package stages

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/httpclient"
	"github.com/composeci/composeci/openqa"
	"github.com/composeci/composeci/reports"
)

// Check builds the compose check report and archives it: missing expected
// images, the image diff against the previous compose, openQA failures
// classed against it. A compose that ended without a result gets a short
// report of why instead. Writing a report again replaces it.
type Check struct {
	Fedfind *fedfind.Client
	// OpenQA is nil to leave openQA out.
	OpenQA *openqa.Client
	// Expected are the expected-image lists; nil means the built-in ones.
	Expected fedfind.ExpectedImages
	Archive  reports.Archive
	Logger   *slog.Logger
}

// Build runs the checks on cm against previous (nil: the previous
// successful compose of its stream) and builds the report: what
// `composeci check` runs. A DOOMED or TERMINATED compose gets the short
// report of BuildDoomed, with its STATUS as the evidence.
//
// The requests go out in two waves, so that the check costs the round
// trips of its longest chain rather than of every request in turn: first
// cm's STATUS, its images, its openQA jobs and the search for the previous
// compose (a listing, then STATUS probes) together; then the previous
// compose's images and openQA jobs together (see docs/performance.md,
// "The check's critical path"). When several requests fail, the error
// returned is the first in the order they were once made one after
// another — STATUS, images, previous compose, openQA jobs, previous
// images, previous jobs — not the first to come back, so a failing check
// names the same failure every time; and a doomed STATUS wins over them
// all, since a doomed compose may have no images to read.
func (c Check) Build(ctx context.Context, cm *fedfind.Compose, previous *fedfind.Compose) (reports.Report, error) {
	ff := c.Fedfind
	exp := c.Expected
	if exp == nil {
		exp = fedfind.DefaultExpectedImages()
	}
	var (
		status                        fedfind.Status
		images                        []fedfind.Image
		jobs                          []openqa.Job
		statusErr, imagesErr, jobsErr error
		searched                      *fedfind.Compose
		searchErr                     error
		searchedPrevious              = previous == nil
		prevImages                    []fedfind.Image
		prevJobs                      []openqa.Job
		prevImagesErr, prevJobsErr    error
	)
	// Every goroutine keeps its own error and returns nil: which error
	// counts is decided after both waves by a fixed order, not by which
	// request failed first, so no request cancels the others.
	var first errgroup.Group
	first.Go(func() error {
		status, statusErr = ff.Status(ctx, cm)
		return nil
	})
	first.Go(func() error {
		images, imagesErr = ff.Images(ctx, cm)
		return nil
	})
	if c.OpenQA != nil {
		first.Go(func() error {
			jobs, jobsErr = c.OpenQA.BuildJobs(ctx, cm.ID.String())
			return nil
		})
	}
	if searchedPrevious {
		first.Go(func() error {
			searched, searchErr = c.previousGood(ctx, cm)
			return nil
		})
	}
	_ = first.Wait() // the goroutines report through their variables

	switch {
	case errors.Is(statusErr, fedfind.ErrComposeNotFound):
		// The tree is gone; its images come from the metadata archive.
		status, statusErr = "UNKNOWN (tree garbage-collected; metadata from the archive)", nil
	case statusErr == nil && status.Failed():
		d := reports.Doomed{Reasons: []string{fmt.Sprintf("STATUS is %s: the compose ended without a result", status)}}
		if !searchedPrevious {
			return c.Doomed(ctx, cm, status, d)
		}
		if searchErr != nil {
			return reports.Report{}, searchErr
		}
		return c.doomedReport(cm, status, d, searched), nil
	}
	if searchedPrevious {
		previous = searched
	}
	if err := cmp.Or(statusErr, imagesErr, searchErr); err != nil {
		return reports.Report{}, err
	}
	if jobsErr != nil {
		return reports.Report{}, fmt.Errorf("openQA jobs of %s: %w", cm.ID, jobsErr)
	}
	in := checks.Input{Compose: cm.ID, Images: images, Expected: exp[cm.Stream.Kind], Jobs: jobs}
	if previous != nil {
		var second errgroup.Group
		second.Go(func() error {
			prevImages, prevImagesErr = ff.Images(ctx, previous)
			return nil
		})
		if c.OpenQA != nil {
			second.Go(func() error {
				prevJobs, prevJobsErr = c.OpenQA.BuildJobs(ctx, previous.ID.String())
				return nil
			})
		}
		_ = second.Wait()
		if prevImagesErr != nil {
			return reports.Report{}, fmt.Errorf("previous compose: %w", prevImagesErr)
		}
		if prevJobsErr != nil {
			return reports.Report{}, fmt.Errorf("openQA jobs of %s: %w", previous.ID, prevJobsErr)
		}
		in.Previous = &checks.Previous{Compose: previous.ID, Images: prevImages, Jobs: prevJobs}
	}
	return reports.Build(checks.Run(in), reports.Meta{Status: string(status), Location: cm.Location}), nil
}

// Doomed builds the short report of a compose that ended without a result:
// its STATUS, the evidence d, and the previous good compose of its stream.
func (c Check) Doomed(ctx context.Context, cm *fedfind.Compose, status fedfind.Status, d reports.Doomed) (reports.Report, error) {
	p, err := c.previousGood(ctx, cm)
	if err != nil {
		return reports.Report{}, err
	}
	return c.doomedReport(cm, status, d, p), nil
}

// doomedReport is the short report of Doomed, given the previous good
// compose (nil: none).
func (c Check) doomedReport(cm *fedfind.Compose, status fedfind.Status, d reports.Doomed, previous *fedfind.Compose) reports.Report {
	var prev fedfind.ComposeID
	if previous != nil {
		prev = previous.ID
	}
	return reports.BuildDoomed(cm.ID, prev, d, reports.Meta{Status: string(status), Location: cm.Location})
}

// previousGood finds the previous successful compose of cm's stream; nil
// when there is none (or cm belongs to no stream).
func (c Check) previousGood(ctx context.Context, cm *fedfind.Compose) (*fedfind.Compose, error) {
	if cm.Stream.Dir == "" {
		return nil, nil
	}
	res, err := c.Fedfind.Previous(ctx, cm, fedfind.PreviousOptions{})
	switch {
	case errors.Is(err, fedfind.ErrNoPrevious):
		logOrDiscard(c.Logger).InfoContext(ctx, "no previous compose: nothing to compare with", "compose", cm.ID, "err", err)
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("finding the previous compose of %s: %w", cm.ID, err)
	}
	return res.Compose, nil
}

// Run builds the report (the short one when await-complete found the
// compose doomed) and archives it.
func (c Check) Run(ctx context.Context, cm *fedfind.Compose, st State) (Outcome, error) {
	var r reports.Report
	var err error
	if st.Data[DataDoomed] == "true" {
		r, err = c.Doomed(ctx, cm, fedfind.Status(st.Data[DataStatus]), doomedEvidence(st.Data))
	} else {
		r, err = c.Build(ctx, cm, nil)
	}
	if errors.Is(err, httpclient.ErrNotFound) || errors.Is(err, fedfind.ErrComposeNotFound) {
		return Outcome{}, permanent(err)
	}
	if err != nil {
		return Outcome{}, err
	}
	written, err := c.Archive.Write(ctx, r)
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Advance: true, Note: r.SummaryLine(),
		Data: map[string]string{DataReport: written.Path, DataProblem: strconv.FormatBool(r.Problem)}}, nil
}

// doomedEvidence reads back what await-complete recorded of a doomed
// compose.
func doomedEvidence(data map[string]string) reports.Doomed {
	var d reports.Doomed
	if s := data[DataReasons]; s != "" {
		d.Reasons = strings.Split(s, "\n")
	}
	for _, f := range strings.Split(data[DataFailed], ",") {
		if id, err := strconv.Atoi(f); err == nil {
			d.FailedTasks = append(d.FailedTasks, id)
		}
	}
	return d
}
