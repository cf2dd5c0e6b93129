package listener

import (
	"context"
	"errors"
	"time"
)

// Stage is one step of a compose's workflow.
type Stage string

// The stages, in order (DESIGN.md, "The pipeline of one compose").
const (
	StageDiscover      Stage = "discover"       // the compose is known with its location and stream
	StageAwaitComplete Stage = "await-complete" // STATUS final and Koji's image tasks finished
	StageSchedule      Stage = "schedule"       // openQA jobs posted, once per (flavor, arch)
	StageAwaitResults  Stage = "await-results"  // every job of the build final
	StageCheck         Stage = "check"          // findings against the previous compose
	StageReport        Stage = "report"         // JSON archived, email sent once
)

// Stages lists the stages in order.
func Stages() []Stage {
	return []Stage{StageDiscover, StageAwaitComplete, StageSchedule, StageAwaitResults, StageCheck, StageReport}
}

// Next returns the stage after s, or "" after the last.
func (s Stage) Next() Stage {
	all := Stages()
	for i, x := range all {
		if x == s && i+1 < len(all) {
			return all[i+1]
		}
	}
	return ""
}

// Valid reports whether s is one of the stages.
func (s Stage) Valid() bool {
	for _, x := range Stages() {
		if x == s {
			return true
		}
	}
	return false
}

// The states of a workflow.
const (
	StateActive = "active" // a stage is pending or running
	StateDone   = "done"   // the report stage completed
	StateDoomed = "doomed" // the compose ended without result (DOOMED, TERMINATED)
	StateFailed = "failed" // a stage failed for good (permanent error or retries exhausted)
)

// Outcome is what one run of a stage decided.
type Outcome struct {
	// Advance: the stage is complete; the workflow moves to the next stage
	// (or to StateDone after the last).
	Advance bool
	// RetryAfter: not yet (an await stage): run the stage again after this
	// long. Ignored when Advance or End is set.
	RetryAfter time.Duration
	// End ends the workflow in this state (StateDoomed, say).
	End string
	// Note says, for people, where the stage stands ("running: 3 of 9 image
	// tasks open"); it is kept in the workflow state.
	Note string
	// Data is kept in the workflow for later stages and for people (job
	// ids, the report's path, the mail's Message-ID): small strings only.
	Data map[string]string
}

// StageRunner runs one stage of one compose's workflow. It must be
// idempotent: a stage may run again after a crash or a redelivery, and must
// then do nothing twice (schedule checks openQA's live jobs first, report
// checks the mail ledger). An error is retried with backoff; an error
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
