package triage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/httpclient"
	"github.com/composeci/composeci/openqa"
	"github.com/composeci/composeci/reports"
)

const (
	build = "Fedora-Rawhide-20261122.n.0"
	key   = "0123456789ABCDEF"
	sec   = "fedcba9876543210"
)

// rerunWorld is a simulated openQA with one tested build: install_default
// fails then passes on a re-run, desktop_terminal fails every time,
// base_selinux passes.
type rerunWorld struct {
	oq     *fakefedora.OpenQA
	client *openqa.Client
	ledger FileLedger
}

func newRerunWorld(t *testing.T) *rerunWorld {
	t.Helper()
	w := &rerunWorld{oq: fakefedora.NewOpenQA(fakefedora.OpenQAOptions{Keys: []fakefedora.OpenQAKey{{Key: key, Secret: sec, Operator: true}}})}
	t.Cleanup(w.oq.Close)
	var err error
	w.client, err = openqa.New(openqa.Options{BaseURL: w.oq.URL(), Credentials: openqa.Credentials{Key: key, Secret: sec},
		HTTP: httpclient.Options{RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond}, RecheckDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	w.oq.SetOutcome(build, "Server-dvd-iso", "x86_64", "install_default", "failed", "passed")
	w.oq.SetOutcome(build, "Workstation-live-iso", "x86_64", "desktop_terminal", "failed")
	images := []fedfind.Image{
		{Variant: "Server", Subvariant: "Server", Type: "dvd", Format: "iso", Arch: "x86_64", Path: "Server/x86_64/iso/s.iso", URL: "https://kojipkgs.fedoraproject.org/compose/s.iso"},
		{Variant: "Workstation", Subvariant: "Workstation", Type: "live", Format: "iso", Arch: "x86_64", Path: "Workstation/x86_64/iso/w.iso", URL: "https://kojipkgs.fedoraproject.org/compose/w.iso"},
	}
	for i := range images {
		images[i].Identity = fedfind.Identity(images[i].Subvariant, images[i].Type, images[i].Format)
	}
	if _, err := w.client.Schedule(context.Background(), openqa.Compose{ID: build, Version: "Rawhide", Images: images}, openqa.ScheduleOptions{}); err != nil {
		t.Fatal(err)
	}
	w.oq.Settle()
	w.ledger = FileLedger{Dir: t.TempDir()}
	return w
}

func (w *rerunWorld) jobs(t *testing.T) []openqa.Job {
	t.Helper()
	jobs, err := w.client.BuildJobs(context.Background(), build)
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

func (w *rerunWorld) findings(t *testing.T) checks.Findings {
	t.Helper()
	entries, _ := w.ledger.Reruns(context.Background(), build)
	return checks.Run(checks.Input{Compose: fedfind.MustParseComposeID(build), Jobs: w.jobs(t), Reruns: Done(entries)})
}

func (w *rerunWorld) rerun(t *testing.T, req Request) Result {
	t.Helper()
	req.ComposeID = build
	rr := Rerunner{OpenQA: w.client, Ledger: w.ledger}
	jobs := w.jobs(t)
	if err := rr.Recover(context.Background(), build, jobs); err != nil {
		t.Fatal(err)
	}
	picked, skipped, err := Select(req, w.jobs(t), w.findings(t))
	if err != nil {
		t.Fatal(err)
	}
	res, err := rr.Rerun(context.Background(), req, picked, skipped)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func tests(rs []Restarted) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.Test)
	}
	return out
}

func TestRerunNewFailuresConfirmsAndFindsFlaky(t *testing.T) {
	w := newRerunWorld(t)
	res := w.rerun(t, Request{Scope: ScopeNewFailures, By: "alice", Reason: "are they real?"})
	if got := tests(res.Restarted); len(got) != 2 {
		t.Fatalf("restarted %v, want the two new failures", got)
	}
	// Asked again while the re-runs are pending: nothing is restarted.
	again := w.rerun(t, Request{Scope: ScopeNewFailures, By: "alice"})
	if len(again.Restarted) != 0 || len(again.Skipped) != 2 {
		t.Errorf("a repeated request restarted %v, skipped %v", again.Restarted, again.Skipped)
	}
	w.oq.Settle()
	f := w.findings(t)
	if len(f.OpenQA.NewFailures) != 1 || f.OpenQA.NewFailures[0].Test != "desktop_terminal" || f.OpenQA.NewFailures[0].RerunOf == 0 {
		t.Errorf("confirmed new failures: %+v", f.OpenQA.NewFailures)
	}
	if len(f.OpenQA.Flaky) != 1 || f.OpenQA.Flaky[0].Test != "install_default" {
		t.Errorf("flaky: %+v", f.OpenQA.Flaky)
	}
	entries, _ := w.ledger.Reruns(context.Background(), build)
	if len(entries) != 2 || entries[0].By != "alice" || entries[0].Reason != "are they real?" || entries[0].RerunJobID == 0 {
		t.Errorf("audit trail %+v", entries)
	}
	// Confirmed and flaky failures are not re-run again.
	if third := w.rerun(t, Request{Scope: ScopeNewFailures, By: "alice"}); len(third.Restarted) != 0 {
		t.Errorf("restarted %v after confirmation", third.Restarted)
	}
}

func TestRerunScopes(t *testing.T) {
	w := newRerunWorld(t)
	jobs := w.jobs(t)
	var failedDesktop int64
	for _, j := range jobs {
		if j.Test == "desktop_terminal" {
			failedDesktop = j.ID
		}
	}
	for _, tc := range []struct {
		name string
		req  Request
		want int
		err  bool
	}{
		{"a dry run restarts nothing", Request{Scope: ScopeFailed, DryRun: true}, 2, false},
		{"an image", Request{Scope: ScopeImage, Image: "Workstation-live-iso", DryRun: true}, 1, false},
		{"a test", Request{Scope: ScopeTest, Test: "install_default", DryRun: true}, 1, false},
		{"a cap", Request{Scope: ScopeFailed, Max: 1, DryRun: true}, 1, false},
		{"an image the compose has no job of", Request{Scope: ScopeImage, Image: "KDE-live-iso"}, 0, true},
		{"a job of another build", Request{Scope: ScopeJob, JobID: 999999}, 0, true},
		{"no scope", Request{Scope: "everything"}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.ComposeID = build
			picked, _, err := Select(tc.req, jobs, w.findings(t))
			if tc.err != (err != nil) || len(picked) != tc.want {
				t.Errorf("picked %d, %v; want %d, error %v", len(picked), err, tc.want, tc.err)
			}
			if err != nil && !errors.Is(err, fedfind.ErrInvalidInput) {
				t.Errorf("error %v does not wrap ErrInvalidInput", err)
			}
		})
	}
	before := len(w.oq.Jobs())
	w.rerun(t, Request{Scope: ScopeFailed, DryRun: true})
	if len(w.oq.Jobs()) != before {
		t.Error("a dry run restarted jobs")
	}
	res := w.rerun(t, Request{Scope: ScopeJob, JobID: failedDesktop, By: "bob"})
	if len(res.Restarted) != 1 || res.Restarted[0].RerunJobID == 0 {
		t.Fatalf("one job: %+v", res)
	}
	if res := w.rerun(t, Request{Scope: ScopeJob, JobID: failedDesktop, By: "bob"}); len(res.Restarted) != 0 || len(res.Skipped) != 1 {
		t.Errorf("the same job again: %+v", res)
	}
}

// TestRerunCrashBetweenRestartAndRecord: openQA cloned the job but the
// clone's id was never recorded (a crash): the next request restarts
// nothing twice, and the trail is completed.
func TestRerunCrashBetweenRestartAndRecord(t *testing.T) {
	w := newRerunWorld(t)
	var failed openqa.Job
	for _, j := range w.jobs(t) {
		if j.Test == "desktop_terminal" {
			failed = j
		}
	}
	// The intent is recorded and openQA restarts the job; then the process
	// dies before recording the clone.
	if err := w.ledger.Record(context.Background(), build, reports.Rerun{At: time.Now(), By: "composeci", Scope: ScopeConfirm,
		JobID: failed.ID, Test: failed.Test}); err != nil {
		t.Fatal(err)
	}
	clone, err := w.oq.Restart(failed.ID)
	if err != nil {
		t.Fatal(err)
	}
	res := w.rerun(t, Request{Scope: ScopeNewFailures, By: "composeci"})
	for _, r := range res.Restarted {
		if r.JobID == failed.ID {
			t.Errorf("job %d was restarted twice", failed.ID)
		}
	}
	entries, _ := w.ledger.Reruns(context.Background(), build)
	if d := Done(entries); d[failed.ID] != clone {
		t.Errorf("the trail says %v, want %d → %d", d, failed.ID, clone)
	}
	if n := w.oq.Requests("POST", "/api/v1/jobs/"+itoa(failed.ID)+"/restart"); n != 0 {
		t.Errorf("%d restart POSTs for the job, want none after the crash", n)
	}
}

func itoa(n int64) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}
