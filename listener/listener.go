// Package listener is composeci's service, `composeci listen` and
// `composeci worker`: it wires the event sources (the Fedora Messaging
// consumer in listener/fedmsg, the compose-tree poller in listener/poller,
// the web API), the durable workflow engine (listener/workflow) running the
// compose stages (package stages), and the HTTP server (package web), and
// supervises them: a part that stops is restarted with backoff, and one
// that keeps failing ends the process so that systemd or Kubernetes starts
// it afresh.
//
// New checks the options; Start takes the data directory, connects and
// starts every part; Stop hands running stages back and unwinds what Start
// set up, in reverse; Run does all three around a context, the shape of the
// commands. docs/architecture.md draws the flow of one compose through it.
package listener

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/datadir"
	"github.com/composeci/composeci/internal/redact"
	"github.com/composeci/composeci/listener/event"
	"github.com/composeci/composeci/listener/fedmsg"
	"github.com/composeci/composeci/listener/poller"
	"github.com/composeci/composeci/listener/workflow"
	"github.com/composeci/composeci/stages"
	"github.com/composeci/composeci/triage"
	"github.com/composeci/composeci/web"
)

// Options configure a Listener.
type Options struct {
	// Name says what the process is, in the data directory's lock and in
	// logs ("composeci listen").
	Name string
	// DataDir holds the embedded NATS server's store and the report
	// archive. The process that runs the embedded server locks it.
	DataDir string
	// Workflow configures the engine: where NATS is, how many workers,
	// whether to dispatch, the timings. Its Stages, HurryStages, Runner and
	// Logger are set from Stages and Logger.
	Workflow workflow.Options
	// Stages runs the compose stages; required when Workflow.Workers > 0.
	Stages *stages.Compose
	// Started, when set, is called at the end of Start, when the data
	// directory is this process's and the bus is up; an error stops it.
	Started func(ctx context.Context) error
	// AMQP, when set, consumes Fedora Messaging with this configuration.
	AMQP *fedmsg.Config
	// Poller, when set, finds composes in the tree; its Sink is set to the
	// engine.
	Poller *poller.Poller
	// HTTPAddr is where to serve health, the API and the reports ("" for
	// none); MaxSilence makes /healthz fail when no event came for longer
	// (0: never).
	HTTPAddr   string
	MaxSilence time.Duration
	// Streams are the release streams watched (as --watch names them), for
	// the dashboard.
	Streams []string
	// APIToken, when set, lets API writes that carry it as a bearer token
	// through; without one, writes are refused.
	APIToken string
	// ShutdownTimeout bounds Run's Stop (default 30 seconds).
	ShutdownTimeout time.Duration
	// RestartBackoff is the first wait before a stopped part is started
	// again, doubled per failure in a row (default 1 second); MaxFailures
	// is how many failures in a row a part may have before the Listener
	// gives up with ErrPartFailed (default 5).
	RestartBackoff time.Duration
	MaxFailures    int
	// Announce, when set, gets one line per address the Listener serves.
	Announce io.Writer
	Logger   *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Name == "" {
		o.Name = "composeci listen"
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.RestartBackoff <= 0 {
		o.RestartBackoff = time.Second
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = 5
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Listener is the running service.
type Listener struct {
	opts     Options
	log      *slog.Logger
	consumer *fedmsg.Consumer
	metrics  *metrics

	mu       sync.Mutex // guards the fields below, set by Start
	started  bool
	engine   *workflow.Engine
	sup      *supervisor
	cancel   context.CancelFunc
	cleanups []func(context.Context) error // undone in reverse by Stop
	stopOnce sync.Once
	stopErr  error

	lnMu sync.Mutex
	ln   net.Listener // bound by Start, taken by the HTTP part's first run
}

// New checks the options and builds what needs no I/O.
func New(o Options) (*Listener, error) {
	o.setDefaults()
	if o.Workflow.Workers > 0 && o.Stages == nil {
		return nil, errors.New("listener: workers need the stages")
	}
	if o.Workflow.Bus.URL == "" && o.DataDir == "" {
		return nil, errors.New("listener: the embedded NATS server needs a data directory")
	}
	l := &Listener{opts: o, log: o.Logger, metrics: newMetrics()}
	if o.AMQP != nil {
		c, err := fedmsg.NewConsumer(*o.AMQP, o.Logger)
		if err != nil {
			return nil, err
		}
		l.consumer = c
	}
	return l, nil
}

// Start takes the data directory (when this process runs the embedded NATS
// server), connects the workflow engine, binds the HTTP address and starts
// every part under supervision. A failure undoes what was done. A data
// directory owned by another process is a *datadir.InUseError.
func (l *Listener) Start(ctx context.Context) (err error) {
	l.mu.Lock()
	started := l.started
	l.started = true
	l.mu.Unlock()
	if started {
		return errors.New("listener already started")
	}
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.ShutdownTimeout)
			defer cancel()
			_ = l.unwind(sctx)
		}
	}()
	o := l.opts
	if o.Workflow.Bus.URL == "" {
		lock, err := datadir.Take(o.DataDir, "", o.Name)
		if err != nil {
			return err
		}
		l.addCleanup(func(context.Context) error { return lock.Release() })
	}

	wo := o.Workflow
	for _, s := range stages.Order() {
		wo.Stages = append(wo.Stages, workflow.Stage(s))
	}
	wo.HurryStages = []workflow.Stage{workflow.Stage(stages.StageAwaitResults), workflow.Stage(stages.StageConfirm)}
	wo.ReviveStages = []workflow.Stage{workflow.Stage(stages.StageDiscover), workflow.Stage(stages.StageAwaitComplete)}
	if o.Stages != nil {
		wo.Runner = stageRunner{c: o.Stages, metrics: l.metrics}
	}
	wo.Logger, wo.Observer = o.Logger, l.metrics
	if wo.Bus.DataDir == "" {
		wo.Bus.DataDir = o.DataDir
	}
	engine, err := workflow.New(ctx, wo)
	if err != nil {
		return err
	}
	l.addCleanup(engine.Close)
	l.metrics.watch(engine, o.Stages, l.consumer)

	if o.HTTPAddr != "" {
		ln, err := net.Listen("tcp", o.HTTPAddr)
		if err != nil {
			return fmt.Errorf("serving HTTP: %w", err)
		}
		l.lnMu.Lock()
		l.ln = ln
		l.lnMu.Unlock()
		l.announce("serving health, API and reports on http://%s/", ln.Addr())
	}
	if url := engine.Bus().ClientURL(); engine.Bus().Embedded() && url != "" {
		l.announce("embedded NATS accepts workers on %s", url)
	}

	if o.Started != nil {
		if err := o.Started(ctx); err != nil {
			return err
		}
	}
	sup := newSupervisor(o.Logger, o.RestartBackoff, o.MaxFailures)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.mu.Lock()
	l.engine, l.sup, l.cancel = engine, sup, cancel
	l.mu.Unlock()
	sup.start(runCtx, l.parts(engine, o.HTTPAddr != ""))
	l.log.Info("listener running", "nats", redact.URL(engine.Bus().ClientURL()), "embedded", engine.Bus().Embedded(),
		"workers", o.Workflow.Workers, "dispatch", o.Workflow.Dispatch)
	return nil
}

func (l *Listener) addCleanup(f func(context.Context) error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cleanups = append(l.cleanups, f)
}

func (l *Listener) announce(format string, args ...any) {
	if l.opts.Announce != nil {
		fmt.Fprintf(l.opts.Announce, "composeci: "+format+"\n", args...)
	}
}

// parts lists the loops to supervise: the engine's (dispatcher, workers,
// the watcher of exhausted tasks), the event sources and the HTTP server.
func (l *Listener) parts(engine *workflow.Engine, serve bool) []part {
	var ps []part
	for _, p := range engine.Parts() {
		ps = append(ps, part{name: p.Name, run: p.Run})
	}
	if l.opts.Poller != nil {
		l.opts.Poller.Sink = engine
		ps = append(ps, part{name: "poller", run: l.opts.Poller.Run})
	}
	if l.consumer != nil {
		ps = append(ps, part{name: "amqp consumer", run: func(ctx context.Context) error { return l.consumer.Run(ctx, engine) }})
	}
	if serve {
		handler := l.handler(engine, ps)
		ps = append(ps, part{name: "http server", run: func(ctx context.Context) error { return l.serveHTTP(ctx, handler) }})
	}
	return ps
}

// serveHTTP serves the web handler until ctx ends. The first run serves
// the socket Start bound; a restart binds the address again.
func (l *Listener) serveHTTP(ctx context.Context, handler http.Handler) error {
	l.lnMu.Lock()
	ln := l.ln
	l.ln = nil
	l.lnMu.Unlock()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", l.opts.HTTPAddr); err != nil {
			return fmt.Errorf("serving HTTP: %w", err)
		}
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-errc
		return nil
	case err := <-errc:
		return fmt.Errorf("serving HTTP on %s: %w", ln.Addr(), err)
	}
}

// handler is the web handler over the engine, with a health check for each
// of the other parts (and the HTTP server itself) and for the AMQP
// connection.
func (l *Listener) handler(engine *workflow.Engine, others []part) http.Handler {
	var checks []web.Check
	for _, p := range append(others, part{name: "http server"}) {
		checks = append(checks, web.Check{Name: p.name, Fn: func(context.Context) error { return l.supervisor().check(p.name) }})
	}
	if l.consumer != nil {
		url := redact.URL(l.opts.AMQP.URL)
		checks = append(checks, web.Check{Name: "amqp", Fn: func(context.Context) error {
			if !l.consumer.Connected() {
				return errors.New("not connected to " + url)
			}
			return nil
		}})
	}
	wo := web.Options{Workflows: engine, ReportsDir: filepath.Join(l.opts.DataDir, "reports"), Streams: l.opts.Streams,
		MaxSilence: l.opts.MaxSilence, Checks: checks, Metrics: l.metrics.handler(), APIToken: l.opts.APIToken, Logger: l.log}
	if c := l.opts.Stages; c != nil && c.Fedfind != nil && c.AwaitComplete.Fedfind != nil {
		wo.Verdict = func(ctx context.Context, composeID string) (fedfind.Completeness, error) {
			id, err := fedfind.ParseComposeID(composeID)
			if err != nil {
				return fedfind.Completeness{}, err
			}
			cm, err := c.Fedfind.Locate(id)
			if err != nil {
				return fedfind.Completeness{}, err
			}
			return c.AwaitComplete.Verdict(ctx, cm)
		}
	}
	if c := l.opts.Stages; c != nil && c.Schedule.OpenQA != nil {
		wo.Overview = c.Schedule.OpenQA.OverviewURL
	}
	if c := l.opts.Stages; c != nil {
		wo.Known = c.Check.Known
		if c.Check.Archive != nil {
			// The report store the stages write: the data directory's, or
			// the deployment's in NATS, which every host reads alike.
			wo.Reports = c.Check.Archive
		}
		if c.Check.OpenQA != nil && c.Check.OpenQA.HasCredentials() && c.Check.Ledger != nil && c.Fedfind != nil {
			wo.Rerun = func(ctx context.Context, req triage.Request) (triage.Result, error) {
				return l.rerun(ctx, engine, req)
			}
		}
	}
	return web.NewHandler(wo)
}

// rerun re-runs jobs of a compose and, when its workflow is here, sends it
// back to await-results: the compose is waited for, checked and reported
// again.
func (l *Listener) rerun(ctx context.Context, engine *workflow.Engine, req triage.Request) (triage.Result, error) {
	c := l.opts.Stages
	id, err := fedfind.ParseComposeID(req.ComposeID)
	if err != nil {
		return triage.Result{}, err
	}
	cm, err := c.Fedfind.Locate(id)
	if err != nil {
		return triage.Result{}, err
	}
	res, err := c.Check.Rerun(ctx, cm, req)
	if err != nil || req.DryRun || len(res.Restarted) == 0 {
		return res, err
	}
	note := fmt.Sprintf("%d openQA jobs re-run by %s (%s)", len(res.Restarted), req.By, req)
	if req.Reason != "" {
		note += ": " + req.Reason
	}
	if err := engine.Rewind(ctx, id.String(), workflow.Stage(stages.StageAwaitResults), note); err != nil && !errors.Is(err, workflow.ErrNotFound) {
		return res, fmt.Errorf("the jobs were re-run, but the workflow could not be sent back to await-results: %w", err)
	}
	return res, nil
}

// Engine returns the workflow engine, once started: a Sink for events and
// a reader of workflows.
func (l *Listener) Engine() *workflow.Engine {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.engine
}

func (l *Listener) supervisor() *supervisor {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sup
}

// Parts returns the state of every supervised part.
func (l *Listener) Parts() []PartState {
	if sup := l.supervisor(); sup != nil {
		return sup.States()
	}
	return nil
}

// Failed is closed when a part failed past its budget; Err then says which.
func (l *Listener) Failed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sup == nil {
		return nil
	}
	return l.sup.fatal
}

// Err returns the error supervision ended with (wrapping ErrPartFailed),
// nil while every part keeps going.
func (l *Listener) Err() error {
	if sup := l.supervisor(); sup != nil {
		return sup.failed()
	}
	return nil
}

// Stop stops taking events and tasks: every part's context ends, so the
// stages running are cancelled and their tasks handed back to the queue at
// once (to run again elsewhere or after a restart: stages are idempotent),
// and unacked AMQP messages go back to the broker. It waits for the parts,
// then closes the engine (the embedded server last) and releases the data
// directory — or gives up waiting when ctx ends. It may be called more than
// once.
func (l *Listener) Stop(ctx context.Context) error {
	l.stopOnce.Do(func() {
		l.stopErr = l.unwind(ctx)
		l.log.Info("listener stopped")
	})
	return l.stopErr
}

// unwind stops the parts and runs the cleanups in reverse.
func (l *Listener) unwind(ctx context.Context) error {
	l.mu.Lock()
	cancel, sup, cleanups := l.cancel, l.sup, l.cleanups
	l.cancel, l.cleanups = nil, nil
	l.mu.Unlock()
	var errs []error
	if cancel != nil {
		cancel()
		errs = append(errs, sup.wait(ctx))
	}
	l.lnMu.Lock()
	if l.ln != nil {
		errs = append(errs, l.ln.Close())
		l.ln = nil
	}
	l.lnMu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		errs = append(errs, cleanups[i](ctx))
	}
	return errors.Join(errs...)
}

// Run starts the listener, runs until ctx ends (a signal) or a part fails
// past its budget, and stops within Options.ShutdownTimeout. It returns
// nil after a signal, and an error wrapping ErrPartFailed after a failure.
func (l *Listener) Run(ctx context.Context) error {
	if err := l.Start(ctx); err != nil {
		return err
	}
	var failed error
	select {
	case <-ctx.Done():
		l.log.Info("stopping: handing running stages back")
	case <-l.Failed():
		failed = l.Err()
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.ShutdownTimeout)
	defer cancel()
	return errors.Join(failed, l.Stop(sctx))
}

// Submit stores an event, for callers that hold the Listener (the demo).
func (l *Listener) Submit(ctx context.Context, e event.Event) error {
	eng := l.Engine()
	if eng == nil {
		return errors.New("listener not started")
	}
	return eng.Submit(ctx, e)
}
