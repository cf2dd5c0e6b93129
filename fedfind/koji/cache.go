package koji

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// cacheEntry is the hub's answer to one unitQuery. It is never modified
// once stored.
type cacheEntry struct {
	unit    unitQuery
	rows    []Task // in ID order
	fetched time.Time
}

// filter returns the rows u selects.
func (e *cacheEntry) filter(u unitQuery) []Task {
	var out []Task
	for _, t := range e.rows {
		if u.match(t) {
			out = append(out, t)
		}
	}
	return out
}

// final reports whether e's answer to u cannot have changed since e was
// fetched (see CacheFinal). With CacheSettled the caller vouches that no
// task it cares about was created after settledAt, so the window need not
// have closed, but e must have been fetched since then.
func (e *cacheEntry) final(u unitQuery, policy CachePolicy, settledAt time.Time) bool {
	switch {
	case policy == CacheSettled:
		if e.fetched.Before(settledAt) {
			return false // fetched before the caller's tasks were all created
		}
	case e.unit.before.IsZero() || e.fetched.Before(e.unit.before.Add(finalMargin)):
		return false // tasks may still be created inside the window
	}
	if e.unit.states != nil && !subset(unfinishedStates, e.unit.states) {
		return false // a task outside e may since have moved into u's states
	}
	for _, t := range e.rows {
		if !t.Finished() && u.matchStatic(t) {
			return false
		}
	}
	return true
}

// ListTasks returns the tasks q selects, in ID order, from the cache where
// q.Cache allows and from the hub otherwise. Each method of q is answered on
// its own: from an identical cached query, from a broader one filtered
// locally, or by a listTasks call; all calls that must go to the hub go in
// one multicall (batched by BatchSize), and concurrent identical fetches
// share one request. A per-method fault fails the whole query (answers of
// the other methods are still cached).
func (c *Client) ListTasks(ctx context.Context, q TaskQuery) ([]Task, error) {
	units, err := q.units()
	if err != nil {
		return nil, err
	}
	var rows []Task
	var missing []unitQuery
	for _, u := range units {
		if r, ok := c.lookup(u, q.Cache, q.SettledAt); ok {
			rows = append(rows, r...)
			continue
		}
		missing = append(missing, u)
	}
	if len(missing) > 0 {
		fetched, err := c.fetchUnits(ctx, missing)
		if err != nil {
			return nil, err
		}
		rows = append(rows, fetched...)
	}
	out := make([]Task, 0, len(rows))
	for _, t := range rows {
		if q.TopLevel && t.Parent != 0 {
			continue
		}
		out = append(out, t.clone())
	}
	slices.SortFunc(out, func(a, b Task) int { return a.ID - b.ID })
	out = slices.CompactFunc(out, func(a, b Task) bool { return a.ID == b.ID })
	return out, nil
}

// lookup answers u from the cache if policy allows: an identical query
// first, else the smallest cached query that subsumes u.
func (c *Client) lookup(u unitQuery, policy CachePolicy, settledAt time.Time) ([]Task, bool) {
	if c.cache == nil || policy == CacheBypass {
		return nil, false
	}
	if v, ok := c.cache.Get(u.key()); ok {
		if e := v.(*cacheEntry); !policy.needsFinal() || e.final(u, policy, settledAt) {
			c.cacheHits.Add(1)
			return e.filter(u), true
		}
	}
	var best *cacheEntry
	for _, it := range c.cache.Items() {
		e, ok := it.Object.(*cacheEntry)
		if !ok || !e.unit.subsumes(u) || (policy.needsFinal() && !e.final(u, policy, settledAt)) {
			continue
		}
		if best == nil || len(e.rows) < len(best.rows) {
			best = e
		}
	}
	if best == nil {
		return nil, false
	}
	c.subsumptionHits.Add(1)
	return best.filter(u), true
}

// fetchUnits asks the hub for the units in one multicall, caches each
// answer, and returns their rows.
func (c *Client) fetchUnits(ctx context.Context, units []unitQuery) ([]Task, error) {
	keys := make([]string, len(units))
	for i, u := range units {
		keys[i] = u.key()
	}
	v, err := c.shared(ctx, strings.Join(keys, "\x01"), func(ctx context.Context) (any, error) {
		c.cacheMisses.Add(int64(len(units)))
		calls := make([]Call, len(units))
		for i, u := range units {
			calls[i] = Call{Method: "listTasks", Params: u.params()}
		}
		fetched := c.now()
		found := make([][]Task, len(units))
		bad := make([]error, len(units))
		errs, err := c.multiCall(ctx, calls, func(i int, d *decoder) (err error) {
			found[i], bad[i], err = d.taskList()
			return err
		})
		if err != nil {
			return nil, err
		}
		var rows []Task
		var firstErr error
		for i, ts := range found {
			if errs[i] != nil {
				firstErr = cmpOr(firstErr, errs[i])
				continue
			}
			if bad[i] != nil {
				firstErr = cmpOr(firstErr, fmt.Errorf("koji: listTasks %s: %w", units[i].method, bad[i]))
				continue
			}
			if c.cache != nil {
				c.cache.SetDefault(keys[i], &cacheEntry{unit: units[i], rows: ts, fetched: fetched})
			}
			rows = append(rows, ts...)
		}
		if firstErr != nil {
			return nil, firstErr
		}
		return rows, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]Task), nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// shared runs fn once for all concurrent callers with the same key
// (singleflight). Each caller waits only as long as its own context allows;
// fn runs with the first caller's context, so if that caller gives up, the
// others (whose contexts are still live) start over rather than inherit its
// cancellation.
func (c *Client) shared(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	for {
		var ran atomic.Bool
		ch := c.flight.DoChan(key, func() (any, error) {
			ran.Store(true)
			return fn(ctx)
		})
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("koji: %w", ctx.Err())
		case r := <-ch:
			if !ran.Load() {
				c.sharedFetches.Add(1)
				if r.Err != nil && ctx.Err() == nil && (errors.Is(r.Err, context.Canceled) || errors.Is(r.Err, context.DeadlineExceeded)) {
					continue
				}
			}
			if r.Err != nil {
				return nil, r.Err
			}
			return r.Val, nil
		}
	}
}
