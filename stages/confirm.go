package stages

import (
	"context"
	"fmt"
	"strconv"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/triage"
)

// DefaultConfirmMax is how many new failures of one compose confirm re-runs
// at most: a broken compose must not flood openQA.
const DefaultConfirmMax = 20

// Confirm re-runs each new failure once in openQA — not a known failure,
// not a known issue, not a soft failure — and waits for the re-runs: the
// check then reports a failure that failed again as confirmed, and one
// whose re-run passed as flaky, out of the alarm. Like scheduling it does
// nothing twice: a job that has a clone is not restarted, and the re-runs
// are recorded (intent, then clone) in the compose's audit trail.
type Confirm struct {
	// Check reads and classifies the compose; its OpenQA and Ledger are
	// what confirm needs too.
	Check Check
	// Max is the most re-runs per compose; 0 turns confirmation off.
	Max int
	// Wait is how the re-runs are awaited (its OpenQA, Poll, Grace, Now).
	Wait AwaitResults
}

// Run restarts the compose's new failures (the first run), then waits until
// every job, re-runs included, is final.
func (c Confirm) Run(ctx context.Context, cm *fedfind.Compose, st State) (Outcome, error) {
	oq, ledger := c.Check.OpenQA, c.Check.Ledger
	if c.Max <= 0 || oq == nil || ledger == nil {
		return Outcome{Advance: true, Note: "confirmation of new failures off"}, nil
	}
	if st.Data[DataConfirm] == "" {
		in, _, err := c.Check.Input(ctx, cm, nil)
		if err != nil {
			return Outcome{}, err
		}
		entries, err := ledger.Reruns(ctx, cm.ID.String())
		if err != nil {
			return Outcome{}, err
		}
		// The cap counts the confirmations made before a crash too.
		left := c.Max
		for _, e := range entries {
			if e.Scope == triage.ScopeConfirm {
				left--
			}
		}
		req := triage.Request{ComposeID: cm.ID.String(), Scope: triage.ScopeConfirm, By: "composeci",
			Reason: "confirm a new failure", Max: max(left, 0)}
		rr := triage.Rerunner{OpenQA: oq, Ledger: ledger}
		res := triage.Result{}
		if left > 0 {
			picked, skipped, err := triage.Select(req, in.Jobs, checks.Run(in))
			if err != nil {
				return Outcome{}, err
			}
			if res, err = rr.Rerun(ctx, req, picked, skipped); err != nil {
				return Outcome{}, err
			}
		}
		data := map[string]string{DataConfirm: "restarted", DataConfirmed: strconv.Itoa(len(res.Restarted))}
		if len(res.Restarted) == 0 {
			return Outcome{Advance: true, Note: "no new failure to confirm", Data: data}, nil
		}
		return Outcome{RetryAfter: orDefault(c.Wait.Poll, defaultResultsPoll), Data: data,
			Note: fmt.Sprintf("re-running %s to confirm them", plural(len(res.Restarted), "new failure", "new failures"))}, nil
	}
	w := c.Wait
	w.OpenQA = oq
	out, err := w.untilFinal(ctx, cm, st, DataRerunsSince, DataRerunsFinal)
	if err == nil && out.Advance {
		out.Note = fmt.Sprintf("re-runs of %s new failures final", st.Data[DataConfirmed])
	}
	return out, err
}
