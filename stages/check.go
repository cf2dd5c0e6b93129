package stages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

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
	Archive  reports.Archive
	// Known is the registry of known issues (nil: none); Ledger the audit
	// trail of re-runs (nil: none), which tells confirmed and flaky
	// failures apart.
	Known  triage.Registry
	Ledger triage.Ledger
	// Now is the clock known issues expire by; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// maxModuleLookups bounds the job details read to match known issues by
// failed module: a broken compose with hundreds of failures costs no more.
const maxModuleLookups = 100

// Build runs the checks on cm against previous (nil: the previous
// successful compose of its stream) and builds the report: what
// `composeci check` runs. A DOOMED or TERMINATED compose gets the short
// report of BuildDoomed, with its STATUS as the evidence.
func (c Check) Build(ctx context.Context, cm *fedfind.Compose, previous *fedfind.Compose) (reports.Report, error) {
	status, err := c.Fedfind.Status(ctx, cm)
	switch {
	case errors.Is(err, fedfind.ErrComposeNotFound):
		// The tree is gone; its images come from the metadata archive.
		status, err = "UNKNOWN (tree garbage-collected; metadata from the archive)", nil
	case err == nil && status.Failed():
		return c.Doomed(ctx, cm, status, reports.Doomed{Reasons: []string{fmt.Sprintf("STATUS is %s: the compose ended without a result", status)}})
	}
	if err != nil {
		return reports.Report{}, err
	}
	in, reruns, err := c.Input(ctx, cm, previous)
	if err != nil {
		return reports.Report{}, err
	}
	return reports.Build(checks.Run(in), reports.Meta{Status: string(status), Location: cm.Location, Reruns: reruns}), nil
}

// Input gathers what the checks look at for cm: its images, the previous
// compose's (previous, or else the previous successful one), both
// composes' openQA jobs, the known issues, and the re-runs composeci made
// (returned too, for the report's audit trail).
func (c Check) Input(ctx context.Context, cm *fedfind.Compose, previous *fedfind.Compose) (checks.Input, []reports.Rerun, error) {
	ff := c.Fedfind
	exp := c.Expected
	if exp == nil {
		exp = fedfind.DefaultExpectedImages()
	}
	images, err := ff.Images(ctx, cm)
	if err != nil {
		return checks.Input{}, nil, err
	}
	in := checks.Input{Compose: cm.ID, Images: images, Expected: exp[cm.Stream.Kind], Now: c.now()}
	if previous == nil {
		if previous, err = c.previousGood(ctx, cm); err != nil {
			return checks.Input{}, nil, err
		}
	}
	if c.OpenQA != nil {
		if in.Jobs, err = c.OpenQA.BuildJobs(ctx, cm.ID.String()); err != nil {
			return checks.Input{}, nil, fmt.Errorf("openQA jobs of %s: %w", cm.ID, err)
		}
	}
	if previous != nil {
		p := &checks.Previous{Compose: previous.ID}
		if p.Images, err = ff.Images(ctx, previous); err != nil {
			return checks.Input{}, nil, fmt.Errorf("previous compose: %w", err)
		}
		if c.OpenQA != nil {
			if p.Jobs, err = c.OpenQA.BuildJobs(ctx, previous.ID.String()); err != nil {
				return checks.Input{}, nil, fmt.Errorf("openQA jobs of %s: %w", previous.ID, err)
			}
		}
		in.Previous = p
	}
	var reruns []reports.Rerun
	if c.Ledger != nil && c.OpenQA != nil {
		// Complete the trail first: a re-run made just before a crash
		// counts.
		if err := (triage.Rerunner{OpenQA: c.OpenQA, Ledger: c.Ledger}).Recover(ctx, cm.ID.String(), in.Jobs); err != nil {
			return checks.Input{}, nil, err
		}
		entries, err := c.Ledger.Reruns(ctx, cm.ID.String())
		if err != nil {
			return checks.Input{}, nil, err
		}
		in.Reruns, reruns = triage.Done(entries), triage.Completed(entries)
	}
	if in.KnownIssues, err = triage.Issues(ctx, c.Known); err != nil {
		return checks.Input{}, nil, err
	}
	if in.FailedModules, err = c.failedModules(ctx, in); err != nil {
		return checks.Input{}, nil, err
	}
	return in, reruns, nil
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
	var prev fedfind.ComposeID
	p, err := c.previousGood(ctx, cm)
	if err != nil {
		return reports.Report{}, err
	}
	if p != nil {
		prev = p.ID
	}
	return reports.BuildDoomed(cm.ID, prev, d, reports.Meta{Status: string(status), Location: cm.Location}), nil
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
