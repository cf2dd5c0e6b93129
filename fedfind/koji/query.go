package koji

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TaskQuery selects tasks for ListTasks, modelling listTasks' opts as
// composeci uses them. Every filter is optional; empty means "any". Queries
// always ask for decoded requests and are ordered by ID, and are never paged,
// so every cached answer is complete and can answer narrower queries.
type TaskQuery struct {
	// Methods is a set of task methods. Koji's method filter is a single
	// string, so each method is its own listTasks call (all in one
	// multicall) and is cached on its own.
	Methods []string
	// States is a set of task states.
	States []TaskState
	// Arches is a set of task arches (top-level image tasks are "noarch").
	Arches []string
	// Owner is a user id (see GetUser); 0 means any owner.
	Owner int
	// Parent selects the children of one task; 0 means any.
	Parent int
	// TopLevel keeps only tasks without a parent. It is applied by the
	// client: asking the hub for parent IS NULL would mean sending nil,
	// which kolo cannot encode, and the image parent methods composeci
	// queries are top-level anyway, so nothing is wasted.
	TopLevel bool
	// CreatedAfter and CreatedBefore bound the creation time, strictly as
	// Koji compares them, at Koji's microsecond precision. Zero is
	// unbounded.
	CreatedAfter, CreatedBefore time.Time
	// Cache says how the answer may come from the cache. It is not part of
	// what the query selects.
	Cache CachePolicy
	// SettledAt goes with CacheSettled: the caller knows that no task it
	// cares about has been created since (for a compose, when its STATUS was
	// first seen final, on the client's clock: see Client.Now).
	SettledAt time.Time
}

// CachePolicy says whether ListTasks may answer from its cache.
type CachePolicy int

const (
	// CacheAny answers from any cached query that is at least as broad,
	// however recent within the cache TTL. For questions about tasks that
	// have finished or do not move, such as listing a past compose's
	// images.
	CacheAny CachePolicy = iota
	// CacheFinal answers from the cache only when the cached answer cannot
	// have changed since it was fetched: its creation window had closed
	// (CreatedBefore well before the fetch, so no new task can fall in it),
	// it covered every unfinished state, and every cached task the query
	// could select was already finished (finished tasks never change).
	// Otherwise the hub is asked. This is what a completeness check wants:
	// methods whose tasks all finished come from the cache, the rest is
	// fetched fresh. fedfind 1.x bypassed its cache altogether for this.
	CacheFinal
	// CacheBypass always asks the hub; the fresh answer is still cached for
	// later queries.
	CacheBypass
	// CacheSettled is CacheFinal for a caller that knows no task it cares
	// about has been created since TaskQuery.SettledAt, even though the
	// window is still open: a compose whose STATUS is final gets no new
	// image tasks. A cached answer fetched since SettledAt whose matching
	// tasks have all finished is then final. Tasks of no interest to the
	// caller (another compose's, created since) may be missing from it.
	CacheSettled
)

// needsFinal reports whether the policy answers from the cache only with
// answers that cannot have changed.
func (p CachePolicy) needsFinal() bool { return p == CacheFinal || p == CacheSettled }

// finalMargin is how long after a window's end a fetch must have happened
// for CacheFinal to trust that the window is closed: it absorbs clock skew
// between composeci and the hub's database.
const finalMargin = 10 * time.Minute

// unitQuery is one listTasks call: a TaskQuery with at most one method,
// without the client-side TopLevel filter, in canonical form (sets sorted
// and deduplicated, times at microsecond precision in UTC).
type unitQuery struct {
	method        string
	states        []TaskState // nil: any
	arches        []string    // nil: any
	owner, parent int
	after, before time.Time
}

// units splits q into one unitQuery per method (one without a method if q
// has none), after validating it.
func (q TaskQuery) units() ([]unitQuery, error) {
	if q.TopLevel && q.Parent != 0 {
		return nil, fmt.Errorf("%w: TopLevel and Parent %d exclude each other", ErrInvalidQuery, q.Parent)
	}
	if q.Owner < 0 || q.Parent < 0 {
		return nil, fmt.Errorf("%w: negative owner or parent id", ErrInvalidQuery)
	}
	if (q.Cache == CacheSettled) != !q.SettledAt.IsZero() {
		return nil, fmt.Errorf("%w: CacheSettled and SettledAt go together", ErrInvalidQuery)
	}
	if len(q.Methods) == 0 && q.Parent == 0 && q.Owner == 0 && q.CreatedAfter.IsZero() {
		return nil, fmt.Errorf("%w: no method, parent, owner or CreatedAfter: that would list every task on the hub", ErrInvalidQuery)
	}
	for _, m := range q.Methods {
		if !validName(m) {
			return nil, fmt.Errorf("%w: method %q", ErrInvalidQuery, m)
		}
	}
	for _, s := range q.States {
		if s < 0 || int(s) >= len(stateNames) {
			return nil, fmt.Errorf("%w: state %d", ErrInvalidQuery, int(s))
		}
	}
	for _, a := range q.Arches {
		if a == "" {
			return nil, fmt.Errorf("%w: empty arch", ErrInvalidQuery)
		}
	}
	base := unitQuery{
		states: canonSet(q.States),
		arches: canonSet(q.Arches),
		owner:  q.Owner,
		parent: q.Parent,
		after:  canonTime(q.CreatedAfter),
		before: canonTime(q.CreatedBefore),
	}
	methods := canonSet(q.Methods)
	if methods == nil {
		return []unitQuery{base}, nil
	}
	out := make([]unitQuery, len(methods))
	for i, m := range methods {
		out[i] = base
		out[i].method = m
	}
	return out, nil
}

func canonSet[T interface{ ~int | ~string }](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func canonTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Round(time.Microsecond).UTC()
}

// key is the cache key of u: every filter, in canonical order.
func (u unitQuery) key() string {
	var b strings.Builder
	b.WriteString("listTasks\x00m=")
	b.WriteString(u.method)
	b.WriteString("\x00s=")
	for i, s := range u.states {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(s)))
	}
	b.WriteString("\x00a=")
	b.WriteString(strings.Join(u.arches, ","))
	fmt.Fprintf(&b, "\x00o=%d\x00p=%d\x00after=%d\x00before=%d", u.owner, u.parent, micros(u.after), micros(u.before))
	return b.String()
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// params is the listTasks call for u: only the keys that constrain, since
// an absent key is how Koji says "any" (and nil cannot be sent), decode
// always on, and an explicit order because Koji has no default ORDER BY.
func (u unitQuery) params() []any {
	opts := map[string]any{"decode": true}
	if u.method != "" {
		opts["method"] = u.method
	}
	if u.states != nil {
		s := make([]any, len(u.states))
		for i, st := range u.states {
			s[i] = int(st)
		}
		opts["state"] = s
	}
	if u.arches != nil {
		a := make([]any, len(u.arches))
		for i, x := range u.arches {
			a[i] = x
		}
		opts["arch"] = a
	}
	if u.owner != 0 {
		opts["owner"] = u.owner
	}
	if u.parent != 0 {
		opts["parent"] = u.parent
	}
	if !u.after.IsZero() {
		opts["createdAfter"] = epoch(u.after)
	}
	if !u.before.IsZero() {
		opts["createdBefore"] = epoch(u.before)
	}
	return []any{opts, map[string]any{"order": "id"}}
}

// subsumes reports whether every task u selects is among the tasks c
// selects, so that u's answer is c's answer filtered by u. That holds only
// if c is at least as broad on every filter: each constraint of c must be
// implied by u. fedfind 1.x checked only the keys both queries had, so a
// cached query with an arch filter answered a later query without one.
func (c unitQuery) subsumes(u unitQuery) bool {
	if c.method != "" && c.method != u.method {
		return false
	}
	if c.states != nil && (u.states == nil || !subset(u.states, c.states)) {
		return false
	}
	if c.arches != nil && (u.arches == nil || !subset(u.arches, c.arches)) {
		return false
	}
	if c.owner != 0 && c.owner != u.owner {
		return false
	}
	if c.parent != 0 && c.parent != u.parent {
		return false
	}
	// Bounds are strict (create > after), so u's window lies in c's when
	// u's bounds are at least as tight.
	if !c.after.IsZero() && (u.after.IsZero() || u.after.Before(c.after)) {
		return false
	}
	if !c.before.IsZero() && (u.before.IsZero() || u.before.After(c.before)) {
		return false
	}
	return true
}

// subset reports whether sorted a ⊆ sorted b.
func subset[T interface{ ~int | ~string }](a, b []T) bool {
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			return false
		}
	}
	return true
}

// match evaluates u on one task, as the hub would.
func (u unitQuery) match(t Task) bool {
	return u.matchStatic(t) && (u.states == nil || slices.Contains(u.states, t.State))
}

// matchStatic evaluates every filter of u but state: the fields a task
// keeps for life.
func (u unitQuery) matchStatic(t Task) bool {
	switch {
	case u.method != "" && t.Method != u.method:
		return false
	case u.arches != nil && !slices.Contains(u.arches, t.Arch):
		return false
	case u.owner != 0 && t.Owner != u.owner:
		return false
	case u.parent != 0 && t.Parent != u.parent:
		return false
	case !u.after.IsZero() && !t.CreateTime.After(u.after):
		return false
	case !u.before.IsZero() && !t.CreateTime.Before(u.before):
		return false
	}
	return true
}
