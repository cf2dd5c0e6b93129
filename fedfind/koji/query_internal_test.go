package koji

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestSubsumesIsSound checks the subsumption rule on its own, far more
// often than the HTTP test can: whenever c subsumes u, filtering c's answer
// by u gives exactly u's answer, on random tasks and random query pairs
// drawn from small domains so that both outcomes are common.
func TestSubsumesIsSound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	methods := []string{"kiwiBuild", "livemedia", "createKiwiImage"}
	arches := []string{"noarch", "x86_64", "aarch64"}
	grid := func() time.Time {
		if rng.IntN(2) == 0 {
			return time.Time{}
		}
		return t0.Add(time.Duration(rng.IntN(6)) * time.Hour)
	}
	var tasks []Task
	for i := range 200 {
		tasks = append(tasks, Task{
			ID: i + 1, Method: methods[rng.IntN(3)], Arch: arches[rng.IntN(3)], State: TaskState(rng.IntN(6)),
			Owner: 1 + rng.IntN(2), Parent: rng.IntN(3), CreateTime: t0.Add(time.Duration(rng.IntN(6*60)) * time.Minute),
		})
	}
	randomUnit := func() unitQuery {
		var u unitQuery
		if rng.IntN(3) > 0 {
			u.method = methods[rng.IntN(3)]
		}
		if rng.IntN(2) == 0 {
			for s := range 6 {
				if rng.IntN(2) == 0 {
					u.states = append(u.states, TaskState(s))
				}
			}
			u.states = canonSet(u.states)
			if u.states == nil {
				u.states = []TaskState{StateOpen}
			}
		}
		if rng.IntN(2) == 0 {
			u.arches = canonSet([]string{arches[rng.IntN(3)], arches[rng.IntN(3)]})
		}
		u.owner = rng.IntN(3)
		u.parent = rng.IntN(3)
		u.after, u.before = grid(), grid()
		return u
	}
	filter := func(ts []Task, u unitQuery) []int {
		var out []int
		for _, t := range ts {
			if u.match(t) {
				out = append(out, t.ID)
			}
		}
		return out
	}
	yes, no := 0, 0
	for range 20000 {
		c, u := randomUnit(), randomUnit()
		if rng.IntN(4) == 0 {
			c = u // identical queries subsume each other
		}
		if !c.subsumes(u) {
			no++
			continue
		}
		yes++
		cached := &cacheEntry{unit: c}
		for _, t := range tasks {
			if c.match(t) {
				cached.rows = append(cached.rows, t)
			}
		}
		got := []int{}
		for _, t := range cached.filter(u) {
			got = append(got, t.ID)
		}
		want := filter(tasks, u)
		if want == nil {
			want = []int{}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%+v subsumes %+v but answers %v instead of %v", c, u, got, want)
		}
	}
	if yes < 1000 || no < 1000 {
		t.Errorf("unbalanced sample: %d subsumed, %d not", yes, no)
	}
}

// TestSubsumesNeedsEveryCachedConstraint lists, for each filter, a cached
// query narrower than the new one on just that filter; none may subsume.
func TestSubsumesNeedsEveryCachedConstraint(t *testing.T) {
	t1 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	broad := unitQuery{method: "kiwiBuild"}
	tests := []struct {
		name   string
		cached unitQuery
		query  unitQuery
	}{
		{"method", unitQuery{method: "kiwiBuild"}, unitQuery{}},
		{"other method", unitQuery{method: "kiwiBuild"}, unitQuery{method: "livemedia"}},
		{"states", unitQuery{method: "kiwiBuild", states: []TaskState{StateClosed}}, broad},
		{"more states", unitQuery{method: "kiwiBuild", states: []TaskState{StateClosed}}, unitQuery{method: "kiwiBuild", states: []TaskState{StateOpen, StateClosed}}},
		{"arches", unitQuery{method: "kiwiBuild", arches: []string{"x86_64"}}, broad},
		{"owner", unitQuery{method: "kiwiBuild", owner: 7}, broad},
		{"parent", unitQuery{method: "kiwiBuild", parent: 7}, broad},
		{"createdAfter", unitQuery{method: "kiwiBuild", after: t1}, broad},
		{"earlier createdAfter", unitQuery{method: "kiwiBuild", after: t2}, unitQuery{method: "kiwiBuild", after: t1}},
		{"createdBefore", unitQuery{method: "kiwiBuild", before: t1}, broad},
		{"later createdBefore", unitQuery{method: "kiwiBuild", before: t1}, unitQuery{method: "kiwiBuild", before: t2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cached.subsumes(tc.query) {
				t.Errorf("%+v subsumes %+v", tc.cached, tc.query)
			}
			if !tc.query.subsumes(tc.cached) && tc.name != "other method" {
				t.Errorf("the broader %+v does not subsume %+v", tc.query, tc.cached)
			}
		})
	}
}
