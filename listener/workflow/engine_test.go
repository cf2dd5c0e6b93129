package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/composeci/composeci/fedfind"
)

func TestEngine(t *testing.T) {
	for _, b := range natsBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range engineContract {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.test(t, b.site(t))
				})
			}
		})
	}
}

// engineContract is what every NATS backend must do alike.
var engineContract = []struct {
	name string
	test func(t *testing.T, s natsSite)
}{
	{"a compose goes through all six stages, each once", testAllStages},
	{"duplicate events make one workflow, stages run once", testDuplicateEvents},
	{"an await stage runs again after RetryAfter until it advances", testAwaitRetries},
	{"a transient error is retried with backoff", testTransientError},
	{"errors past the budget fail the workflow", testErrorBudget},
	{"a permanent error fails the workflow and Retry resumes it", testPermanentErrorAndRetry},
	{"a doomed compose ends without the later stages", testDoomed},
	{"a compose status event with a final STATUS revives a workflow failed in a revive stage", testRevive},
	{"a panic, a timeout and an oversized outcome are errors", testMisbehavingRunner},
	{"a stage interrupted by a shutdown runs again after restart", func(t *testing.T, s natsSite) { testRestart(t, s, false) }},
	{"a stage interrupted by a crash runs again after restart", func(t *testing.T, s natsSite) { testRestart(t, s, true) }},
	{"a worker crashed after updating the workflow, before queueing the next task", func(t *testing.T, s natsSite) { testCrashAfterUpdate(t, s, false) }},
	{"a worker crashed after queueing the next task, before acking", func(t *testing.T, s natsSite) { testCrashAfterUpdate(t, s, true) }},
	{"a redelivered event that made the workflow queues its task, counted once", testDispatcherRedelivery},
	{"stale, foreign and broken tasks are dropped", testStaleTasks},
	{"two workers racing on one task apply its outcome once", testRacingWorkers},
	{"a task on its last delivery fails its workflow", testLastDelivery},
	{"a task past its last delivery fails its workflow (advisory)", testExhaustedAdvisory},
	{"an openQA job event hurries await-results", testHurry},
	{"stats and the silence check", testStats},
	{"hostile compose IDs and bad events are refused", testHostileInput},
	{"Get, List and keys of every compose ID form", testGetList},
	{"parts whose connection was closed return; run again, they go on", testConnectionClosed},
	{"every ending is in the feed of results once; a reader with a cursor misses none", testResultsFeed},
	{"a worker crashed after ending the workflow, before recording the result", testCrashBeforeResult},
	{"a done workflow rewound to a stage runs from there and ends again", testRewind},
}

// testRewind: people re-ran jobs of a reported compose; rewound to
// await-results, it runs the stages from there and ends again, a second
// result.
func testRewind(t *testing.T, s natsSite) {
	r := newFakeRunner(nil)
	p := startEngine(t, testOptions(t, s, r))
	id := "Fedora-Rawhide-20261122.n.0"
	submit(t, p, statusEvent(id, ""))
	waitState(t, p, id, StateDone)
	waitQuiet(t, p)
	ctx := context.Background()
	if err := p.Rewind(ctx, id, StageAwaitResults, "re-run by alice: 2 jobs"); err != nil {
		t.Fatal(err)
	}
	w := waitState(t, p, id, StateDone)
	waitQuiet(t, p)
	want := onceEach()
	for _, st := range []Stage{StageAwaitResults, StageCheck, StageReport} {
		want[st] = 2
	}
	r.wantRuns(t, id, want)
	if !slices.ContainsFunc(w.History, func(h Transition) bool { return h.Note == "re-run by alice: 2 jobs" }) {
		t.Errorf("history %+v lacks the rewind", w.History)
	}
	if res, _, _ := p.ResultsAfter(ctx, 0, 10, nil); len(res) != 2 {
		t.Errorf("%d results, want 2: one per ending", len(res))
	}
	if err := p.Rewind(ctx, id, "celebrate", "x"); !errors.Is(err, fedfind.ErrInvalidInput) {
		t.Errorf("rewind to no stage: %v", err)
	}
	if err := p.Rewind(ctx, "Fedora-Rawhide-20261123.n.0", StageCheck, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("rewind of no workflow: %v", err)
	}
}

// testCrashBeforeResult: the worker ended the workflow and died before the
// result reached the feed; the redelivered task records it, once.
func testCrashBeforeResult(t *testing.T, s natsSite) {
	r := newFakeRunner(nil)
	o := testOptions(t, s, r)
	o.Workers, o.TaskAckWait = 0, time.Second
	p := startEngine(t, o)
	id := "Fedora-ELN-20261122.ci.14"
	submit(t, p, statusEvent(id, ""))
	msg := takeTask(t, p)
	var tk task
	if err := json.Unmarshal(msg.Data(), &tk); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec, rev, err := p.load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ended := p.policy.after(rec, tk, Outcome{End: StateDone, Note: "nothing to do"}, nil, time.Now())
	if _, err := p.update(ctx, ended, rev); err != nil {
		t.Fatal(err)
	}
	// The worker is gone: no result, no ack.
	if res, _, err := p.ResultsAfter(ctx, 0, 10, nil); err != nil || len(res) != 0 {
		t.Fatalf("results before the redelivery: %v, %v", res, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- p.runWorkers(wctx, 1) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 20*time.Second, "the result recorded by the redelivered task", func() error {
		res, _, err := p.ResultsAfter(ctx, 0, 10, nil)
		if err != nil || len(res) != 1 || res[0].ComposeID != id || res[0].State != StateDone {
			return fmt.Errorf("results %+v, %v", res, err)
		}
		return nil
	})
	waitQuiet(t, p)
	if res, _, _ := p.ResultsAfter(ctx, 0, 10, nil); len(res) != 1 {
		t.Errorf("%d results, want 1", len(res))
	}
	r.wantRuns(t, id, map[Stage]int{})
}

// testResultsFeed ends workflows as done, doomed and failed (and a failed
// one again after a retry) and reads the feed: newest first, and followed
// page by page with a cursor while composes keep ending, every ending
// exactly once, in order.
func testResultsFeed(t *testing.T, s natsSite) {
	r := newFakeRunner(map[Stage]step{
		StageAwaitComplete: func(_ context.Context, w Workflow, _ int) (Outcome, error) {
			switch {
			case strings.HasSuffix(w.ComposeID, ".n.7"):
				return Outcome{End: StateDoomed, Note: "doomed"}, nil
			case strings.HasSuffix(w.ComposeID, ".n.8"):
				return Outcome{}, fmt.Errorf("%w: gone", ErrPermanent)
			}
			return Outcome{Advance: true}, nil
		},
	})
	p := startEngine(t, testOptions(t, s, r))
	ctx := context.Background()
	var cursor uint64
	var read []string
	follow := func() {
		t.Helper()
		for {
			page, more, err := p.ResultsAfter(ctx, cursor, 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, res := range page {
				if res.Seq <= cursor {
					t.Errorf("result %d after cursor %d", res.Seq, cursor)
				}
				cursor = res.Seq
				read = append(read, res.ComposeID+"/"+res.State)
			}
			if !more {
				return
			}
		}
	}
	ending := map[string]string{"Fedora-Rawhide-20261122.n.1": StateDone, "Fedora-Rawhide-20261122.n.7": StateDoomed,
		"Fedora-44-20261122.n.0": StateDone, "Fedora-Rawhide-20261122.n.8": StateFailed, "Fedora-Rawhide-20261123.n.0": StateDone}
	var want []string
	for i, id := range []string{"Fedora-Rawhide-20261122.n.1", "Fedora-Rawhide-20261122.n.7", "Fedora-44-20261122.n.0",
		"Fedora-Rawhide-20261122.n.8", "Fedora-Rawhide-20261123.n.0"} {
		submit(t, p, statusEvent(id, ""))
		w := waitState(t, p, id, ending[id])
		want = append(want, id+"/"+w.State)
		if i%2 == 1 {
			follow() // a reader following as composes end
		}
	}
	waitQuiet(t, p)
	follow()
	if !slices.Equal(read, want) {
		t.Errorf("followed the feed: %v\nwant %v", read, want)
	}
	// The cursor at the end reads nothing new; one past it is no cursor
	// of this feed.
	if page, more, err := p.ResultsAfter(ctx, cursor, 2, nil); err != nil || len(page) != 0 || more {
		t.Errorf("at the end: %d results, more %v, %v", len(page), more, err)
	}
	if _, _, err := p.ResultsAfter(ctx, cursor+1000, 2, nil); !errors.Is(err, fedfind.ErrInvalidInput) {
		t.Errorf("a cursor past the end: %v, want ErrInvalidInput", err)
	}
	latest, err := p.LatestResults(ctx, 2, nil)
	if err != nil || len(latest) != 2 || latest[0].ComposeID != "Fedora-Rawhide-20261123.n.0" || latest[1].ComposeID != "Fedora-Rawhide-20261122.n.8" ||
		latest[0].Seq <= latest[1].Seq {
		t.Errorf("latest results: %+v, %v", latest, err)
	}
	branched, err := p.LatestResults(ctx, 10, func(w Workflow) bool { return strings.HasPrefix(w.ComposeID, "Fedora-44-") })
	if err != nil || len(branched) != 1 || branched[0].State != StateDone {
		t.Errorf("filtered: %+v, %v", branched, err)
	}
	// Publishing an ending again (a redelivered task after a crash) adds
	// nothing; a retried workflow that ends again is a new result.
	rec, _, err := p.load(ctx, "Fedora-Rawhide-20261122.n.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.publishResult(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := p.Retry(ctx, "Fedora-Rawhide-20261122.n.8"); err != nil {
		t.Fatal(err)
	}
	waitState(t, p, "Fedora-Rawhide-20261122.n.8", StateFailed)
	waitQuiet(t, p)
	before := len(read)
	follow()
	if got := read[before:]; !slices.Equal(got, []string{"Fedora-Rawhide-20261122.n.8/failed"}) {
		t.Errorf("after a duplicate publish and a retry the feed gave %v", got)
	}
}

// testConnectionClosed closes the engine's NATS connection under its parts:
// each returns an error (none hangs, none carries on deaf), and run again —
// as the supervisor does — they work on a fresh connection.
func testConnectionClosed(t *testing.T, s natsSite) {
	r := newFakeRunner(nil)
	p := newEngine(t, testOptions(t, s, r))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	parts := p.Parts()
	errs := make(chan error, 2*len(parts))
	runAll := func() {
		for _, part := range parts {
			go func() { errs <- part.Run(ctx) }()
		}
	}
	runAll()
	submit(t, p, statusEvent("Fedora-Rawhide-20261122.n.0", "before"))
	waitState(t, p, "Fedora-Rawhide-20261122.n.0", StateDone)

	p.bus.Conn().Close()
	for range parts {
		select {
		case err := <-errs:
			if !errors.Is(err, nats.ErrConnectionClosed) {
				t.Errorf("a part returned %v, want an error wrapping nats.ErrConnectionClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a part went on after its connection was closed")
		}
	}
	runAll()
	submit(t, p, statusEvent("Fedora-Rawhide-20261123.n.0", "after")) // Submit connects again too
	waitState(t, p, "Fedora-Rawhide-20261123.n.0", StateDone)
	r.wantRuns(t, "Fedora-Rawhide-20261123.n.0", onceEach())
	cancel()
	for range parts {
		if err := <-errs; err != nil {
			t.Errorf("a part stopped by its context returned %v", err)
		}
	}
}

func testAllStages(t *testing.T, s natsSite) {
	r := newFakeRunner(nil)
	p := startEngine(t, testOptions(t, s, r))
	id := "Fedora-Rawhide-20261122.n.0"
	submit(t, p, statusEvent(id, "m-1"))
	w := waitState(t, p, id, StateDone)
	waitQuiet(t, p)
	r.wantRuns(t, id, onceEach())
	if w.Stage != StageReport || w.Events != 1 || w.Location == "" {
		t.Errorf("workflow = %+v", w)
	}
	var got []string
	for _, h := range w.History {
		got = append(got, string(h.Stage)+"/"+h.State)
	}
	want := []string{"discover/active", "await-complete/active", "schedule/active", "await-results/active",
		"check/active", "report/active", "report/done"}
	if !slices.Equal(got, want) {
		t.Errorf("history = %v, want %v", got, want)
	}
	for _, st := range Stages() {
		if w.Data["ran_"+string(st)] != "yes" {
			t.Errorf("data of %s missing: %v", st, w.Data)
		}
	}
}

func testDuplicateEvents(t *testing.T, s natsSite) {
	r := newFakeRunner(nil)
	p := startEngine(t, testOptions(t, s, r))
	id := "Fedora-44-20261010.1"
	events := []Event{
		statusEvent(id, "same"), statusEvent(id, "same"), statusEvent(id, "same"), // one stored
		statusEvent(id, "other-1"), statusEvent(id, "other-2"), // two more
		statusEvent(id, ""), statusEvent(id, ""), // one more: same kind, compose and status
	}
	var wg sync.WaitGroup
	for _, e := range events {
		wg.Go(func() {
			if err := p.Submit(context.Background(), e); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	waitState(t, p, id, StateDone)
	waitQuiet(t, p)
	w, err := p.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if w.Events != 4 {
		t.Errorf("events counted = %d, want 4", w.Events)
	}
	// A FINISHED message redelivered after the report: counted, nothing else.
	submit(t, p, statusEvent(id, "late"))
	waitFor(t, 10*time.Second, "late event counted", func() error {
		w, err := p.Get(context.Background(), id)
		if err != nil || w.Events != 5 {
			return fmt.Errorf("events %d, %v", w.Events, err)
		}
		return nil
	})
	waitQuiet(t, p)
	r.wantRuns(t, id, onceEach())
	if all, err := p.List(context.Background()); err != nil || len(all) != 1 {
		t.Errorf("List = %d workflows, %v; want 1", len(all), err)
	}
}

func testAwaitRetries(t *testing.T, s natsSite) {
	const wait = 300 * time.Millisecond
	r := newFakeRunner(map[Stage]step{
		StageAwaitComplete: steps(notYet(wait), notYet(wait), notYet(wait), advance),
	})
	p := startEngine(t, testOptions(t, s, r))
	id := "Fedora-43-updates-testing-20261122.0"
	submit(t, p, statusEvent(id, ""))
	waitFor(t, 10*time.Second, "waiting visible", func() error {
		w, err := p.Get(context.Background(), id)
		if err != nil || w.Stage != StageAwaitComplete || w.Attempt < 2 || !strings.HasPrefix(w.Note, "waiting") {
			return fmt.Errorf("%+v, %v", w, err)
		}
		return nil
	})
	waitState(t, p, id, StateDone)
	want := onceEach()
	want[StageAwaitComplete] = 4
	r.wantRuns(t, id, want)
	starts := r.startTimes(id, StageAwaitComplete)
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < wait-dueTolerance {
			t.Errorf("run %d came %s after the one before, RetryAfter was %s", i+1, gap, wait)
		}
	}
}

func testTransientError(t *testing.T, s natsSite) {
	boom := errors.New("openQA said 502")
	r := newFakeRunner(map[Stage]step{StageSchedule: steps(failWith(boom), failWith(boom), advance)})
	p := startEngine(t, testOptions(t, s, r))
	id := "Fedora-Rawhide-20261122.n.1"
	submit(t, p, statusEvent(id, ""))
	w := waitState(t, p, id, StateDone)
	want := onceEach()
	want[StageSchedule] = 3
	r.wantRuns(t, id, want)
	if len(w.History) != 7 {
		t.Errorf("history has %d transitions, want 7 (errors are no transitions): %+v", len(w.History), w.History)
	}
}

func testErrorBudget(t *testing.T, s natsSite) {
	r := newFakeRunner(map[Stage]step{StageSchedule: failWith(errors.New("openQA is down"))})
	o := testOptions(t, s, r)
	o.MaxStageErrors = 2
	p := startEngine(t, o)
	id := "Fedora-Rawhide-20261122.n.2"
	submit(t, p, statusEvent(id, ""))
	w := waitState(t, p, id, StateFailed)
	if w.Stage != StageSchedule || !strings.Contains(w.Note, "giving up after 3 errors: openQA is down") {
		t.Errorf("failed at %s: %q", w.Stage, w.Note)
	}
	waitQuiet(t, p)
	r.wantRuns(t, id, map[Stage]int{StageDiscover: 1, StageAwaitComplete: 1, StageSchedule: 3})
}

func testPermanentErrorAndRetry(t *testing.T, s natsSite) {
	r := newFakeRunner(map[Stage]step{
		StageCheck: steps(failWith(fmt.Errorf("%w: previous compose unreadable", ErrPermanent)), advance),
	})
	p := startEngine(t, testOptions(t, s, r))
	id := "Fedora-44-20261010.2"
	submit(t, p, statusEvent(id, ""))
	w := waitState(t, p, id, StateFailed)
	if w.Stage != StageCheck || !strings.Contains(w.Note, "previous compose unreadable") {
		t.Errorf("failed at %s: %q", w.Stage, w.Note)
	}
	waitQuiet(t, p)
	if err := p.Retry(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	w = waitState(t, p, id, StateDone)
	want := onceEach()
	want[StageCheck] = 2
	r.wantRuns(t, id, want)
	if err := p.Retry(context.Background(), id); !errors.Is(err, ErrNotRetryable) {
		t.Errorf("Retry of a done workflow: %v, want ErrNotRetryable", err)
	}
	if err := p.Retry(context.Background(), "Fedora-44-20261010.9"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Retry of no workflow: %v, want ErrNotFound", err)
	}
	if !slices.ContainsFunc(w.History, func(h Transition) bool { return h.Note == "retried by an operator" }) {
		t.Errorf("history does not show the retry: %+v", w.History)
	}
}

func testRevive(t *testing.T, s natsSite) {
	stalled := fmt.Errorf("%w: not complete 24h after the pipeline first looked", ErrPermanent)
	r := newFakeRunner(map[Stage]step{
		StageAwaitComplete: steps(failWith(stalled), advance),
		StageCheck:         failWith(fmt.Errorf("%w: previous compose unreadable", ErrPermanent)),
	})
	o := testOptions(t, s, r)
	o.ReviveStages = []Stage{StageAwaitComplete}
	p := startEngine(t, o)
	id := "Fedora-Rawhide-20261122.n.4"
	started := statusEvent(id, "m-started")
	started.Status = "STARTED"
	submit(t, p, started)
	waitState(t, p, id, StateFailed)
	waitQuiet(t, p)
	// A STATUS that is not final changes nothing but the count.
	again := statusEvent(id, "m-started-2")
	again.Status = "STARTED"
	submit(t, p, again)
	waitFor(t, 10*time.Second, "the second event counted", func() error { return eventsAre(p, id, 2) })
	if w, _ := p.Get(context.Background(), id); w.State != StateFailed {
		t.Fatalf("a STARTED event revived the workflow: %+v", w)
	}
	// FINISHED revives it at await-complete; it then fails at check, not a
	// revive stage, and a later FINISHED leaves it failed.
	submit(t, p, statusEvent(id, "m-finished"))
	waitFor(t, 10*time.Second, "the workflow revived and failed at check", func() error {
		w, err := p.Get(context.Background(), id)
		if err == nil && (w.State != StateFailed || w.Stage != StageCheck) {
			err = fmt.Errorf("%s at %s", w.State, w.Stage)
		}
		return err
	})
	waitQuiet(t, p)
	submit(t, p, statusEvent(id, "m-finished-2"))
	waitFor(t, 10*time.Second, "the fourth event counted", func() error { return eventsAre(p, id, 4) })
	waitQuiet(t, p)
	w, _ := p.Get(context.Background(), id)
	if w.State != StateFailed || w.Stage != StageCheck {
		t.Errorf("a workflow failed at check was revived: %+v", w)
	}
	if !slices.ContainsFunc(w.History, func(h Transition) bool { return h.Note == "revived by a compose status event (STATUS FINISHED)" }) {
		t.Errorf("history does not show the revival: %+v", w.History)
	}
	want := onceEach()
	want[StageAwaitComplete] = 2
	delete(want, StageReport)
	r.wantRuns(t, id, want)
}

// eventsAre says whether the compose's workflow has counted n events.
func eventsAre(p *testEngine, id string, n int) error {
	w, err := p.Get(context.Background(), id)
	if err == nil && w.Events != n {
		err = fmt.Errorf("%d events", w.Events)
	}
	return err
}

func testDoomed(t *testing.T, s natsSite) {
	r := newFakeRunner(map[Stage]step{StageAwaitComplete: endAs(StateDoomed)})
	p := startEngine(t, testOptions(t, s, r))
	id := "Fedora-Rawhide-20261122.n.3"
	submit(t, p, statusEvent(id, ""))
	w := waitState(t, p, id, StateDoomed)
	waitQuiet(t, p)
	r.wantRuns(t, id, map[Stage]int{StageDiscover: 1, StageAwaitComplete: 1})
	if w.Note != "ended: doomed" {
		t.Errorf("note = %q", w.Note)
	}
}

func testMisbehavingRunner(t *testing.T, s natsSite) {
	r := newFakeRunner(map[Stage]step{
		StageDiscover: steps(func(context.Context, Workflow, int) (Outcome, error) { panic("nil map") }, advance),
		StageAwaitComplete: steps(func(ctx context.Context, _ Workflow, _ int) (Outcome, error) {
			<-ctx.Done()
			return Outcome{}, ctx.Err()
		}, advance),
		StageSchedule: func(context.Context, Workflow, int) (Outcome, error) {
			return Outcome{Advance: true, Data: map[string]string{"jobs": strings.Repeat("1,", 200<<10)}}, nil
		},
	})
	o := testOptions(t, s, r)
	o.StageTimeout = 200 * time.Millisecond
	p := startEngine(t, o)
	id := "Fedora-Rawhide-20261122.n.9"
	submit(t, p, statusEvent(id, ""))
	w := waitState(t, p, id, StateFailed)
	if w.Stage != StageSchedule || !strings.Contains(w.Note, "over 262144") || len(w.Data["jobs"]) != 0 {
		t.Errorf("failed at %s: %q", w.Stage, w.Note)
	}
	waitQuiet(t, p)
	r.wantRuns(t, id, map[Stage]int{StageDiscover: 2, StageAwaitComplete: 2, StageSchedule: 1})
}

// testRestart stops (or crashes) a pipeline while await-results runs, and
// starts another on the same store or server: the interrupted stage runs
// again, every other stage once.
func testRestart(t *testing.T, s natsSite, hard bool) {
	started := make(chan struct{}, 1)
	r := newFakeRunner(map[Stage]step{StageAwaitResults: steps(blockUntilCancelled(started), advance)})
	o := testOptions(t, s, r)
	o.Workers = 1
	p1 := newEngine(t, o)
	p1.Start()
	id := "Fedora-43-updates-testing-20261122.1"
	submit(t, p1, statusEvent(id, ""))
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("await-results did not start")
	}
	if hard {
		crash(t, p1)
	} else {
		stopEngine(t, p1)
	}
	o.Logger = testLogger(t)
	p2 := startEngine(t, o)
	waitState(t, p2, id, StateDone)
	waitQuiet(t, p2)
	want := onceEach()
	want[StageAwaitResults] = 2
	r.wantRuns(t, id, want)
}

func testStaleTasks(t *testing.T, s natsSite) {
	r := newFakeRunner(nil)
	p := startEngine(t, testOptions(t, s, r))
	id := "Fedora-Rawhide-20261122.n.4"
	submit(t, p, statusEvent(id, ""))
	waitState(t, p, id, StateDone)
	waitQuiet(t, p)
	rec, _, err := p.load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	publish := func(stage Stage, data []byte, msgID string) {
		t.Helper()
		if _, err := p.sess(t).js().Publish(ctx, p.names.taskSubject(stage), data, jetstream.WithMsgID(msgID)); err != nil {
			t.Fatal(err)
		}
	}
	old := task{ComposeID: id, Gen: rec.Gen, Stage: StageDiscover, Attempt: 1}
	b, _ := json.Marshal(old)
	publish(StageDiscover, b, "copy-of-discover") // a duplicate of an old task under another id
	b, _ = json.Marshal(task{ComposeID: id, Gen: rec.Gen - 1, Stage: StageReport, Attempt: 1})
	publish(StageReport, b, "older-generation")
	b, _ = json.Marshal(task{ComposeID: "Fedora-Rawhide-20261122.n.5", Gen: 1, Stage: StageDiscover, Attempt: 1})
	publish(StageDiscover, b, "no-workflow")
	publish(StageCheck, []byte(`{"compose_id":"../../etc","gen":1,"stage":"check","attempt":1}`), "hostile")
	publish(StageCheck, []byte("not json"), "garbage")
	waitQuiet(t, p)
	r.wantRuns(t, id, onceEach())
	if n := r.count("Fedora-Rawhide-20261122.n.5", StageDiscover); n != 0 {
		t.Errorf("a task without workflow ran %d times", n)
	}
	if _, err := p.Get(ctx, "Fedora-Rawhide-20261122.n.5"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a task made a workflow: %v", err)
	}
}

// testRacingWorkers queues a second copy of the check task while the first
// runs (as the server does when heartbeats were lost): the copy finds the
// first run's lease and waits, so the stage never runs twice at once, and
// once the first run's outcome is applied the copy is stale and dropped.
func testRacingWorkers(t *testing.T, s natsSite) {
	id := "DP-1.0-20161013.t.4"
	var p *testEngine
	r := newFakeRunner(map[Stage]step{
		StageCheck: func(ctx context.Context, w Workflow, n int) (Outcome, error) {
			if n == 1 {
				rec, _, err := p.load(ctx, id)
				if err != nil {
					return Outcome{}, err
				}
				dup, _ := rec.pending()
				b, _ := json.Marshal(dup)
				if _, err := p.sess(t).js().Publish(ctx, p.names.taskSubject(StageCheck), b, jetstream.WithMsgID("duplicate")); err != nil {
					return Outcome{}, err
				}
			}
			// Give the copy time to be delivered and to find the lease.
			time.Sleep(time.Second)
			return Outcome{Advance: true, Note: fmt.Sprintf("run %d", n)}, nil
		},
	})
	p = startEngine(t, testOptions(t, s, r))
	submit(t, p, statusEvent(id, ""))
	w := waitState(t, p, id, StateDone)
	waitQuiet(t, p)
	r.wantRuns(t, id, onceEach())
	if got := r.peak(id, StageCheck); got != 1 {
		t.Errorf("%d runs of check overlapped, want 1", got)
	}
	n := 0
	for _, h := range w.History {
		if strings.HasPrefix(h.Note, "check done") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("check's outcome applied %d times: %+v", n, w.History)
	}
}

// testLastDelivery: a worker that died held the discover task (the test
// takes it and never acks); the next delivery is the last one allowed, so
// the worker fails the workflow instead of running the stage.
func testLastDelivery(t *testing.T, s natsSite) {
	r := newFakeRunner(nil)
	o := testOptions(t, s, r)
	o.Workers, o.MaxDeliver, o.TaskAckWait = 0, 2, time.Second
	p := startEngine(t, o)
	id := "Fedora-Rawhide-20261122.n.6"
	submit(t, p, statusEvent(id, ""))
	takeTask(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.runWorkers(ctx, 1) }()
	defer func() { cancel(); <-done }()
	w := waitState(t, p, id, StateFailed)
	if !strings.Contains(w.Note, "delivered 2 times") {
		t.Errorf("note = %q", w.Note)
	}
	waitQuiet(t, p)
	r.wantRuns(t, id, nil)
}

// testExhaustedAdvisory: both deliveries went to workers that died; the
// server's max-deliveries advisory fails the workflow and the task leaves
// the work queue. Retry then restarts the stage.
func testExhaustedAdvisory(t *testing.T, s natsSite) {
	r := newFakeRunner(nil)
	o := testOptions(t, s, r)
	o.Workers, o.MaxDeliver, o.TaskAckWait = 0, 2, time.Second
	p := startEngine(t, o)
	id := "Fedora-Rawhide-20261122.n.7"
	submit(t, p, statusEvent(id, ""))
	takeTask(t, p)
	takeTask(t, p)
	// Servers before 2.10 notice the exhaustion only when a worker pulls.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.runWorkers(ctx, 1) }()
	defer func() { cancel(); <-done }()
	w := waitState(t, p, id, StateFailed)
	if !strings.Contains(w.Note, "delivered 2 times") {
		t.Errorf("note = %q", w.Note)
	}
	waitQuiet(t, p)
	r.wantRuns(t, id, nil)
	if err := p.Retry(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	waitState(t, p, id, StateDone)
	r.wantRuns(t, id, onceEach())
}

// takeTask takes a task from the workers' consumer, as a worker that is
// about to die would.
func takeTask(t *testing.T, p *testEngine) jetstream.Msg {
	t.Helper()
	cons, err := p.sess(t).js().Consumer(context.Background(), p.names.tasksStream(), workerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("taking a task: %v", err)
	}
	return msg
}

// testCrashAfterUpdate plays a worker that ran discover and updated the
// workflow, then died before queueing the next task (or before acking the
// task, with the next one queued). The redelivered task finds that its
// outcome was applied, queues the next task under the same id (dropped as a
// duplicate if it was queued), and nothing runs twice.
func testCrashAfterUpdate(t *testing.T, s natsSite, queued bool) {
	r := newFakeRunner(nil)
	o := testOptions(t, s, r)
	o.Workers, o.TaskAckWait = 0, time.Second
	p := startEngine(t, o)
	id := "Fedora-ELN-20261122.ci.13"
	submit(t, p, statusEvent(id, ""))
	msg := takeTask(t, p)
	var tk task
	if err := json.Unmarshal(msg.Data(), &tk); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec, rev, err := p.load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	next := p.policy.after(rec, tk, Outcome{Advance: true, Note: "by the test"}, nil, time.Now())
	if _, err := p.update(ctx, next, rev); err != nil {
		t.Fatal(err)
	}
	if queued {
		nt, _ := next.pending()
		if err := p.publishTask(ctx, nt); err != nil {
			t.Fatal(err)
		}
	}
	// The worker is gone; msg is never acked.
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- p.runWorkers(wctx, 2) }()
	defer func() { cancel(); <-done }()
	waitState(t, p, id, StateDone)
	waitQuiet(t, p)
	want := onceEach()
	want[StageDiscover] = 0
	r.wantRuns(t, id, want)
	// One task per stage was stored: queueing the next task again was
	// deduplicated.
	info, err := p.sess(t).tasks.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.LastSeq != 6 {
		t.Errorf("%d tasks were stored, want 6", info.State.LastSeq)
	}
}

// testDispatcherRedelivery: the dispatcher created a workflow, but the
// event was not acked (a crash, a lost ack; here a Nak): the redelivered
// event is recognised, not counted twice, and the first task is queued.
func testDispatcherRedelivery(t *testing.T, s natsSite) {
	r := newFakeRunner(nil)
	o := testOptions(t, s, r)
	o.Dispatch = false
	p := startEngine(t, o)
	id := "Fedora-Cloud-44-20261010.n.2"
	submit(t, p, statusEvent(id, "once"))
	ctx := context.Background()
	cons, err := p.sess(t).js().Consumer(ctx, p.names.eventsStream(), dispatcherConsumer)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	meta, _ := msg.Metadata()
	rec := p.policy.newRecord(statusEvent(id, "once"), time.Now(), fmt.Sprintf("event/%d", meta.Sequence.Stream))
	if _, err := p.sess(t).kv.Create(ctx, encodeToken(id), rec.encode()); err != nil {
		t.Fatal(err)
	}
	if err := msg.Nak(); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- p.runDispatcher(dctx) }()
	defer func() { cancel(); <-done }()
	w := waitState(t, p, id, StateDone)
	waitQuiet(t, p)
	r.wantRuns(t, id, onceEach())
	if w.Events != 1 {
		t.Errorf("events = %d, want 1", w.Events)
	}
}

func testHurry(t *testing.T, s natsSite) {
	r := newFakeRunner(map[Stage]step{StageAwaitResults: steps(notYet(time.Hour), advance)})
	p := startEngine(t, testOptions(t, s, r))
	id := "Fedora-44-20261010.3"
	submit(t, p, statusEvent(id, ""))
	waitFor(t, 10*time.Second, "await-results waiting", func() error {
		w, err := p.Get(context.Background(), id)
		if err != nil || w.Stage != StageAwaitResults || w.Attempt != 2 {
			return fmt.Errorf("%+v, %v", w, err)
		}
		return nil
	})
	// A job of a compose without workflow starts nothing.
	other := "Fedora-44-20261010.4"
	submit(t, p, Event{Kind: KindOpenQAJobDone, ComposeID: other, Source: SourceAMQP, MessageID: "job-0"})
	submit(t, p, Event{Kind: KindOpenQAJobDone, ComposeID: id, Source: SourceAMQP, MessageID: "job-1"})
	w := waitState(t, p, id, StateDone)
	want := onceEach()
	want[StageAwaitResults] = 2
	r.wantRuns(t, id, want)
	if w.Events != 2 {
		t.Errorf("events = %d, want 2", w.Events)
	}
	if _, err := p.Get(context.Background(), other); !errors.Is(err, ErrNotFound) {
		t.Errorf("a job event made a workflow: %v", err)
	}
}

func testStats(t *testing.T, s natsSite) {
	r := newFakeRunner(map[Stage]step{StageAwaitComplete: notYet(time.Hour)})
	p := startEngine(t, testOptions(t, s, r))
	ctx := context.Background()
	st, err := p.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.LastEvent.IsZero() || st.CheckEvents(time.Minute) != nil {
		t.Errorf("fresh stats: %+v, %v", st, st.CheckEvents(time.Minute))
	}
	st.Now = st.Now.Add(5 * time.Minute)
	if err := st.CheckEvents(time.Minute); !errors.Is(err, ErrSilent) || !strings.Contains(err.Error(), "none since the start") {
		t.Errorf("silent since start: %v", err)
	}
	id := "Fedora-Rawhide-20261122.n.8"
	before := time.Now()
	submit(t, p, statusEvent(id, ""))
	waitFor(t, 10*time.Second, "waiting in await-complete", func() error {
		st, err = p.Stats(ctx)
		if err != nil {
			return err
		}
		w, err := p.Get(ctx, id)
		if err != nil || w.Attempt < 2 || st.TasksQueued != 1 || st.Workflows[StateActive] != 1 || st.EventsPending != 0 {
			return fmt.Errorf("stats %+v, workflow %+v, %v", st, w, err)
		}
		return nil
	})
	if st.LastEvent.Before(before.Add(-time.Second)) || st.CheckEvents(time.Minute) != nil {
		t.Errorf("last event %s (submitted after %s): %v", st.LastEvent, before, st.CheckEvents(time.Minute))
	}
	st.Now = st.LastEvent.Add(10 * time.Minute)
	if err := st.CheckEvents(time.Minute); !errors.Is(err, ErrSilent) || !strings.Contains(err.Error(), "no events for 10m0s") {
		t.Errorf("silent for 10 minutes: %v", err)
	}
	if len(st.Overdue) != 0 {
		t.Errorf("overdue: %v", st.Overdue)
	}
}

func testHostileInput(t *testing.T, s natsSite) {
	p := startEngine(t, testOptions(t, s, newFakeRunner(nil)))
	ctx := context.Background()
	for _, id := range []string{
		"", "../../etc/passwd", "Fedora-Rawhide-20261122.n.0/../x", "Fedora-Rawhide-20261122.n.0.>",
		"Fedora-*-20261122.n.0", "Fedora Rawhide-20261122.n.0", "Fedora-Rawhide-20261122.n.0\n",
		"Fedora-Rawhide-20261122.n.0\x00", "Fedora-Rawhide-20261322.n.0", ".Fedora-Rawhide-20261122.n.0",
		"Fedora-Rawhide-20261122.nightly.0", // valid, but not canonical
		strings.Repeat("A", 200) + "-20261122.0",
	} {
		e := statusEvent(id, "")
		if err := p.Submit(ctx, e); !errors.Is(err, fedfind.ErrInvalidInput) {
			t.Errorf("Submit(%q) = %v, want ErrInvalidInput", id, err)
		}
		if _, err := p.Get(ctx, id); !errors.Is(err, fedfind.ErrInvalidInput) {
			t.Errorf("Get(%q) = %v, want ErrInvalidInput", id, err)
		}
		if err := p.Retry(ctx, id); !errors.Is(err, fedfind.ErrInvalidInput) {
			t.Errorf("Retry(%q) = %v, want ErrInvalidInput", id, err)
		}
	}
	bad := statusEvent("Fedora-Rawhide-20261122.n.0", "")
	bad.Kind = "compose.deleted"
	if err := p.Submit(ctx, bad); !errors.Is(err, fedfind.ErrInvalidInput) {
		t.Errorf("unknown kind: %v", err)
	}
	bad = statusEvent("Fedora-Rawhide-20261122.n.0", "")
	bad.Source = "carrier-pigeon"
	if err := p.Submit(ctx, bad); !errors.Is(err, fedfind.ErrInvalidInput) {
		t.Errorf("unknown source: %v", err)
	}
	info, err := p.sess(t).events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("%d refused events were stored", info.State.Msgs)
	}
}

func testGetList(t *testing.T, s natsSite) {
	r := newFakeRunner(nil)
	p := startEngine(t, testOptions(t, s, r))
	ctx := context.Background()
	if _, err := p.Get(ctx, "Fedora-Rawhide-20261122.n.0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get before any event: %v", err)
	}
	if all, err := p.List(ctx); err != nil || len(all) != 0 {
		t.Errorf("List of nothing = %v, %v", all, err)
	}
	ids := composeIDForms()
	for _, id := range ids {
		submit(t, p, statusEvent(id, ""))
	}
	for _, id := range ids {
		waitState(t, p, id, StateDone)
		r.wantRuns(t, id, onceEach())
	}
	all, err := p.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range all {
		got = append(got, w.ComposeID)
	}
	want := slices.Sorted(slices.Values(ids))
	if !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
	keys, err := p.sess(t).kv.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var decoded []string
	for _, k := range keys {
		id, err := decodeToken(k)
		if err != nil {
			t.Errorf("key %q: %v", k, err)
		}
		decoded = append(decoded, id)
	}
	slices.Sort(decoded)
	if !slices.Equal(decoded, want) {
		t.Errorf("keys decode to %v, want %v", decoded, want)
	}
}

// composeIDForms are compose IDs of every shape Pungi writes.
func composeIDForms() []string {
	return []string{
		"Fedora-Rawhide-20261122.n.0",
		"Fedora-44-20261010.1",
		"Fedora-43-updates-testing-20261122.0",
		"DP-1.0-20161013.t.4",
		"Fedora-Cloud-44-20261010.n.2",
		"Fedora-ELN-20261122.ci.13",
		"Fedora_Kinoite+x-44-20261010.d.0",
	}
}

// TestListenAndRemoteWorkers runs the shape of `composeci listen` with the
// embedded server listening on a port, and of `composeci worker` in another
// pipeline joining it by URL.
func TestListenAndRemoteWorkers(t *testing.T) {
	t.Parallel()
	r := newFakeRunner(nil)
	o := testOptions(t, natsSite{bus: BusOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:0"}}, nil)
	o.Workers = 0
	listen := startEngine(t, o)
	url := listen.Bus().ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("ClientURL = %q", url)
	}
	o = testOptions(t, natsSite{bus: BusOptions{URL: url}}, r)
	o.Dispatch = false
	startEngine(t, o)
	id := "Fedora-Rawhide-20261122.n.0"
	submit(t, listen, statusEvent(id, ""))
	waitState(t, listen, id, StateDone)
	r.wantRuns(t, id, onceEach())
}

// TestConnectFailure: an unreachable external server is an error, soon;
// so are options that cannot work.
func TestConnectFailure(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := New(ctx, Options{Stages: Stages(), Bus: BusOptions{URL: "nats://127.0.0.1:1", ConnectTimeout: 500 * time.Millisecond}})
	if err == nil {
		t.Fatal("connected to nothing")
	}
	if _, err := New(ctx, Options{Stages: Stages()}); err == nil || !strings.Contains(err.Error(), "no data directory") {
		t.Errorf("embedded without data dir: %v", err)
	}
	for name, o := range map[string]Options{
		"a prefix with a dot":        {Prefix: "a.b", Stages: Stages()},
		"workers without a runner":   {Workers: 1, Stages: Stages()},
		"no stages":                  {},
		"a stage named twice":        {Stages: []Stage{"a", "b", "a"}},
		"a stage with a dot":         {Stages: []Stage{"a.b"}},
		"a hurry stage not in order": {Stages: []Stage{"a"}, HurryStages: []Stage{"b"}},
	} {
		o.Bus = BusOptions{DataDir: t.TempDir()}
		if _, err := New(ctx, o); err == nil {
			t.Errorf("%s was accepted", name)
		}
	}
}

// TestReadOnlyEngine: a read-only engine (composeci serve) reads what the
// working processes made — workflows, results — submits events, and changes
// none of their settings; on a NATS without a pipeline it says so.
func TestReadOnlyEngine(t *testing.T) {
	t.Parallel()
	s := externalSite(t)
	r := newFakeRunner(nil)
	o := testOptions(t, s, r)
	o.TaskAckWait = 3 * time.Second
	p := startEngine(t, o)
	id := "Fedora-Rawhide-20261122.n.0"
	submit(t, p, statusEvent(id, ""))
	waitState(t, p, id, StateDone)

	ro := newEngine(t, Options{Bus: s.bus, Prefix: s.prefix, Stages: Stages(), ReadOnly: true, Logger: testLogger(t)})
	ctx := context.Background()
	if w, err := ro.Get(ctx, id); err != nil || w.State != StateDone {
		t.Errorf("read-only Get: %+v, %v", w, err)
	}
	if res, err := ro.LatestResults(ctx, 5, nil); err != nil || len(res) != 1 {
		t.Errorf("read-only results: %+v, %v", res, err)
	}
	if err := ro.Submit(ctx, statusEvent("Fedora-Rawhide-20261123.n.0", "")); err != nil {
		t.Fatal(err)
	}
	waitState(t, p, "Fedora-Rawhide-20261123.n.0", StateDone)
	cons, err := p.sess(t).js().Consumer(ctx, p.names.tasksStream(), workerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	if info := cons.CachedInfo(); info.Config.AckWait != 3*time.Second {
		t.Errorf("the workers' AckWait is %s after a read-only engine came, want the 3s the working one set", info.Config.AckWait)
	}
	if len(ro.Parts()) != 0 {
		t.Errorf("a read-only engine has parts: %v", ro.Parts())
	}

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = New(ctx, Options{Bus: s.bus, Prefix: s.prefix + "X", Stages: Stages(), ReadOnly: true})
	if err == nil || !strings.Contains(err.Error(), "no composeci pipeline") {
		t.Errorf("read-only on an empty prefix: %v", err)
	}
	if _, err := New(ctx, Options{Bus: s.bus, Prefix: s.prefix, Stages: Stages(), ReadOnly: true, Dispatch: true}); err == nil {
		t.Error("a read-only dispatcher was accepted")
	}
}
