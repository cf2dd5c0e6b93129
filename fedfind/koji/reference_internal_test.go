package koji

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kolo/xmlrpc"
)

// The decode path the client had before the streaming decoder, kept as the
// reference the streaming decoder is tested and benchmarked against: kolo
// decodes the response into any, normalize repairs its empty structs, and
// taskFromMap converts each task map.

// koloDecodeResponse turns a methodResponse into a value or a *Fault with
// kolo, then normalize.
func koloDecodeResponse(data []byte) (any, error) {
	r := xmlrpc.Response(data)
	if err := r.Err(); err != nil {
		var fe xmlrpc.FaultError
		if errors.As(err, &fe) {
			return nil, &Fault{Code: fe.Code, String: fe.String}
		}
		return nil, fmt.Errorf("koji: decoding fault: %w", err)
	}
	var v any
	if err := r.Unmarshal(&v); err != nil {
		return nil, fmt.Errorf("koji: decoding response: %w", err)
	}
	return normalize(v), nil
}

// normalize repairs what kolo gives for empty structs: a typed-nil
// map[string]interface{} inside a non-nil interface becomes an empty map.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if x == nil {
			return map[string]any{}
		}
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	}
	return v
}

// taskFromMap converts a decoded task struct.
func taskFromMap(v any) (Task, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Task{}, fmt.Errorf("koji: task is %s, not a struct", describe(v))
	}
	id, ok := m["id"].(int64)
	if !ok {
		return Task{}, errors.New("koji: task without an integer id")
	}
	t := Task{
		ID:        int(id),
		Method:    asString(m["method"]),
		State:     TaskState(asInt(m["state"])),
		Arch:      asString(m["arch"]),
		Owner:     asInt(m["owner"]),
		OwnerName: asString(m["owner_name"]),
		Parent:    asInt(m["parent"]),
		Label:     asString(m["label"]),
		HostID:    asInt(m["host_id"]),
		ChannelID: asInt(m["channel_id"]),
		Priority:  asInt(m["priority"]),
		Weight:    asFloat(m["weight"]),
	}
	var err error
	if t.CreateTime, err = taskTime(m, "create"); err != nil {
		return Task{}, fmt.Errorf("koji: task %d: %w", t.ID, err)
	}
	if t.StartTime, err = taskTime(m, "start"); err != nil {
		return Task{}, fmt.Errorf("koji: task %d: %w", t.ID, err)
	}
	if t.CompletionTime, err = taskTime(m, "completion"); err != nil {
		return Task{}, fmt.Errorf("koji: task %d: %w", t.ID, err)
	}
	if r, ok := m["request"].([]any); ok {
		t.Request = r
	}
	return t, nil
}

// taskTime reads one of a task's times: the *_ts double when present, else
// the *_time string, else zero.
func taskTime(m map[string]any, prefix string) (time.Time, error) {
	switch ts := m[prefix+"_ts"].(type) {
	case float64:
		return fromEpoch(ts), nil
	case int64:
		return time.Unix(ts, 0).UTC(), nil
	}
	switch s := m[prefix+"_time"].(type) {
	case string:
		if s == "" {
			return time.Time{}, nil
		}
		return parseTime(s)
	case time.Time:
		return s.UTC(), nil
	}
	return time.Time{}, nil
}

func tasksFromList(v any) ([]Task, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("koji: task list is %s", describe(v))
	}
	out := make([]Task, 0, len(list))
	for _, e := range list {
		t, err := taskFromMap(e)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Task) int { return a.ID - b.ID })
	return out, nil
}

// referenceMultiCallTasks decodes a multicall of task lists the old way:
// one generic value per call (decode gives the whole response), then
// conversion. faults and bad are per call, as the streaming path gives them.
func referenceMultiCallTasks(data []byte, n int, decode func([]byte) (any, error)) (lists [][]Task, faults []*Fault, bad []error, err error) {
	v, err := decode(data)
	if err != nil {
		return nil, nil, nil, err
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != n {
		return nil, nil, nil, fmt.Errorf("koji: multicall of %d calls answered with %s", n, describe(v))
	}
	lists, faults, bad = make([][]Task, n), make([]*Fault, n), make([]error, n)
	for i, e := range arr {
		switch x := e.(type) {
		case []any:
			if len(x) != 1 {
				return nil, nil, nil, fmt.Errorf("koji: multicall result %d is an array of %d, want 1", i, len(x))
			}
			lists[i], bad[i] = tasksFromList(x[0])
		case map[string]any:
			code, ok1 := x["faultCode"].(int64)
			msg, ok2 := x["faultString"].(string)
			if !ok1 || (!ok2 && x["faultString"] != nil) {
				return nil, nil, nil, fmt.Errorf("koji: multicall result %d is a struct but not a fault", i)
			}
			faults[i] = &Fault{Code: int(code), String: msg}
		default:
			return nil, nil, nil, fmt.Errorf("koji: multicall result %d is %s", i, describe(e))
		}
	}
	return lists, faults, bad, nil
}

// streamingMultiCallTasks decodes the same with the streaming decoder, as
// ListTasks does.
func streamingMultiCallTasks(data []byte, n int) (lists [][]Task, faults []*Fault, bad []error, err error) {
	lists, bad = make([][]Task, n), make([]error, n)
	faults, err = readMultiCall(data, n, func(i int, d *decoder) (err error) {
		lists[i], bad[i], err = d.taskList()
		return err
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return lists, faults, bad, nil
}
