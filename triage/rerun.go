package triage

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/datadir"
	"github.com/composeci/composeci/openqa"
	"github.com/composeci/composeci/reports"
)

// The scopes of a re-run: which jobs of a compose to restart.
const (
	ScopeFailed      = "failed"       // every test whose newest job failed
	ScopeNewFailures = "new-failures" // every new failure not re-run yet
	ScopeJob         = "job"          // one job
	ScopeImage       = "image"        // every test of an image (FLAVOR) that did not pass
	ScopeTest        = "test"         // every run of a test that did not pass
	ScopeConfirm     = "confirm"      // the pipeline's confirmation of new failures
)

// Ledger is the audit trail of a compose's re-runs. An entry is recorded
// as an intent before openQA is asked (RerunJobID 0) and completed with
// the clone's id after, so that a crash between the two is recognised: a
// job with a clone and an intent was restarted by composeci.
type Ledger interface {
	// Reruns returns the compose's entries, intents included, oldest
	// first.
	Reruns(ctx context.Context, composeID string) ([]reports.Rerun, error)
	// Record adds an entry or completes the one of the same job.
	Record(ctx context.Context, composeID string, r reports.Rerun) error
}

// Done returns the completed re-runs of entries: the first try's id → the
// re-run's, as the checks take them.
func Done(entries []reports.Rerun) map[int64]int64 {
	out := map[int64]int64{}
	for _, r := range entries {
		if r.RerunJobID != 0 {
			out[r.JobID] = r.RerunJobID
		}
	}
	return out
}

// Completed keeps the entries whose re-run was made.
func Completed(entries []reports.Rerun) []reports.Rerun {
	out := []reports.Rerun{}
	for _, r := range entries {
		if r.RerunJobID != 0 {
			out = append(out, r)
		}
	}
	return out
}

// LedgerFile is the file, beside a compose's report, of its re-runs.
const LedgerFile = "reruns.json"

// FileLedger keeps each compose's re-runs in the report archive, beside its
// report: <Dir>/<release>/<compose ID>/reruns.json, changed under a lock
// and written atomically.
type FileLedger struct {
	// Dir is the report archive (<data>/reports).
	Dir string
}

// LedgerDoc is one compose's audit trail as its backends store it.
type LedgerDoc struct {
	ComposeID string          `json:"compose_id"`
	Reruns    []reports.Rerun `json:"reruns"`
}

// Add records r, or completes the intent of the same job.
func (d *LedgerDoc) Add(r reports.Rerun) { d.Reruns = upsert(d.Reruns, r) }

func (l FileLedger) file(composeID string) (string, error) {
	if err := CheckComposeID(composeID); err != nil {
		return "", err
	}
	rel, err := reports.ReleaseOf(composeID)
	if err != nil {
		return "", err
	}
	return filepath.Join(l.Dir, filepath.FromSlash(path.Join(rel, composeID)), LedgerFile), nil
}

// CheckComposeID accepts only canonical compose IDs: they name keys and
// files.
func CheckComposeID(id string) error {
	cid, err := fedfind.ParseComposeID(id)
	if err != nil {
		return err
	}
	if cid.String() != id {
		return fmt.Errorf("%w: compose ID %q is not canonical (%s)", fedfind.ErrInvalidInput, id, cid)
	}
	return nil
}

func readLedger(file, composeID string) (LedgerDoc, error) {
	doc := LedgerDoc{ComposeID: composeID, Reruns: []reports.Rerun{}}
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return doc, nil
	}
	if err != nil {
		return doc, fmt.Errorf("re-runs of %s: %w", composeID, err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return doc, fmt.Errorf("re-runs of %s: %s: %w", composeID, LedgerFile, err)
	}
	return doc, nil
}

// Reruns implements Ledger.
func (l FileLedger) Reruns(ctx context.Context, composeID string) ([]reports.Rerun, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := l.file(composeID)
	if err != nil {
		return nil, err
	}
	doc, err := readLedger(f, composeID)
	return doc.Reruns, err
}

// Record implements Ledger.
func (l FileLedger) Record(ctx context.Context, composeID string, r reports.Rerun) error {
	f, err := l.file(composeID)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		return fmt.Errorf("re-runs of %s: %w", composeID, err)
	}
	lock, err := datadir.Wait(ctx, filepath.Dir(f), LedgerFile+".lock", "composeci re-runs")
	if err != nil {
		return fmt.Errorf("re-runs of %s: %w", composeID, err)
	}
	defer func() { _ = lock.Release() }()
	doc, err := readLedger(f, composeID)
	if err != nil {
		return err
	}
	doc.Add(r)
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return datadir.WriteAtomic(f, append(b, '\n'))
}

// upsert adds r, or completes the intent of the same job (an entry already
// complete keeps its re-run).
func upsert(entries []reports.Rerun, r reports.Rerun) []reports.Rerun {
	i := slices.IndexFunc(entries, func(e reports.Rerun) bool { return e.JobID == r.JobID })
	switch {
	case i < 0:
		entries = append(entries, r)
	case entries[i].RerunJobID == 0:
		entries[i].RerunJobID = r.RerunJobID
	}
	slices.SortStableFunc(entries, func(a, b reports.Rerun) int { return a.At.Compare(b.At) })
	return entries
}

// Request asks for re-runs of a compose's jobs.
type Request struct {
	ComposeID string
	Scope     string
	// JobID, Image and Test narrow the scopes that name them.
	JobID int64
	Image string
	Test  string
	// Reason and By go into the audit trail.
	Reason, By string
	// DryRun restarts nothing, and says what it would restart.
	DryRun bool
	// Max caps the jobs restarted (0: no cap); the rest are skipped.
	Max int
}

// Restarted is a job re-run (or, in a dry run, that would be).
type Restarted struct {
	JobID      int64  `json:"job_id"`
	RerunJobID int64  `json:"rerun_job_id"`
	Test       string `json:"test"`
	Flavor     string `json:"flavor"`
	Arch       string `json:"arch"`
}

// Skipped is a job of the scope not re-run, and why.
type Skipped struct {
	JobID  int64  `json:"job_id"`
	Reason string `json:"reason"`
}

// Result is the answer of a re-run request: `composeci rerun --json` and
// the API's.
type Result struct {
	Restarted []Restarted `json:"restarted"`
	Skipped   []Skipped   `json:"skipped"`
}

// Rerunner restarts openQA jobs of a compose and records each in the
// compose's audit trail.
type Rerunner struct {
	OpenQA *openqa.Client
	Ledger Ledger
	Now    func() time.Time
}

func (rr Rerunner) now() time.Time {
	if rr.Now != nil {
		return rr.Now().UTC()
	}
	return time.Now().UTC()
}

// Select picks the jobs a request's scope names among the compose's jobs
// (newest of each test scenario) and findings (for new failures), and the
// jobs of the scope it will not restart, with why: a job restarted already
// (its clone is pending or done), one not finished yet, one past the cap.
// Re-asking while the clones are pending restarts nothing: each first try
// has its clone.
func Select(req Request, jobs []openqa.Job, findings checks.Findings) ([]openqa.Job, []Skipped, error) {
	byID := make(map[int64]openqa.Job, len(jobs))
	for _, j := range jobs {
		byID[j.ID] = j
	}
	newest := newestJobs(jobs)
	var picked []openqa.Job
	var skipped []Skipped
	notPassed := func(j openqa.Job) bool { return j.Result != openqa.ResultPassed }
	switch req.Scope {
	case ScopeFailed:
		for _, j := range newest {
			if j.Final() && j.Result == openqa.ResultFailed {
				picked = append(picked, j)
			}
		}
	case ScopeNewFailures, ScopeConfirm:
		for _, r := range findings.OpenQA.Pending {
			if r.RerunOf != 0 {
				skipped = append(skipped, Skipped{JobID: r.RerunOf, Reason: fmt.Sprintf("re-run pending: job %d", r.JobID)})
			}
		}
		for _, r := range findings.OpenQA.NewFailures {
			if r.RerunOf != 0 {
				skipped = append(skipped, Skipped{JobID: r.RerunOf, Reason: fmt.Sprintf("re-run already: job %d", r.JobID)})
				continue
			}
			if j, ok := byID[r.JobID]; ok {
				picked = append(picked, j)
			}
		}
	case ScopeJob:
		j, ok := byID[req.JobID]
		if !ok {
			return nil, nil, fmt.Errorf("%w: job %d is not a job of %s", fedfind.ErrInvalidInput, req.JobID, req.ComposeID)
		}
		picked = append(picked, j)
	case ScopeImage:
		for _, j := range newest {
			if j.Flavor() == req.Image && j.Final() && notPassed(j) {
				picked = append(picked, j)
			}
		}
		if !slices.ContainsFunc(jobs, func(j openqa.Job) bool { return j.Flavor() == req.Image }) {
			return nil, nil, fmt.Errorf("%w: %s has no openQA jobs of image %q (an image is named by its identity, e.g. Server-dvd-iso)",
				fedfind.ErrInvalidInput, req.ComposeID, req.Image)
		}
	case ScopeTest:
		for _, j := range newest {
			if j.Test == req.Test && j.Final() && notPassed(j) {
				picked = append(picked, j)
			}
		}
		if !slices.ContainsFunc(jobs, func(j openqa.Job) bool { return j.Test == req.Test }) {
			return nil, nil, fmt.Errorf("%w: %s has no openQA jobs of test %q", fedfind.ErrInvalidInput, req.ComposeID, req.Test)
		}
	default:
		return nil, nil, fmt.Errorf("%w: re-run scope %q: want failed, new-failures, job, image or test", fedfind.ErrInvalidInput, req.Scope)
	}
	var out []openqa.Job
	for _, j := range picked {
		switch {
		case j.CloneID != 0:
			skipped = append(skipped, Skipped{JobID: j.ID, Reason: fmt.Sprintf("restarted already: job %d", j.CloneID)})
		case !j.Final():
			skipped = append(skipped, Skipped{JobID: j.ID, Reason: "not finished yet (" + j.State + ")"})
		case req.Max > 0 && len(out) >= req.Max:
			skipped = append(skipped, Skipped{JobID: j.ID, Reason: fmt.Sprintf("over the cap of %d re-runs", req.Max)})
		default:
			out = append(out, j)
		}
	}
	slices.SortFunc(out, func(a, b openqa.Job) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(skipped, func(a, b Skipped) int { return cmp.Compare(a.JobID, b.JobID) })
	return out, skipped, nil
}

// newestJobs keeps the newest job of each test scenario (a job superseded
// by its clone, or by a newer job of the same scenario, is left out).
func newestJobs(jobs []openqa.Job) []openqa.Job {
	ids := map[int64]bool{}
	for _, j := range jobs {
		ids[j.ID] = true
	}
	best := map[checks.Scenario]openqa.Job{}
	for _, j := range jobs {
		if j.CloneID != 0 && ids[j.CloneID] {
			continue
		}
		s := checks.ScenarioOf(j)
		if cur, ok := best[s]; !ok || j.ID > cur.ID {
			best[s] = j
		}
	}
	out := make([]openqa.Job, 0, len(best))
	for _, j := range best {
		out = append(out, j)
	}
	slices.SortFunc(out, func(a, b openqa.Job) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Rerun restarts the jobs and records each: an intent first, the clone's
// id once openQA made it. A job found with a clone and an intent of its
// own (a crash between the two) is completed, not restarted again.
func (rr Rerunner) Rerun(ctx context.Context, req Request, jobs []openqa.Job, skipped []Skipped) (Result, error) {
	res := Result{Restarted: []Restarted{}, Skipped: slices.Clone(skipped)}
	if res.Skipped == nil {
		res.Skipped = []Skipped{}
	}
	for _, j := range jobs {
		entry := reports.Rerun{At: rr.now(), By: req.By, Reason: req.Reason, Scope: req.Scope, JobID: j.ID,
			Test: j.Test, Flavor: j.Flavor(), Arch: j.Arch()}
		done := Restarted{JobID: j.ID, Test: j.Test, Flavor: j.Flavor(), Arch: j.Arch()}
		if req.DryRun {
			res.Restarted = append(res.Restarted, done)
			continue
		}
		if err := rr.Ledger.Record(ctx, req.ComposeID, entry); err != nil {
			return res, err
		}
		clone, _, err := rr.OpenQA.Restart(ctx, j.ID)
		if err != nil {
			return res, fmt.Errorf("re-running job %d (%s): %w", j.ID, j.Test, err)
		}
		entry.RerunJobID = clone
		if err := rr.Ledger.Record(ctx, req.ComposeID, entry); err != nil {
			return res, fmt.Errorf("job %d was restarted as %d, but recording it failed: %w", j.ID, clone, err)
		}
		done.RerunJobID = clone
		res.Restarted = append(res.Restarted, done)
	}
	return res, nil
}

// Recover completes the intents whose job openQA did clone (a crash
// between restarting and recording), so the checks count those re-runs.
func (rr Rerunner) Recover(ctx context.Context, composeID string, jobs []openqa.Job) error {
	entries, err := rr.Ledger.Reruns(ctx, composeID)
	if err != nil {
		return err
	}
	byID := map[int64]openqa.Job{}
	for _, j := range jobs {
		byID[j.ID] = j
	}
	for _, e := range entries {
		if j, ok := byID[e.JobID]; ok && e.RerunJobID == 0 && j.CloneID != 0 {
			e.RerunJobID = j.CloneID
			if err := rr.Ledger.Record(ctx, composeID, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// String names a request for logs and the audit trail.
func (r Request) String() string {
	switch r.Scope {
	case ScopeJob:
		return "job " + strconv.FormatInt(r.JobID, 10)
	case ScopeImage:
		return "image " + r.Image
	case ScopeTest:
		return "test " + r.Test
	}
	return r.Scope
}
