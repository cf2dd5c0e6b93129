package openqa

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// ErrNotRestarted: openQA answered a restart without cloning the job (it
// is still scheduled, or unknown).
var ErrNotRestarted = errors.New("openqa: job not restarted")

// Restart clones a job (POST /api/v1/jobs/<id>/restart, operator rights)
// and returns the clone's id. A job that was cloned already returns that
// clone, with cloned false: restarting is idempotent. The POST is never
// repeated blindly: when it fails or times out, the job is read again
// (after Options.RecheckDelay, or the Retry-After of a 429 or 503), and a
// clone found there is the answer. Only a job found without a clone after
// a failure that may pass is restarted again, at most Options.PostAttempts
// times in all.
func (c *Client) Restart(ctx context.Context, id int64) (clone int64, cloned bool, err error) {
	j, err := c.Job(ctx, id, false)
	if err != nil {
		return 0, false, fmt.Errorf("restarting job %d: %w", id, err)
	}
	if j.CloneID != 0 {
		return j.CloneID, false, nil
	}
	for attempt := 1; ; attempt++ {
		var res struct {
			Result []map[string]int64 `json:"result"`
			Errors []string           `json:"errors"`
		}
		postErr := c.Post(ctx, "jobs/"+strconv.FormatInt(id, 10)+"/restart", nil, &res)
		if postErr == nil {
			for _, pair := range res.Result {
				if n, ok := pair[strconv.FormatInt(id, 10)]; ok && n != 0 {
					return n, true, nil
				}
			}
		}
		transient := postErr != nil && postMayHaveFailedTransiently(ctx, postErr)
		if transient {
			c.log.Warn("openqa: restart failed; checking whether it cloned the job before trying again",
				"job", id, "attempt", attempt, "err", postErr)
			if err := sleepCtx(ctx, c.recheckWait(postErr)); err != nil {
				return 0, false, fmt.Errorf("restarting job %d: %w (then: %w)", id, postErr, err)
			}
		}
		// An error, or an answer without the clone (already cloned by
		// someone meanwhile, still scheduled): the job says what happened.
		j, err = c.Job(ctx, id, false)
		switch {
		case err != nil && postErr != nil:
			return 0, false, fmt.Errorf("restarting job %d: %w", id, postErr)
		case err != nil:
			return 0, false, fmt.Errorf("restarting job %d: %w", id, err)
		case j.CloneID != 0:
			return j.CloneID, postErr != nil, nil
		case transient && attempt < c.opts.PostAttempts:
			continue // the job has no clone: the POST did nothing
		case postErr != nil:
			return 0, false, fmt.Errorf("restarting job %d: after %d attempts: %w", id, attempt, postErr)
		}
		return 0, false, fmt.Errorf("%w: job %d is %s; openQA said %q", ErrNotRestarted, id, j.State, res.Errors)
	}
}

// FailedModules returns the names of the openQA test modules a job failed
// in (GET /api/v1/jobs/<id>/details), in the order they ran.
func (c *Client) FailedModules(ctx context.Context, id int64) ([]string, error) {
	var body struct {
		Job struct {
			TestResults []struct {
				Name   string `json:"name"`
				Result string `json:"result"`
			} `json:"testresults"`
		} `json:"job"`
	}
	if err := c.Get(ctx, "jobs/"+strconv.FormatInt(id, 10)+"/details", nil, &body); err != nil {
		return nil, fmt.Errorf("modules of job %d: %w", id, err)
	}
	var out []string
	for _, m := range body.Job.TestResults {
		if m.Result == ResultFailed {
			out = append(out, m.Name)
		}
	}
	return out, nil
}
