// Package poller finds composes by reading the compose tree, for when no
// message announces them. It makes events (package listener/event) and
// knows nothing of the workflow engine.
package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/httpclient"
	"github.com/composeci/composeci/listener/event"
)

// Poller finds composes in the compose tree, for when no message comes: a
// consumer can be disconnected, a broker can lose messages, a bus can stall
// silently for days. Every Interval it lists each watched stream's
// directory and submits an event for every compose of the last Lookback it
// has not submitted before; where the tree gives no listing it follows the
// stream's latest-* link. The pipeline drops events for composes it already
// has, so polling and messages can overlap freely.
type Poller struct {
	Fedfind *fedfind.Client
	// Streams are the streams to watch (rawhide, branched, ...).
	Streams []fedfind.StreamSpec
	Sink    event.Sink
	// Interval between rounds; default 10 minutes.
	Interval time.Duration
	// Lookback bounds how old a compose may be (by its date) to be
	// submitted; default 48 hours.
	Lookback time.Duration
	Now      func() time.Time
	Logger   *slog.Logger

	seen map[string]bool
}

func (p *Poller) log() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Poll runs one round and returns how many events it submitted. It goes on
// past a stream that fails and returns the errors joined.
func (p *Poller) Poll(ctx context.Context) (int, error) {
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	lookback := p.Lookback
	if lookback <= 0 {
		lookback = 48 * time.Hour
	}
	oldest := now().Add(-lookback).UTC().Format("20060102")
	var errs []error
	n := 0
	for _, spec := range p.Streams {
		ids, err := p.composes(ctx, spec)
		if err != nil {
			errs = append(errs, fmt.Errorf("polling %s: %w", spec.Kind, err))
			continue
		}
		for _, id := range ids {
			s := id.String()
			if p.seen[s] || id.Date < oldest {
				continue
			}
			ev := event.Event{Kind: event.KindComposeStatus, ComposeID: s, Source: event.SourcePoll, MessageID: "poll:" + s, At: now().UTC()}
			if err := p.Sink.Submit(ctx, ev); err != nil {
				errs = append(errs, fmt.Errorf("submitting %s: %w", s, err))
				continue
			}
			p.seen[s] = true
			n++
			p.log().InfoContext(ctx, "poller found a compose", "compose", s)
		}
	}
	return n, errors.Join(errs...)
}

// composes lists the composes of a watched stream: from the directory
// listing, or the latest link where there is none.
func (p *Poller) composes(ctx context.Context, spec fedfind.StreamSpec) ([]fedfind.ComposeID, error) {
	s := spec.Stream()
	ids, err := p.Fedfind.ListComposes(ctx, s)
	var se *httpclient.StatusError
	if errors.As(err, &se) && (se.Code == 403 || se.Code == 404) {
		cm, lerr := p.Fedfind.Latest(ctx, spec)
		if errors.Is(lerr, fedfind.ErrComposeNotFound) {
			return nil, nil
		}
		if lerr != nil {
			return nil, lerr
		}
		return []fedfind.ComposeID{cm.ID}, nil
	}
	if err != nil {
		return nil, err
	}
	var out []fedfind.ComposeID
	for _, id := range ids {
		got := fedfind.StreamOf(id)
		if got.Kind == s.Kind && (s.Version == "" || got.Version == s.Version) {
			out = append(out, id)
		}
	}
	return out, nil
}

// Run polls every Interval until ctx ends, logging failed rounds.
func (p *Poller) Run(ctx context.Context) error {
	interval := p.Interval
	if interval <= 0 {
		interval = 10 * time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	// A failure is said once, not every round, and its end once.
	failing := ""
	for {
		_, err := p.Poll(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil && err.Error() != failing:
			failing = err.Error()
			p.log().WarnContext(ctx, "poll round failed; said again only if the failure changes", "err", err)
		case err == nil && failing != "":
			failing = ""
			p.log().InfoContext(ctx, "poll rounds succeed again")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
