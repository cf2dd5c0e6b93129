package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/backoff"
	"github.com/composeci/composeci/listener/event"
)

// dueTolerance is how early a delayed task may run: less than this is not
// worth a round trip back to the server (and covers small clock skew
// between hosts).
const dueTolerance = 100 * time.Millisecond

// runDispatcher turns stored events into workflows until ctx ends: a
// compose.status event creates the compose's workflow (KV Create, so two
// dispatchers racing make one) and queues its first task; every event of a
// known compose is counted; an openQA job event hurries a workflow waiting
// in one of HurryStages; a compose.status event with a final STATUS starts
// again a workflow that failed in one of ReviveStages. Events of finished
// workflows change nothing else, so a redelivered FINISHED message never
// starts a second workflow or report.
func (e *Engine) runDispatcher(ctx context.Context) error {
	return e.fetchLoop(ctx, e.names.eventsStream(), dispatcherConsumer, "event", func(msg jetstream.Msg) { e.dispatch(ctx, msg) })
}

// fetchLoop hands the messages of a durable consumer to handle one at a
// time until ctx ends. It pulls one message per request, so a busy process
// never hoards tasks another could run (Consume would buffer up to 500).
//
// A closed connection ends the loop at once with an error wrapping
// nats.ErrConnectionClosed: the part is then run again (by the supervisor)
// on a fresh connection.
func (e *Engine) fetchLoop(ctx context.Context, stream, consumer, what string, handle func(jetstream.Msg)) error {
	var cons jetstream.Consumer
	var l *link
	err := retryJS(ctx, e.log, e.opts.OpTimeout, "consumer "+consumer, func(ctx context.Context) error {
		s, err := e.session(ctx)
		if err != nil {
			return err
		}
		l = s.link
		cons, err = s.js().Consumer(ctx, stream, consumer)
		return err
	})
	switch {
	case ctx.Err() != nil:
		return nil
	case err != nil:
		return err
	}
	// A pull waits for its own expiry, not for the connection: end it
	// when the connection closes.
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-l.closed:
			stop()
		case <-fctx.Done():
		}
	}()
	wait := backoff.Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second}
	failures := 0
	for {
		// Idle heartbeats every second: a pull whose consumer leader died
		// (a node of the cluster lost) is known dead in 2 s, not the
		// default 10 s, and asked again of the new leader.
		msg, err := cons.Next(jetstream.FetchContext(fctx), jetstream.FetchHeartbeat(time.Second))
		switch {
		case err == nil:
			failures = 0
			handle(msg)
			continue
		case ctx.Err() != nil:
			return nil
		case l.isClosed(), errors.Is(err, nats.ErrConnectionClosed):
			return fmt.Errorf("fetching %ss: %w", what, nats.ErrConnectionClosed)
		case errors.Is(err, nats.ErrTimeout), errors.Is(err, jetstream.ErrNoHeartbeat):
			continue
		}
		d := wait.Delay(failures)
		failures++
		e.log.Warn("fetching failed, retrying", "what", what, "err", err, "in", d)
		if !backoff.Sleep(fctx, d) && ctx.Err() != nil {
			return nil
		}
	}
}

// redeliveryPolicy spaces the retries of a message that could not be
// handled (the KV or the server did not answer): 1s, 2s, 4s ... 1 minute.
var redeliveryPolicy = backoff.Policy{Base: time.Second, Max: time.Minute}

// redeliveryDelay is the wait before the next delivery of a message
// delivered this often.
func redeliveryDelay(delivered uint64) time.Duration {
	return redeliveryPolicy.Delay(int(min(delivered, 64)) - 1)
}

// opContext is for the bookkeeping after a message was handled: it must
// finish even when shutdown has begun, within OpTimeout.
func (e *Engine) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), e.opts.OpTimeout)
}

func (e *Engine) dispatch(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		e.log.Error("event without metadata, dropped", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	var ev event.Event
	if err = json.Unmarshal(msg.Data(), &ev); err == nil {
		err = ev.Validate()
	}
	if err != nil {
		e.log.Warn("bad event dropped", "seq", meta.Sequence.Stream, "err", err)
		_ = msg.Term()
		return
	}
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	if err := e.applyEvent(ctx, ev, fmt.Sprintf("event/%d", meta.Sequence.Stream)); err != nil {
		delay := redeliveryDelay(meta.NumDelivered)
		e.log.Warn("event not applied, will retry", "compose", ev.ComposeID, "kind", ev.Kind, "in", delay, "err", err)
		_ = msg.NakWithDelay(delay)
		return
	}
	if err := msg.DoubleAck(ctx); err != nil {
		// The event comes again; applyEvent knows it by From, or counts it twice.
		e.log.Warn("event ack failed", "compose", ev.ComposeID, "err", err)
	}
}

// applyEvent changes the compose's workflow for one event; from names the
// event ("event/<stream sequence>").
func (e *Engine) applyEvent(ctx context.Context, ev event.Event, from string) error {
	for {
		now := time.Now()
		r, rev, err := e.load(ctx, ev.ComposeID)
		if errors.Is(err, ErrNotFound) {
			if ev.Kind != event.KindComposeStatus {
				e.log.Debug("event for a compose without workflow ignored", "compose", ev.ComposeID, "kind", ev.Kind)
				return nil
			}
			n := e.policy.newRecord(ev, now, from)
			if err := e.create(ctx, n); errors.Is(err, jetstream.ErrKeyExists) {
				continue // another dispatcher created it a moment ago: count this event there
			} else if err != nil {
				return fmt.Errorf("creating workflow of %s: %w", ev.ComposeID, err)
			}
			e.log.Info("workflow created", "compose", ev.ComposeID, "status", ev.Status, "source", ev.Source)
			t, _ := n.pending()
			return e.publishTask(ctx, t)
		}
		if err != nil {
			return err
		}
		if r.From == from {
			// This event was applied before the dispatcher crashed or its
			// ack was lost; make sure the task it queued exists.
			if t, ok := r.pending(); ok {
				return e.publishTask(ctx, t)
			}
			return nil
		}
		n := r.clone()
		n.Events++
		n.UpdatedAt = now
		if n.Location == "" {
			n.Location = ev.Location
		}
		hurried := false
		if ev.Kind == event.KindComposeStatus && r.State == StateFailed && slices.Contains(e.opts.ReviveStages, r.Stage) &&
			fedfind.Status(ev.Status).Terminal() {
			// Given up on while the compose was not complete; Pungi
			// now says it ended: try the stage again.
			n.State, n.Attempt, n.Failures, n.Due = StateActive, n.Attempt+1, 0, now
			n.Lease, n.LeaseUntil = "", time.Time{}
			n.From = from
			n.Note = fmt.Sprintf("revived by a compose status event (STATUS %s)", ev.Status)
			n.addHistory(now, n.Note, e.opts.HistoryLimit)
			hurried = true
		}
		if ev.Kind == event.KindOpenQAJobDone && r.State == StateActive && slices.Contains(e.opts.HurryStages, r.Stage) && r.Failures == 0 {
			// The jobs API is the truth: only run the poll sooner, no
			// sooner than HurryInterval after the last one.
			at := r.LastRun.Add(e.opts.HurryInterval)
			if at.Before(now) {
				at = now
			}
			if r.Due.After(at.Add(dueTolerance)) {
				n.Attempt++
				n.Due = at
				n.From = from
				hurried = true
			}
		}
		if _, err := e.update(ctx, n, rev); errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		} else if err != nil {
			return fmt.Errorf("counting event of %s: %w", ev.ComposeID, err)
		}
		if !hurried {
			e.log.Debug("event counted", "compose", ev.ComposeID, "kind", ev.Kind, "state", r.State, "events", n.Events)
			return nil
		}
		if r.State == StateFailed {
			e.log.Info("failed workflow revived by a compose status event", "stage", r.Stage, "compose", ev.ComposeID, "status", ev.Status, "attempt", n.Attempt)
		} else {
			e.log.Info("stage hurried by an openQA event", "stage", r.Stage, "compose", ev.ComposeID, "at", n.Due)
		}
		t, _ := n.pending()
		return e.publishTask(ctx, t)
	}
}
