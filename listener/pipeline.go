package listener

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/composeci/composeci/fedfind"
)

// Errors callers branch on.
var (
	// ErrNotFound: there is no workflow for the compose.
	ErrNotFound = errors.New("no workflow for this compose")
	// ErrNotRetryable: Retry was asked of a workflow that ended without
	// failing (done or doomed).
	ErrNotRetryable = errors.New("workflow did not fail")
	// ErrSilent: no event arrived for longer than the health check allows.
	ErrSilent = errors.New("no events")
)

// Options configure a Pipeline. The zero value of every tuning field picks
// the default given in its comment.
type Options struct {
	// Bus says where NATS is: an embedded server (the default) or an
	// external URL.
	Bus BusOptions
	// Prefix names the streams, subjects and bucket on the server
	// (default DefaultPrefix), so several deployments can share one.
	Prefix string
	// Replicas of the streams and bucket in a NATS cluster (default 1).
	Replicas int
	// Runner runs the stages; required when Workers > 0.
	Runner StageRunner
	// Workers is how many stages this process runs at once; 0 runs none
	// (a process that only dispatches events, or only reads state).
	Workers int
	// Dispatch runs the event dispatcher, which turns stored events into
	// workflows. Any number of processes may; one is enough.
	Dispatch bool
	Logger   *slog.Logger

	// TaskAckWait is how long a delivered task may go unacknowledged
	// before the server gives it to another worker (default 2 minutes).
	// A running stage keeps its task with progress heartbeats every
	// quarter of it, so this bounds how soon a crashed worker's stage is
	// taken over, not how long a stage may take.
	TaskAckWait time.Duration
	// MaxDeliver bounds the deliveries of one task (default 20). A task
	// delivered this often without finishing (its workers crash or hang)
	// fails its workflow instead of sitting in the work queue.
	MaxDeliver int
	// StageTimeout bounds one run of a stage (default 1 hour); running
	// over counts as an error.
	StageTimeout time.Duration
	// MaxStageErrors is how many consecutive errors a stage may have
	// before its workflow fails (default 10).
	MaxStageErrors int
	// ErrorBackoff is the wait after a stage's first error, doubled
	// after each further one (default 5 seconds) up to MaxErrorBackoff
	// (default 10 minutes).
	ErrorBackoff, MaxErrorBackoff time.Duration
	// MinRetryDelay is the shortest wait before an await stage runs again,
	// whatever its RetryAfter (default 1 second).
	MinRetryDelay time.Duration
	// HurryInterval is how soon after its last run an openQA job event
	// may run await-results again (default 30 seconds): a build finishes
	// hundreds of jobs, and each must not cost a poll.
	HurryInterval time.Duration
	// HistoryLimit bounds Workflow.History (default 50 transitions).
	HistoryLimit int
	// EventRetention is how long stored events are kept (default 30
	// days).
	EventRetention time.Duration
	// EventDedupWindow is how long an event's Nats-Msg-Id is remembered
	// (default 1 hour); TaskDedupWindow the same for tasks (default 1
	// hour, and it should outlast TaskAckWait by far).
	EventDedupWindow, TaskDedupWindow time.Duration
	// OpTimeout bounds each NATS call (default 10 seconds).
	OpTimeout time.Duration
	// ShutdownTimeout bounds Stop when Run stops the pipeline (default 30
	// seconds).
	ShutdownTimeout time.Duration
}

func (o *Options) setDefaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.TaskAckWait, 2*time.Minute)
	def(&o.StageTimeout, time.Hour)
	def(&o.ErrorBackoff, 5*time.Second)
	def(&o.MaxErrorBackoff, 10*time.Minute)
	def(&o.MinRetryDelay, time.Second)
	def(&o.HurryInterval, 30*time.Second)
	def(&o.EventRetention, 30*24*time.Hour)
	def(&o.EventDedupWindow, time.Hour)
	def(&o.TaskDedupWindow, time.Hour)
	def(&o.OpTimeout, 10*time.Second)
	def(&o.ShutdownTimeout, 30*time.Second)
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = 20
	}
	if o.MaxStageErrors <= 0 {
		o.MaxStageErrors = 10
	}
	if o.HistoryLimit <= 0 {
		o.HistoryLimit = 50
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.EventDedupWindow = min(o.EventDedupWindow, o.EventRetention)
}

// Pipeline is composeci's durable per-compose workflow engine on NATS
// JetStream. Events go into a stream (Submit); a dispatcher turns them into
// workflows in a KV bucket and queues each workflow's first task; workers
// take tasks from a work queue, run the stage, and move the workflow on with
// compare-and-set. Every step is idempotent, so any process may crash at any
// point and another takes over: see DESIGN.md, "The pipeline of one
// compose".
//
// New connects and sets up the streams; Start runs the dispatcher and
// workers the Options ask for; Stop undoes both. A Pipeline with neither is
// a reader of workflow state (Get, List, Stats) and a Sink.
type Pipeline struct {
	opts   Options
	log    *slog.Logger
	bus    *Bus
	names  natsLayout
	policy transitionPolicy

	events jetstream.Stream
	tasks  jetstream.Stream
	kv     jetstream.KeyValue

	started    time.Time
	holder     string       // names this process in stage leases
	leaseSeq   atomic.Int64 // tells this process's claims apart
	lastSubmit atomic.Int64 // Unix nanoseconds of the last Submit
	running    atomic.Int64 // stages running in this process

	mu       sync.Mutex
	cancel   context.CancelFunc // stops what Start started
	done     chan struct{}      // closed when it has stopped
	stopOnce sync.Once
	stopErr  error
}

// New connects to NATS (starting the embedded server if so configured) and
// creates or updates the streams, consumers and bucket.
func New(ctx context.Context, o Options) (*Pipeline, error) {
	o.setDefaults()
	if o.Workers > 0 && o.Runner == nil {
		return nil, errors.New("pipeline: workers need a stage runner")
	}
	names, err := newNATSLayout(o.Prefix)
	if err != nil {
		return nil, err
	}
	if o.Bus.Logger == nil {
		o.Bus.Logger = o.Logger
	}
	bus, err := Connect(ctx, o.Bus)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{
		opts:  o,
		log:   o.Logger,
		bus:   bus,
		names: names,
		policy: transitionPolicy{
			maxStageErrors: o.MaxStageErrors,
			errorBackoff:   o.ErrorBackoff,
			maxBackoff:     o.MaxErrorBackoff,
			minRetryDelay:  o.MinRetryDelay,
			historyLimit:   o.HistoryLimit,
		},
		started: time.Now(),
		holder:  leaseHolder(),
	}
	if err := p.setUp(ctx); err != nil {
		_ = bus.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return p, nil
}

// setUp creates or updates the JetStream layout: the EVENTS stream, the
// TASKS work queue, their durable consumers, and the workflows bucket.
func (p *Pipeline) setUp(ctx context.Context) error {
	js, o, l := p.bus.js, p.opts, p.names
	call := func(what string, f func(context.Context) error) error {
		return retryJS(ctx, p.log, o.OpTimeout, what, f)
	}
	err := call("creating stream "+l.eventsStream(), func(ctx context.Context) (err error) {
		p.events, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        l.eventsStream(),
			Description: "composeci: events about composes, from every source",
			Subjects:    []string{l.eventSubjects()},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      o.EventRetention,
			MaxMsgSize:  64 << 10,
			Duplicates:  o.EventDedupWindow,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
			Discard:     jetstream.DiscardOld,
		})
		return err
	})
	if err != nil {
		return err
	}
	err = call("creating stream "+l.tasksStream(), func(ctx context.Context) (err error) {
		p.tasks, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        l.tasksStream(),
			Description: "composeci: stage tasks of compose workflows (work queue)",
			Subjects:    []string{l.taskSubjects()},
			Retention:   jetstream.WorkQueuePolicy,
			MaxMsgSize:  16 << 10,
			Duplicates:  o.TaskDedupWindow,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
		})
		return err
	})
	if err != nil {
		return err
	}
	err = call("creating consumer "+dispatcherConsumer, func(ctx context.Context) error {
		_, err := p.events.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       dispatcherConsumer,
			Description:   "composeci: turns events into workflows",
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       time.Minute,
			MaxDeliver:    -1, // a failed dispatch is retried until the KV answers
			DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		return err
	})
	if err != nil {
		return err
	}
	err = call("creating consumer "+workerConsumer, func(ctx context.Context) error {
		_, err := p.tasks.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       workerConsumer,
			Description:   "composeci: stage workers (every worker of every process)",
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       o.TaskAckWait,
			MaxDeliver:    o.MaxDeliver,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		return err
	})
	if err != nil {
		return err
	}
	return call("creating bucket "+l.bucket(), func(ctx context.Context) (err error) {
		p.kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      l.bucket(),
			Description: "composeci: compose workflows by compose ID",
			History:     5,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
		})
		return err
	})
}

// Bus returns the pipeline's NATS connection (whose ClientURL other
// processes can join when the embedded server listens).
func (p *Pipeline) Bus() *Bus { return p.bus }

// Start runs the dispatcher and workers that the Options ask for, and the
// watcher of tasks that ran out of deliveries, until Stop.
func (p *Pipeline) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel != nil {
		return errors.New("pipeline already started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	var wg sync.WaitGroup
	run := func(name string, f func(context.Context) error) {
		wg.Go(func() {
			if err := f(ctx); err != nil && ctx.Err() == nil {
				p.log.Error("pipeline part stopped", "part", name, "err", err)
			}
		})
	}
	if p.opts.Dispatch || p.opts.Workers > 0 {
		run("max-deliveries watcher", p.watchExhausted)
	}
	if p.opts.Dispatch {
		run("dispatcher", p.RunDispatcher)
	}
	if p.opts.Workers > 0 {
		run("workers", func(ctx context.Context) error { return p.RunWorkers(ctx, p.opts.Workers) })
	}
	go func() {
		wg.Wait()
		close(p.done)
	}()
	p.log.Info("pipeline started", "dispatch", p.opts.Dispatch, "workers", p.opts.Workers, "prefix", p.names.prefix)
	return nil
}

// Stop stops taking events and tasks, cancels the stages running (their
// tasks go back to the queue at once, to run again elsewhere or after a
// restart: stage runners are idempotent), waits for the dispatcher and
// workers to return, drains the NATS connection and stops the embedded
// server — or gives up on waiting when ctx ends. It may be called more than
// once.
func (p *Pipeline) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() {
		p.mu.Lock()
		cancel, done := p.cancel, p.done
		p.mu.Unlock()
		var errs []error
		if cancel != nil {
			cancel()
			select {
			case <-done:
			case <-ctx.Done():
				errs = append(errs, fmt.Errorf("waiting for workers: %w", ctx.Err()))
			}
		}
		if err := p.bus.Close(ctx); err != nil {
			errs = append(errs, err)
		}
		p.stopErr = errors.Join(errs...)
		p.log.Info("pipeline stopped")
	})
	return p.stopErr
}

// Run starts the pipeline, waits for ctx to end, and stops it within
// Options.ShutdownTimeout: the shape of `composeci listen` and
// `composeci worker`.
func (p *Pipeline) Run(ctx context.Context) error {
	if err := p.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.opts.ShutdownTimeout)
	defer cancel()
	return p.Stop(sctx)
}

// Submit stores an event durably in the events stream and returns once the
// server has it: an AMQP consumer may ack its message then. A duplicate (the
// same message ID, or without one the same kind, compose and status, within
// EventDedupWindow) is accepted and dropped. Invalid events (a hostile
// compose ID, say) are refused with an error wrapping
// fedfind.ErrInvalidInput.
func (p *Pipeline) Submit(ctx context.Context, e Event) error {
	now := time.Now()
	if e.At.IsZero() {
		e.At = now
	}
	if err := e.Validate(); err != nil {
		return err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding event: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.OpTimeout)
	defer cancel()
	ack, err := p.bus.js.Publish(ctx, p.names.eventSubject(e.ComposeID), data,
		jetstream.WithMsgID(eventMsgID(e)), jetstream.WithExpectStream(p.names.eventsStream()))
	if err != nil {
		return fmt.Errorf("storing %s event for %s: %w", e.Kind, e.ComposeID, err)
	}
	p.lastSubmit.Store(now.UnixNano())
	p.log.Debug("event stored", "compose", e.ComposeID, "kind", e.Kind, "status", e.Status,
		"source", e.Source, "seq", ack.Sequence, "duplicate", ack.Duplicate)
	return nil
}

// checkComposeID accepts only canonical compose IDs: they name KV keys,
// subjects and, later, files.
func checkComposeID(id string) error {
	cid, err := fedfind.ParseComposeID(id)
	if err != nil {
		return err
	}
	if cid.String() != id {
		return fmt.Errorf("%w: compose ID %q is not canonical (%s)", fedfind.ErrInvalidInput, id, cid)
	}
	return nil
}

// load reads a compose's record and the revision to update it at.
func (p *Pipeline) load(ctx context.Context, composeID string) (*record, uint64, error) {
	entry, err := p.kv.Get(ctx, encodeToken(composeID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("%s: %w", composeID, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading workflow of %s: %w", composeID, err)
	}
	r, err := decodeRecord(entry.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("workflow of %s: %w", composeID, err)
	}
	return r, entry.Revision(), nil
}

// update writes r if the record is still at revision rev; a concurrent
// change returns an error wrapping jetstream.ErrKeyRevisionMismatch.
func (p *Pipeline) update(ctx context.Context, r *record, rev uint64) (uint64, error) {
	return p.kv.Update(ctx, encodeToken(r.ComposeID), r.encode(), rev)
}

// publishTask queues t under its deterministic message ID.
func (p *Pipeline) publishTask(ctx context.Context, t task) error {
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encoding task: %w", err)
	}
	_, err = p.bus.js.Publish(ctx, p.names.taskSubject(t.Stage), data,
		jetstream.WithMsgID(t.id()), jetstream.WithExpectStream(p.names.tasksStream()))
	if err != nil {
		return fmt.Errorf("queueing task %s: %w", t.id(), err)
	}
	return nil
}

// Get returns the workflow of a compose, or an error wrapping ErrNotFound.
func (p *Pipeline) Get(ctx context.Context, composeID string) (Workflow, error) {
	if err := checkComposeID(composeID); err != nil {
		return Workflow{}, err
	}
	r, _, err := p.load(ctx, composeID)
	if err != nil {
		return Workflow{}, err
	}
	return r.Workflow, nil
}

// List returns every workflow, sorted by compose ID.
func (p *Pipeline) List(ctx context.Context) ([]Workflow, error) {
	recs, err := p.records(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Workflow, len(recs))
	for i, r := range recs {
		out[i] = r.Workflow
	}
	return out, nil
}

// records reads the whole bucket in one watch (a key listing and a Get per
// key would cost a round trip each).
func (p *Pipeline) records(ctx context.Context) ([]*record, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.OpTimeout)
	defer cancel()
	w, err := p.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("listing workflows: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var recs []*record
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("listing workflows: %w", ctx.Err())
		case entry, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("listing workflows: watch closed")
			}
			if entry == nil { // the initial values are all in
				slices.SortFunc(recs, func(a, b *record) int { return cmp.Compare(a.ComposeID, b.ComposeID) })
				return recs, nil
			}
			r, err := decodeRecord(entry.Value())
			if err != nil {
				p.log.Warn("skipping unreadable workflow", "key", entry.Key(), "err", err)
				continue
			}
			recs = append(recs, r)
		}
	}
}

// Retry restarts a failed workflow at the stage that failed, as a new
// attempt with a fresh error budget. For an active workflow it queues the
// pending task again (a copy still queued is dropped as a duplicate; one
// already taken makes a redundant run whose outcome is applied once): the
// operator's way to revive a workflow whose task was lost. Done and doomed
// workflows return ErrNotRetryable.
func (p *Pipeline) Retry(ctx context.Context, composeID string) error {
	if err := checkComposeID(composeID); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.OpTimeout)
	defer cancel()
	for {
		r, rev, err := p.load(ctx, composeID)
		if err != nil {
			return err
		}
		switch r.State {
		case StateActive:
			t, _ := r.pending()
			return p.publishTask(ctx, t)
		case StateFailed:
		default:
			return fmt.Errorf("%s is %s: %w", composeID, r.State, ErrNotRetryable)
		}
		now := time.Now()
		n := r.clone()
		n.State, n.Attempt, n.Failures, n.Due, n.UpdatedAt = StateActive, n.Attempt+1, 0, now, now
		n.From = fmt.Sprintf("retry/%s/%d", n.Stage, n.Attempt)
		n.Note = "retried by an operator"
		n.addHistory(now, n.Note, p.opts.HistoryLimit)
		if _, err := p.update(ctx, n, rev); errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		} else if err != nil {
			return fmt.Errorf("retrying %s: %w", composeID, err)
		}
		t, _ := n.pending()
		p.log.Info("workflow retried", "compose", composeID, "stage", n.Stage, "attempt", n.Attempt)
		return p.publishTask(ctx, t)
	}
}

// Stats is a snapshot of the pipeline for health checks, metrics and
// people.
type Stats struct {
	// Workflows counts the workflows by state.
	Workflows map[string]int `json:"workflows"`
	// Overdue lists active workflows whose pending task should have
	// finished long ago (by twice TaskAckWait plus StageTimeout): its
	// task may be lost; Retry queues it again.
	Overdue []string `json:"overdue,omitempty"`
	// TasksQueued counts the tasks in the work queue: waiting, delayed
	// or running.
	TasksQueued uint64 `json:"tasks_queued"`
	// EventsPending counts stored events the dispatcher has not
	// finished with.
	EventsPending uint64 `json:"events_pending"`
	// Running counts the stages this process runs now.
	Running int `json:"running"`
	// LastEvent is when the newest event was stored (by any process) or
	// submitted here (duplicates too); zero if none.
	LastEvent time.Time `json:"last_event,omitzero"`
	// Since is when this pipeline started; Now when the snapshot was taken.
	Since time.Time `json:"since"`
	Now   time.Time `json:"now"`
}

// Stats takes a snapshot from the bucket, streams and consumers.
func (p *Pipeline) Stats(ctx context.Context) (Stats, error) {
	s := Stats{Workflows: map[string]int{}, Since: p.started, Running: int(p.running.Load())}
	recs, err := p.records(ctx)
	if err != nil {
		return s, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.OpTimeout)
	defer cancel()
	s.Now = time.Now()
	overdue := 2*p.opts.TaskAckWait + p.opts.StageTimeout
	for _, r := range recs {
		s.Workflows[r.State]++
		if r.State == StateActive && s.Now.Sub(r.Due) > overdue && s.Now.Sub(r.UpdatedAt) > overdue {
			s.Overdue = append(s.Overdue, r.ComposeID)
		}
	}
	ti, err := p.tasks.Info(ctx)
	if err != nil {
		return s, fmt.Errorf("task stream: %w", err)
	}
	s.TasksQueued = ti.State.Msgs
	ei, err := p.events.Info(ctx)
	if err != nil {
		return s, fmt.Errorf("event stream: %w", err)
	}
	if ei.State.Msgs > 0 {
		s.LastEvent = ei.State.LastTime
	}
	if ns := p.lastSubmit.Load(); ns != 0 && time.Unix(0, ns).After(s.LastEvent) {
		s.LastEvent = time.Unix(0, ns)
	}
	ci, err := p.bus.js.Consumer(ctx, p.names.eventsStream(), dispatcherConsumer)
	if err != nil {
		return s, fmt.Errorf("dispatcher consumer: %w", err)
	}
	info, err := ci.Info(ctx)
	if err != nil {
		return s, fmt.Errorf("dispatcher consumer: %w", err)
	}
	s.EventsPending = info.NumPending + uint64(info.NumAckPending)
	return s, nil
}

// CheckEvents says whether events still arrive: an error wrapping ErrSilent
// when none came for longer than maxSilence (counted from the pipeline's
// start if none came at all). A consumer that silently stops is the most
// common failure of bus-driven schedulers.
func (s Stats) CheckEvents(maxSilence time.Duration) error {
	last, since := s.LastEvent, "last at "+s.LastEvent.UTC().Format(time.RFC3339)
	if last.IsZero() {
		last, since = s.Since, "none since the start at "+s.Since.UTC().Format(time.RFC3339)
	}
	if quiet := s.Now.Sub(last); quiet > maxSilence {
		return fmt.Errorf("%w for %s (%s)", ErrSilent, quiet.Round(time.Second), since)
	}
	return nil
}
