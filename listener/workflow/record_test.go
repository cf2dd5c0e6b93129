package workflow

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/internal/backoff"
)

func TestTransitions(t *testing.T) {
	pol := transitionPolicy{stages: Stages(), maxStageErrors: 3, errorBackoff: backoff.Policy{Base: time.Second, Max: 3 * time.Second}, minRetryDelay: 2 * time.Second, historyLimit: 50}
	t0 := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	now := t0.Add(time.Minute)
	start := func(stage Stage, attempt, failures int) (*record, task) {
		r := pol.newRecord(Event{Kind: KindComposeStatus, ComposeID: "Fedora-Rawhide-20261122.n.0", Source: SourceAMQP}, t0, "event/1")
		r.Stage, r.Attempt, r.Failures = stage, attempt, failures
		r.Data = map[string]string{"old": "1"}
		tk, _ := r.pending()
		return r, tk
	}
	for _, c := range []struct {
		name        string
		stage       Stage
		attempt     int
		failures    int
		out         Outcome
		err         error
		state       string
		wantStage   Stage
		wantAttempt int
		wantDue     time.Time
		note        string
	}{
		{name: "advance moves to the next stage, attempt 1, due now",
			stage: StageSchedule, attempt: 4, failures: 2, out: Outcome{Advance: true, Note: "9 jobs"},
			state: StateActive, wantStage: StageAwaitResults, wantAttempt: 1, wantDue: now},
		{name: "advance after the last stage is done",
			stage: StageReport, attempt: 1, out: Outcome{Advance: true, Note: "mailed"},
			state: StateDone, wantStage: StageReport, wantAttempt: 1, note: "mailed"},
		{name: "retry after runs the same stage as a new attempt later",
			stage: StageAwaitComplete, attempt: 2, failures: 1, out: Outcome{RetryAfter: time.Minute, Note: "3 open"},
			state: StateActive, wantStage: StageAwaitComplete, wantAttempt: 3, wantDue: now.Add(time.Minute), note: "3 open"},
		{name: "a zero outcome waits at least the minimum delay",
			stage: StageAwaitComplete, attempt: 1,
			state: StateActive, wantStage: StageAwaitComplete, wantAttempt: 2, wantDue: now.Add(2 * time.Second)},
		{name: "advance wins over RetryAfter",
			stage: StageCheck, attempt: 1, out: Outcome{Advance: true, RetryAfter: time.Hour},
			state: StateActive, wantStage: StageReport, wantAttempt: 1, wantDue: now},
		{name: "advance with Next skips ahead to it",
			stage: StageAwaitComplete, attempt: 3, out: Outcome{Advance: true, Next: StageCheck, Note: "doomed"},
			state: StateActive, wantStage: StageCheck, wantAttempt: 1, wantDue: now},
		{name: "Next back to an earlier stage fails",
			stage: StageCheck, attempt: 1, out: Outcome{Advance: true, Next: StageSchedule},
			state: StateFailed, wantStage: StageCheck, wantAttempt: 1, note: `go on to "schedule", which does not come after it`},
		{name: "Next to the stage itself fails",
			stage: StageCheck, attempt: 1, out: Outcome{Advance: true, Next: StageCheck},
			state: StateFailed, wantStage: StageCheck, wantAttempt: 1, note: "does not come after it"},
		{name: "Next to an unknown stage fails",
			stage: StageCheck, attempt: 1, out: Outcome{Advance: true, Next: "celebrate"},
			state: StateFailed, wantStage: StageCheck, wantAttempt: 1, note: "does not come after it"},
		{name: "end ends in its state",
			stage: StageAwaitComplete, attempt: 7, out: Outcome{End: StateDoomed, Note: "DOOMED"},
			state: StateDoomed, wantStage: StageAwaitComplete, wantAttempt: 7, note: "DOOMED"},
		{name: "end in an unknown state fails",
			stage: StageAwaitComplete, attempt: 1, out: Outcome{End: "exploded"},
			state: StateFailed, wantStage: StageAwaitComplete, wantAttempt: 1, note: `unknown state "exploded"`},
		{name: "an error backs off, doubling",
			stage: StageSchedule, attempt: 2, failures: 1, err: errors.New("502"),
			state: StateActive, wantStage: StageSchedule, wantAttempt: 3, wantDue: now.Add(2 * time.Second), note: "error 2 of at most 4, again in 2s: 502"},
		{name: "the backoff is capped",
			stage: StageSchedule, attempt: 3, failures: 2, err: errors.New("502"),
			state: StateActive, wantStage: StageSchedule, wantAttempt: 4, wantDue: now.Add(3 * time.Second)},
		{name: "errors past the budget fail",
			stage: StageSchedule, attempt: 4, failures: 3, err: errors.New("502"),
			state: StateFailed, wantStage: StageSchedule, wantAttempt: 4, note: "giving up after 4 errors: 502"},
		{name: "a permanent error fails at once",
			stage: StageDiscover, attempt: 1, err: fmt.Errorf("%w: no such compose", ErrPermanent),
			state: StateFailed, wantStage: StageDiscover, wantAttempt: 1, note: "no such compose"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, tk := start(c.stage, c.attempt, c.failures)
			before := string(r.encode())
			n := pol.after(r, tk, c.out, c.err, now)
			if string(r.encode()) != before {
				t.Error("after changed its input")
			}
			if n.State != c.state || n.Stage != c.wantStage || n.Attempt != c.wantAttempt || !n.Due.Equal(c.wantDue) {
				t.Errorf("got %s %s attempt %d due %s, want %s %s attempt %d due %s",
					n.State, n.Stage, n.Attempt, n.Due, c.state, c.wantStage, c.wantAttempt, c.wantDue)
			}
			if !strings.Contains(n.Note, c.note) {
				t.Errorf("note %q does not say %q", n.Note, c.note)
			}
			if n.From != tk.id() || !n.UpdatedAt.Equal(now) || !n.LastRun.Equal(now) {
				t.Errorf("bookkeeping: from %q, updated %s, last run %s", n.From, n.UpdatedAt, n.LastRun)
			}
			if n.Data["old"] != "1" {
				t.Errorf("data lost: %v", n.Data)
			}
			if _, ok := n.pending(); ok != (c.state == StateActive) {
				t.Errorf("pending task: %v in state %s", ok, n.State)
			}
		})
	}
}

func TestTransitionData(t *testing.T) {
	pol := transitionPolicy{stages: Stages(), maxStageErrors: 1, minRetryDelay: time.Second, historyLimit: 50}
	now := time.Now()
	r := pol.newRecord(Event{Kind: KindComposeStatus, ComposeID: "Fedora-44-20261010.1", Source: SourcePoll}, now, "event/1")
	tk, _ := r.pending()
	n := pol.after(r, tk, Outcome{Advance: true, Data: map[string]string{"stream": "44"}}, nil, now)
	if n.Data["stream"] != "44" || r.Data != nil {
		t.Errorf("data: new %v, old %v", n.Data, r.Data)
	}
	tk, _ = n.pending()
	m := pol.after(n, tk, Outcome{Data: map[string]string{"stream": "overwritten"}}, errors.New("boom"), now)
	if m.Data["stream"] != "44" {
		t.Errorf("data of a failed run kept: %v", m.Data)
	}
}

func TestHistoryBounded(t *testing.T) {
	pol := transitionPolicy{stages: Stages(), maxStageErrors: 1, minRetryDelay: time.Second, historyLimit: 4}
	now := time.Now()
	r := pol.newRecord(Event{Kind: KindComposeStatus, ComposeID: "Fedora-44-20261010.1", Source: SourcePoll}, now, "event/1")
	for range 10 {
		r.Stage = StageDiscover
		tk, _ := r.pending()
		r = pol.after(r, tk, Outcome{Advance: true}, nil, now)
	}
	if len(r.History) != 4 {
		t.Errorf("history has %d entries, want 4", len(r.History))
	}
}

func TestRecordJSON(t *testing.T) {
	r := transitionPolicy{stages: Stages(), historyLimit: 50}.newRecord(Event{Kind: KindComposeStatus, ComposeID: "Fedora-44-20261010.1", Source: SourcePoll, Location: "https://x"}, time.Now(), "event/7")
	r.Data = map[string]string{"k": "v"}
	b := r.encode()
	for _, field := range []string{`"compose_id":"Fedora-44-20261010.1"`, `"state":"active"`, `"stage":"discover"`, `"gen":`, `"from":"event/7"`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("%s lacks %s", b, field)
		}
	}
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.encode()) != string(b) {
		t.Errorf("round trip:\n%s\n%s", got.encode(), b)
	}
	for _, bad := range []string{`{}`, `not json`, `{"compose_id":"x"}`} {
		if _, err := decodeRecord([]byte(bad)); err == nil {
			t.Errorf("decodeRecord(%s) accepted", bad)
		}
	}
}

// FuzzDecodeRecord reads arbitrary workflow records, as a worker reads them
// from the KV bucket (a record written by another version, or damaged): a
// record it accepts encodes without the panic encode keeps for the
// impossible, and encoded reads back to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	for _, s := range []string{
		`{"compose_id": "Fedora-Rawhide-20261122.n.0", "state": "running", "stage": "check", "attempt": 1, "data": {"counts": "{\"ok\": 3}"}, "location": "https://kojipkgs.fedoraproject.org/compose/rawhide/Fedora-Rawhide-20261122.n.0/compose", "events": 2, "created_at": "2026-11-22T07:59:58Z", "updated_at": "2026-11-22T08:00:00.123456789+01:00", "history": [{"at": "2026-11-22T07:59:58Z", "stage": "find", "state": "done", "note": "found"}], "gen": 1795834798000000000, "failures": 1, "due": "2026-11-22T08:05:00Z", "from": "event/7", "last_run": "2026-11-22T08:00:00Z", "lease": "t@w", "lease_until": "2026-11-22T08:01:00Z"}`,
		`{"compose_id": "Fedora-44-20261010.1", "gen": 1}`,
		`{"compose_id": "", "gen": 1}`,
		`{"compose_id": "x", "gen": 0}`,
		`{"compose_id": "x", "gen": 1, "created_at": "9999-12-31T23:59:59-23:59"}`,
		`{"compose_id": "x", "gen": 1, "data": null, "history": null}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			if r != nil {
				t.Fatalf("both a record and %v", err)
			}
			return
		}
		if r.ComposeID == "" || r.Gen == 0 {
			t.Fatalf("accepted %+v", r)
		}
		enc := r.encode()
		again, err := decodeRecord(enc)
		if err != nil {
			t.Fatalf("%s does not read back: %v", enc, err)
		}
		if enc2 := again.encode(); string(enc2) != string(enc) {
			t.Fatalf("%s reads back as %s", enc, enc2)
		}
	})
}
