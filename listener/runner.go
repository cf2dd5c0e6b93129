package listener

import (
	"context"
	"errors"

	"github.com/composeci/composeci/listener/workflow"
	"github.com/composeci/composeci/stages"
)

// stageRunner runs the compose stages for the workflow engine, which knows
// stage names and outcomes but not what a stage does, and times the
// compose's way through them.
type stageRunner struct {
	c       *stages.Compose
	metrics *metrics
}

func (r stageRunner) Run(ctx context.Context, stage workflow.Stage, w workflow.Workflow) (workflow.Outcome, error) {
	out, err := r.c.Run(ctx, stages.Name(stage), stages.State{ComposeID: w.ComposeID, Location: w.Location, Data: w.Data})
	if err == nil && r.metrics != nil {
		r.metrics.composeTimes(stages.Name(stage), w.Data, out.Data)
	}
	if err != nil {
		if errors.Is(err, stages.ErrPermanent) {
			return workflow.Outcome{}, permanentError{err}
		}
		return workflow.Outcome{}, err
	}
	end := out.End
	switch out.End {
	case stages.EndDone:
		end = workflow.StateDone
	case stages.EndDoomed:
		end = workflow.StateDoomed
	}
	return workflow.Outcome{Advance: out.Advance, Next: workflow.Stage(out.Next), RetryAfter: out.RetryAfter,
		End: end, Note: out.Note, Data: out.Data}, nil
}

// permanentError carries a stage's permanent error to the engine, which
// fails the workflow at once, with the stage's own message.
type permanentError struct{ error }

func (e permanentError) Is(target error) bool { return target == workflow.ErrPermanent }

func (e permanentError) Unwrap() error { return e.error }
