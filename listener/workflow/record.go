package workflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/composeci/composeci/internal/backoff"
	"github.com/composeci/composeci/listener/event"
)

// record is what the KV bucket holds for one compose: the Workflow that
// people and stage runners see, plus the bookkeeping the engine needs to
// make every step idempotent. Its JSON is the Workflow's with a few more
// fields, so `nats kv get` shows something readable.
type record struct {
	Workflow
	// Gen tells this workflow from an earlier one of the same compose (its
	// creation time in Unix nanoseconds, or its last rewind's); it is part
	// of every task ID, so a task of a deleted and recreated (or rewound)
	// workflow is stale.
	Gen int64 `json:"gen"`
	// Failures counts the current stage's consecutive errors.
	Failures int `json:"failures,omitempty"`
	// Due is when the pending task may run (after RetryAfter or a
	// backoff); a worker that gets it earlier puts it back until then.
	Due time.Time `json:"due,omitzero"`
	// From names what made the latest transition: a task ID, or
	// "event/<stream sequence>", or "retry/...". A redelivered task or
	// event that finds itself here knows its change was applied and only
	// the publishing of the next task may be missing: it publishes that
	// again under its deterministic ID (a duplicate is dropped).
	From string `json:"from,omitempty"`
	// LastRun is when a stage run last changed the workflow; it paces
	// the hurrying of await-results by openQA events.
	LastRun time.Time `json:"last_run,omitzero"`
	// Lease names the worker running the pending task now ("<task
	// id>@<worker>") and LeaseUntil when that claim lapses unless renewed
	// (with the task's progress heartbeats). Another delivery of the task
	// — redelivered because heartbeats were lost while the stage still runs
	// — waits for the lease instead of running the stage beside it, so a
	// stage's side effects (posting to openQA) never happen twice at once.
	Lease      string    `json:"lease,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
}

// leased reports whether a worker other than holder holds a live lease.
func (r *record) leasedByOther(holder string, now time.Time) bool {
	return r.Lease != "" && r.Lease != holder && r.LeaseUntil.After(now)
}

// task is a message on the tasks stream: run this stage of this compose's
// workflow, this attempt, not before Due.
type task struct {
	ComposeID string    `json:"compose_id"`
	Gen       int64     `json:"gen"`
	Stage     Stage     `json:"stage"`
	Attempt   int       `json:"attempt"`
	Due       time.Time `json:"due,omitzero"`
}

// id is the task's Nats-Msg-Id. It is deterministic (compose, workflow
// generation, stage, attempt), so publishing the same next task twice (after
// a crash between publishing and acking) stores it once, and it is fresh for
// every new attempt, so a re-queued stage is never dropped as a duplicate.
func (t task) id() string {
	return encodeToken(t.ComposeID) + "/" + strconv.FormatInt(t.Gen, 10) + "/" + string(t.Stage) + "/" + strconv.Itoa(t.Attempt)
}

func (t task) valid(stages []Stage) error {
	if err := event.CheckComposeID(t.ComposeID); err != nil {
		return err
	}
	if !slices.Contains(stages, t.Stage) {
		return fmt.Errorf("unknown stage %q", t.Stage)
	}
	if t.Attempt < 1 || t.Gen == 0 {
		return fmt.Errorf("bad attempt %d or generation %d", t.Attempt, t.Gen)
	}
	return nil
}

// pending is the task the record waits for; only an active workflow has one.
func (r *record) pending() (task, bool) {
	if r.State != StateActive {
		return task{}, false
	}
	return task{ComposeID: r.ComposeID, Gen: r.Gen, Stage: r.Stage, Attempt: r.Attempt, Due: r.Due}, true
}

// current reports whether t is the task the workflow waits for now.
func (r *record) current(t task) bool {
	p, ok := r.pending()
	return ok && p.Gen == t.Gen && p.Stage == t.Stage && p.Attempt == t.Attempt
}

func (r *record) clone() *record {
	c := *r
	c.Workflow = cloneWorkflow(r.Workflow)
	return &c
}

func cloneWorkflow(w Workflow) Workflow {
	w.Data = maps.Clone(w.Data)
	w.History = slices.Clone(w.History)
	return w
}

func decodeRecord(b []byte) (*record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decoding workflow: %w", err)
	}
	if r.ComposeID == "" || r.Gen == 0 {
		return nil, errors.New("decoding workflow: no compose ID or generation")
	}
	return &r, nil
}

func (r *record) encode() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("encoding a workflow cannot fail: %v", err)) // only strings, numbers, times
	}
	return b
}

// transitionPolicy holds the settings that turn a stage's outcome into the
// workflow's next state.
type transitionPolicy struct {
	stages         []Stage // in order
	maxStageErrors int
	errorBackoff   backoff.Policy
	minRetryDelay  time.Duration
	historyLimit   int
}

// next returns the stage after s, or "" after the last.
func (pol transitionPolicy) next(s Stage) Stage {
	i := slices.Index(pol.stages, s)
	if i < 0 || i+1 >= len(pol.stages) {
		return ""
	}
	return pol.stages[i+1]
}

// newRecord starts a compose's workflow at its first stage.
func (pol transitionPolicy) newRecord(e event.Event, now time.Time, from string) *record {
	r := &record{
		Workflow: Workflow{
			ComposeID: e.ComposeID,
			State:     StateActive,
			Stage:     pol.stages[0],
			Attempt:   1,
			Location:  e.Location,
			Events:    1,
			CreatedAt: now,
			UpdatedAt: now,
		},
		Gen:  now.UnixNano(),
		Due:  now,
		From: from,
	}
	note := fmt.Sprintf("started by a %s event from %s", e.Kind, e.Source)
	if e.Status != "" {
		note += " (" + e.Status + ")"
	}
	r.addHistory(now, note, pol.historyLimit)
	return r
}

func (r *record) addHistory(now time.Time, note string, limit int) {
	r.History = append(r.History, Transition{At: now, Stage: r.Stage, State: r.State, Note: note})
	if limit > 0 && len(r.History) > limit {
		r.History = slices.Clone(r.History[len(r.History)-limit:])
	}
}

func (r *record) end(now time.Time, state, note string, limit int) {
	r.State = state
	r.Note = note
	r.Due = time.Time{}
	r.addHistory(now, note, limit)
}

// after is the record once the outcome (or error) of running task t is
// applied: the next stage, the same stage again later, or an end. It does
// not change r.
func (pol transitionPolicy) after(r *record, t task, out Outcome, runErr error, now time.Time) *record {
	n := r.clone()
	n.UpdatedAt, n.LastRun, n.From = now, now, t.id()
	n.Lease, n.LeaseUntil = "", time.Time{} // the run is over
	if runErr == nil && len(out.Data) > 0 {
		if n.Data == nil {
			n.Data = map[string]string{}
		}
		maps.Copy(n.Data, out.Data)
	}
	switch {
	case runErr != nil && errors.Is(runErr, ErrPermanent):
		n.end(now, StateFailed, runErr.Error(), pol.historyLimit)
	case runErr != nil:
		n.Failures++
		if n.Failures > pol.maxStageErrors {
			n.end(now, StateFailed, fmt.Sprintf("giving up after %d errors: %v", n.Failures, runErr), pol.historyLimit)
			break
		}
		delay := pol.errorBackoff.Delay(n.Failures - 1)
		n.Attempt++
		n.Due = now.Add(delay)
		n.Note = fmt.Sprintf("error %d of at most %d, again in %s: %v", n.Failures, pol.maxStageErrors+1, delay, runErr)
	case out.End != "":
		switch out.End {
		case StateDone, StateDoomed, StateFailed:
			n.end(now, out.End, out.Note, pol.historyLimit)
		default:
			n.end(now, StateFailed, fmt.Sprintf("stage %s ended the workflow in unknown state %q: %s", t.Stage, out.End, out.Note), pol.historyLimit)
		}
	case out.Advance && out.Next != "" && slices.Index(pol.stages, out.Next) <= slices.Index(pol.stages, t.Stage):
		n.end(now, StateFailed, fmt.Sprintf("stage %s asked to go on to %q, which does not come after it", t.Stage, out.Next), pol.historyLimit)
	case out.Advance:
		next := pol.next(t.Stage)
		if out.Next != "" {
			next = out.Next
		}
		if next == "" {
			n.end(now, StateDone, out.Note, pol.historyLimit)
			break
		}
		n.Stage, n.Attempt, n.Failures, n.Due, n.Note = next, 1, 0, now, ""
		note := string(t.Stage) + " done"
		if out.Note != "" {
			note += ": " + out.Note
		}
		n.addHistory(now, note, pol.historyLimit)
	default: // not yet
		delay := max(out.RetryAfter, pol.minRetryDelay)
		n.Attempt++
		n.Failures = 0
		n.Due = now.Add(delay)
		n.Note = out.Note
	}
	return n
}
