package stages_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/openqa"
	"github.com/composeci/composeci/reports"
)

// request names a request held at a gate the way the waves below list
// them: "mirror <path>" or "openqa jobs of <BUILD>".
func request(held string) string {
	server, rest, _ := strings.Cut(held, " ")
	_, uri, _ := strings.Cut(rest, " ")
	u, err := url.Parse(uri)
	if err != nil {
		return held
	}
	if server == "openqa" && u.Path == "/api/v1/jobs" {
		return "openqa jobs of " + u.Query().Get("build")
	}
	return server + " " + u.Path
}

// TestCheckCriticalPath counts the round trips on the check's critical
// path without timing anything: every request to the mirror and openQA
// waits at a gate, and the test lets them through one wave at a time, only
// once every request of the wave is waiting. A check that sent its
// requests one after another would never get a whole wave to the gate.
func TestCheckCriticalPath(t *testing.T) {
	const tree = "mirror /compose/rawhide/"
	status := func(id string) string { return tree + id + "/STATUS" }
	images := func(id string) string { return tree + id + "/compose/metadata/images.json" }
	jobs := func(id string) string { return "openqa jobs of " + id }
	rpms := func(id string) string { return tree + id + "/compose/metadata/rpms.json" }
	tests := []struct {
		name          string
		givenPrevious bool
		noOpenQA      bool
		waves         [][]string
	}{
		{"previous compose searched", false, false, [][]string{
			{tree, status(stToday), images(stToday), jobs(stToday)},
			{status(stPrev)},
			{images(stPrev), jobs(stPrev), rpms(stPrev), rpms(stToday)},
		}},
		{"previous compose given", true, false, [][]string{
			{status(stToday), images(stToday), jobs(stToday)},
			{images(stPrev), jobs(stPrev), rpms(stPrev), rpms(stToday)},
		}},
		{"without openQA", false, true, [][]string{
			{tree, status(stToday), images(stToday)},
			{status(stPrev)},
			{images(stPrev), rpms(stPrev), rpms(stToday)},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newStageWorld(t)
			w.mirror.SetStatus(stToday, "FINISHED")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cm, err := w.st.Fedfind.Resolve(ctx, stToday)
			if err != nil {
				t.Fatal(err)
			}
			var prev *fedfind.Compose
			if tc.givenPrevious {
				if prev, err = w.st.Fedfind.Resolve(ctx, stPrev); err != nil {
					t.Fatal(err)
				}
			}
			check := w.st.Check
			if tc.noOpenQA {
				check.OpenQA = nil
			}
			gate := fakefedora.NewGate()
			w.mirror.SetGate(gate)
			w.oq.SetGate(gate)
			t.Cleanup(gate.Open) // nothing stays blocked if the test fails

			type result struct {
				r   reports.Report
				err error
			}
			done := make(chan result, 1)
			go func() {
				r, err := check.Build(ctx, cm, prev)
				done <- result{r, err}
			}()
			for i, want := range tc.waves {
				// A generous bound, only so that a sequential check fails
				// instead of hanging: no time is measured.
				wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
				held, err := gate.Wait(wctx, len(want))
				wcancel()
				if err != nil {
					t.Fatalf("wave %d: %v", i+1, err)
				}
				got := make([]string, len(held))
				for j, h := range held {
					got[j] = request(h)
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("wave %d:\n got %q\nwant %q", i+1, got, want)
				}
				gate.Release()
			}
			res := <-done
			if res.err != nil {
				t.Fatal(res.err)
			}
			if res.r.ComposeID != stToday || res.r.PreviousComposeID != stPrev {
				t.Errorf("report of %s against %s", res.r.ComposeID, res.r.PreviousComposeID)
			}
			if p := res.r.Packages; p == nil || p.Old != stPrev || p.New != stToday {
				t.Errorf("packages %+v (%s)", p, res.r.PackagesNote)
			}
			if waves := gate.Waves(); len(waves) != len(tc.waves) {
				t.Errorf("%d waves, want %d: %q", len(waves), len(tc.waves), waves)
			}
		})
	}
}

// TestCheckErrors: with its requests sent together, the check still fails
// with the error of the first request in the old order, whichever fails
// first; and a doomed STATUS wins over the images a doomed compose lacks.
func TestCheckErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    string
		openQA404 bool
		wantErr   string // "" for the short report of a doomed compose
	}{
		{"images missing and openQA failing: the images are named", "STARTED", true, "has no images.json yet"},
		{"only openQA failing", "FINISHED", true, "openQA jobs of " + stToday},
		{"doomed, without images: the short report", "DOOMED", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newStageWorld(t)
			w.mirror.SetStatus(stToday, tc.status)
			if tc.openQA404 {
				w.oq.InjectFault(fakefedora.OpenQAFault{Method: "GET", Path: "/api/v1/jobs", Status: 400, Times: 10})
			}
			ctx := context.Background()
			cm, err := w.st.Fedfind.Resolve(ctx, stToday)
			if err != nil {
				t.Fatal(err)
			}
			r, err := w.st.Check.Build(ctx, cm, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Doomed == nil || r.Status != tc.status || r.PreviousComposeID != stPrev {
				t.Errorf("report: status %q previous %q doomed %+v", r.Status, r.PreviousComposeID, r.Doomed)
			}
		})
	}
}

// sequentialCheck is what Check.Build did before its requests went out
// together, one after another, kept as the reference of
// BenchmarkCheckBuild.
func sequentialCheck(ctx context.Context, c stageCheck, cm *fedfind.Compose) (reports.Report, error) {
	status, err := c.ff.Status(ctx, cm)
	if err != nil {
		return reports.Report{}, err
	}
	images, err := c.ff.Images(ctx, cm)
	if err != nil {
		return reports.Report{}, err
	}
	in := checks.Input{Compose: cm.ID, Images: images, Expected: fedfind.DefaultExpectedImages()[cm.Stream.Kind]}
	prev, err := c.ff.Previous(ctx, cm, fedfind.PreviousOptions{})
	if err != nil {
		return reports.Report{}, err
	}
	if in.Jobs, err = c.oq.BuildJobs(ctx, cm.ID.String()); err != nil {
		return reports.Report{}, err
	}
	p := &checks.Previous{Compose: prev.Compose.ID}
	if p.Images, err = c.ff.Images(ctx, prev.Compose); err != nil {
		return reports.Report{}, err
	}
	if p.Jobs, err = c.oq.BuildJobs(ctx, prev.Compose.ID.String()); err != nil {
		return reports.Report{}, err
	}
	in.Previous = p
	return reports.Build(checks.Run(in), reports.Meta{Status: string(status), Location: cm.Location}), nil
}

type stageCheck struct {
	ff *fedfind.Client
	oq *openqa.Client
}

// BenchmarkCheckBuild builds one compose check report against a mirror and
// an openQA 20 ms away, the requests one after another (as Check.Build did)
// and in Check.Build's two waves. ns/op follows from the round trips on the
// critical path: 7 one after another, 3 in waves.
func BenchmarkCheckBuild(b *testing.B) {
	const latency = 20 * time.Millisecond
	w := newStageWorld(b)
	w.mirror.SetStatus(stToday, "FINISHED")
	ctx := context.Background()
	cm, err := w.st.Fedfind.Resolve(ctx, stToday)
	if err != nil {
		b.Fatal(err)
	}
	w.mirror.SetLatency(latency)
	w.oq.SetLatency(latency)
	c := stageCheck{ff: w.st.Fedfind, oq: w.st.Check.OpenQA}
	for _, bc := range []struct {
		name  string
		build func() (reports.Report, error)
	}{
		{"sequential", func() (reports.Report, error) { return sequentialCheck(ctx, c, cm) }},
		{"waves", func() (reports.Report, error) { return w.st.Check.Build(ctx, cm, nil) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			before := w.mirror.Requests() + int64(w.oq.TotalRequests())
			for b.Loop() {
				r, err := bc.build()
				if err != nil {
					b.Fatal(err)
				}
				if r.PreviousComposeID != stPrev {
					b.Fatalf("previous %q", r.PreviousComposeID)
				}
			}
			after := w.mirror.Requests() + int64(w.oq.TotalRequests())
			b.ReportMetric(float64(after-before)/float64(b.N), "requests/op")
			b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(latency), "latencies/op")
		})
	}
}
