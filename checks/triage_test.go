package checks

import (
	"slices"
	"testing"
	"time"

	"github.com/composeci/composeci/openqa"
)

// triageOutcome is what the triage decided: test names per list, and for
// each new or flaky result the job composeci re-ran.
type triageOutcome struct {
	New, Known, Flaky, Fixed, Soft, Pending []string
	RerunOf                                 map[string]int64
	KnownIssue                              map[string]int64
	Expired                                 []int64
}

func triageOf(o OpenQA) triageOutcome {
	t := triageOutcome{RerunOf: map[string]int64{}, KnownIssue: map[string]int64{}, Expired: []int64{}}
	add := func(dst *[]string, rs []JobResult) {
		*dst = []string{}
		for _, r := range rs {
			*dst = append(*dst, r.Test)
			if r.RerunOf != 0 {
				t.RerunOf[r.Test] = r.RerunOf
			}
			if r.KnownIssue != nil {
				t.KnownIssue[r.Test] = r.KnownIssue.ID
			}
		}
	}
	add(&t.New, o.NewFailures)
	add(&t.Known, o.KnownFailures)
	add(&t.Flaky, o.Flaky)
	add(&t.Fixed, o.Fixed)
	add(&t.Soft, o.SoftFailures)
	add(&t.Pending, o.Pending)
	for _, k := range o.ExpiredKnownIssues {
		t.Expired = append(t.Expired, k.ID)
	}
	return t
}

func TestTriage(t *testing.T) {
	day := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	none := []string{}
	tests := []struct {
		name    string
		cur     []openqa.Job
		prev    []openqa.Job
		reruns  map[int64]int64
		known   []KnownIssue
		modules map[int64][]string
		want    triageOutcome
	}{
		{
			name:   "a new failure re-run by composeci that fails again is confirmed",
			cur:    []openqa.Job{j(10, "install", "failed", clonedTo(20)), j(20, "install", "failed", originOf(10))},
			prev:   []openqa.Job{j(1, "install", "passed")},
			reruns: map[int64]int64{10: 20},
			want:   triageOutcome{New: []string{"install"}, RerunOf: map[string]int64{"install": 10}},
		},
		{
			name:   "a new failure whose re-run passes is flaky, not a failure",
			cur:    []openqa.Job{j(10, "install", "failed", clonedTo(20)), j(20, "install", "passed", originOf(10))},
			prev:   []openqa.Job{j(1, "install", "passed")},
			reruns: map[int64]int64{10: 20},
			want:   triageOutcome{Flaky: []string{"install"}, RerunOf: map[string]int64{"install": 10}},
		},
		{
			name:   "a re-run that soft-fails is flaky too",
			cur:    []openqa.Job{j(10, "install", "failed", clonedTo(20)), j(20, "install", "softfailed", originOf(10))},
			reruns: map[int64]int64{10: 20},
			want:   triageOutcome{Flaky: []string{"install"}, RerunOf: map[string]int64{"install": 10}},
		},
		{
			name:   "a re-run still running leaves the scenario pending",
			cur:    []openqa.Job{j(10, "install", "failed", clonedTo(20)), j(20, "install", "", originOf(10), state(openqa.StateRunning))},
			reruns: map[int64]int64{10: 20},
			want:   triageOutcome{Pending: []string{"install"}, RerunOf: map[string]int64{"install": 10}},
		},
		{
			name: "a re-run that crashed and was cloned by openQA counts through its clone",
			cur: []openqa.Job{j(10, "install", "failed", clonedTo(20)), j(20, "install", "incomplete", originOf(10), clonedTo(30)),
				j(30, "install", "passed", originOf(20))},
			reruns: map[int64]int64{10: 20},
			want:   triageOutcome{Flaky: []string{"install"}, RerunOf: map[string]int64{"install": 10}},
		},
		{
			name: "a clone openQA made by itself is no re-run: a pass after an incomplete is a pass",
			cur:  []openqa.Job{j(10, "install", "incomplete", clonedTo(20)), j(20, "install", "passed", originOf(10))},
			want: triageOutcome{},
		},
		{
			name:   "a known failure re-run and passing is fixed, not flaky",
			cur:    []openqa.Job{j(10, "install", "failed", clonedTo(20)), j(20, "install", "passed", originOf(10))},
			prev:   []openqa.Job{j(1, "install", "failed")},
			reruns: map[int64]int64{10: 20},
			want:   triageOutcome{Fixed: []string{"install"}, RerunOf: map[string]int64{"install": 10}},
		},
		{
			name:  "a registry entry makes a new failure known, with its reason",
			cur:   []openqa.Job{j(10, "install", "failed"), j(11, "desktop", "failed")},
			prev:  []openqa.Job{j(1, "install", "passed"), j(2, "desktop", "passed")},
			known: []KnownIssue{{ID: 7, Test: "install", Reason: "anaconda crash", Bug: "https://bugzilla.example/1"}},
			want:  triageOutcome{New: []string{"desktop"}, Known: []string{"install"}, KnownIssue: map[string]int64{"install": 7}},
		},
		{
			name:  "an entry for another flavor or arch does not match",
			cur:   []openqa.Job{j(10, "install", "failed")},
			known: []KnownIssue{{ID: 1, Test: "install", Flavor: "Everything-boot-iso"}, {ID: 2, Test: "install", Arch: "aarch64"}},
			want:  triageOutcome{New: []string{"install"}},
		},
		{
			name:  "an entry naming flavor and arch matches exactly those",
			cur:   []openqa.Job{j(10, "install", "failed"), j(11, "install", "failed", arch("aarch64"))},
			known: []KnownIssue{{ID: 3, Test: "install", Flavor: "Server-dvd-iso", Arch: "aarch64"}},
			want:  triageOutcome{New: []string{"install"}, Known: []string{"install"}, KnownIssue: map[string]int64{"install": 3}},
		},
		{
			name:    "an entry naming a module matches only a failure in that module",
			cur:     []openqa.Job{j(10, "install", "failed"), j(11, "desktop", "failed")},
			known:   []KnownIssue{{ID: 4, Test: "install", Module: "_boot_to_anaconda"}, {ID: 5, Test: "desktop", Module: "_graphical_wait_login"}},
			modules: map[int64][]string{10: {"_boot_to_anaconda"}, 11: {"desktop_terminal"}},
			want:    triageOutcome{New: []string{"desktop"}, Known: []string{"install"}, KnownIssue: map[string]int64{"install": 4}},
		},
		{
			name:  "an expired entry matches nothing, and the report says it expired",
			cur:   []openqa.Job{j(10, "install", "failed")},
			known: []KnownIssue{{ID: 9, Test: "install", Expires: day.Add(-time.Hour)}, {ID: 10, Test: "install", Expires: day.Add(time.Hour)}},
			want:  triageOutcome{Known: []string{"install"}, KnownIssue: map[string]int64{"install": 10}, Expired: []int64{9}},
		},
		{
			name:  "a failure known by history gets its registry entry too",
			cur:   []openqa.Job{j(10, "install", "failed")},
			prev:  []openqa.Job{j(1, "install", "failed")},
			known: []KnownIssue{{ID: 11, Test: "install"}},
			want:  triageOutcome{Known: []string{"install"}, KnownIssue: map[string]int64{"install": 11}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Compose: cur, Jobs: tt.cur, Reruns: tt.reruns, KnownIssues: tt.known, FailedModules: tt.modules, Now: day}
			if tt.prev != nil {
				in.Previous = &Previous{Compose: prev, Jobs: tt.prev}
			}
			got := triageOf(Run(in).OpenQA)
			for _, l := range []*[]string{&tt.want.New, &tt.want.Known, &tt.want.Flaky, &tt.want.Fixed, &tt.want.Soft, &tt.want.Pending} {
				if *l == nil {
					*l = none
				}
			}
			if tt.want.RerunOf == nil {
				tt.want.RerunOf = map[string]int64{}
			}
			if tt.want.KnownIssue == nil {
				tt.want.KnownIssue = map[string]int64{}
			}
			if tt.want.Expired == nil {
				tt.want.Expired = []int64{}
			}
			if !equalTriage(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func equalTriage(a, b triageOutcome) bool {
	eq := func(x, y map[string]int64) bool {
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if y[k] != v {
				return false
			}
		}
		return true
	}
	return slices.Equal(a.New, b.New) && slices.Equal(a.Known, b.Known) && slices.Equal(a.Flaky, b.Flaky) &&
		slices.Equal(a.Fixed, b.Fixed) && slices.Equal(a.Soft, b.Soft) && slices.Equal(a.Pending, b.Pending) &&
		eq(a.RerunOf, b.RerunOf) && eq(a.KnownIssue, b.KnownIssue) && slices.Equal(a.Expired, b.Expired)
}

func TestFlakyLeavesTheAlarm(t *testing.T) {
	in := Input{Compose: cur, Jobs: []openqa.Job{j(10, "install", "failed", clonedTo(20)), j(20, "install", "passed", originOf(10))},
		Reruns: map[int64]int64{10: 20}}
	f := Run(in)
	if f.Problem() || f.OpenQA.Counts.Flaky != 1 || f.OpenQA.Counts.Failed != 0 {
		t.Errorf("a flaky failure: problem %v, counts %+v", f.Problem(), f.OpenQA.Counts)
	}
	in.KnownIssues = []KnownIssue{{ID: 1, Test: "desktop"}}
	in.Jobs = []openqa.Job{j(11, "desktop", "failed")}
	if f := Run(in); f.Problem() {
		t.Error("a failure the registry knows raised the alarm")
	}
}
