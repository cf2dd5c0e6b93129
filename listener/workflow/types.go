// Package workflow is composeci's durable per-compose workflow engine on
// NATS JetStream. Events (package listener/event) go into a stream; a
// dispatcher turns them into workflows in a KV bucket and queues each
// workflow's first task; workers take tasks from a work queue, run the
// stage through a StageRunner, and move the workflow on with
// compare-and-set. Every step is idempotent, so any process may crash at
// any point and another takes over.
//
// The engine knows compose IDs and stage names, not Fedora: the stages and
// their order come from Options, and what a stage does from the
// StageRunner (in composeci, package stages). docs/architecture.md shows
// where it sits; docs/pipeline.md is the operator's view.
package workflow

import (
	"context"
	"errors"
	"time"
)

// Stage names one step of a workflow. The engine runs the stages in the
// order Options.Stages gives.
type Stage string

// The states of a workflow.
const (
	StateActive = "active" // a stage is pending or running
	StateDone   = "done"   // the last stage completed
	StateDoomed = "doomed" // the compose ended without result (DOOMED, TERMINATED)
	StateFailed = "failed" // a stage failed for good (permanent error or retries exhausted)
)

// Outcome is what one run of a stage decided.
type Outcome struct {
	// Advance: the stage is complete; the workflow moves to the next stage
	// (or to StateDone after the last).
	Advance bool
	// Next, with Advance, skips ahead to this stage instead of the one
	// after (a doomed compose goes straight to its report). It must come
	// later in the order; otherwise the outcome is an error.
	Next Stage
	// RetryAfter: not yet (an await stage): run the stage again after this
	// long. Ignored when Advance or End is set.
	RetryAfter time.Duration
	// End ends the workflow in this state (StateDone, StateDoomed).
	End string
	// Note says, for people, where the stage stands ("running: 3 of 9 image
	// tasks open"); it is kept in the workflow state.
	Note string
	// Data is kept in the workflow for later stages and for people (job
	// ids, the report's address, the mail's Message-ID): small strings only.
	Data map[string]string
}

// StageRunner runs one stage of one compose's workflow. It must be
// idempotent: a stage may run again after a crash or a redelivery, and must
// then do nothing twice. An error is retried with backoff; an error
// wrapping ErrPermanent ends the workflow as failed at once.
type StageRunner interface {
	Run(ctx context.Context, stage Stage, w Workflow) (Outcome, error)
}

// StageRunnerFunc adapts a function to StageRunner.
type StageRunnerFunc func(ctx context.Context, stage Stage, w Workflow) (Outcome, error)

// Run calls f.
func (f StageRunnerFunc) Run(ctx context.Context, stage Stage, w Workflow) (Outcome, error) {
	return f(ctx, stage, w)
}

// ErrPermanent marks a stage error that no retry can mend (a compose that
// does not exist, bad input): the workflow ends as failed.
var ErrPermanent = errors.New("permanent failure")

// Workflow is the durable state of one compose's workflow, kept in a
// key-value store and changed only by compare-and-set.
type Workflow struct {
	ComposeID string `json:"compose_id"`
	// State is StateActive, StateDone, StateDoomed or StateFailed.
	State string `json:"state"`
	// Stage is the stage pending or running (the last one, once ended).
	Stage Stage `json:"stage"`
	// Attempt counts runs of the current stage (1 for the first).
	Attempt int `json:"attempt"`
	// Note is the current stage's last Outcome.Note, or the error.
	Note string `json:"note,omitempty"`
	// Data accumulates the stages' Outcome.Data.
	Data map[string]string `json:"data,omitempty"`
	// Location is what the first event said, if anything.
	Location string `json:"location,omitempty"`
	// Events counts the events received for the compose (duplicates too).
	Events    int       `json:"events"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// History lists the stage transitions, newest last (bounded).
	History []Transition `json:"history,omitempty"`
}

// Transition is one change of stage or state.
type Transition struct {
	At    time.Time `json:"at"`
	Stage Stage     `json:"stage"`
	State string    `json:"state"`
	Note  string    `json:"note,omitempty"`
}
