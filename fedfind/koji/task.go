package koji

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TaskState is a Koji task state (koji.TASK_STATES).
type TaskState int

// The task states with Koji's numbers.
const (
	StateFree     TaskState = 0
	StateOpen     TaskState = 1
	StateClosed   TaskState = 2
	StateCanceled TaskState = 3
	StateAssigned TaskState = 4
	StateFailed   TaskState = 5
)

var stateNames = [...]string{"FREE", "OPEN", "CLOSED", "CANCELED", "ASSIGNED", "FAILED"}

// String returns Koji's name of s ("CLOSED").
func (s TaskState) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "TaskState(" + strconv.Itoa(int(s)) + ")"
	}
	return stateNames[s]
}

// Finished reports whether s is final: CLOSED, CANCELED or FAILED, Koji's
// own test. A finished task never changes state again, which is what lets
// CacheFinal trust cached rows of finished tasks.
func (s TaskState) Finished() bool {
	return s == StateClosed || s == StateCanceled || s == StateFailed
}

// ParseTaskState reads a state name (any case) or number.
func ParseTaskState(s string) (TaskState, error) {
	for i, n := range stateNames {
		if strings.EqualFold(n, s) {
			return TaskState(i), nil
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n < len(stateNames) {
		return TaskState(n), nil
	}
	return 0, fmt.Errorf("%w: unknown task state %q", ErrInvalidQuery, s)
}

// unfinishedStates are the states a task can leave.
var unfinishedStates = []TaskState{StateFree, StateOpen, StateAssigned}

// Task is one Koji task as listTasks, getTaskInfo or getTaskChildren report
// it. Parent, HostID and Owner are 0 when the hub sent nil; times are zero
// when unset. Request is the decoded positional argument list; treat it as
// read-only.
type Task struct {
	ID             int
	Method         string
	State          TaskState
	Arch           string
	Owner          int
	OwnerName      string // only listTasks reports it
	Parent         int
	Label          string
	HostID         int
	ChannelID      int
	Priority       int
	Weight         float64
	CreateTime     time.Time
	StartTime      time.Time
	CompletionTime time.Time
	Request        []any
}

// Finished reports whether the task's state is final.
func (t Task) Finished() bool { return t.State.Finished() }

// TopLevel reports whether the task has no parent.
func (t Task) TopLevel() bool { return t.Parent == 0 }

// clone returns t with its own copy of Request, so callers cannot change
// what the cache holds.
func (t Task) clone() Task {
	if t.Request != nil {
		t.Request = cloneValue(t.Request).([]any)
	}
	return t
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = cloneValue(e)
		}
		return out
	}
	return v
}

// Image task methods, as Pungi and the Koji image plugins name them.
const (
	MethodKiwiBuild         = "kiwiBuild"
	MethodOSBuildImage      = "osbuildImage"
	MethodImageBuilderBuild = "imageBuilderBuild"
	MethodLiveMedia         = "livemedia"
	MethodImage             = "image"
	MethodLiveCD            = "livecd"
	MethodAppliance         = "appliance"
	MethodCreateKiwiImage   = "createKiwiImage"
	MethodCreateLiveMedia   = "createLiveMedia"
	MethodCreateImage       = "createImage"
	MethodCreateLiveCD      = "createLiveCD"
	MethodCreateAppliance   = "createAppliance"
)

// ImageParentMethods returns the top-level task methods that build a
// nightly's images, for a completeness query. (A function, not a variable:
// no package state a caller could change.)
func ImageParentMethods() []string {
	return []string{MethodKiwiBuild, MethodOSBuildImage, MethodImageBuilderBuild, MethodLiveMedia, MethodImage}
}

// Release returns the image release the task was asked to build (Pungi's
// "<date><type>.<respin>", e.g. "20240501.n.0"), or "" if the task is not an
// image task or its request has none. Parent tasks carry it in the opts
// struct at the end of the request; per-arch children as the third
// positional argument.
func (t Task) Release() string {
	_, rel := t.imageVersionRelease()
	return rel
}

// Version returns the image version ("Rawhide", "41", "41_Beta"), or "".
// kiwiBuild keeps it in opts; image, livemedia, livecd, appliance and
// osbuildImage as the second positional argument; imageBuilderBuild as the
// fifth in the current plugin ([target, arches, types, name, version,
// opts]) and in opts in the older one; children as the second.
func (t Task) Version() string {
	v, _ := t.imageVersionRelease()
	return v
}

func (t Task) imageVersionRelease() (version, release string) {
	req := t.Request
	arg := func(i int) string {
		if i < len(req) {
			return asString(req[i])
		}
		return ""
	}
	var opts map[string]any
	if n := len(req); n > 0 {
		opts, _ = req[n-1].(map[string]any)
	}
	switch t.Method {
	case MethodCreateKiwiImage, MethodCreateLiveMedia, MethodCreateImage, MethodCreateLiveCD, MethodCreateAppliance:
		return arg(1), arg(2)
	case MethodKiwiBuild:
		return asString(opts["version"]), asString(opts["release"])
	case MethodImage, MethodLiveMedia, MethodLiveCD, MethodAppliance, MethodOSBuildImage:
		return arg(1), asString(opts["release"])
	case MethodImageBuilderBuild:
		version = asString(opts["version"])
		if len(req) == 6 {
			if v := arg(4); v != "" {
				version = v
			}
		}
		return version, asString(opts["release"])
	}
	return "", ""
}

// RequestStrings calls yield with every string in the task's request,
// those inside nested arrays and structs included (to a depth of four),
// until yield returns false: the URLs of repositories and install trees
// there name the compose a task builds from.
func (t Task) RequestStrings(yield func(string) bool) {
	var walk func(v any, depth int) bool
	walk = func(v any, depth int) bool {
		switch v := v.(type) {
		case string:
			return yield(v)
		case []any:
			if depth > 0 {
				for _, e := range v {
					if !walk(e, depth-1) {
						return false
					}
				}
			}
		case map[string]any:
			if depth > 0 {
				for _, e := range v {
					if !walk(e, depth-1) {
						return false
					}
				}
			}
		}
		return true
	}
	walk(t.Request, 4)
}

// GetTaskInfo returns one task with its request, fresh from the hub (task
// states change, so it is not cached). An unknown ID is ErrNotFound.
func (c *Client) GetTaskInfo(ctx context.Context, id int) (Task, error) {
	var t Task
	var ok bool
	var bad error
	err := c.call(ctx, "getTaskInfo", []any{id, true}, func(d *decoder) (err error) {
		t, ok, bad, err = d.taskOrNil()
		return err
	})
	switch {
	case err != nil:
		return Task{}, err
	case bad != nil:
		return Task{}, bad
	case !ok:
		return Task{}, fmt.Errorf("%w: task %d", ErrNotFound, id)
	}
	return t, nil
}

// GetTaskInfos returns many tasks with their requests in batched
// multicalls, keyed by ID; unknown IDs are absent. A per-call fault fails
// the whole call, since a caller asking for tasks by ID wants them all.
func (c *Client) GetTaskInfos(ctx context.Context, ids []int) (map[int]Task, error) {
	calls := make([]Call, len(ids))
	for i, id := range ids {
		calls[i] = Call{Method: "getTaskInfo", Params: []any{id, true}}
	}
	out := make(map[int]Task, len(ids))
	var bad error
	errs, err := c.multiCall(ctx, calls, func(_ int, d *decoder) error {
		t, ok, b, err := d.taskOrNil()
		if ok {
			out[t.ID] = t
		}
		bad = cmpOr(bad, b)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, e := range errs {
		if e != nil {
			return nil, fmt.Errorf("koji: task %d: %w", ids[i], e)
		}
	}
	if bad != nil {
		return nil, bad
	}
	return out, nil
}

// GetTaskChildren returns a task's subtasks with their requests, in ID
// order: for a parent image task, one per arch, which is how Pungi tells
// which arches failed.
func (c *Client) GetTaskChildren(ctx context.Context, id int) ([]Task, error) {
	var tasks []Task
	var bad error
	err := c.call(ctx, "getTaskChildren", []any{id, true}, func(d *decoder) (err error) {
		tasks, bad, err = d.taskList()
		return err
	})
	if err != nil {
		return nil, err
	}
	if bad != nil {
		return nil, bad
	}
	return tasks, nil
}
