package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxCASRounds bounds the compare-and-set retries of one change; conflicts
// come from events being counted meanwhile, a handful at most.
const maxCASRounds = 50

// maxRecordBytes bounds a workflow in the bucket: Outcome.Data is for small
// strings, and a NATS message is at most 1 MiB by default.
const maxRecordBytes = 256 << 10

// runWorker runs one worker until ctx ends. It takes one task at a time
// from the shared durable consumer, runs its stage if the task is still the
// one its workflow waits for (stale and duplicate tasks are acked and
// dropped), and applies the outcome by compare-and-set on the revision it
// read, so an outcome is applied at most once however many workers race.
// When ctx ends, the running stage is cancelled and its task handed back
// to the queue at once.
func (e *Engine) runWorker(ctx context.Context) error {
	return e.fetchLoop(ctx, e.names.tasksStream(), workerConsumer, "task", func(msg jetstream.Msg) { e.work(ctx, msg) })
}

// work handles one delivered task.
func (e *Engine) work(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		e.log.Error("task without metadata, dropped", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	var t task
	if err = json.Unmarshal(msg.Data(), &t); err == nil {
		err = t.valid(e.policy.stages)
	}
	if err != nil {
		e.log.Warn("bad task dropped", "seq", meta.Sequence.Stream, "err", err)
		_ = msg.Term()
		return
	}
	log := e.log.With("compose", t.ComposeID, "stage", t.Stage, "attempt", t.Attempt)
	lctx, cancel := e.opContext(ctx)
	r, rev, err := e.load(lctx, t.ComposeID)
	cancel()
	switch {
	case errors.Is(err, ErrNotFound):
		log.Warn("task of a compose without workflow dropped")
		_ = msg.Term()
		return
	case err != nil:
		log.Warn("cannot read workflow, task will come again", "err", err)
		_ = msg.NakWithDelay(redeliveryDelay(meta.NumDelivered))
		return
	}
	if !r.current(t) {
		octx, cancel := e.opContext(ctx)
		defer cancel()
		if err := e.settleStale(octx, r, t, log); err != nil {
			_ = msg.NakWithDelay(redeliveryDelay(meta.NumDelivered))
			return
		}
		e.ack(octx, msg, log)
		return
	}
	if meta.NumDelivered >= uint64(e.opts.MaxDeliver) {
		// The last delivery the server will make: its earlier ones never
		// finished, so do not run the stage into the same wall again.
		octx, cancel := e.opContext(ctx)
		defer cancel()
		if err := e.exhausted(octx, t, meta.NumDelivered); err != nil {
			log.Error("cannot fail the workflow of an exhausted task", "err", err)
			_ = msg.Nak() // leads to the max-deliveries advisory, whose watcher tries again
			return
		}
		_ = msg.Term()
		return
	}
	if wait := time.Until(r.Due); wait > dueTolerance {
		// Not yet (RetryAfter or a backoff): back to the server, which
		// redelivers it when due, without holding a worker.
		_ = msg.NakWithDelay(wait)
		return
	}
	// A task published due later comes once early (put back above) and
	// once when due; any delivery beyond that is a redelivery: a worker
	// died, an ack was lost, a stage ran past its AckWait.
	expected := uint64(1)
	if t.Due.After(meta.Timestamp.Add(dueTolerance)) {
		expected = 2
	}
	if meta.NumDelivered > expected {
		e.opts.Observer.TaskRedelivered(t.Stage)
	}
	// Every claim is unique, so even a second delivery of the task to this
	// same process waits for the first run to end.
	lease := &stageLease{e: e, t: t, id: fmt.Sprintf("%s@%s#%d", t.id(), e.holder, e.leaseSeq.Add(1)), log: log}
	if !lease.claim(ctx, msg, r, rev) {
		return
	}
	began := time.Now()
	out, runErr := e.runStage(ctx, msg, r, lease, log)
	took := time.Since(began)
	if lease.isLost() {
		// Another delivery of this task holds the stage now: its run
		// decides, this one neither applies nor acks anything.
		log.Warn("stage run abandoned: another worker took the task over", "err", runErr)
		e.opts.Observer.StageRan(t.Stage, "abandoned", took)
		return
	}
	octx, cancel := e.opContext(ctx)
	defer cancel()
	e.opts.Observer.StageRan(t.Stage, outcomeName(out, runErr, ctx.Err() != nil), took)
	if runErr != nil && ctx.Err() != nil {
		// Hand the stage back as a new attempt, due at once: queued, and
		// confirmed by the server, before this task is acked. A Nak would
		// be quicker to write, but the server may not act on it before it
		// stops (the embedded one stops with this process), and the task
		// would then wait a whole AckWait after the restart.
		log.Info("stage interrupted by shutdown, task handed back")
		r, rev = lease.latest()
		e.finish(octx, msg, meta, t, r, rev, Outcome{Note: "handed back: the worker running it stopped"}, nil, log)
		return
	}
	r, rev = lease.latest()
	e.finish(octx, msg, meta, t, r, rev, out, runErr, log)
}

// outcomeName names what a stage run decided, for the Observer.
func outcomeName(out Outcome, runErr error, stopping bool) string {
	switch {
	case runErr != nil && stopping:
		return "handed back"
	case runErr != nil:
		return "error"
	case out.End != "":
		return "ended"
	case out.Advance:
		return "advanced"
	}
	return "waiting"
}

// leaseHolder names this process in stage leases.
func leaseHolder() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano())
}

// deadHolder reports whether a lease ("<task id>@<host>/<pid>/<n>#<seq>")
// was taken by a process of this host that no longer runs: a worker killed
// mid-stage, whose lease would otherwise keep its stage from running again
// until it lapsed. A process of another host, this process, a live one or
// a lease that does not parse is not known dead.
func deadHolder(lease string, alive func(pid int) bool) bool {
	_, holder, ok := strings.Cut(lease, "@")
	if !ok {
		return false
	}
	holder, _, _ = strings.Cut(holder, "#")
	parts := strings.Split(holder, "/")
	if len(parts) != 3 {
		return false
	}
	host, _ := os.Hostname()
	pid, err := strconv.Atoi(parts[1])
	if err != nil || parts[0] != host || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return !alive(pid)
}

// processAlive reports whether a process with this pid runs (on Unix, a
// signal 0 reaches it, or it exists but is another user's).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// stageLease is a worker's claim, in the workflow record, to be the one
// running the pending stage: taken by compare-and-set before the stage
// runs, renewed with the task's heartbeats, cleared by the outcome. A
// second delivery of the same task (the server redelivers when heartbeats
// were lost for a whole AckWait, while the first worker may still be
// running the stage) finds the lease and waits for it to end or lapse, so
// two workers never run one compose's stage side by side: its side effects
// (posting to openQA, mailing) cannot happen twice at once.
type stageLease struct {
	e   *Engine
	t   task
	id  string
	log *slog.Logger

	mu  sync.Mutex
	r   *record
	rev uint64
	// lost is set when a renewal finds the lease taken or the workflow
	// moved on; the stage's context is cancelled then.
	lost   bool
	cancel context.CancelFunc
}

// leaseTTL is how long a claim holds without renewal: one AckWait, the time
// after which the server redelivers the task of a silent worker.
func (l *stageLease) ttl() time.Duration { return l.e.opts.TaskAckWait }

// claim takes the lease, or puts the task back (delayed until the other
// holder's lease lapses) and reports false.
func (l *stageLease) claim(ctx context.Context, msg jetstream.Msg, r *record, rev uint64) bool {
	octx, cancel := l.e.opContext(ctx)
	defer cancel()
	for range maxCASRounds {
		now := time.Now()
		if r.leasedByOther(l.id, now) && deadHolder(r.Lease, processAlive) {
			l.log.Info("the stage's lease was held by a process of this host that is gone; taking it over", "lease", r.Lease)
		} else if r.leasedByOther(l.id, now) {
			wait := time.Until(r.LeaseUntil) + 100*time.Millisecond
			l.log.Info("another worker runs this stage now; task put back until its lease lapses", "lease", r.Lease, "in", wait)
			_ = msg.NakWithDelay(wait)
			return false
		}
		n := r.clone()
		n.Lease, n.LeaseUntil = l.id, now.Add(l.ttl())
		newRev, err := l.e.update(octx, n, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			if r, rev, err = l.e.load(octx, l.t.ComposeID); err != nil {
				break
			}
			if !r.current(l.t) {
				if err := l.e.settleStale(octx, r, l.t, l.log); err != nil {
					_ = msg.NakWithDelay(redeliveryDelay(1))
					return false
				}
				l.e.ack(octx, msg, l.log)
				return false
			}
			continue
		}
		if err != nil {
			break
		}
		l.r, l.rev = n, newRev
		return true
	}
	l.log.Warn("cannot take the stage lease, task will come again")
	_ = msg.NakWithDelay(redeliveryDelay(1))
	return false
}

// renew extends the lease; called with the heartbeats while the stage runs.
func (l *stageLease) renew(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost {
		return
	}
	for range maxCASRounds {
		n := l.r.clone()
		n.LeaseUntil = time.Now().Add(l.ttl())
		rev, err := l.e.update(ctx, n, l.rev)
		if err == nil {
			l.r, l.rev = n, rev
			return
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			l.log.Debug("lease renewal failed", "err", err)
			return // try again at the next heartbeat
		}
		r, rev, err := l.e.load(ctx, l.t.ComposeID)
		if err != nil {
			return
		}
		if !r.current(l.t) || r.Lease != l.id {
			l.log.Warn("stage lease lost while the stage runs; stopping it", "lease", r.Lease)
			l.lost = true
			if l.cancel != nil {
				l.cancel()
			}
			return
		}
		l.r, l.rev = r, rev // an event counter changed: keep going
	}
}

// isLost reports whether a renewal found the lease taken over.
func (l *stageLease) isLost() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// latest returns the record and revision as the lease last wrote them.
func (l *stageLease) latest() (*record, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r, l.rev
}

// settleStale handles a task its workflow no longer waits for. If the task
// itself made the workflow's latest change, it was redelivered after a crash
// or a lost ack between updating the workflow and acking, so the next task
// may never have been published: publish it again (under its deterministic
// ID, so a copy already queued is dropped as a duplicate). Any other stale
// task is simply dropped.
func (e *Engine) settleStale(ctx context.Context, r *record, t task, log *slog.Logger) error {
	if r.From != t.id() {
		log.Debug("stale task dropped", "workflow_state", r.State, "workflow_stage", r.Stage, "workflow_attempt", r.Attempt)
		return nil
	}
	next, ok := r.pending()
	if !ok {
		// Its outcome ended the workflow: the result may not have made
		// it to the feed (stored once under its id).
		if err := e.publishResult(ctx, r); err != nil {
			log.Warn("cannot record the result again", "err", err)
			return err
		}
		log.Debug("redelivered task dropped: its outcome ended the workflow")
		return nil
	}
	if err := e.publishTask(ctx, next); err != nil {
		log.Warn("cannot queue the next task again", "err", err)
		return err
	}
	log.Info("redelivered task: its outcome was applied, next task queued again", "next_stage", next.Stage, "next_attempt", next.Attempt)
	return nil
}

// runStage runs the task's stage with a context that ends on shutdown or
// after StageTimeout, telling the server all along that the task is in
// progress so that AckWait does not hand it to another worker. A panic in
// the runner is an error like any other.
func (e *Engine) runStage(ctx context.Context, msg jetstream.Msg, r *record, lease *stageLease, log *slog.Logger) (out Outcome, err error) {
	e.running.Add(1)
	defer e.running.Add(-1)
	sctx, cancel := context.WithTimeout(ctx, e.opts.StageTimeout)
	defer cancel()
	lease.mu.Lock()
	lease.cancel = cancel
	lease.mu.Unlock()
	stop := e.heartbeat(ctx, msg, lease, log)
	defer stop()
	defer func() {
		if v := recover(); v != nil {
			log.Error("stage panicked", "panic", v, "stack", string(debug.Stack()))
			err = fmt.Errorf("stage %s panicked: %v", r.Stage, v)
		}
	}()
	log.Debug("stage running")
	start := time.Now()
	out, err = e.opts.Runner.Run(sctx, r.Stage, cloneWorkflow(r.Workflow))
	if err != nil && ctx.Err() == nil && errors.Is(sctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("stage %s ran over %s: %w", r.Stage, e.opts.StageTimeout, err)
	}
	log.Debug("stage ran", "took", time.Since(start), "err", err)
	return out, err
}

// heartbeat calls InProgress on msg, and renews the stage lease, every
// quarter of AckWait until stopped.
func (e *Engine) heartbeat(ctx context.Context, msg jetstream.Msg, lease *stageLease, log *slog.Logger) (stop func()) {
	every := max(e.opts.TaskAckWait/4, 10*time.Millisecond)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if err := msg.InProgress(); err != nil {
					log.Debug("progress heartbeat failed", "err", err)
				}
				octx, cancel := e.opContext(ctx)
				lease.renew(octx)
				cancel()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// finish applies a stage's outcome to the workflow by compare-and-set on
// the revision read before the run, queues the next task, and only then
// acks the task. Whatever fails on the way, the task comes again and finds
// either its workflow unchanged (the stage runs again: runners are
// idempotent) or changed by itself (settleStale queues the next task).
func (e *Engine) finish(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, t task, r *record, rev uint64, out Outcome, runErr error, log *slog.Logger) {
	retryLater := func(what string, err error) {
		delay := redeliveryDelay(meta.NumDelivered)
		log.Warn(what+", task will come again", "err", err, "in", delay)
		_ = msg.NakWithDelay(delay)
	}
	for range maxCASRounds {
		now := time.Now()
		n := e.policy.after(r, t, out, runErr, now)
		if size := len(n.encode()); size > maxRecordBytes {
			// Retrying cannot shrink what the runner returns.
			n = e.policy.after(r, t, Outcome{}, fmt.Errorf("%w: the stage's note and data make the workflow %d bytes, over %d",
				ErrPermanent, size, maxRecordBytes), now)
		}
		_, err := e.update(ctx, n, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			if r, rev, err = e.load(ctx, t.ComposeID); err != nil {
				retryLater("cannot reload the workflow", err)
				return
			}
			if !r.current(t) {
				// Another worker ran this task too, or an operator or an
				// event moved the workflow on: theirs stands.
				log.Info("workflow moved on while the stage ran, outcome dropped", "workflow_stage", r.Stage, "workflow_attempt", r.Attempt, "workflow_state", r.State)
				e.ack(ctx, msg, log)
				return
			}
			continue // only counters changed: decide again on the fresh record
		}
		if err != nil {
			retryLater("cannot update the workflow", err)
			return
		}
		e.logOutcome(log, n, runErr)
		if next, ok := n.pending(); ok {
			if err := e.publishTask(ctx, next); err != nil {
				retryLater("cannot queue the next task", err)
				return
			}
		} else if err := e.publishResult(ctx, n); err != nil {
			retryLater("cannot record the result", err)
			return
		}
		e.ack(ctx, msg, log)
		return
	}
	retryLater("workflow changed too often", errors.New("too many compare-and-set conflicts"))
}

func (e *Engine) logOutcome(log *slog.Logger, n *record, runErr error) {
	switch {
	case n.State == StateFailed:
		log.Error("workflow failed", "note", n.Note)
	case n.State != StateActive:
		log.Info("workflow ended", "state", n.State, "note", n.Note)
	case runErr != nil:
		log.Warn("stage failed, will retry", "err", runErr, "at", n.Due)
	case n.Attempt == 1:
		log.Info("stage done", "next", n.Stage)
	default:
		log.Debug("stage not done yet", "note", n.Note, "again_at", n.Due)
	}
}

// ack acknowledges a task and waits for the server to confirm, so that a
// finished task is not delivered again. A lost ack only means one more
// delivery, which settleStale recognises.
func (e *Engine) ack(ctx context.Context, msg jetstream.Msg, log *slog.Logger) {
	if err := msg.DoubleAck(ctx); err != nil {
		log.Warn("task ack failed", "err", err)
	}
}

// exhausted fails the workflow whose pending task t ran out of deliveries
// (a message at MaxDeliver stays in a work queue: it must not
// leave its workflow active for ever).
func (e *Engine) exhausted(ctx context.Context, t task, deliveries uint64) error {
	log := e.log.With("compose", t.ComposeID, "stage", t.Stage, "attempt", t.Attempt)
	for range maxCASRounds {
		r, rev, err := e.load(ctx, t.ComposeID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if !r.current(t) {
			return e.settleStale(ctx, r, t, log)
		}
		now := time.Now()
		n := r.clone()
		n.UpdatedAt, n.From = now, t.id()
		n.end(now, StateFailed, fmt.Sprintf("the %s task was delivered %d times without finishing (workers crashed, hung or lost NATS); Retry restarts it",
			t.Stage, deliveries), e.opts.HistoryLimit)
		if _, err := e.update(ctx, n, rev); errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		} else if err != nil {
			return err
		}
		log.Error("workflow failed: task exhausted its deliveries", "deliveries", deliveries)
		return e.publishResult(ctx, n)
	}
	return errors.New("too many compare-and-set conflicts")
}

// watchExhausted listens for the server's max-deliveries advisories about
// tasks until ctx ends. The last delivery of a task normally fails its
// workflow itself (work); this catches a task whose last delivery went to a
// worker that died. Processes share the advisories in a queue group. A
// closed connection ends the watch with an error, to be run again on a
// fresh one.
func (e *Engine) watchExhausted(ctx context.Context) error {
	s, err := e.session(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("watching max-deliveries advisories: %w", err)
	}
	sub, err := s.link.conn.QueueSubscribe(e.names.maxDeliveriesAdvisory(), e.names.prefix+"-exhausted",
		func(m *nats.Msg) { e.onExhausted(ctx, m) })
	if err != nil {
		return fmt.Errorf("watching max-deliveries advisories: %w", err)
	}
	select {
	case <-ctx.Done():
		_ = sub.Unsubscribe()
		return nil
	case <-s.link.closed:
		return fmt.Errorf("watching max-deliveries advisories: %w", nats.ErrConnectionClosed)
	}
}

func (e *Engine) onExhausted(ctx context.Context, m *nats.Msg) {
	var adv struct {
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	if err := json.Unmarshal(m.Data, &adv); err != nil || adv.StreamSeq == 0 {
		e.log.Warn("unreadable max-deliveries advisory", "err", err)
		return
	}
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	s, err := e.session(ctx)
	if err != nil {
		e.log.Error("cannot read exhausted task", "seq", adv.StreamSeq, "err", err)
		return
	}
	raw, err := s.tasks.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return // handled already
	}
	if err != nil {
		e.log.Error("cannot read exhausted task", "seq", adv.StreamSeq, "err", err)
		return
	}
	var t task
	if err = json.Unmarshal(raw.Data, &t); err == nil {
		err = t.valid(e.policy.stages)
	}
	if err == nil {
		if err := e.exhausted(ctx, t, adv.Deliveries); err != nil {
			e.log.Error("cannot fail the workflow of an exhausted task; the task stays queued", "compose", t.ComposeID, "seq", adv.StreamSeq, "err", err)
			return
		}
	}
	if err := s.tasks.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		e.log.Warn("cannot delete exhausted task", "seq", adv.StreamSeq, "err", err)
	}
}
