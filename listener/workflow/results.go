package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/composeci/composeci/fedfind"
)

// Result is one ending of a workflow in the feed of results: the workflow
// as it ended (done, doomed or failed), at the feed's sequence Seq. A
// workflow that is started again (Retry) and ends again has a second
// Result.
type Result struct {
	// Seq orders the feed: a reader that remembers the last Seq it read
	// and asks for what came after it misses nothing and reads nothing
	// twice.
	Seq uint64    `json:"seq"`
	At  time.Time `json:"at"`
	Workflow
}

// publishResult adds the ended workflow r to the feed. Its message id is
// the transition that ended it, so publishing it again after a crash (from
// settleStale) stores it once.
func (e *Engine) publishResult(ctx context.Context, r *record) error {
	s, err := e.session(ctx)
	if err != nil {
		return fmt.Errorf("recording the result of %s: %w", r.ComposeID, err)
	}
	data, err := json.Marshal(r.Workflow)
	if err != nil {
		return fmt.Errorf("encoding the result of %s: %w", r.ComposeID, err)
	}
	_, err = s.js().Publish(ctx, e.names.resultSubject(r.ComposeID), data,
		jetstream.WithMsgID("end/"+r.From), jetstream.WithExpectStream(e.names.resultsStream()))
	if err != nil {
		return fmt.Errorf("recording the result of %s: %w", r.ComposeID, err)
	}
	return nil
}

// ResultsAfter returns the results stored after sequence after, oldest
// first, at most limit of those keep accepts (nil keeps all), and whether
// more follow. A reader follows the feed by passing the last Seq it got.
func (e *Engine) ResultsAfter(ctx context.Context, after uint64, limit int, keep func(Workflow) bool) ([]Result, bool, error) {
	if limit <= 0 {
		return nil, false, errors.New("results: limit must be positive")
	}
	first, last, err := e.resultBounds(ctx)
	if err != nil {
		return nil, false, err
	}
	if after > last {
		// No cursor of this feed is past its end: it comes from another
		// deployment, or the feed was made anew. Following it would skip
		// every result until the feed caught up, silently.
		return nil, false, fmt.Errorf("%w: cursor %d is past the newest result (%d): it is not one of this feed's; start again without after=", fedfind.ErrInvalidInput, after, last)
	}
	if last == 0 {
		return nil, false, nil
	}
	from := max(after+1, first)
	var out []Result
	more := false
	err = e.scanResults(ctx, from, last, func(r Result) bool {
		if keep != nil && !keep(r.Workflow) {
			return true
		}
		if len(out) == limit {
			more = true
			return false
		}
		out = append(out, r)
		return true
	})
	return out, more, err
}

// LatestResults returns the newest results, newest first, at most limit of
// those keep accepts (nil keeps all).
func (e *Engine) LatestResults(ctx context.Context, limit int, keep func(Workflow) bool) ([]Result, error) {
	if limit <= 0 {
		return nil, errors.New("results: limit must be positive")
	}
	first, last, err := e.resultBounds(ctx)
	if err != nil || last == 0 {
		return nil, err
	}
	var out []Result // newest first
	window := uint64(4 * limit)
	for hi := last; hi >= first && len(out) < limit; {
		lo := first
		if hi-first+1 > window {
			lo = hi - window + 1
		}
		var page []Result
		if err := e.scanResults(ctx, lo, hi, func(r Result) bool {
			if keep == nil || keep(r.Workflow) {
				page = append(page, r)
			}
			return true
		}); err != nil {
			return nil, err
		}
		for i := len(page) - 1; i >= 0 && len(out) < limit; i-- {
			out = append(out, page[i])
		}
		if lo == first {
			break
		}
		hi, window = lo-1, 2*window
	}
	return out, nil
}

// resultBounds returns the first and last sequence of the feed (0, 0 when
// it is empty).
func (e *Engine) resultBounds(ctx context.Context) (first, last uint64, err error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.OpTimeout)
	defer cancel()
	s, err := e.session(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("results: %w", err)
	}
	info, err := s.results.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("results: %w", err)
	}
	if info.State.Msgs == 0 {
		return 0, 0, nil
	}
	return info.State.FirstSeq, info.State.LastSeq, nil
}

// scanResults hands the results stored from sequence from to to, in order,
// to fn until it returns false, with an ordered consumer of its own.
func (e *Engine) scanResults(ctx context.Context, from, to uint64, fn func(Result) bool) error {
	if from > to {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.OpTimeout)
	defer cancel()
	s, err := e.session(ctx)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	cons, err := s.results.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from})
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	for {
		batch, err := cons.Fetch(int(min(to-from+1, 256)), jetstream.FetchMaxWait(e.opts.OpTimeout))
		if err != nil {
			return fmt.Errorf("results: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				return fmt.Errorf("results: %w", err)
			}
			seq := meta.Sequence.Stream
			if seq > to {
				return nil
			}
			var w Workflow
			if err := json.Unmarshal(msg.Data(), &w); err != nil {
				e.log.Warn("skipping an unreadable result", "seq", seq, "err", err)
			} else if !fn(Result{Seq: seq, At: meta.Timestamp, Workflow: w}) {
				return nil
			}
			if seq == to {
				return nil
			}
			from = seq + 1
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("results: %w", err)
		}
		if n == 0 {
			return nil // the rest was removed meanwhile (retention)
		}
	}
}
