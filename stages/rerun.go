package stages

import (
	"context"
	"errors"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/triage"
)

// ErrNoRerun: re-runs need openQA and an audit trail.
var ErrNoRerun = errors.New("re-runs need openQA (with an API key) and the re-run ledger")

// Rerun re-runs the openQA jobs of cm that req names (failed, new failures,
// a job, an image, a test) and records each in the compose's audit trail:
// what `composeci rerun` and POST /api/v1/composes/<ID>/rerun do. Jobs
// restarted already, or not finished, are skipped with why; asking again
// while the re-runs are pending restarts nothing.
func (c Check) Rerun(ctx context.Context, cm *fedfind.Compose, req triage.Request) (triage.Result, error) {
	if c.OpenQA == nil || c.Ledger == nil {
		return triage.Result{}, ErrNoRerun
	}
	in, _, err := c.Input(ctx, cm, nil) // completes the trail after a crash, too
	if err != nil {
		return triage.Result{}, err
	}
	req.ComposeID = cm.ID.String()
	picked, skipped, err := triage.Select(req, in.Jobs, checks.Run(in))
	if err != nil {
		return triage.Result{}, err
	}
	return triage.Rerunner{OpenQA: c.OpenQA, Ledger: c.Ledger, Now: c.Now}.Rerun(ctx, req, picked, skipped)
}
