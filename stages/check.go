package stages

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/httpclient"
	"github.com/composeci/composeci/openqa"
	"github.com/composeci/composeci/reports"
	"github.com/composeci/composeci/triage"
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
	// Archive is where the report goes: the data directory's archive, or a
	// deployment's store in NATS.
	Archive reports.Store
	// Known is the registry of known issues (nil: none); Ledger the audit
	// trail of re-runs (nil: none), which tells confirmed and flaky
	// failures apart.
	Known  triage.Registry
	Ledger triage.Ledger
	// Gating asks Greenwave whether the compose would pass gating, once
	// the openQA results are in; nil: Greenwave is not asked.
	Gating *Gating
	// Now is the clock known issues expire by; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// maxModuleLookups bounds the job details read to match known issues by
// failed module: a broken compose with hundreds of failures costs no more.
const maxModuleLookups = 100

// Build runs the checks on cm against previous (nil: the previous
// successful compose of its stream) and builds the report: what
// `composeci check` runs. With Gating, Greenwave is asked about cm once
// the rest is read. A DOOMED or TERMINATED compose gets the short report
// of BuildDoomed, with its STATUS as the evidence.
func (c Check) Build(ctx context.Context, cm *fedfind.Compose, previous *fedfind.Compose) (reports.Report, error) {
	g, err := c.gather(ctx, cm, previous, true)
	if err != nil {
		return reports.Report{}, err
	}
	if g.doomed != nil {
		return *g.doomed, nil
	}
	if c.Gating.Applies(cm) {
		g.in.Gating = c.Gating.Ask(ctx, cm, c.Logger)
		if err := ctx.Err(); err != nil {
			return reports.Report{}, fmt.Errorf("asking Greenwave about %s: %w", cm.ID, err)
		}
	}
	meta := reports.Meta{Status: string(g.status), Label: g.label, Location: cm.Location, Reruns: g.reruns, OpenQALeftOut: c.OpenQA == nil,
		Packages: g.packages, PackagesNote: g.packagesNote}
	if c.OpenQA != nil {
		meta.OverviewURL = c.OpenQA.OverviewURL(fedfind.StreamOf(cm.ID).Version, cm.ID.String())
	}
	return reports.Build(checks.Run(g.in), meta), nil
}

// Input gathers what the checks look at for cm: its images, the previous
// compose's (previous, or else the previous successful one), both
// composes' openQA jobs, the known issues, and the re-runs composeci made
// (returned too, for the report's audit trail).
func (c Check) Input(ctx context.Context, cm *fedfind.Compose, previous *fedfind.Compose) (checks.Input, []reports.Rerun, error) {
	g, err := c.gather(ctx, cm, previous, false)
	return g.in, g.reruns, err
}

// gathered is what gather read.
type gathered struct {
	status fedfind.Status
	// label is a candidate's label (RC-1.2), "" when it has none or it
	// could not be read (for the report only).
	label  string
	in     checks.Input
	reruns []reports.Rerun
	// doomed is the short report of a compose whose STATUS says it ended
	// without a result (for the report only).
	doomed *reports.Report
	// packages are the two composes' source packages (for the report
	// only); nil when they were not read, and then packagesNote says why.
	packages     *reports.PackageInput
	packagesNote string
}

// gather reads the checks' input, and with forReport what only the report
// needs: cm's STATUS, its label (a production compose's), and both
// composes' source packages. The requests go out in two waves, so that
// the check costs the round trips of its longest chain rather than of
// every request in turn: first cm's STATUS, its composeinfo.json (for the
// label), its images, its openQA jobs and the search for the previous
// compose (a listing, then STATUS probes) together; then the previous compose's
// images and openQA jobs and both composes' rpms.json together (see
// docs/performance.md, "The check's critical path"). When several
// requests fail, the error returned is the first in the order they were
// once made one after another — STATUS, images, previous compose, openQA
// jobs, previous images, previous jobs — not the first to come back, so a
// failing check names the same failure every time; and a doomed STATUS
// wins over them all, since a doomed compose may have no images to read.
// An rpms.json that cannot be read fails nothing: older composes and some
// others have none, and the report says the packages were not compared;
// nor does a label that cannot be read.
func (c Check) gather(ctx context.Context, cm *fedfind.Compose, previous *fedfind.Compose, forReport bool) (gathered, error) {
	ff := c.Fedfind
	exp := c.Expected
	if exp == nil {
		exp = fedfind.DefaultExpectedImages()
	}
	var (
		g                             gathered
		images                        []fedfind.Image
		jobs                          []openqa.Job
		statusErr, imagesErr, jobsErr error
		searched                      *fedfind.Compose
		searchErr                     error
		searchedPrevious              = previous == nil
		prevImages                    []fedfind.Image
		prevJobs                      []openqa.Job
		prevImagesErr, prevJobsErr    error
		sources, prevSources          *fedfind.SourcePackages
		sourcesErr, prevSourcesErr    error
	)
	// Every goroutine keeps its own error and returns nil: which error
	// counts is decided after both waves by a fixed order, not by which
	// request failed first, so no request cancels the others.
	var first errgroup.Group
	if forReport {
		first.Go(func() error {
			g.status, statusErr = ff.Status(ctx, cm)
			return nil
		})
		if cm.ID.Type == fedfind.TypeProduction {
			// A candidate's label (RC-1.2) names it in release
			// validation; the report names it so too.
			first.Go(func() error {
				g.label = c.label(ctx, cm)
				return nil
			})
		}
	}
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
		g.status, statusErr = "UNKNOWN (tree garbage-collected; metadata from the archive)", nil
	case forReport && statusErr == nil && g.status.Failed():
		d := reports.Doomed{Reasons: []string{fmt.Sprintf("STATUS is %s: the compose ended without a result", g.status)}}
		var r reports.Report
		var err error
		switch {
		case !searchedPrevious:
			r, err = c.Doomed(ctx, cm, g.status, d)
		case searchErr != nil:
			err = searchErr
		default:
			r = c.doomedReport(cm, g.status, d, searched)
		}
		g.doomed = &r
		return g, err
	}
	if searchedPrevious {
		previous = searched
	}
	if err := cmp.Or(statusErr, imagesErr, searchErr); err != nil {
		return g, err
	}
	if jobsErr != nil {
		return g, fmt.Errorf("openQA jobs of %s: %w", cm.ID, jobsErr)
	}
	in := checks.Input{Compose: cm.ID, Images: images, Expected: exp[cm.Stream.Kind], Jobs: jobs, Now: c.now()}
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
		if forReport {
			second.Go(func() error {
				prevSources, prevSourcesErr = ff.SourcePackages(ctx, previous, fedfind.SourceOptions{})
				return nil
			})
			second.Go(func() error {
				sources, sourcesErr = ff.SourcePackages(ctx, cm, fedfind.SourceOptions{})
				return nil
			})
		}
		_ = second.Wait()
		if prevImagesErr != nil {
			return g, fmt.Errorf("previous compose: %w", prevImagesErr)
		}
		if prevJobsErr != nil {
			return g, fmt.Errorf("openQA jobs of %s: %w", previous.ID, prevJobsErr)
		}
		in.Previous = &checks.Previous{Compose: previous.ID, Images: prevImages, Jobs: prevJobs}
		if forReport {
			if prevSourcesErr == nil && sourcesErr == nil {
				g.packages = &reports.PackageInput{Old: prevSources, New: sources}
			} else if err := ctx.Err(); err != nil {
				return g, fmt.Errorf("reading the source packages of %s and %s: %w", previous.ID, cm.ID, err)
			} else {
				g.packagesNote = strings.Join(slices.DeleteFunc([]string{
					c.packagesUnread(ctx, previous, prevSourcesErr), c.packagesUnread(ctx, cm, sourcesErr)},
					func(s string) bool { return s == "" }), "; ")
			}
		}
	} else if forReport {
		g.packagesNote = "no previous compose to compare with"
	}
	if c.Ledger != nil && c.OpenQA != nil {
		// Complete the trail first: a re-run made just before a crash
		// counts.
		if err := (triage.Rerunner{OpenQA: c.OpenQA, Ledger: c.Ledger}).Recover(ctx, cm.ID.String(), in.Jobs); err != nil {
			return g, err
		}
		entries, err := c.Ledger.Reruns(ctx, cm.ID.String())
		if err != nil {
			return g, err
		}
		in.Reruns, g.reruns = triage.Done(entries), triage.Completed(entries)
	}
	var err error
	if in.KnownIssues, err = triage.Issues(ctx, c.Known); err != nil {
		return g, err
	}
	if in.FailedModules, err = c.failedModules(ctx, in); err != nil {
		return g, err
	}
	if g.packages != nil {
		g.packages.Images, g.packages.FailedModules = in.Images, in.FailedModules
	}
	g.in = in
	return g, nil
}

// label reads cm's label from its composeinfo.json: "" when it has none,
// or when it cannot be read — the label names the compose for people, and
// a report is not held up for it (the failure is logged).
func (c Check) label(ctx context.Context, cm *fedfind.Compose) string {
	ci, err := c.Fedfind.ComposeInfo(ctx, cm)
	if err != nil {
		if ctx.Err() == nil {
			logOrDiscard(c.Logger).WarnContext(ctx, "the compose's label could not be read; the report names it by its ID alone",
				"compose", cm.ID, "err", err)
		}
		return ""
	}
	return ci.Compose.Label
}

// packagesUnread logs why the source packages of cm could not be read (err;
// nil: they were) and says it for the report: "" when they were read. A
// compose without rpms.json is no surprise, logged at info; any other
// failure is a warning.
func (c Check) packagesUnread(ctx context.Context, cm *fedfind.Compose, err error) string {
	log := logOrDiscard(c.Logger)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, fedfind.ErrComposeNotFound):
		log.InfoContext(ctx, "source packages not compared: the compose's tree is gone", "compose", cm.ID, "err", err)
		return "the tree of " + cm.ID.String() + " is gone, and the metadata archive keeps no rpms.json"
	case errors.Is(err, httpclient.ErrNotFound):
		log.InfoContext(ctx, "source packages not compared: no rpms.json", "compose", cm.ID, "err", err)
		return cm.ID.String() + " has no rpms.json"
	}
	log.WarnContext(ctx, "source packages not compared: reading rpms.json failed", "compose", cm.ID, "err", err)
	return "the rpms.json of " + cm.ID.String() + " could not be read"
}

func (c Check) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// failedModules reads, for each failed job, the modules it failed in —
// only when a known issue names a module, and for at most
// maxModuleLookups jobs.
func (c Check) failedModules(ctx context.Context, in checks.Input) (map[int64][]string, error) {
	if c.OpenQA == nil || !slices.ContainsFunc(in.KnownIssues, func(k checks.KnownIssue) bool { return k.Module != "" }) {
		return nil, nil
	}
	out := map[int64][]string{}
	for _, j := range in.Jobs {
		if j.Result != openqa.ResultFailed || j.CloneID != 0 || len(out) >= maxModuleLookups {
			continue
		}
		mods, err := c.OpenQA.FailedModules(ctx, j.ID)
		if err != nil {
			return nil, err
		}
		out[j.ID] = mods
	}
	return out, nil
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
	counts, err := json.Marshal(r.Summary)
	if err != nil {
		return Outcome{}, fmt.Errorf("encoding the summary of %s: %w", cm.ID, err)
	}
	return Outcome{Advance: true, Note: r.SummaryLine(), Data: map[string]string{DataReport: written.Path,
		DataProblem: strconv.FormatBool(r.Problem), DataSummary: r.SummaryLine(), DataCounts: string(counts)}}, nil
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
