package checks

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/openqa"
)

// j builds a done job of scenario test/Server-dvd-iso/x86_64/64bit with the
// given result; mods adjust it.
func j(id int64, test, result string, mods ...func(*openqa.Job)) openqa.Job {
	job := openqa.Job{ID: id, Test: test, State: openqa.StateDone, Result: result,
		Settings: map[string]string{"FLAVOR": "Server-dvd-iso", "ARCH": "x86_64", "MACHINE": "64bit"},
		URL:      "https://openqa.example/tests/" + strconv.FormatInt(id, 10)}
	for _, m := range mods {
		m(&job)
	}
	return job
}

func clonedTo(id int64) func(*openqa.Job) { return func(j *openqa.Job) { j.CloneID = id } }
func originOf(id int64) func(*openqa.Job) { return func(j *openqa.Job) { j.OriginID = id } }
func state(s string) func(*openqa.Job)    { return func(j *openqa.Job) { j.State = s } }
func arch(a string) func(*openqa.Job)     { return func(j *openqa.Job) { j.Settings["ARCH"] = a } }
func flavor(f string) func(*openqa.Job)   { return func(j *openqa.Job) { j.Settings["FLAVOR"] = f } }
func machine(m string) func(*openqa.Job)  { return func(j *openqa.Job) { j.Settings["MACHINE"] = m } }
func times(start, end string) func(*openqa.Job) {
	return func(j *openqa.Job) { j.TStarted, j.TFinished = start, end }
}

var (
	cur  = fedfind.MustParseComposeID("Fedora-Rawhide-20261122.n.0")
	prev = fedfind.MustParseComposeID("Fedora-Rawhide-20261121.n.0")
)

// outcome is a compact view of classified findings: the test names in each
// list, in order.
type outcome struct {
	New, Known, Fixed, Soft, Incomplete, Skipped, Cancelled, Pending []string
}

func outcomeOf(o OpenQA) outcome {
	names := func(rs []JobResult) []string {
		out := []string{}
		for _, r := range rs {
			out = append(out, r.Test)
		}
		return out
	}
	return outcome{names(o.NewFailures), names(o.KnownFailures), names(o.Fixed), names(o.SoftFailures),
		names(o.Incomplete), names(o.Skipped), names(o.Cancelled), names(o.Pending)}
}

func TestClassification(t *testing.T) {
	none := []string{}
	tests := []struct {
		name     string
		cur      []openqa.Job
		prev     []openqa.Job
		noPrev   bool
		want     outcome
		wantPrev map[string]string // test -> PreviousResult of its entry
	}{
		{
			name:     "a failure that passed in the previous compose is new",
			cur:      []openqa.Job{j(10, "install", "failed")},
			prev:     []openqa.Job{j(1, "install", "passed")},
			want:     outcome{New: []string{"install"}},
			wantPrev: map[string]string{"install": "passed"},
		},
		{
			name: "a failure that failed in the previous compose too is known",
			cur:  []openqa.Job{j(10, "install", "failed")},
			prev: []openqa.Job{j(1, "install", "failed")},
			want: outcome{Known: []string{"install"}},
		},
		{
			name:     "a failure of a test absent from the previous compose is new",
			cur:      []openqa.Job{j(10, "install", "failed")},
			prev:     []openqa.Job{j(1, "other", "failed")},
			want:     outcome{New: []string{"install"}},
			wantPrev: map[string]string{"install": ""},
		},
		{
			name:   "with no previous compose every failure is new and nothing is fixed",
			cur:    []openqa.Job{j(10, "install", "failed"), j(11, "desktop", "passed")},
			noPrev: true,
			want:   outcome{New: []string{"install"}},
		},
		{
			name: "a previous compose without openQA jobs makes every failure new",
			cur:  []openqa.Job{j(10, "install", "failed")},
			prev: nil,
			want: outcome{New: []string{"install"}},
		},
		{
			name: "the same test on another arch is another scenario",
			cur:  []openqa.Job{j(10, "install", "failed", arch("aarch64"))},
			prev: []openqa.Job{j(1, "install", "failed")},
			want: outcome{New: []string{"install"}},
		},
		{
			name: "the same test on another flavor is another scenario",
			cur:  []openqa.Job{j(10, "install", "failed", flavor("Everything-boot-iso"))},
			prev: []openqa.Job{j(1, "install", "failed")},
			want: outcome{New: []string{"install"}},
		},
		{
			name: "the same test on another machine is another scenario",
			cur:  []openqa.Job{j(10, "install", "failed", machine("uefi"))},
			prev: []openqa.Job{j(1, "install", "failed")},
			want: outcome{New: []string{"install"}},
		},
		{
			name: "a test that failed before and is absent now is not fixed",
			cur:  []openqa.Job{j(10, "desktop", "passed")},
			prev: []openqa.Job{j(1, "install", "failed"), j(2, "desktop", "passed")},
			want: outcome{},
		},
		{
			name:     "failed then passed is fixed",
			cur:      []openqa.Job{j(10, "install", "passed")},
			prev:     []openqa.Job{j(1, "install", "failed")},
			want:     outcome{Fixed: []string{"install"}},
			wantPrev: map[string]string{"install": "failed"},
		},
		{
			name:     "softfailed then failed is a new failure",
			cur:      []openqa.Job{j(10, "install", "failed")},
			prev:     []openqa.Job{j(1, "install", "softfailed")},
			want:     outcome{New: []string{"install"}},
			wantPrev: map[string]string{"install": "softfailed"},
		},
		{
			name: "failed then softfailed is fixed and still a soft failure",
			cur:  []openqa.Job{j(10, "install", "softfailed")},
			prev: []openqa.Job{j(1, "install", "failed")},
			want: outcome{Fixed: []string{"install"}, Soft: []string{"install"}},
		},
		{
			name: "passed then softfailed is only a soft failure",
			cur:  []openqa.Job{j(10, "install", "softfailed")},
			prev: []openqa.Job{j(1, "install", "passed")},
			want: outcome{Soft: []string{"install"}},
		},
		{
			name: "a failed job restarted into a passing clone is not a failure",
			cur:  []openqa.Job{j(10, "install", "failed", clonedTo(20)), j(20, "install", "passed", originOf(10))},
			prev: []openqa.Job{j(1, "install", "passed")},
			want: outcome{},
		},
		{
			name: "clone chains are followed to the end in any input order",
			cur: []openqa.Job{j(30, "install", "passed", originOf(20)), j(10, "install", "failed", clonedTo(20)),
				j(20, "install", "incomplete", clonedTo(30), originOf(10))},
			prev: []openqa.Job{j(1, "install", "failed")},
			want: outcome{Fixed: []string{"install"}},
		},
		{
			name: "a passing job restarted into a failing clone is a failure",
			cur:  []openqa.Job{j(10, "install", "passed", clonedTo(20)), j(20, "install", "failed", originOf(10))},
			prev: []openqa.Job{j(1, "install", "passed")},
			want: outcome{New: []string{"install"}},
		},
		{
			name:     "the previous compose's clones are followed too",
			cur:      []openqa.Job{j(10, "install", "failed")},
			prev:     []openqa.Job{j(1, "install", "failed", clonedTo(2)), j(2, "install", "passed", originOf(1))},
			want:     outcome{New: []string{"install"}},
			wantPrev: map[string]string{"install": "passed"},
		},
		{
			name: "a restarted job whose clone is not given is pending",
			cur:  []openqa.Job{j(10, "install", "failed", clonedTo(20))},
			prev: []openqa.Job{j(1, "install", "passed")},
			want: outcome{Pending: []string{"install"}},
		},
		{
			name:     "a previous job whose clone is not given does not make a failure known",
			cur:      []openqa.Job{j(10, "install", "failed")},
			prev:     []openqa.Job{j(1, "install", "failed", clonedTo(2))},
			want:     outcome{New: []string{"install"}},
			wantPrev: map[string]string{"install": PreviousRestarted},
		},
		{
			name: "of two unrelated jobs of one scenario the newer counts",
			cur:  []openqa.Job{j(11, "install", "passed"), j(10, "install", "failed")},
			prev: []openqa.Job{j(1, "install", "passed")},
			want: outcome{},
		},
		{
			name: "incomplete and timeout_exceeded are listed apart, never as failures",
			cur:  []openqa.Job{j(10, "install", "incomplete"), j(11, "upgrade", "timeout_exceeded")},
			prev: []openqa.Job{j(1, "install", "passed"), j(2, "upgrade", "failed")},
			want: outcome{Incomplete: []string{"install", "upgrade"}},
		},
		{
			name: "failed then incomplete is not fixed",
			cur:  []openqa.Job{j(10, "install", "incomplete")},
			prev: []openqa.Job{j(1, "install", "failed")},
			want: outcome{Incomplete: []string{"install"}},
		},
		{
			name: "incomplete then failed is new: it did not fail before",
			cur:  []openqa.Job{j(10, "install", "failed")},
			prev: []openqa.Job{j(1, "install", "incomplete")},
			want: outcome{New: []string{"install"}},
		},
		{
			name: "parallel_failed is skipped: its parallel partner is the failure",
			cur: []openqa.Job{j(10, "server", "failed"),
				j(11, "client", "parallel_failed", state(openqa.StateDone))},
			prev: []openqa.Job{j(1, "server", "passed"), j(2, "client", "passed")},
			want: outcome{New: []string{"server"}, Skipped: []string{"client"}},
		},
		{
			name: "skipped children of failed parents are skipped",
			cur:  []openqa.Job{j(10, "child", "skipped", state(openqa.StateCancelled))},
			prev: []openqa.Job{j(1, "child", "passed")},
			want: outcome{Skipped: []string{"child"}},
		},
		{
			name: "obsoleted and user_cancelled jobs are cancelled, not failures",
			cur: []openqa.Job{j(10, "a", "obsoleted", state(openqa.StateCancelled)),
				j(11, "b", "user_cancelled", state(openqa.StateCancelled))},
			prev: []openqa.Job{j(1, "a", "failed"), j(2, "b", "passed")},
			want: outcome{Cancelled: []string{"a", "b"}},
		},
		{
			name: "jobs not final are pending",
			cur: []openqa.Job{j(10, "a", "none", state(openqa.StateScheduled)),
				j(11, "b", "none", state(openqa.StateRunning)), j(12, "c", "failed")},
			prev: []openqa.Job{j(1, "a", "failed")},
			want: outcome{Pending: []string{"a", "b"}, New: []string{"c"}},
		},
		{
			name: "a result this code does not know is incomplete",
			cur:  []openqa.Job{j(10, "a", "exploded")},
			want: outcome{Incomplete: []string{"a"}},
		},
		{
			name: "duplicate jobs from overlapping pages count once",
			cur:  []openqa.Job{j(10, "a", "failed"), j(10, "a", "failed")},
			prev: []openqa.Job{j(1, "a", "failed"), j(1, "a", "failed")},
			want: outcome{Known: []string{"a"}},
		},
		{
			name: "lists are sorted by arch, flavor, test and machine",
			cur: []openqa.Job{j(10, "z", "failed"), j(11, "a", "failed", arch("ppc64le")),
				j(12, "m", "failed", arch("aarch64")), j(13, "a", "failed", flavor("A-boot-iso"))},
			want: outcome{New: []string{"m", "a", "a", "z"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Compose: cur, Jobs: tt.cur}
			if !tt.noPrev {
				in.Previous = &Previous{Compose: prev, Jobs: tt.prev}
			}
			f := Run(in)
			want := tt.want
			for _, l := range []*[]string{&want.New, &want.Known, &want.Fixed, &want.Soft, &want.Incomplete,
				&want.Skipped, &want.Cancelled, &want.Pending} {
				if *l == nil {
					*l = none
				}
			}
			if got := outcomeOf(f.OpenQA); !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			for test, wp := range tt.wantPrev {
				for _, l := range [][]JobResult{f.OpenQA.NewFailures, f.OpenQA.Fixed, f.OpenQA.KnownFailures} {
					for _, r := range l {
						if r.Test == test && r.PreviousResult != wp {
							t.Errorf("%s: previous result %q, want %q", test, r.PreviousResult, wp)
						}
					}
				}
			}
			c := f.OpenQA.Counts
			if sum := c.Passed + c.Failed + c.SoftFailed + c.Incomplete + c.Skipped + c.Cancelled + c.Pending; sum != c.Total {
				t.Errorf("counts %+v do not add up to total", c)
			}
			if c.Failed != len(f.OpenQA.NewFailures)+len(f.OpenQA.KnownFailures) {
				t.Errorf("counts.Failed = %d, lists hold %d", c.Failed, len(f.OpenQA.NewFailures)+len(f.OpenQA.KnownFailures))
			}
			if f.OpenQA.Complete() != (len(want.Pending) == 0) {
				t.Errorf("Complete() = %v with %d pending", f.OpenQA.Complete(), len(want.Pending))
			}
		})
	}
}

func TestSupersededCounts(t *testing.T) {
	f := Run(Input{Compose: cur, Jobs: []openqa.Job{
		j(10, "a", "failed", clonedTo(11)), j(11, "a", "failed", clonedTo(12), originOf(10)), j(12, "a", "passed", originOf(11)),
		j(20, "b", "passed"), j(21, "b", "passed"), // two unrelated jobs of one scenario
		j(30, "c", "failed", clonedTo(99)), // clone missing
	}})
	o := f.OpenQA
	if o.Jobs != 6 || o.Superseded != 3 || o.Counts.Total != 3 {
		t.Errorf("jobs %d superseded %d total %d; want 6, 3, 3", o.Jobs, o.Superseded, o.Counts.Total)
	}
	if len(o.Pending) != 1 || !o.Pending[0].CloneMissing {
		t.Errorf("pending = %+v, want job 30 marked CloneMissing", o.Pending)
	}
}

func TestOrphanOlderThanLiveJobIsIgnored(t *testing.T) {
	// Job 10 was restarted into 11 (not given); job 12 of the same scenario
	// was scheduled later still and is known: it counts.
	f := Run(Input{Compose: cur, Jobs: []openqa.Job{j(10, "a", "failed", clonedTo(11)), j(12, "a", "passed")}})
	if f.OpenQA.Counts.Passed != 1 || f.OpenQA.Counts.Pending != 0 {
		t.Errorf("counts %+v, want the newer live job to count", f.OpenQA.Counts)
	}
	// ... but when the missing clone is newer than every known job, the
	// scenario's outcome is unknown.
	f = Run(Input{Compose: cur, Jobs: []openqa.Job{j(10, "a", "failed", clonedTo(13)), j(12, "a", "passed")}})
	if f.OpenQA.Counts.Pending != 1 {
		t.Errorf("counts %+v, want the scenario pending", f.OpenQA.Counts)
	}
}

func TestCountsByArchAndFlavor(t *testing.T) {
	f := Run(Input{Compose: cur, Jobs: []openqa.Job{
		j(1, "a", "failed"), j(2, "b", "passed"), j(3, "c", "softfailed", flavor("Everything-boot-iso")),
		j(4, "a", "failed", arch("aarch64")),
	}})
	wantArch := []ArchCounts{
		{Arch: "aarch64", Counts: Counts{Total: 1, Failed: 1}},
		{Arch: "x86_64", Counts: Counts{Total: 3, Failed: 1, Passed: 1, SoftFailed: 1}},
	}
	if !reflect.DeepEqual(f.OpenQA.ByArch, wantArch) {
		t.Errorf("ByArch = %+v\nwant %+v", f.OpenQA.ByArch, wantArch)
	}
	wantFlavor := []FlavorCounts{
		{Arch: "aarch64", Flavor: "Server-dvd-iso", Counts: Counts{Total: 1, Failed: 1}},
		{Arch: "x86_64", Flavor: "Everything-boot-iso", Counts: Counts{Total: 1, SoftFailed: 1}},
		{Arch: "x86_64", Flavor: "Server-dvd-iso", Counts: Counts{Total: 2, Failed: 1, Passed: 1}},
	}
	if !reflect.DeepEqual(f.OpenQA.ByFlavor, wantFlavor) {
		t.Errorf("ByFlavor = %+v\nwant %+v", f.OpenQA.ByFlavor, wantFlavor)
	}
}

func TestDurations(t *testing.T) {
	f := Run(Input{Compose: cur, Jobs: []openqa.Job{
		j(1, "a", "passed", times("2026-11-22T10:00:00", "2026-11-22T10:10:00")),
		j(2, "b", "passed", times("2026-11-22T10:05:00Z", "2026-11-22T10:35:00Z")), // RFC 3339 too
		j(3, "c", "passed", times("2026-11-22T11:00:00", "")),                      // not finished: untimed
		j(4, "d", "passed", times("garbage", "2026-11-22T12:00:00")),               // unreadable: untimed
		j(5, "e", "passed", times("2026-11-22T10:20:00", "2026-11-22T10:50:00")),   // ties the longest
	}})
	d := f.OpenQA.Durations
	want := Durations{TotalSeconds: 600 + 1800 + 1800, LongestSeconds: 1800, LongestJobID: 2,
		FirstStarted: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		LastFinished: time.Date(2026, 11, 22, 10, 50, 0, 0, time.UTC), SpanSeconds: 3000, Timed: 3}
	if d != want {
		t.Errorf("durations %+v\nwant %+v", d, want)
	}
}

func TestRunWithoutAnything(t *testing.T) {
	f := Run(Input{Compose: cur})
	if f.HasPrevious() || f.Problem() || !f.OpenQA.Complete() || f.OpenQA.Counts.Total != 0 {
		t.Errorf("empty input gave %+v", f)
	}
	if f.Diff.Added == nil || f.Diff.Removed == nil || f.Diff.Changed == nil || f.MissingExpected == nil ||
		f.Subvariants == nil || f.OpenQA.NewFailures == nil || f.OpenQA.ByArch == nil {
		t.Error("empty findings hold nil slices; they must marshal as []")
	}
}
