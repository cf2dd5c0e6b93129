package workflow

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/backoff"
	"github.com/composeci/composeci/listener/event"
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
	// ErrClosed: the engine was closed.
	ErrClosed = errors.New("workflow engine closed")
)

// Options configure an Engine. The zero value of every tuning field picks
// the default given in its comment.
type Options struct {
	// Bus says where NATS is: an embedded server (the default) or an
	// external URL.
	Bus BusOptions
	// Prefix names the streams, subjects and bucket on the server
	// (default DefaultPrefix), so several deployments can share one.
	Prefix string
	// Replicas of the streams and bucket in a NATS cluster (1 to 5): a
	// stream or bucket made afresh gets this many copies, and one that
	// exists with another count is changed to it (JetStream moves the
	// copies while it serves). 0 keeps the count of what exists and makes
	// new ones with 1, so that a process started without a count never
	// shrinks a replicated deployment. More than 1 needs a cluster: the
	// embedded server is refused.
	Replicas int
	// Stages are the workflow's stages in order; required.
	Stages []Stage
	// HurryStages are the stages an openQA job event hurries: a workflow
	// waiting in one runs it again soon (no sooner than HurryInterval after
	// its last run). Empty: such events are only counted.
	HurryStages []Stage
	// ReviveStages are the stages where a failed workflow is started
	// again, as a new attempt with a fresh error budget, by a compose
	// status event that reports a final STATUS: a compose given up on
	// while it was not complete (AwaitComplete's timeout) is tested once
	// Pungi says it ended. Empty: such events are only counted.
	ReviveStages []Stage
	// Runner runs the stages; required when Workers > 0.
	Runner StageRunner
	// Workers is how many stages this process runs at once; 0 runs none
	// (a process that only dispatches events, or only reads state).
	Workers int
	// Dispatch runs the event dispatcher, which turns stored events into
	// workflows. Any number of processes may; one is enough.
	Dispatch bool
	// ReadOnly looks the streams and the bucket up instead of creating or
	// updating them (and their consumers), for a process that only reads
	// and submits, such as `composeci serve`: it must not change the
	// settings the working processes chose. The pipeline must exist.
	ReadOnly bool
	Logger   *slog.Logger

	// TaskAckWait is how long a delivered task (or event) may go
	// unacknowledged before the server gives it to another worker
	// (default DefaultTaskAckWait). A running stage keeps its task with
	// progress heartbeats every quarter of it, so this bounds how soon a
	// crashed worker's stage is taken over, not how long a stage may take.
	// With the embedded server, what a killed process held is handed back
	// as soon as it starts again, without waiting for this.
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
	// may run a hurried stage again (default 30 seconds): a build finishes
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
	// ResultRetention is how long the feed of results keeps an entry
	// (default 400 days).
	ResultRetention time.Duration
	// OpTimeout bounds each NATS call (default 10 seconds).
	OpTimeout time.Duration
	// Observer hears what the engine does, for metrics; nil hears nothing.
	Observer Observer
}

// Observer hears what an Engine does, as it happens. Its methods must be
// quick and must not block: they run on the engine's paths.
type Observer interface {
	// EventStored: an event was stored (duplicate: the server had it).
	EventStored(e event.Event, duplicate bool)
	// StageRan: a run of a stage ended with this outcome — "advanced",
	// "waiting", "ended", "error", "handed back" or "abandoned" — after took.
	StageRan(stage Stage, outcome string, took time.Duration)
	// TaskRedelivered: the server delivered a task again (a worker died,
	// an ack was lost, or a stage waits for its due time).
	TaskRedelivered(stage Stage)
}

type noObserver struct{}

func (noObserver) EventStored(event.Event, bool)         {}
func (noObserver) StageRan(Stage, string, time.Duration) {}
func (noObserver) TaskRedelivered(Stage)                 {}

func (o *Options) setDefaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.TaskAckWait, DefaultTaskAckWait)
	def(&o.StageTimeout, time.Hour)
	def(&o.ErrorBackoff, 5*time.Second)
	def(&o.MaxErrorBackoff, 10*time.Minute)
	def(&o.MinRetryDelay, time.Second)
	def(&o.HurryInterval, 30*time.Second)
	def(&o.EventRetention, 30*24*time.Hour)
	def(&o.EventDedupWindow, time.Hour)
	def(&o.TaskDedupWindow, time.Hour)
	def(&o.OpTimeout, 10*time.Second)
	def(&o.ResultRetention, 400*24*time.Hour)
	if o.Observer == nil {
		o.Observer = noObserver{}
	}
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = 20
	}
	if o.MaxStageErrors <= 0 {
		o.MaxStageErrors = 10
	}
	if o.HistoryLimit <= 0 {
		o.HistoryLimit = 50
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.EventDedupWindow = min(o.EventDedupWindow, o.EventRetention)
}

func (o *Options) check() error {
	if len(o.Stages) == 0 {
		return errors.New("workflow: no stages")
	}
	for i, s := range o.Stages {
		if s == "" || slices.Index(o.Stages, s) != i {
			return fmt.Errorf("workflow: stage %q is empty or named twice", s)
		}
		if !prefixPattern().MatchString(string(s)) {
			return fmt.Errorf("workflow: stage %q: want 1 to 32 of [A-Za-z0-9_-] (it names a subject)", s)
		}
	}
	for _, h := range o.HurryStages {
		if !slices.Contains(o.Stages, h) {
			return fmt.Errorf("workflow: hurry stage %q is not a stage", h)
		}
	}
	for _, h := range o.ReviveStages {
		if !slices.Contains(o.Stages, h) {
			return fmt.Errorf("workflow: revive stage %q is not a stage", h)
		}
	}
	if o.Workers > 0 && o.Runner == nil {
		return errors.New("workflow: workers need a stage runner")
	}
	if o.Replicas < 0 || o.Replicas > MaxReplicas {
		return fmt.Errorf("workflow: %d replicas: want 1 to %d (0 keeps what exists)", o.Replicas, MaxReplicas)
	}
	if o.Replicas > 1 && o.Bus.URL == "" {
		return fmt.Errorf("workflow: %d replicas need a NATS cluster: the embedded server is one node and keeps one copy", o.Replicas)
	}
	if o.ReadOnly && (o.Workers > 0 || o.Dispatch) {
		return errors.New("workflow: a read-only engine runs no workers and no dispatcher")
	}
	return nil
}

// Engine is the durable per-compose workflow engine. New connects and sets
// up the streams, consumers and bucket; Parts returns the loops that the
// Options ask this process to run (dispatcher, workers, the watcher of
// exhausted tasks), for a supervisor to run and restart; Close disconnects.
// An Engine whose parts do not run is still a reader of workflow state
// (Get, List, Stats), an event Sink and an operator's Retry.
//
// Every NATS call goes through the engine's current session: when the
// connection is closed under it (the server shut it, or a test did), the
// next call connects afresh and looks the streams up again, so a part that
// returned on a closed connection recovers when it is started again.
type Engine struct {
	opts   Options
	log    *slog.Logger
	bus    *Bus
	names  natsLayout
	policy transitionPolicy

	mu     sync.Mutex // serialises reconnects and Close
	cur    atomic.Pointer[session]
	closed bool

	started time.Time
	holder  string // names this process in stage leases
	// orphansChecked is set once the first session handed back what the
	// last run held (embedded server only); guarded by mu.
	orphansChecked bool
	leaseSeq       atomic.Int64 // tells this process's claims apart
	lastSubmit     atomic.Int64 // Unix nanoseconds of the last Submit
	running        atomic.Int64 // stages running in this process
}

// session is one connection to NATS with the engine's streams and bucket
// looked up on it.
type session struct {
	link    *link
	events  jetstream.Stream
	tasks   jetstream.Stream
	results jetstream.Stream
	kv      jetstream.KeyValue
}

func (s *session) js() jetstream.JetStream { return s.link.js }

// MaxReplicas is the most copies JetStream keeps of a stream.
const MaxReplicas = 5

// DefaultTaskAckWait is the default TaskAckWait: heartbeats every 2.5 s
// keep a running stage's task (and its lease), and a dead worker's task
// comes back to another worker within 10 s. A redelivery while the first
// worker still runs the stage (heartbeats lost for 10 s) finds its lease
// and waits: the stage never runs twice at once.
const DefaultTaskAckWait = 10 * time.Second

// New connects to NATS (starting the embedded server if so configured) and
// creates or updates the streams, consumers and bucket.
func New(ctx context.Context, o Options) (*Engine, error) {
	o.setDefaults()
	if err := o.check(); err != nil {
		return nil, err
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
	e := &Engine{
		opts:  o,
		log:   o.Logger,
		bus:   bus,
		names: names,
		policy: transitionPolicy{
			stages:         slices.Clone(o.Stages),
			maxStageErrors: o.MaxStageErrors,
			errorBackoff:   backoff.Policy{Base: o.ErrorBackoff, Max: o.MaxErrorBackoff},
			minRetryDelay:  o.MinRetryDelay,
			historyLimit:   o.HistoryLimit,
		},
		started: time.Now(),
		holder:  leaseHolder(),
	}
	if _, err := e.session(ctx); err != nil {
		_ = bus.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return e, nil
}

// session returns the current session, connecting again first when its
// connection was closed.
func (e *Engine) session(ctx context.Context) (*session, error) {
	if s := e.cur.Load(); s != nil && !s.link.isClosed() {
		return s, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	if s := e.cur.Load(); s != nil && !s.link.isClosed() {
		return s, nil
	}
	old := e.cur.Load()
	l, err := e.bus.current(ctx)
	if err != nil {
		return nil, err
	}
	s := &session{link: l}
	if err := e.setUp(ctx, s); err != nil {
		return nil, err
	}
	e.cur.Store(s)
	if old != nil {
		e.log.Info("NATS connection re-established")
	}
	return s, nil
}

// setUp creates or updates the JetStream layout on s: the EVENTS stream,
// the TASKS work queue, their durable consumers, and the workflows bucket.
func (e *Engine) setUp(ctx context.Context, s *session) error {
	if e.opts.ReadOnly {
		return e.lookUp(ctx, s)
	}
	js, o, l := s.js(), e.opts, e.names
	call := func(what string, f func(context.Context) error) error {
		return retryJS(ctx, e.log, o.OpTimeout, what, f)
	}
	// stream creates or updates a stream with the replicas it should have.
	stream := func(cfg jetstream.StreamConfig) (st jetstream.Stream, err error) {
		err = call("creating stream "+cfg.Name, func(ctx context.Context) error {
			if cfg.Replicas, err = e.replicas(ctx, js, cfg.Name); err != nil {
				return err
			}
			st, err = js.CreateOrUpdateStream(ctx, cfg)
			return err
		})
		return st, err
	}
	var err error
	if s.events, err = stream(jetstream.StreamConfig{
		Name:        l.eventsStream(),
		Description: "composeci: events about composes, from every source",
		Subjects:    []string{l.eventSubjects()},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      o.EventRetention,
		MaxMsgSize:  64 << 10,
		Duplicates:  o.EventDedupWindow,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
	}); err != nil {
		return err
	}
	if s.tasks, err = stream(jetstream.StreamConfig{
		Name:        l.tasksStream(),
		Description: "composeci: stage tasks of compose workflows (work queue)",
		Subjects:    []string{l.taskSubjects()},
		Retention:   jetstream.WorkQueuePolicy,
		MaxMsgSize:  16 << 10,
		Duplicates:  o.TaskDedupWindow,
		Storage:     jetstream.FileStorage,
	}); err != nil {
		return err
	}
	if s.results, err = stream(jetstream.StreamConfig{
		Name:        l.resultsStream(),
		Description: "composeci: one entry per ending of a compose's workflow, the feed of results",
		Subjects:    []string{l.resultSubjects()},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      o.ResultRetention,
		MaxMsgSize:  512 << 10,
		Duplicates:  o.TaskDedupWindow,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
	}); err != nil {
		return err
	}
	err = call("creating consumer "+dispatcherConsumer, func(ctx context.Context) error {
		cfg := e.dispatcherConfig()
		// A consumer made afresh from a sequence (handBackOrphans) keeps
		// its deliver policy: the server refuses to change it.
		if c, err := s.events.Consumer(ctx, dispatcherConsumer); err == nil {
			if info := c.CachedInfo(); info != nil {
				cfg.DeliverPolicy, cfg.OptStartSeq = info.Config.DeliverPolicy, info.Config.OptStartSeq
			}
		}
		_, err := s.events.CreateOrUpdateConsumer(ctx, cfg)
		return err
	})
	if err != nil {
		return err
	}
	err = call("creating consumer "+workerConsumer, func(ctx context.Context) error {
		_, err := s.tasks.CreateOrUpdateConsumer(ctx, e.workerConfig())
		return err
	})
	if err != nil {
		return err
	}
	if e.bus.Embedded() && !e.orphansChecked {
		// Once per process, before any part of it takes work.
		e.orphansChecked = true
		if err := e.handBackOrphans(ctx, s); err != nil {
			return err
		}
	}
	return call("creating bucket "+l.bucket(), func(ctx context.Context) (err error) {
		replicas, err := e.replicas(ctx, js, "KV_"+l.bucket())
		if err != nil {
			return err
		}
		s.kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      l.bucket(),
			Description: "composeci: compose workflows by compose ID",
			History:     5,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		return err
	})
}

// replicas is the replica count to create or update a stream with (a KV
// bucket's is "KV_<bucket>"): Options.Replicas, or, when that is 0, the
// count the stream has (1 for a new one). A change of an existing
// stream's count is logged: JetStream copies or drops replicas while it
// serves.
func (e *Engine) replicas(ctx context.Context, js jetstream.JetStream, stream string) (int, error) {
	have, err := StreamReplicas(ctx, js, stream)
	if err != nil {
		return 0, err
	}
	want := e.opts.Replicas
	switch {
	case want == 0 && have == 0:
		return 1, nil
	case want == 0:
		return have, nil
	case have != 0 && have != want:
		e.log.Warn("changing the replicas of a stream", "stream", stream, "from", have, "to", want)
	}
	return want, nil
}

// StreamReplicas is the replica count of a stream, 0 when there is no
// such stream.
func StreamReplicas(ctx context.Context, js jetstream.JetStream, stream string) (int, error) {
	st, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return max(st.CachedInfo().Config.Replicas, 1), nil
}

func (e *Engine) dispatcherConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       dispatcherConsumer,
		Description:   "composeci: turns events into workflows",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       e.opts.TaskAckWait,
		MaxDeliver:    -1, // a failed dispatch is retried until the KV answers
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

func (e *Engine) workerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       workerConsumer,
		Description:   "composeci: stage workers (every worker of every process)",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       e.opts.TaskAckWait,
		MaxDeliver:    e.opts.MaxDeliver,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// handBackOrphans gives back at once what the previous run of this process
// held. With the embedded server no other process holds a task or an event
// across a restart: one delivered but not acknowledged was held by the
// previous run, killed before it acked, and the server would deliver it
// again only after its AckWait. Such a consumer is made afresh — the
// workers' on the work queue, where every unacknowledged task is still in
// the stream; the dispatcher's from just past its acknowledged floor — so
// the tasks and events come again now. Every stage and every dispatch is
// idempotent, and a stage's lease in its workflow record still keeps a
// second run from starting while a first one could hold it.
func (e *Engine) handBackOrphans(ctx context.Context, s *session) error {
	for _, c := range []struct {
		stream jetstream.Stream
		config func(*jetstream.ConsumerInfo) jetstream.ConsumerConfig
	}{
		{s.tasks, func(*jetstream.ConsumerInfo) jetstream.ConsumerConfig { return e.workerConfig() }},
		{s.events, func(info *jetstream.ConsumerInfo) jetstream.ConsumerConfig {
			cfg := e.dispatcherConfig()
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, info.AckFloor.Stream+1
			return cfg
		}},
	} {
		err := retryJS(ctx, e.log, e.opts.OpTimeout, "handing back what the last run held", func(ctx context.Context) error {
			cons, err := c.stream.Consumer(ctx, c.config(&jetstream.ConsumerInfo{}).Durable)
			if err != nil {
				return err
			}
			info, err := cons.Info(ctx)
			if err != nil || info.NumAckPending == 0 {
				return err
			}
			cfg := c.config(info)
			if err := c.stream.DeleteConsumer(ctx, cfg.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return err
			}
			if _, err := c.stream.CreateOrUpdateConsumer(ctx, cfg); err != nil {
				return err
			}
			e.log.Info("handed back what the last run of this process held", "consumer", cfg.Durable, "unacknowledged", info.NumAckPending)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// lookUp finds the streams and the bucket a working process made.
func (e *Engine) lookUp(ctx context.Context, s *session) error {
	js, l := s.js(), e.names
	var err error
	call := func(what string, f func(context.Context) error) {
		if err == nil {
			err = retryJS(ctx, e.log, e.opts.OpTimeout, what, f)
		}
	}
	call("stream "+l.eventsStream(), func(ctx context.Context) (err error) { s.events, err = js.Stream(ctx, l.eventsStream()); return err })
	call("stream "+l.tasksStream(), func(ctx context.Context) (err error) { s.tasks, err = js.Stream(ctx, l.tasksStream()); return err })
	call("stream "+l.resultsStream(), func(ctx context.Context) (err error) { s.results, err = js.Stream(ctx, l.resultsStream()); return err })
	call("bucket "+l.bucket(), func(ctx context.Context) (err error) { s.kv, err = js.KeyValue(ctx, l.bucket()); return err })
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("no composeci pipeline with prefix %s on this NATS (start 'composeci listen' on it first): %w", l.prefix, err)
	}
	return err
}

// Bus returns the engine's NATS connection (whose ClientURL other
// processes can join when the embedded server listens).
func (e *Engine) Bus() *Bus { return e.bus }

// Part is a long-running loop of the engine, for a supervisor: Run returns
// nil when ctx ends and an error when the part stopped by itself (its
// connection was closed, say); it may then be run again.
type Part struct {
	Name string
	Run  func(ctx context.Context) error
}

// Parts returns the loops the Options ask this process to run: the
// dispatcher, one loop per worker, and the watcher of tasks that ran out of
// deliveries. When a worker's context ends, the stage it runs is cancelled
// and its task handed back to the queue at once.
func (e *Engine) Parts() []Part {
	var parts []Part
	if e.opts.Dispatch || e.opts.Workers > 0 {
		parts = append(parts, Part{Name: "max-deliveries watcher", Run: e.watchExhausted})
	}
	if e.opts.Dispatch {
		parts = append(parts, Part{Name: "dispatcher", Run: e.runDispatcher})
	}
	for i := range e.opts.Workers {
		parts = append(parts, Part{Name: "worker " + strconv.Itoa(i+1), Run: e.runWorker})
	}
	return parts
}

// Close drains the NATS connection and stops the embedded server, or gives
// up waiting when ctx ends. The parts must have returned first. It may be
// called more than once.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	err := e.bus.Close(ctx)
	e.log.Info("workflow engine closed")
	return err
}

// Submit stores an event durably in the events stream and returns once the
// server has it: an AMQP consumer may ack its message then. A duplicate (the
// same message ID, or without one the same kind, compose and status, within
// EventDedupWindow) is accepted and dropped. Invalid events (a hostile
// compose ID, say) are refused with an error wrapping
// fedfind.ErrInvalidInput.
func (e *Engine) Submit(ctx context.Context, ev event.Event) error {
	now := time.Now()
	if ev.At.IsZero() {
		ev.At = now
	}
	if err := ev.Validate(); err != nil {
		return err
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encoding event: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.OpTimeout)
	defer cancel()
	s, err := e.session(ctx)
	if err != nil {
		return fmt.Errorf("storing %s event for %s: %w", ev.Kind, ev.ComposeID, err)
	}
	ack, err := s.js().Publish(ctx, e.names.eventSubject(ev.ComposeID), data,
		jetstream.WithMsgID(eventMsgID(ev)), jetstream.WithExpectStream(e.names.eventsStream()))
	if err != nil {
		return fmt.Errorf("storing %s event for %s: %w", ev.Kind, ev.ComposeID, err)
	}
	e.lastSubmit.Store(now.UnixNano())
	e.opts.Observer.EventStored(ev, ack.Duplicate)
	e.log.Debug("event stored", "compose", ev.ComposeID, "kind", ev.Kind, "status", ev.Status,
		"source", ev.Source, "seq", ack.Sequence, "duplicate", ack.Duplicate)
	return nil
}

// load reads a compose's record and the revision to update it at.
func (e *Engine) load(ctx context.Context, composeID string) (*record, uint64, error) {
	s, err := e.session(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("reading workflow of %s: %w", composeID, err)
	}
	entry, err := s.kv.Get(ctx, encodeToken(composeID))
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
func (e *Engine) update(ctx context.Context, r *record, rev uint64) (uint64, error) {
	s, err := e.session(ctx)
	if err != nil {
		return 0, err
	}
	return s.kv.Update(ctx, encodeToken(r.ComposeID), r.encode(), rev)
}

// create writes r as a new record; one that exists already returns an error
// wrapping jetstream.ErrKeyExists.
func (e *Engine) create(ctx context.Context, r *record) error {
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	_, err = s.kv.Create(ctx, encodeToken(r.ComposeID), r.encode())
	return err
}

// publishTask queues t under its deterministic message ID.
func (e *Engine) publishTask(ctx context.Context, t task) error {
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encoding task: %w", err)
	}
	s, err := e.session(ctx)
	if err != nil {
		return fmt.Errorf("queueing task %s: %w", t.id(), err)
	}
	_, err = s.js().Publish(ctx, e.names.taskSubject(t.Stage), data,
		jetstream.WithMsgID(t.id()), jetstream.WithExpectStream(e.names.tasksStream()))
	if err != nil {
		return fmt.Errorf("queueing task %s: %w", t.id(), err)
	}
	return nil
}

// Get returns the workflow of a compose, or an error wrapping ErrNotFound.
func (e *Engine) Get(ctx context.Context, composeID string) (Workflow, error) {
	if err := event.CheckComposeID(composeID); err != nil {
		return Workflow{}, err
	}
	r, _, err := e.load(ctx, composeID)
	if err != nil {
		return Workflow{}, err
	}
	return r.Workflow, nil
}

// List returns every workflow, sorted by compose ID.
func (e *Engine) List(ctx context.Context) ([]Workflow, error) {
	recs, err := e.records(ctx)
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
func (e *Engine) records(ctx context.Context) ([]*record, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.OpTimeout)
	defer cancel()
	s, err := e.session(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing workflows: %w", err)
	}
	var recs []*record
	err = RetryStalled(ctx, func(ctx context.Context) error {
		recs, err = e.watchRecords(ctx, s)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing workflows: %w", err)
	}
	return recs, nil
}

// watchRecords reads the bucket's records through one watch.
func (e *Engine) watchRecords(ctx context.Context, s *session) ([]*record, error) {
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	var recs []*record
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case entry, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("watch closed")
			}
			if entry == nil { // the initial values are all in
				slices.SortFunc(recs, func(a, b *record) int { return cmp.Compare(a.ComposeID, b.ComposeID) })
				return recs, nil
			}
			r, err := decodeRecord(entry.Value())
			if err != nil {
				e.log.Warn("skipping unreadable workflow", "key", entry.Key(), "err", err)
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
func (e *Engine) Retry(ctx context.Context, composeID string) error {
	if err := event.CheckComposeID(composeID); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.OpTimeout)
	defer cancel()
	for {
		r, rev, err := e.load(ctx, composeID)
		if err != nil {
			return err
		}
		switch r.State {
		case StateActive:
			t, _ := r.pending()
			return e.publishTask(ctx, t)
		case StateFailed:
		default:
			return fmt.Errorf("%s is %s: %w", composeID, r.State, ErrNotRetryable)
		}
		now := time.Now()
		n := r.clone()
		n.State, n.Attempt, n.Failures, n.Due, n.UpdatedAt = StateActive, n.Attempt+1, 0, now, now
		n.From = fmt.Sprintf("retry/%s/%d", n.Stage, n.Attempt)
		n.Note = "retried by an operator"
		n.addHistory(now, n.Note, e.opts.HistoryLimit)
		if _, err := e.update(ctx, n, rev); errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		} else if err != nil {
			return fmt.Errorf("retrying %s: %w", composeID, err)
		}
		t, _ := n.pending()
		e.log.Info("workflow retried", "compose", composeID, "stage", n.Stage, "attempt", n.Attempt)
		return e.publishTask(ctx, t)
	}
}

// Rewind sends a compose's workflow back to stage, whatever its state, as a
// new attempt due at once: after people re-ran some of its openQA jobs, the
// compose waits for them again and is checked and reported again. The note
// goes into its history.
func (e *Engine) Rewind(ctx context.Context, composeID string, stage Stage, note string) error {
	if err := event.CheckComposeID(composeID); err != nil {
		return err
	}
	if !slices.Contains(e.policy.stages, stage) {
		return fmt.Errorf("%w: no stage %q", fedfind.ErrInvalidInput, stage)
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.OpTimeout)
	defer cancel()
	for {
		r, rev, err := e.load(ctx, composeID)
		if err != nil {
			return err
		}
		now := time.Now()
		n := r.clone()
		n.State, n.Stage, n.Attempt, n.Failures, n.Due, n.UpdatedAt = StateActive, stage, r.Attempt+1, 0, now, now
		n.Lease, n.LeaseUntil = "", time.Time{}
		// A new generation: the stages after this one run again as
		// attempt 1, and their tasks must not carry the ids of the first
		// pass (the server would drop them as duplicates); a task of the
		// first pass still queued is stale.
		n.Gen = max(now.UnixNano(), r.Gen+1)
		n.From = fmt.Sprintf("rewind/%s/%d/%d", stage, n.Attempt, now.UnixNano())
		n.Note = note
		n.addHistory(now, note, e.opts.HistoryLimit)
		if _, err := e.update(ctx, n, rev); errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		} else if err != nil {
			return fmt.Errorf("rewinding %s: %w", composeID, err)
		}
		t, _ := n.pending()
		e.log.Info("workflow rewound", "compose", composeID, "stage", stage, "attempt", n.Attempt, "note", note)
		return e.publishTask(ctx, t)
	}
}

// Stats is a snapshot of the engine for health checks, metrics and people.
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
	// Since is when this engine started; Now when the snapshot was taken.
	Since time.Time `json:"since"`
	Now   time.Time `json:"now"`
}

// Stats takes a snapshot from the bucket, streams and consumers.
func (e *Engine) Stats(ctx context.Context) (Stats, error) {
	st := Stats{Workflows: map[string]int{}, Since: e.started, Running: int(e.running.Load())}
	recs, err := e.records(ctx)
	if err != nil {
		return st, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.OpTimeout)
	defer cancel()
	s, err := e.session(ctx)
	if err != nil {
		return st, err
	}
	st.Now = time.Now()
	overdue := 2*e.opts.TaskAckWait + e.opts.StageTimeout
	for _, r := range recs {
		st.Workflows[r.State]++
		if r.State == StateActive && st.Now.Sub(r.Due) > overdue && st.Now.Sub(r.UpdatedAt) > overdue {
			st.Overdue = append(st.Overdue, r.ComposeID)
		}
	}
	ti, err := s.tasks.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("task stream: %w", err)
	}
	st.TasksQueued = ti.State.Msgs
	ei, err := s.events.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("event stream: %w", err)
	}
	if ei.State.Msgs > 0 {
		st.LastEvent = ei.State.LastTime
	}
	if ns := e.lastSubmit.Load(); ns != 0 && time.Unix(0, ns).After(st.LastEvent) {
		st.LastEvent = time.Unix(0, ns)
	}
	ci, err := s.js().Consumer(ctx, e.names.eventsStream(), dispatcherConsumer)
	if err != nil {
		return st, fmt.Errorf("dispatcher consumer: %w", err)
	}
	info, err := ci.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("dispatcher consumer: %w", err)
	}
	st.EventsPending = info.NumPending + uint64(info.NumAckPending)
	return st, nil
}

// CheckEvents says whether events still arrive: an error wrapping ErrSilent
// when none came for longer than maxSilence (counted from the engine's
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
