package workflow

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/composeci/composeci/internal/testenv"
	"github.com/composeci/composeci/listener/event"
)

// The engine is generic over its stages; its tests use composeci's six.
const (
	StageDiscover      Stage = "discover"
	StageAwaitComplete Stage = "await-complete"
	StageSchedule      Stage = "schedule"
	StageAwaitResults  Stage = "await-results"
	StageCheck         Stage = "check"
	StageReport        Stage = "report"
)

func Stages() []Stage {
	return []Stage{StageDiscover, StageAwaitComplete, StageSchedule, StageAwaitResults, StageCheck, StageReport}
}

// Shorter names for the event vocabulary in these tests.
type Event = event.Event

const (
	KindComposeStatus = event.KindComposeStatus
	KindOpenQAJobDone = event.KindOpenQAJobDone
	SourceAMQP        = event.SourceAMQP
	SourcePoll        = event.SourcePoll
)

// The pipeline's tests run one contract suite against every NATS they can
// reach (Watermill's idea): the embedded server in this process, and the
// external server at externalNATSURL, which CI must provide.

// natsBackend gives each test a place of its own on one kind of NATS.
type natsBackend struct {
	name string
	// site returns a fresh place: pipelines made for it share state
	// (one after the other, for the embedded server, which owns its
	// store), and nothing of another site.
	site func(t *testing.T) natsSite
}

// natsSite is where a test's pipelines meet: the bus options and prefix.
type natsSite struct {
	bus    BusOptions
	prefix string
}

func natsBackends() []natsBackend {
	return []natsBackend{
		{name: "embedded", site: func(t *testing.T) natsSite {
			return natsSite{bus: BusOptions{DataDir: t.TempDir()}}
		}},
		{name: "external", site: func(t *testing.T) natsSite { return externalSite(t) }},
	}
}

// externalSite skips the test when the external server is unreachable,
// unless CI=true, where it must be there (testenv.NATSURL). Each site has a
// random prefix, and its streams and bucket are deleted when the test ends.
func externalSite(t testing.TB) natsSite {
	t.Helper()
	url := testenv.NATSURL(t)
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	prefix := "T" + strings.ToUpper(hex.EncodeToString(b))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		nc, err := nats.Connect(url)
		if err != nil {
			t.Errorf("cleaning up %s: %v", prefix, err)
			return
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		l := natsLayout{prefix: prefix}
		for _, s := range []string{l.eventsStream(), l.tasksStream(), l.resultsStream(), "KV_" + l.bucket()} {
			if err := js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Errorf("cleaning up stream %s: %v", s, err)
			}
		}
	})
	return natsSite{bus: BusOptions{URL: url}, prefix: prefix}
}

// testOptions are quick settings for tests: short waits everywhere, but a
// TaskAckWait long enough that heartbeats keep a running stage's task on a
// busy two-core machine under -race.
func testOptions(t *testing.T, s natsSite, r StageRunner) Options {
	return Options{
		Bus:             s.bus,
		Prefix:          s.prefix,
		Stages:          Stages(),
		HurryStages:     []Stage{StageAwaitResults},
		Runner:          r,
		Workers:         2,
		Dispatch:        true,
		Logger:          testLogger(t),
		TaskAckWait:     2 * time.Second,
		MinRetryDelay:   time.Millisecond,
		ErrorBackoff:    5 * time.Millisecond,
		MaxErrorBackoff: 40 * time.Millisecond,
		HurryInterval:   time.Millisecond,
		OpTimeout:       5 * time.Second,
	}
}

// testEngine is an Engine whose parts a test starts and stops, as the
// listener's supervisor would.
type testEngine struct {
	*Engine
	t       *testing.T
	cancel  context.CancelFunc
	done    chan struct{}
	crashed atomic.Bool // parts failing after a crash are expected
}

// startEngine makes an engine and runs its parts; it is stopped when the
// test ends.
func startEngine(t *testing.T, o Options) *testEngine {
	t.Helper()
	p := newEngine(t, o)
	p.Start()
	return p
}

// newEngine makes an engine without running its parts; it is closed when
// the test ends.
func newEngine(t *testing.T, o Options) *testEngine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	p := &testEngine{Engine: e, t: t}
	t.Cleanup(func() { stopEngine(t, p) })
	return p
}

// Start runs every part until stopEngine or crash; a part that returns
// with an error fails the test, unless the engine was stopped.
func (p *testEngine) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	var wg sync.WaitGroup
	for _, part := range p.Parts() {
		wg.Go(func() {
			if err := part.Run(ctx); err != nil && ctx.Err() == nil && !p.crashed.Load() {
				p.t.Errorf("%s stopped: %v", part.Name, err)
			}
		})
	}
	go func() {
		wg.Wait()
		close(p.done)
	}()
}

// stopParts cancels the parts and waits for them to return.
func (p *testEngine) stopParts(t *testing.T) {
	t.Helper()
	if p.cancel == nil {
		return
	}
	p.cancel()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("the engine's parts did not stop")
	}
	p.cancel = nil
}

func stopEngine(t *testing.T, p *testEngine) {
	t.Helper()
	p.stopParts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Errorf("closing the engine: %v", err)
	}
}

// crash ends an engine the way a killed process would: the server (or the
// connection to it) goes away first, so nothing is acked or handed back,
// and nothing connects again.
func crash(t *testing.T, p *testEngine) {
	t.Helper()
	p.crashed.Store(true)
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.bus.mu.Lock()
	p.bus.closed = true
	p.bus.mu.Unlock()
	if p.bus.srv != nil {
		p.bus.srv.Shutdown()
	} else if c := p.bus.Conn(); c != nil {
		c.Close()
	}
	p.stopParts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = p.bus.Close(ctx) // errors expected: nothing to drain
}

// sess returns the engine's current session.
func (p *testEngine) sess(t *testing.T) *session {
	t.Helper()
	s, err := p.session(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runWorkers runs n workers until ctx ends, as the supervisor would.
func (p *testEngine) runWorkers(ctx context.Context, n int) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = p.runWorker(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitFor is testenv.WaitFor.
func waitFor(t *testing.T, total time.Duration, what string, f func() error) {
	t.Helper()
	testenv.WaitFor(t, total, what, f)
}

// waitState waits until the compose's workflow is in state and returns it.
func waitState(t *testing.T, p *testEngine, id, state string) Workflow {
	t.Helper()
	var w Workflow
	waitFor(t, 20*time.Second, id+" "+state, func() error {
		var err error
		w, err = p.Get(context.Background(), id)
		if err != nil {
			return err
		}
		if w.State != state {
			return fmt.Errorf("state %s at %s attempt %d (%s)", w.State, w.Stage, w.Attempt, w.Note)
		}
		return nil
	})
	return w
}

// waitQuiet waits until no task is queued and no event is pending: after
// it, nothing more will run unless someone submits.
func waitQuiet(t *testing.T, p *testEngine) {
	t.Helper()
	waitFor(t, 20*time.Second, "queues empty", func() error {
		s, err := p.Stats(context.Background())
		if err != nil {
			return err
		}
		if s.TasksQueued != 0 || s.EventsPending != 0 || s.Running != 0 {
			return fmt.Errorf("%d tasks queued, %d events pending, %d running", s.TasksQueued, s.EventsPending, s.Running)
		}
		return nil
	})
}

func submit(t *testing.T, p *testEngine, e Event) {
	t.Helper()
	if err := p.Submit(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

func statusEvent(id, messageID string) Event {
	return Event{Kind: KindComposeStatus, ComposeID: id, Status: "FINISHED", Source: SourceAMQP,
		MessageID: messageID, Location: "https://kojipkgs.example/compose/" + id + "/compose"}
}

// fakeRunner is a StageRunner whose stages can be scripted per stage; it
// records every run. Unscripted stages advance at once.
type fakeRunner struct {
	mu      sync.Mutex
	script  map[Stage]step
	runs    map[runKey]int
	running map[runKey]int
	peaks   map[runKey]int
	starts  map[runKey][]time.Time
}

type runKey struct {
	compose string
	stage   Stage
}

// step is one stage's behaviour; n counts its runs for the compose (1 for
// the first).
type step func(ctx context.Context, w Workflow, n int) (Outcome, error)

func newFakeRunner(script map[Stage]step) *fakeRunner {
	return &fakeRunner{script: script, runs: map[runKey]int{}, running: map[runKey]int{}, peaks: map[runKey]int{}, starts: map[runKey][]time.Time{}}
}

func (f *fakeRunner) Run(ctx context.Context, stage Stage, w Workflow) (Outcome, error) {
	k := runKey{w.ComposeID, stage}
	f.mu.Lock()
	f.runs[k]++
	f.running[k]++
	f.peaks[k] = max(f.peaks[k], f.running[k])
	f.starts[k] = append(f.starts[k], time.Now())
	n, s := f.runs[k], f.script[stage]
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running[k]--
		f.mu.Unlock()
	}()
	if s == nil {
		return advance(ctx, w, n)
	}
	return s(ctx, w, n)
}

func (f *fakeRunner) count(id string, stage Stage) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs[runKey{id, stage}]
}

// peak is the most runs of the stage for the compose that overlapped.
func (f *fakeRunner) peak(id string, stage Stage) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peaks[runKey{id, stage}]
}

func (f *fakeRunner) startTimes(id string, stage Stage) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.starts[runKey{id, stage}]...)
}

// wantRuns checks how often each stage ran for the compose.
func (f *fakeRunner) wantRuns(t *testing.T, id string, want map[Stage]int) {
	t.Helper()
	for _, s := range Stages() {
		if got := f.count(id, s); got != want[s] {
			t.Errorf("%s %s ran %d times, want %d", id, s, got, want[s])
		}
	}
}

func onceEach() map[Stage]int {
	m := map[Stage]int{}
	for _, s := range Stages() {
		m[s] = 1
	}
	return m
}

func advance(_ context.Context, w Workflow, n int) (Outcome, error) {
	return Outcome{Advance: true, Note: "fine", Data: map[string]string{"ran_" + string(w.Stage): "yes"}}, nil
}

func notYet(d time.Duration) step {
	return func(_ context.Context, _ Workflow, n int) (Outcome, error) {
		return Outcome{RetryAfter: d, Note: fmt.Sprintf("waiting %d", n)}, nil
	}
}

func failWith(err error) step {
	return func(context.Context, Workflow, int) (Outcome, error) { return Outcome{}, err }
}

func endAs(state string) step {
	return func(context.Context, Workflow, int) (Outcome, error) {
		return Outcome{End: state, Note: "ended: " + state}, nil
	}
}

// blockUntilCancelled signals started and waits for the end of the stage's
// context, like a long stage interrupted by a shutdown or crash.
func blockUntilCancelled(started chan<- struct{}) step {
	return func(ctx context.Context, _ Workflow, _ int) (Outcome, error) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return Outcome{}, ctx.Err()
	}
}

// steps runs the n-th of ss on the n-th run, and the last one after.
func steps(ss ...step) step {
	return func(ctx context.Context, w Workflow, n int) (Outcome, error) {
		return ss[min(n, len(ss))-1](ctx, w, n)
	}
}

func testLogger(t *testing.T) *slog.Logger { return testenv.Logger(t) }
