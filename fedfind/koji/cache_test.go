package koji_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind/koji"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/testenv"
)

// cacheWorld is a hub with a small, varied task set for cache tests.
type cacheWorld struct {
	hub           *fakefedora.KojiHub
	releng, alice int
	parent        int
	t0            time.Time // all tasks are created after t0, an hour apart
}

func newCacheWorld(t *testing.T) *cacheWorld {
	t.Helper()
	h := newHub(t)
	w := &cacheWorld{hub: h, releng: h.AddUser("releng"), alice: h.AddUser("alice"), t0: testNow.Add(-24 * time.Hour)}
	at := func(i int) time.Time { return w.t0.Add(time.Duration(i) * time.Hour) }
	final := func(s int) []fakefedora.KojiStateChange { return []fakefedora.KojiStateChange{{After: 0, State: s}} }
	w.parent = h.AddTask(fakefedora.KojiTask{Method: "kiwiBuild", Owner: "releng", Created: at(1), Schedule: final(fakefedora.KojiClosed)})
	h.AddTask(fakefedora.KojiTask{Method: "createKiwiImage", Arch: "x86_64", Owner: "releng", Parent: w.parent, Created: at(1), Schedule: final(fakefedora.KojiClosed)})
	h.AddTask(fakefedora.KojiTask{Method: "createKiwiImage", Arch: "aarch64", Owner: "releng", Parent: w.parent, Created: at(1), Schedule: final(fakefedora.KojiFailed)})
	h.AddTask(fakefedora.KojiTask{Method: "kiwiBuild", Owner: "alice", Created: at(2), Schedule: final(fakefedora.KojiFailed)})
	h.AddTask(fakefedora.KojiTask{Method: "kiwiBuild", Owner: "releng", Created: at(3), Schedule: final(fakefedora.KojiOpen)})
	h.AddTask(fakefedora.KojiTask{Method: "livemedia", Owner: "releng", Created: at(4), Schedule: final(fakefedora.KojiClosed)})
	h.AddTask(fakefedora.KojiTask{Method: "livemedia", Owner: "alice", Created: at(5), Schedule: final(fakefedora.KojiCanceled)})
	h.AddTask(fakefedora.KojiTask{Method: "osbuildImage", Owner: "releng", Created: at(6), Schedule: final(fakefedora.KojiClosed)})
	return w
}

func (w *cacheWorld) at(i int) time.Time { return w.t0.Add(time.Duration(i) * time.Hour) }

func ids(ts []koji.Task) []int {
	out := make([]int, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

// TestListTasksCache primes the cache with one query, asks another, and
// checks where the answer came from and that it equals the hub's own
// answer to the second query.
func TestListTasksCache(t *testing.T) {
	type want struct {
		exact, subsumed, misses int64 // per-method units
		requests                int64 // at the hub, for the second query
	}
	all3 := []string{"kiwiBuild", "livemedia", "osbuildImage"}
	tests := []struct {
		name   string
		cached func(w *cacheWorld) koji.TaskQuery
		query  func(w *cacheWorld) koji.TaskQuery
		want   want
	}{
		{"an identical query is an exact hit",
			func(*cacheWorld) koji.TaskQuery { return koji.TaskQuery{Methods: []string{"kiwiBuild"}} },
			func(*cacheWorld) koji.TaskQuery { return koji.TaskQuery{Methods: []string{"kiwiBuild"}} },
			want{exact: 1}},
		{"set order and duplicates do not matter",
			func(*cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, States: []koji.TaskState{2, 5}, Arches: []string{"noarch", "x86_64"}}
			},
			func(*cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild", "kiwiBuild"}, States: []koji.TaskState{5, 2, 5}, Arches: []string{"x86_64", "noarch"}}
			},
			want{exact: 1}},
		{"a subset of states is answered by filtering",
			func(*cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, States: []koji.TaskState{koji.StateClosed, koji.StateFailed}}
			},
			func(*cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, States: []koji.TaskState{koji.StateFailed}}
			},
			want{subsumed: 1}},
		{"a cached state filter never answers a query without one",
			func(*cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, States: []koji.TaskState{koji.StateClosed}}
			},
			func(*cacheWorld) koji.TaskQuery { return koji.TaskQuery{Methods: []string{"kiwiBuild"}} },
			want{misses: 1, requests: 1}},
		{"a cached narrower arch query never answers a broader one (fedfind 1.x's bug)",
			func(*cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"createKiwiImage"}, Arches: []string{"x86_64"}}
			},
			func(*cacheWorld) koji.TaskQuery { return koji.TaskQuery{Methods: []string{"createKiwiImage"}} },
			want{misses: 1, requests: 1}},
		{"a cached query without arch answers one with",
			func(*cacheWorld) koji.TaskQuery { return koji.TaskQuery{Methods: []string{"createKiwiImage"}} },
			func(*cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"createKiwiImage"}, Arches: []string{"aarch64"}}
			},
			want{subsumed: 1}},
		{"a cached time window never answers an unbounded query",
			func(w *cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, CreatedAfter: w.at(2)}
			},
			func(*cacheWorld) koji.TaskQuery { return koji.TaskQuery{Methods: []string{"kiwiBuild"}} },
			want{misses: 1, requests: 1}},
		{"a window inside the cached one is answered",
			func(w *cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, CreatedAfter: w.at(0), CreatedBefore: w.at(10)}
			},
			func(w *cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, CreatedAfter: w.at(1), CreatedBefore: w.at(3)}
			},
			want{subsumed: 1}},
		{"bounds are strict: a task created exactly at the bound is out, locally too",
			func(w *cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, CreatedAfter: w.at(0)}
			},
			func(w *cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, CreatedAfter: w.at(1), CreatedBefore: w.at(3)}
			},
			want{subsumed: 1}},
		{"a window reaching before the cached one is not answered",
			func(w *cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, CreatedAfter: w.at(2)}
			},
			func(w *cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, CreatedAfter: w.at(1)}
			},
			want{misses: 1, requests: 1}},
		{"a window reaching after the cached one is not answered",
			func(w *cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, CreatedBefore: w.at(2)}
			},
			func(w *cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, CreatedBefore: w.at(3)}
			},
			want{misses: 1, requests: 1}},
		{"a cached query of any owner answers one owner",
			func(*cacheWorld) koji.TaskQuery { return koji.TaskQuery{Methods: []string{"kiwiBuild"}} },
			func(w *cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, Owner: w.releng}
			},
			want{subsumed: 1}},
		{"a cached owner never answers any owner",
			func(w *cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, Owner: w.releng}
			},
			func(*cacheWorld) koji.TaskQuery { return koji.TaskQuery{Methods: []string{"kiwiBuild"}} },
			want{misses: 1, requests: 1}},
		{"a cached owner never answers another owner",
			func(w *cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, Owner: w.releng}
			},
			func(w *cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, Owner: w.alice}
			},
			want{misses: 1, requests: 1}},
		{"a subset of methods is the union of cached per-method answers",
			func(*cacheWorld) koji.TaskQuery { return koji.TaskQuery{Methods: all3} },
			func(*cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"osbuildImage", "livemedia"}}
			},
			want{exact: 2}},
		{"a superset of methods fetches only the new method",
			func(*cacheWorld) koji.TaskQuery { return koji.TaskQuery{Methods: []string{"kiwiBuild"}} },
			func(*cacheWorld) koji.TaskQuery { return koji.TaskQuery{Methods: all3} },
			want{exact: 1, misses: 2, requests: 1}},
		{"a cached query of all methods answers one method",
			func(w *cacheWorld) koji.TaskQuery { return koji.TaskQuery{Owner: w.releng} },
			func(w *cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"livemedia"}, Owner: w.releng, States: []koji.TaskState{koji.StateClosed}}
			},
			want{subsumed: 1}},
		{"a cached method never answers all methods",
			func(w *cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, Owner: w.releng}
			},
			func(w *cacheWorld) koji.TaskQuery { return koji.TaskQuery{Owner: w.releng} },
			want{misses: 1, requests: 1}},
		{"children of a parent, narrowed by arch",
			func(w *cacheWorld) koji.TaskQuery { return koji.TaskQuery{Parent: w.parent} },
			func(w *cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Parent: w.parent, Arches: []string{"aarch64"}, Methods: []string{"createKiwiImage"}}
			},
			want{subsumed: 1}},
		{"a cached parent never answers a query without one",
			func(w *cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Parent: w.parent, Methods: []string{"createKiwiImage"}}
			},
			func(*cacheWorld) koji.TaskQuery { return koji.TaskQuery{Methods: []string{"createKiwiImage"}} },
			want{misses: 1, requests: 1}},
		{"TopLevel is a local filter, so the same hub query serves both",
			func(*cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild", "createKiwiImage"}}
			},
			func(*cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild", "createKiwiImage"}, TopLevel: true}
			},
			want{exact: 2}},
		{"CacheBypass asks the hub even for an identical query",
			func(*cacheWorld) koji.TaskQuery { return koji.TaskQuery{Methods: []string{"kiwiBuild"}} },
			func(*cacheWorld) koji.TaskQuery {
				return koji.TaskQuery{Methods: []string{"kiwiBuild"}, Cache: koji.CacheBypass}
			},
			want{misses: 1, requests: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newCacheWorld(t)
			ctx := context.Background()
			c := newClient(t, w.hub.URL(), koji.Options{})
			if _, err := c.ListTasks(ctx, tc.cached(w)); err != nil {
				t.Fatal(err)
			}
			before, reqs := c.Stats(), w.hub.Requests()
			q := tc.query(w)
			got, err := c.ListTasks(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			after := c.Stats()
			gotWant := want{
				exact:    after.CacheHits - before.CacheHits,
				subsumed: after.SubsumptionHits - before.SubsumptionHits,
				misses:   after.CacheMisses - before.CacheMisses,
				requests: w.hub.Requests() - reqs,
			}
			if gotWant != tc.want {
				t.Errorf("got %+v, want %+v", gotWant, tc.want)
			}
			fresh := newClient(t, w.hub.URL(), koji.Options{CacheTTL: -1})
			q.Cache = koji.CacheBypass
			wantTasks, err := fresh.ListTasks(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, wantTasks) {
				t.Errorf("cached answer %v differs from the hub's %v", ids(got), ids(wantTasks))
			}
		})
	}
}

func TestListTasksRejectsBadQueries(t *testing.T) {
	w := newCacheWorld(t)
	c := newClient(t, w.hub.URL(), koji.Options{})
	tests := []struct {
		name string
		q    koji.TaskQuery
	}{
		{"nothing bounds the query", koji.TaskQuery{States: []koji.TaskState{koji.StateOpen}}},
		{"TopLevel with a Parent", koji.TaskQuery{Methods: []string{"x"}, TopLevel: true, Parent: 5}},
		{"unknown state", koji.TaskQuery{Methods: []string{"x"}, States: []koji.TaskState{9}}},
		{"bad method name", koji.TaskQuery{Methods: []string{"x y"}}},
		{"empty arch", koji.TaskQuery{Methods: []string{"x"}, Arches: []string{""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.ListTasks(context.Background(), tc.q); !errors.Is(err, koji.ErrInvalidQuery) {
				t.Errorf("error %v, want ErrInvalidQuery", err)
			}
		})
	}
	if w.hub.Requests() != 0 {
		t.Errorf("invalid queries reached the hub")
	}
}

func TestListTasksPerMethodFault(t *testing.T) {
	w := newCacheWorld(t)
	w.hub.FaultCalls("listTasks", 1, koji.FaultGeneric, "database hiccup")
	c := newClient(t, w.hub.URL(), koji.Options{})
	ctx := context.Background()
	_, err := c.ListTasks(ctx, koji.TaskQuery{Methods: []string{"kiwiBuild", "livemedia"}})
	var f *koji.Fault
	if !errors.As(err, &f) || f.String != "database hiccup" {
		t.Fatalf("error %v", err)
	}
	// The method that succeeded was cached; only the failed one is asked again.
	before := w.hub.CallCount("listTasks")
	if _, err := c.ListTasks(ctx, koji.TaskQuery{Methods: []string{"kiwiBuild", "livemedia"}}); err != nil {
		t.Fatal(err)
	}
	if got := w.hub.CallCount("listTasks") - before; got != 1 {
		t.Errorf("%d listTasks calls, want 1", got)
	}
}

// TestCacheFinal follows a nightly through a completeness poll: nothing is
// trusted while the window is open; once it has closed, methods whose tasks
// all finished come from the cache and only the rest are asked again.
func TestCacheFinal(t *testing.T) {
	h := newHub(t)
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	h.SetNow(day.Add(4 * time.Hour))
	ids := h.AddNightlyImageTasks("Fedora-Rawhide-20261122.n.0", "20261122.n.0", "Rawhide", 3,
		fakefedora.KojiRunSchedule(time.Minute, 30*time.Minute, fakefedora.KojiClosed)...)
	// The livemedia task (the second) runs for two days.
	h.SetTaskSchedule(ids[1], fakefedora.KojiRunSchedule(time.Minute, 48*time.Hour, fakefedora.KojiClosed)...)
	c := newClient(t, h.URL(), koji.Options{Now: h.Now, CacheTTL: time.Hour * 100})
	ctx := context.Background()
	q := koji.TaskQuery{Methods: []string{"kiwiBuild", "livemedia", "osbuildImage"}, TopLevel: true,
		CreatedAfter: day.Add(-24 * time.Hour), CreatedBefore: day.Add(24 * time.Hour), Cache: koji.CacheFinal}

	poll := func(step string, wantCalls int64, wantOpen int) {
		t.Helper()
		before := h.CallCount("listTasks")
		tasks, err := c.ListTasks(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		open := 0
		for _, tk := range tasks {
			if !tk.Finished() {
				open++
			}
		}
		if got := h.CallCount("listTasks") - before; got != wantCalls || open != wantOpen || len(tasks) != 3 {
			t.Errorf("%s: %d listTasks calls, %d of %d tasks open; want %d calls, %d open", step, got, open, len(tasks), wantCalls, wantOpen)
		}
	}
	poll("window open", 3, 1)
	h.Advance(time.Hour)
	poll("window still open: nothing is trusted", 3, 1)
	h.Advance(24 * time.Hour) // now past the window's end plus the margin
	poll("window closed, first fetch after", 3, 1)
	poll("only the method with an open task is asked", 1, 1)
	// CacheAny would keep answering from the cache; CacheFinal sees the close.
	h.Advance(24 * time.Hour)
	anyQ := q
	anyQ.Cache = koji.CacheAny
	if tasks, _ := c.ListTasks(ctx, anyQ); tasks[1].Finished() {
		t.Errorf("CacheAny fetched instead of using its (stale) cache")
	}
	poll("the last task finished", 1, 0)
	poll("everything final: no request", 0, 0)
}

// TestCacheSettled follows a compose whose STATUS turns final while its
// window is still open: answers fetched before SettledAt are never trusted
// (a task may have been created since), answers fetched after it are, once
// their tasks have finished.
func TestCacheSettled(t *testing.T) {
	h := newHub(t)
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	h.SetNow(day.Add(3*time.Hour + 90*time.Second)) // two of three tasks exist
	h.AddNightlyImageTasks("Fedora-Rawhide-20261122.n.0", "20261122.n.0", "Rawhide", 3,
		fakefedora.KojiRunSchedule(0, 30*time.Second, fakefedora.KojiClosed)...)
	c := newClient(t, h.URL(), koji.Options{Now: h.Now, CacheTTL: 100 * time.Hour})
	ctx := context.Background()
	q := koji.TaskQuery{Methods: []string{"kiwiBuild", "livemedia", "osbuildImage"}, TopLevel: true,
		CreatedAfter: day.Add(-24 * time.Hour), CreatedBefore: day.Add(48 * time.Hour), Cache: koji.CacheFinal}
	poll := func(step string, q koji.TaskQuery, wantCalls int64, wantTasks int) {
		t.Helper()
		before := h.CallCount("listTasks")
		tasks, err := c.ListTasks(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.CallCount("listTasks") - before; got != wantCalls || len(tasks) != wantTasks {
			t.Errorf("%s: %d listTasks calls, %d tasks; want %d calls, %d tasks", step, got, len(tasks), wantCalls, wantTasks)
		}
	}
	poll("while Pungi runs", q, 3, 2)
	h.Advance(time.Hour) // the third task is created and finishes; STATUS turns final
	settled := q
	settled.Cache, settled.SettledAt = koji.CacheSettled, c.Now()
	poll("the answer before SettledAt is not trusted", settled, 3, 3)
	poll("the answer since is", settled, 0, 3)
	narrower := settled
	narrower.Methods = []string{"kiwiBuild"}
	poll("and answers a narrower question", narrower, 0, 1)
	poll("CacheFinal still waits for the window to close", q, 3, 3)
	bad := q
	bad.SettledAt = c.Now()
	if _, err := c.ListTasks(ctx, bad); !errors.Is(err, koji.ErrInvalidQuery) {
		t.Errorf("SettledAt without CacheSettled: %v", err)
	}
}

func TestListTasksSingleflight(t *testing.T) {
	w := newCacheWorld(t)
	w.hub.SetLatency(200 * time.Millisecond)
	c := newClient(t, w.hub.URL(), koji.Options{})
	q := koji.TaskQuery{Methods: []string{"kiwiBuild", "livemedia"}, Cache: koji.CacheBypass}
	const n = 8
	var wg sync.WaitGroup
	results := make([][]koji.Task, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = c.ListTasks(context.Background(), q) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !reflect.DeepEqual(results[i], results[0]) || len(results[i]) != 5 {
			t.Fatalf("caller %d: %v %v", i, ids(results[i]), errs[i])
		}
	}
	if got := w.hub.Requests(); got != 1 {
		t.Errorf("%d requests for %d concurrent identical queries, want 1", got, n)
	}
	if got := c.Stats().SharedFetches; got != n-1 {
		t.Errorf("SharedFetches = %d, want %d", got, n-1)
	}
	// Each caller got its own copy of the requests.
	results[0][0].Request = append(results[0][0].Request, "scribble")
	if reflect.DeepEqual(results[0][0].Request, results[1][0].Request) {
		t.Error("callers share Request slices")
	}
}

// TestSingleflightLeaderGivesUp: a caller that joined an in-flight query
// whose first caller was cancelled does not inherit the cancellation.
func TestSingleflightLeaderGivesUp(t *testing.T) {
	w := newCacheWorld(t)
	w.hub.SetLatency(300 * time.Millisecond)
	c := newClient(t, w.hub.URL(), koji.Options{})
	q := koji.TaskQuery{Methods: []string{"kiwiBuild"}}
	leaderCtx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	leaderErr := make(chan error, 1)
	go func() { _, err := c.ListTasks(leaderCtx, q); leaderErr <- err }()
	testenv.WaitFor(t, 5*time.Second, "the leader's request", func() error {
		if w.hub.Requests() == 0 {
			return errors.New("no request yet")
		}
		return nil
	})
	tasks, err := c.ListTasks(context.Background(), q)
	if err != nil || len(tasks) != 3 {
		t.Fatalf("follower: %v %v", ids(tasks), err)
	}
	if err := <-leaderErr; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("leader: %v", err)
	}
}

// TestListTasksMatchesBruteForce is the subsumption property test: random
// tasks in the hub, a random sequence of overlapping queries through one
// caching client, and every answer compared with the brute-force answer
// computed by filtering all tasks directly.
func TestListTasksMatchesBruteForce(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			h := newHub(t)
			users := []int{h.AddUser("releng"), h.AddUser("alice"), h.AddUser("bob")}
			userNames := []string{"releng", "alice", "bob"}
			methods := []string{"kiwiBuild", "livemedia", "osbuildImage", "createKiwiImage"}
			arches := []string{"noarch", "x86_64", "aarch64"}
			t0 := testNow.Add(-72 * time.Hour)
			type ref struct {
				id, owner, parent int
				method, arch      string
				state             koji.TaskState
				created           time.Time
			}
			var all []ref
			var parents []int
			var times []time.Time
			for range 120 {
				r := ref{
					method:  methods[rng.IntN(len(methods))],
					arch:    arches[rng.IntN(len(arches))],
					state:   koji.TaskState(rng.IntN(6)),
					created: t0.Add(time.Duration(rng.Int64N(int64(48 * time.Hour)))).Round(time.Microsecond),
				}
				u := rng.IntN(len(users))
				r.owner = users[u]
				if len(parents) > 0 && rng.IntN(3) == 0 {
					r.parent = parents[rng.IntN(len(parents))]
				}
				r.id = h.AddTask(fakefedora.KojiTask{Method: r.method, Arch: r.arch, Owner: userNames[u], Parent: r.parent, Created: r.created,
					Schedule: []fakefedora.KojiStateChange{{After: 0, State: int(r.state)}}})
				if r.parent == 0 && len(parents) < 4 {
					parents = append(parents, r.id)
				}
				times = append(times, r.created)
				all = append(all, r)
			}
			// Bounds come from a small grid plus exact creation times, so that
			// queries overlap and strictness at the bound is exercised.
			for i := range 6 {
				times = append(times, t0.Add(time.Duration(i)*8*time.Hour))
			}
			pickTime := func() time.Time {
				if rng.IntN(2) == 0 {
					return time.Time{}
				}
				return times[rng.IntN(len(times))]
			}
			subsetOf := func(n int) []int {
				var out []int
				for i := range n {
					if rng.IntN(2) == 0 {
						out = append(out, i)
					}
				}
				return out
			}
			randomQuery := func() koji.TaskQuery {
				var q koji.TaskQuery
				if rng.IntN(5) > 0 {
					for _, i := range subsetOf(len(methods)) {
						q.Methods = append(q.Methods, methods[i])
					}
				}
				if rng.IntN(2) == 0 {
					for _, i := range subsetOf(6) {
						q.States = append(q.States, koji.TaskState(i))
					}
				}
				if rng.IntN(3) == 0 {
					for _, i := range subsetOf(len(arches)) {
						q.Arches = append(q.Arches, arches[i])
					}
				}
				if rng.IntN(4) == 0 {
					q.Owner = users[rng.IntN(len(users))]
				}
				switch rng.IntN(8) {
				case 0:
					q.Parent = parents[rng.IntN(len(parents))]
				case 1, 2:
					q.TopLevel = true
				}
				q.CreatedAfter, q.CreatedBefore = pickTime(), pickTime()
				if len(q.Methods) == 0 && q.Parent == 0 && q.Owner == 0 && q.CreatedAfter.IsZero() {
					q.Methods = []string{methods[rng.IntN(len(methods))]}
				}
				return q
			}
			brute := func(q koji.TaskQuery) []int {
				out := []int{}
				for _, r := range all {
					switch {
					case len(q.Methods) > 0 && !slices.Contains(q.Methods, r.method),
						len(q.States) > 0 && !slices.Contains(q.States, r.state),
						len(q.Arches) > 0 && !slices.Contains(q.Arches, r.arch),
						q.Owner != 0 && r.owner != q.Owner,
						q.Parent != 0 && r.parent != q.Parent,
						q.TopLevel && r.parent != 0,
						!q.CreatedAfter.IsZero() && !r.created.After(q.CreatedAfter),
						!q.CreatedBefore.IsZero() && !r.created.Before(q.CreatedBefore):
						continue
					}
					out = append(out, r.id)
				}
				slices.Sort(out)
				return out
			}
			byID := map[int]ref{}
			for _, r := range all {
				byID[r.id] = r
			}

			c := newClient(t, h.URL(), koji.Options{})
			for i := range 300 {
				q := randomQuery()
				got, err := c.ListTasks(context.Background(), q)
				if err != nil {
					t.Fatalf("query %d %+v: %v", i, q, err)
				}
				want := brute(q)
				if g := ids(got); !slices.Equal(g, want) {
					t.Fatalf("query %d %+v:\n got %v\nwant %v\nstats %+v", i, q, g, want, c.Stats())
				}
				for _, tk := range got {
					r := byID[tk.ID]
					if tk.Method != r.method || tk.State != r.state || tk.Arch != r.arch || tk.Owner != r.owner || tk.Parent != r.parent || !tk.CreateTime.Equal(r.created) {
						t.Fatalf("task %d decoded as %+v, want %+v", tk.ID, tk, r)
					}
				}
			}
			s := c.Stats()
			t.Logf("stats: %+v", s)
			if s.CacheHits == 0 || s.SubsumptionHits == 0 || s.CacheMisses == 0 {
				t.Errorf("the sequence did not exercise every path: %+v", s)
			}
		})
	}
}
