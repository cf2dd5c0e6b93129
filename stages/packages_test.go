package stages_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/openqa"
	"github.com/composeci/composeci/reports"
	"github.com/composeci/composeci/stages"
)

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// packagesWorld is the stage world with both composes finished and tested
// in openQA (today's desktop_terminal on KDE fails, as it passed
// yesterday), rpms.json listing prev and today (nil: the made-up default;
// noPrev, noToday: no rpms.json at all), and the check logging into log.
func packagesWorld(t *testing.T, prev, today []fakefedora.PackageSpec, noPrev, noToday bool) (*stageWorld, *syncBuffer) {
	t.Helper()
	w := newStageWorld(t)
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: stPrev, Status: "FINISHED", Packages: prev, NoRPMs: noPrev})
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: stToday, Status: "FINISHED", Packages: today, NoRPMs: noToday})
	ctx := context.Background()
	for _, id := range []string{stPrev, stToday} {
		cm, err := w.st.Fedfind.Resolve(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		comp, err := stages.OpenQACompose(ctx, w.st.Fedfind, cm)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.st.Schedule.OpenQA.Schedule(ctx, comp, openqa.ScheduleOptions{}); err != nil {
			t.Fatal(err)
		}
		w.oq.Settle()
	}
	log := &syncBuffer{}
	w.st.Check.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return w, log
}

// check runs the check stage on today's compose, as the pipeline does, and
// reads back the report it archived.
func (w *stageWorld) check(t *testing.T) reports.Report {
	t.Helper()
	wf := &stages.State{ComposeID: stToday}
	if out := w.run(t, stages.StageCheck, wf); !out.Advance {
		t.Fatalf("check: %+v", out)
	}
	r, err := w.st.Check.Archive.Read(context.Background(), stToday)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCheckComparesPackages: with both composes' rpms.json, the report has
// the packages section, and the new failure (desktop_terminal on the KDE
// live image) lists what was upgraded in the KDE variant on x86_64,
// gnome-terminal — whose name shares "terminal" with the test — first.
func TestCheckComparesPackages(t *testing.T) {
	kde := func(specs []fakefedora.PackageSpec) []fakefedora.PackageSpec {
		for i := range specs {
			if specs[i].Name != "kernel" {
				specs[i].Variants = []string{"Everything", "KDE"}
			}
		}
		return specs
	}
	prev := kde(fakefedora.Packages("aardvark-1.0-1.fc44", "bash-5.2.37-1.fc44", "gnome-terminal-3.54.0-1.fc44",
		"kernel-6.18.0-1.fc44", "konsole-24.12.0-1.fc44", "oldpkg-1.0-1.fc44"))
	today := kde(fakefedora.Packages("aardvark-1.1-1.fc44", "bash-5.2.37-1.fc44", "gnome-terminal-3.56.0-1.fc44",
		"kernel-6.18.1-1.fc44", "konsole-25.04.0-1.fc44", "newpkg-0.1-1.fc44"))
	w, _ := packagesWorld(t, prev, today, false, false)
	r := w.check(t)

	p := r.Packages
	if p == nil {
		t.Fatalf("no packages section (note %q)", r.PackagesNote)
	}
	upgraded := func(list []reports.UpgradedPackage) []string {
		var out []string
		for _, u := range list {
			out = append(out, u.Name+" "+u.From.String()+" -> "+u.To.String()+" "+u.Matched)
		}
		return out
	}
	var all []string
	for _, u := range p.Upgraded {
		all = append(all, u.Name)
	}
	if p.Old != stPrev || p.New != stToday || len(p.Added) != 1 || p.Added[0].Name != "newpkg" || len(p.Removed) != 1 || p.Removed[0].Name != "oldpkg" ||
		!slices.Equal(all, []string{"aardvark", "gnome-terminal", "kernel", "konsole"}) || len(p.Downgraded) != 0 || p.Unchanged != 1 || r.PackagesNote != "" {
		t.Errorf("packages: %+v, note %q", p, r.PackagesNote)
	}
	if len(r.OpenQA.NewFailures) != 1 {
		t.Fatalf("new failures %+v, want desktop_terminal", r.OpenQA.NewFailures)
	}
	j := r.OpenQA.NewFailures[0]
	want := []string{"gnome-terminal 3.54.0-1.fc44 -> 3.56.0-1.fc44 test", "aardvark 1.0-1.fc44 -> 1.1-1.fc44 ", "konsole 24.12.0-1.fc44 -> 25.04.0-1.fc44 "}
	if got := upgraded(j.UpgradedPackages); j.Test != "desktop_terminal" || j.UpgradedTree != "KDE/x86_64" || !slices.Equal(got, want) || j.UpgradedMore != 0 {
		t.Errorf("%s lists, from %q:\n%q\nwant from KDE/x86_64:\n%q", j.Test, j.UpgradedTree, got, want)
	}
	// The archived text report shows both.
	text, err := w.st.Check.Archive.ReadFile(context.Background(), stToday, "", reports.FileText)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"upgraded in KDE/x86_64: gnome-terminal, aardvark, konsole",
		"Source packages against " + stPrev + ":\n  1 added, 1 removed, 4 upgraded, 0 downgraded, 1 unchanged\n"} {
		if !strings.Contains(string(text), s) {
			t.Errorf("the text report lacks %q:\n%s", s, text)
		}
	}
}

// TestCheckWithoutRPMs: a compose without rpms.json — either of the two —
// still gets its report, with the new failure, and says why the packages
// were not compared; that is logged at info, not as a warning.
func TestCheckWithoutRPMs(t *testing.T) {
	for _, tc := range []struct {
		name            string
		noPrev, noToday bool
		note            string
	}{
		{"previous", true, false, stPrev + " has no rpms.json"},
		{"today", false, true, stToday + " has no rpms.json"},
		{"both", true, true, stPrev + " has no rpms.json; " + stToday + " has no rpms.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, log := packagesWorld(t, nil, nil, tc.noPrev, tc.noToday)
			r := w.check(t)
			if r.Packages != nil || r.PackagesNote != tc.note {
				t.Errorf("packages %+v, note %q, want none and %q", r.Packages, r.PackagesNote, tc.note)
			}
			if len(r.OpenQA.NewFailures) != 1 || r.OpenQA.NewFailures[0].UpgradedPackages != nil || !r.Problem {
				t.Errorf("new failures %+v", r.OpenQA.NewFailures)
			}
			logged := log.String()
			if !strings.Contains(logged, "level=INFO msg=\"source packages not compared: no rpms.json\"") || strings.Contains(logged, "level=WARN") {
				t.Errorf("logged:\n%s", logged)
			}
		})
	}
	t.Run("the previous tree garbage-collected", func(t *testing.T) {
		w, log := packagesWorld(t, nil, nil, false, false)
		ctx := context.Background()
		prev, err := w.st.Fedfind.Resolve(ctx, stPrev)
		if err != nil {
			t.Fatal(err)
		}
		w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: stPrev, Status: "FINISHED", GarbageCollected: true})
		cm, err := w.st.Fedfind.Resolve(ctx, stToday)
		if err != nil {
			t.Fatal(err)
		}
		r, err := w.st.Check.Build(ctx, cm, prev)
		if err != nil {
			t.Fatal(err)
		}
		if want := "the tree of " + stPrev + " is gone, and the metadata archive keeps no rpms.json"; r.PreviousComposeID != stPrev || r.Packages != nil || r.PackagesNote != want {
			t.Errorf("previous %q, packages %+v, note %q, want %q", r.PreviousComposeID, r.Packages, r.PackagesNote, want)
		}
		if logged := log.String(); !strings.Contains(logged, "level=INFO msg=\"source packages not compared: the compose's tree is gone\"") || strings.Contains(logged, "level=WARN") {
			t.Errorf("logged:\n%s", logged)
		}
	})
	t.Run("no previous compose", func(t *testing.T) {
		w, _ := packagesWorld(t, nil, nil, false, false)
		cm, err := w.st.Fedfind.Resolve(context.Background(), stToday)
		if err != nil {
			t.Fatal(err)
		}
		// A compose of a stream without a directory in the tree has no
		// previous compose.
		cm.Stream.Dir = ""
		r, err := w.st.Check.Build(context.Background(), cm, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.HasPrevious() || r.Packages != nil || r.PackagesNote != "no previous compose to compare with" {
			t.Errorf("previous %q, packages %+v, note %q", r.PreviousComposeID, r.Packages, r.PackagesNote)
		}
	})
}
