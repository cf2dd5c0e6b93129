package checks_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/checks/checkstest"
	"github.com/composeci/composeci/fedfind"
)

func ids(rs []checks.JobResult) []int64 {
	out := []int64{}
	for _, r := range rs {
		out = append(out, r.JobID)
	}
	return out
}

// TestExample pins every finding of the example compose pair; the reports'
// golden files rest on it.
func TestExample(t *testing.T) {
	f := checks.Run(checkstest.Example())
	if f.Previous.String() != checkstest.ExamplePrevious || !f.HasPrevious() {
		t.Errorf("previous = %v", f.Previous)
	}
	// Named as `composeci expected` names them: the compose has no image
	// of either type on another arch to take the spelling and format from,
	// so they are the list's subvariant and the format Fedora's images of
	// the type have.
	wantMissing := []checks.MissingImage{
		{ExpectedImage: fedfind.ExpectedImage{Subvariant: "workstation", Type: "raw-xz", Arch: "aarch64"}, Identity: "workstation-raw-xz-raw.xz"},
		{ExpectedImage: fedfind.ExpectedImage{Subvariant: "kde", Type: "live", Arch: "x86_64"}, Identity: "kde-live-iso"}}
	if !reflect.DeepEqual(f.MissingExpected, wantMissing) {
		t.Errorf("missing = %+v", f.MissingExpected)
	}
	if len(f.Diff.Added) != 1 || len(f.Diff.Removed) != 2 || len(f.Diff.Changed) != 1 {
		t.Errorf("diff = %+v", f.Diff)
	}
	wantSV := []string{"Cloud_Base", "Everything", "kde", "Server", "Workstation"}
	if !reflect.DeepEqual(f.Subvariants, wantSV) {
		t.Errorf("subvariants = %v, want %v", f.Subvariants, wantSV)
	}
	o := f.OpenQA
	for name, c := range map[string]struct{ got, want []int64 }{
		"new":        {ids(o.NewFailures), []int64{1008, 1003, 1011, 1005}},
		"known":      {ids(o.KnownFailures), []int64{1001}},
		"fixed":      {ids(o.Fixed), []int64{1004, 1002}},
		"soft":       {ids(o.SoftFailures), []int64{1007, 1004}},
		"incomplete": {ids(o.Incomplete), []int64{1009}},
		"skipped":    {ids(o.Skipped), []int64{1012}},
		"cancelled":  {ids(o.Cancelled), []int64{1014}},
		"pending":    {ids(o.Pending), []int64{}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", name, c.got, c.want)
		}
	}
	if !f.Problem() {
		t.Error("Problem() = false with missing images and new failures")
	}
	if o.Jobs != 15 || o.Superseded != 1 || o.Counts.Total != 14 || o.Counts.Passed != 4 {
		t.Errorf("jobs %d superseded %d counts %+v", o.Jobs, o.Superseded, o.Counts)
	}
}

func TestRunIsDeterministic(t *testing.T) {
	in := checkstest.Synthetic(150, 1500, 7)
	a, _ := json.Marshal(checks.Run(in))
	for range 5 {
		b, _ := json.Marshal(checks.Run(in))
		if string(a) != string(b) {
			t.Fatal("two runs on one input differ")
		}
	}
}

func TestProblem(t *testing.T) {
	in := checkstest.Example()
	in.Expected = nil // no list: nothing missing
	f := checks.Run(in)
	if len(f.MissingExpected) != 0 || !f.Problem() {
		t.Errorf("new failures alone must be a problem: %v", f.Problem())
	}
	in.Jobs = nil
	if f := checks.Run(in); f.Problem() {
		t.Error("no missing images and no jobs is not a problem")
	}
	in = checkstest.Example()
	in.Jobs = nil
	if f := checks.Run(in); !f.Problem() {
		t.Error("missing images alone must be a problem")
	}
}

func TestDiffOptions(t *testing.T) {
	in := checkstest.Example()
	if f := checks.Run(in); len(f.Diff.Changed) != 1 {
		t.Fatalf("default options: changed = %+v", f.Diff.Changed)
	}
	in.DiffOptions = &fedfind.DiffOptions{SizeThreshold: -1}
	if f := checks.Run(in); len(f.Diff.Changed) != 0 {
		t.Errorf("size ignored: changed = %+v", f.Diff.Changed)
	}
}

func TestNoPreviousCompose(t *testing.T) {
	in := checkstest.Example()
	in.Previous = nil
	f := checks.Run(in)
	if f.HasPrevious() || !f.Diff.Empty() || len(f.OpenQA.Fixed) != 0 || len(f.OpenQA.KnownFailures) != 0 {
		t.Errorf("without a previous compose: diff %+v fixed %d known %d", f.Diff, len(f.OpenQA.Fixed), len(f.OpenQA.KnownFailures))
	}
	if len(f.OpenQA.NewFailures) != 5 {
		t.Errorf("every failure must be new: %v", ids(f.OpenQA.NewFailures))
	}
}

// TestMissingIdentity: a missing image is named as `composeci expected`
// names it, taking the spelling and format of the compose's image of the
// same subvariant and type on another arch when there is one.
func TestMissingIdentity(t *testing.T) {
	in := checkstest.Example()
	in.Images = slices.DeleteFunc(in.Images, func(im fedfind.Image) bool {
		return im.Subvariant == "Server" && im.Type == "boot" && im.Arch == "aarch64"
	})
	f := checks.Run(in)
	i := slices.IndexFunc(f.MissingExpected, func(m checks.MissingImage) bool { return m.Arch == "aarch64" && m.Type == "boot" })
	if i < 0 {
		t.Fatalf("Server boot on aarch64 is not missing: %+v", f.MissingExpected)
	}
	m := f.MissingExpected[i]
	if m.Identity != "Server-boot-iso" || m.Identity != m.ExpectedImage.Identity(in.Images) {
		t.Errorf("identity %q, want Server-boot-iso", m.Identity)
	}
}
