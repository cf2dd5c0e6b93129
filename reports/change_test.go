package reports

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
)

// streamReport is a small report of a Rawhide compose, changed by mods:
// enough for change detection and routing without running the checks.
func streamReport(id string, mods ...func(*Report)) Report {
	r := Report{
		SchemaVersion: SchemaVersion, ComposeID: id, PreviousComposeID: "Fedora-Rawhide-20261121.n.0",
		Stream:  Stream{Kind: "rawhide", Short: "Fedora", Version: "Rawhide", Dir: "rawhide", Name: "Fedora Rawhide"},
		Release: "rawhide", Status: "FINISHED", GeneratedAt: time.Date(2026, 11, 22, 18, 30, 0, 0, time.UTC),
		Subvariants: []string{"Server", "Workstation"}, MissingExpected: []MissingImage{},
		Diff:   fedfind.ImageDiff{Added: []fedfind.DiffEntry{}, Removed: []fedfind.DiffEntry{}, Changed: []fedfind.ChangedEntry{}},
		Reruns: []Rerun{},
	}
	r.OpenQA.KnownFailures = []Job{job("base_selinux", 2001, "failed")}
	for _, m := range mods {
		m(&r)
	}
	r.Problem = len(r.MissingExpected) > 0 || len(r.OpenQA.NewFailures) > 0 || r.Doomed != nil
	r.Summary.MissingExpected, r.Summary.NewFailures = len(r.MissingExpected), len(r.OpenQA.NewFailures)
	r.Summary.KnownFailures, r.Summary.Fixed = len(r.OpenQA.KnownFailures), len(r.OpenQA.Fixed)
	r.Summary.Tests = 10
	r.Summary.ResultsComplete = len(r.OpenQA.Pending) == 0
	return r
}

func job(test string, id int64, result string) Job {
	return Job{Test: test, Flavor: "Server-dvd-iso", Arch: "x86_64", Machine: "64bit", JobID: id,
		URL: fmt.Sprintf("https://openqa.example.org/tests/%d", id), State: "done", Result: result}
}

func newFailure(test string, id int64) func(*Report) {
	return func(r *Report) {
		f := false
		j := job(test, id, "failed")
		j.Confirmed = &f
		r.OpenQA.NewFailures = append(r.OpenQA.NewFailures, j)
	}
}

func fixed(test string, id int64) func(*Report) {
	return func(r *Report) { r.OpenQA.Fixed = append(r.OpenQA.Fixed, job(test, id, "passed")) }
}

func missing(subvariant, typ, arch string) func(*Report) {
	return func(r *Report) {
		r.MissingExpected = append(r.MissingExpected, MissingImage{ExpectedImage: fedfind.ExpectedImage{Subvariant: subvariant, Type: typ, Arch: arch}})
	}
}

func status(s string) func(*Report) { return func(r *Report) { r.Status = s } }

func doomed(r *Report) {
	r.Doomed = &Doomed{Reasons: []string{"STATUS is DOOMED"}, FailedTasks: []int{7}}
	r.Status = "DOOMED"
	r.OpenQA = OpenQA{}
}

const (
	prevID = "Fedora-Rawhide-20261121.n.0"
	curID  = "Fedora-Rawhide-20261122.n.0"
)

func TestChanges(t *testing.T) {
	prevOf := func(mods ...func(*Report)) *Report {
		r := streamReport(prevID, mods...)
		return &r
	}
	tests := []struct {
		name  string
		prev  *Report
		cur   Report
		kinds []ChangeKind
		text  string
	}{
		{"the same known failure, images and status: no change",
			prevOf(), streamReport(curID), []ChangeKind{}, "no change"},
		{"no previous report: changed, and says why",
			nil, streamReport(curID), []ChangeKind{ChangeFirst}, "no previous report to compare with"},
		{"no previous report, with a missing image: it counts as newly missing",
			nil, streamReport(curID, missing("kde", "live", "x86_64")), []ChangeKind{ChangeFirst, ChangeMissingImages},
			"no previous report to compare with, 1 image newly missing"},
		{"a new failure",
			prevOf(), streamReport(curID, newFailure("server_cockpit_default", 3001)), []ChangeKind{ChangeNewFailures}, "1 new failure"},
		{"a fixed test",
			prevOf(), streamReport(curID, fixed("install_default", 3002)), []ChangeKind{ChangeFixed}, "1 fixed"},
		{"an image newly missing",
			prevOf(), streamReport(curID, missing("kde", "live", "x86_64")), []ChangeKind{ChangeMissingImages}, "1 image newly missing"},
		{"the same image missing from both: no change (subvariant case ignored)",
			prevOf(missing("KDE", "live", "x86_64")), streamReport(curID, missing("kde", "live", "x86_64")), []ChangeKind{}, "no change"},
		{"an image back",
			prevOf(missing("kde", "live", "x86_64")), streamReport(curID), []ChangeKind{ChangeReturningImages}, "1 image back"},
		{"a status change",
			prevOf(), streamReport(curID, status("FINISHED_INCOMPLETE")), []ChangeKind{ChangeStatus},
			"status FINISHED → FINISHED_INCOMPLETE"},
		{"an unknown status is no status change",
			prevOf(status("")), streamReport(curID), []ChangeKind{}, "no change"},
		{"a doomed compose after a good one",
			prevOf(), streamReport(curID, doomed), []ChangeKind{ChangeDoomed, ChangeStatus},
			"the compose is doomed, status FINISHED → DOOMED"},
		{"a doomed compose after a doomed one is still news",
			prevOf(doomed), streamReport(curID, doomed), []ChangeKind{ChangeDoomed}, "the compose is doomed"},
		{"a doomed compose has no images to miss or get back",
			prevOf(missing("kde", "live", "x86_64")), streamReport(curID, doomed), []ChangeKind{ChangeDoomed, ChangeStatus},
			"the compose is doomed, status FINISHED → DOOMED"},
		{"everything at once, in the constants' order",
			prevOf(missing("server", "dvd", "aarch64")),
			streamReport(curID, status("FINISHED_INCOMPLETE"), missing("kde", "live", "x86_64"),
				newFailure("b_test", 3003), newFailure("a_test", 3004), fixed("install_default", 3002)),
			[]ChangeKind{ChangeStatus, ChangeNewFailures, ChangeFixed, ChangeMissingImages, ChangeReturningImages},
			"status FINISHED → FINISHED_INCOMPLETE, 2 new failures, 1 fixed, 1 image newly missing, 1 image back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Changes(tt.prev, tt.cur)
			if !slices.Equal(c.Kinds, tt.kinds) {
				t.Errorf("Kinds = %v, want %v", c.Kinds, tt.kinds)
			}
			if c.Changed() != (len(tt.kinds) > 0) {
				t.Errorf("Changed() = %v with kinds %v", c.Changed(), c.Kinds)
			}
			if got := c.String(); got != tt.text {
				t.Errorf("String() = %q, want %q", got, tt.text)
			}
			if c.NewFailures == nil || c.Fixed == nil || c.MissingImages == nil || c.ReturningImages == nil {
				t.Errorf("a nil list: %+v", c)
			}
		})
	}
	t.Run("lists are sorted scenarios", func(t *testing.T) {
		c := Changes(prevOf(), streamReport(curID, newFailure("b_test", 1), newFailure("a_test", 2)))
		if len(c.NewFailures) != 2 || c.NewFailures[0].Test != "a_test" || c.Previous != prevID {
			t.Errorf("Changes = %+v", c)
		}
	})
}

// TestContentKey: two checks of a compose that find the same things share
// a version; anything the report says differently makes a new one.
func TestContentKey(t *testing.T) {
	base := streamReport(curID, newFailure("server_cockpit_default", 3001), missing("kde", "live", "x86_64"))
	key := ContentKey(base)
	if len(key) != 32 {
		t.Fatalf("ContentKey = %q, want 32 hex digits", key)
	}
	same := map[string]func(*Report){
		"a later generated_at":          func(r *Report) { r.GeneratedAt = r.GeneratedAt.Add(time.Hour) },
		"another location":              func(r *Report) { r.Location = "https://mirror.example.org/" },
		"new job ids and URLs":          func(r *Report) { r.OpenQA.NewFailures[0].JobID, r.OpenQA.NewFailures[0].URL = 9999, "https://x/9999" },
		"durations":                     func(r *Report) { r.OpenQA.Durations.TotalSeconds = 12345 },
		"a re-run in the audit trail":   func(r *Report) { r.Reruns = append(r.Reruns, Rerun{By: "adamw", JobID: 1, RerunJobID: 2}) },
		"the status's trailing newline": func(r *Report) { r.Status += "\n" },
	}
	for name, mod := range same {
		t.Run("same/"+name, func(t *testing.T) {
			r := streamReport(curID, newFailure("server_cockpit_default", 3001), missing("kde", "live", "x86_64"), mod)
			if got := ContentKey(r); got != key {
				t.Errorf("ContentKey changed: %s, want %s", got, key)
			}
		})
	}
	differs := map[string]func(*Report){
		"another compose":          func(r *Report) { r.ComposeID = "Fedora-Rawhide-20261122.n.1" },
		"another previous compose": func(r *Report) { r.PreviousComposeID = "Fedora-Rawhide-20261120.n.0" },
		"another status":           status("FINISHED_INCOMPLETE"),
		"one more new failure":     newFailure("desktop_terminal", 3005),
		"a failure confirmed": func(r *Report) {
			ok := true
			r.OpenQA.NewFailures[0].Confirmed = &ok
		},
		"a failure known instead of new": func(r *Report) {
			j := r.OpenQA.NewFailures[0]
			j.KnownIssue = &KnownIssueRef{ID: 7}
			r.OpenQA.NewFailures = nil
			r.OpenQA.KnownFailures = append(r.OpenQA.KnownFailures, j)
		},
		"a test fixed":           fixed("install_default", 3002),
		"a pending test":         func(r *Report) { r.OpenQA.Pending = []Job{job("x", 1, "")} },
		"a flaky test":           func(r *Report) { r.OpenQA.Flaky = []Job{job("x", 1, "passed")} },
		"another missing image":  missing("server", "dvd", "aarch64"),
		"an image added":         func(r *Report) { r.Diff.Added = []fedfind.DiffEntry{{Identity: "Server-dvd-iso", Arch: "x86_64"}} },
		"doomed":                 doomed,
		"an expired known issue": func(r *Report) { r.OpenQA.ExpiredKnownIssues = []KnownIssueRef{{ID: 3}} },
		"one more image":         func(r *Report) { r.Summary.Images++ },
	}
	seen := map[string]string{key: "base"}
	for name, mod := range differs {
		t.Run("differs/"+name, func(t *testing.T) {
			got := ContentKey(streamReport(curID, newFailure("server_cockpit_default", 3001), missing("kde", "live", "x86_64"), mod))
			if prev, dup := seen[got]; dup {
				t.Errorf("same key as %q", prev)
			}
			seen[got] = name
		})
	}
	t.Run("survives the archive's JSON", func(t *testing.T) {
		r := exampleReport(t)
		b, err := r.JSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseReport(b)
		if err != nil {
			t.Fatal(err)
		}
		if ContentKey(back) != ContentKey(r) {
			t.Error("a report read back from its JSON has another version")
		}
	})
	t.Run("a pending job's state is not part of it", func(t *testing.T) {
		pending := func(state string) func(*Report) {
			return func(r *Report) { r.OpenQA.Pending = []Job{job("x", 1, "")}; r.OpenQA.Pending[0].State = state }
		}
		if ContentKey(streamReport(curID, pending("scheduled"))) != ContentKey(streamReport(curID, pending("running"))) {
			t.Error("a pending job that started running made a new version")
		}
	})
	t.Run("list order does not matter", func(t *testing.T) {
		a := streamReport(curID, newFailure("a", 1), newFailure("b", 2), missing("kde", "live", "x86_64"), missing("server", "dvd", "x86_64"))
		b := streamReport(curID, newFailure("b", 2), newFailure("a", 1), missing("server", "dvd", "x86_64"), missing("kde", "live", "x86_64"))
		if ContentKey(a) != ContentKey(b) {
			t.Error("the same findings in another order have another version")
		}
	})
}
