package listener

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// dueTolerance is how early a delayed task may run: less than this is not
// worth a round trip back to the server (and covers small clock skew
// between hosts).
const dueTolerance = 100 * time.Millisecond

// RunDispatcher turns stored events into workflows until ctx ends: a
// compose.status event creates the compose's workflow (KV Create, so two
// dispatchers racing make one) and queues its first task; every event of a
// known compose is counted; an openQA job event hurries a workflow waiting
// in await-results. Events of finished workflows change nothing else, so a
// redelivered FINISHED message never starts a second workflow or report.
func (p *Pipeline) RunDispatcher(ctx context.Context) error {
	cons, err := p.consumer(ctx, p.names.eventsStream(), dispatcherConsumer)
	if err != nil {
		return err
	}
	return p.fetchLoop(ctx, cons, "event", func(msg jetstream.Msg) { p.dispatch(ctx, msg) })
}

func (p *Pipeline) consumer(ctx context.Context, stream, name string) (jetstream.Consumer, error) {
	var cons jetstream.Consumer
	err := retryJS(ctx, p.log, p.opts.OpTimeout, "consumer "+name, func(ctx context.Context) (err error) {
		cons, err = p.bus.js.Consumer(ctx, stream, name)
		return err
	})
	return cons, err
}

// fetchLoop hands the consumer's messages to handle one at a time until ctx
// ends. It pulls one message per request, so a busy process never hoards
// tasks another could run (Consume would buffer up to 500).
func (p *Pipeline) fetchLoop(ctx context.Context, cons jetstream.Consumer, what string, handle func(jetstream.Msg)) error {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		switch {
		case err == nil:
			wait = 100 * time.Millisecond
			handle(msg)
			continue
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, nats.ErrTimeout), errors.Is(err, jetstream.ErrNoHeartbeat):
			continue
		case errors.Is(err, nats.ErrConnectionClosed):
			return fmt.Errorf("fetching %ss: %w", what, err)
		}
		p.log.Warn("fetching failed, retrying", "what", what, "err", err, "in", wait)
		if !sleepCtx(ctx, wait) {
			return nil
		}
		wait = min(2*wait, 5*time.Second)
	}
	return nil
}

// sleepCtx sleeps for d unless ctx ends first; it reports whether it slept.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// redeliveryDelay spaces the retries of a message that could not be
// handled (the KV or the server did not answer): 1s, 2s, 4s ... 1 minute.
func redeliveryDelay(delivered uint64) time.Duration {
	d := time.Second
	for i := uint64(1); i < delivered && d < time.Minute; i++ {
		d *= 2
	}
	return min(d, time.Minute)
}

// opContext is for the bookkeeping after a message was handled: it must
// finish even when shutdown has begun, within OpTimeout.
func (p *Pipeline) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), p.opts.OpTimeout)
}

func (p *Pipeline) dispatch(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		p.log.Error("event without metadata, dropped", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	var e Event
	if err = json.Unmarshal(msg.Data(), &e); err == nil {
		err = e.Validate()
	}
	if err != nil {
		p.log.Warn("bad event dropped", "seq", meta.Sequence.Stream, "err", err)
		_ = msg.Term()
		return
	}
	ctx, cancel := p.opContext(ctx)
	defer cancel()
	if err := p.applyEvent(ctx, e, fmt.Sprintf("event/%d", meta.Sequence.Stream)); err != nil {
		delay := redeliveryDelay(meta.NumDelivered)
		p.log.Warn("event not applied, will retry", "compose", e.ComposeID, "kind", e.Kind, "in", delay, "err", err)
		_ = msg.NakWithDelay(delay)
		return
	}
	if err := msg.DoubleAck(ctx); err != nil {
		// The event comes again; applyEvent knows it by From, or counts it twice.
		p.log.Warn("event ack failed", "compose", e.ComposeID, "err", err)
	}
}

// applyEvent changes the compose's workflow for one event; from names the
// event ("event/<stream sequence>").
func (p *Pipeline) applyEvent(ctx context.Context, e Event, from string) error {
	for {
		now := time.Now()
		r, rev, err := p.load(ctx, e.ComposeID)
		if errors.Is(err, ErrNotFound) {
			if e.Kind != KindComposeStatus {
				p.log.Debug("event for a compose without workflow ignored", "compose", e.ComposeID, "kind", e.Kind)
				return nil
			}
			n := newRecord(e, now, from, p.opts.HistoryLimit)
			if _, err := p.kv.Create(ctx, encodeToken(e.ComposeID), n.encode()); errors.Is(err, jetstream.ErrKeyExists) {
				continue // another dispatcher created it a moment ago: count this event there
			} else if err != nil {
				return fmt.Errorf("creating workflow of %s: %w", e.ComposeID, err)
			}
			p.log.Info("workflow created", "compose", e.ComposeID, "status", e.Status, "source", e.Source)
			t, _ := n.pending()
			return p.publishTask(ctx, t)
		}
		if err != nil {
			return err
		}
		if r.From == from {
			// This event was applied before the dispatcher crashed or its
			// ack was lost; make sure the task it queued exists.
			if t, ok := r.pending(); ok {
				return p.publishTask(ctx, t)
			}
			return nil
		}
		n := r.clone()
		n.Events++
		n.UpdatedAt = now
		if n.Location == "" {
			n.Location = e.Location
		}
		hurried := false
		if e.Kind == KindOpenQAJobDone && r.State == StateActive && r.Stage == StageAwaitResults && r.Failures == 0 {
			// The jobs API is the truth: only run the poll sooner, no
			// sooner than HurryInterval after the last one.
			at := r.LastRun.Add(p.opts.HurryInterval)
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
		if _, err := p.update(ctx, n, rev); errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		} else if err != nil {
			return fmt.Errorf("counting event of %s: %w", e.ComposeID, err)
		}
		if !hurried {
			p.log.Debug("event counted", "compose", e.ComposeID, "kind", e.Kind, "state", r.State, "events", n.Events)
			return nil
		}
		p.log.Info("await-results hurried by an openQA event", "compose", e.ComposeID, "at", n.Due)
		t, _ := n.pending()
		return p.publishTask(ctx, t)
	}
}
