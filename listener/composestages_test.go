package listener_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/fedfind/koji"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/httpclient"
	"github.com/composeci/composeci/listener"
	"github.com/composeci/composeci/openqa"
	"github.com/composeci/composeci/reports"
)

const (
	stPrev  = "Fedora-Rawhide-20261122.n.0"
	stToday = "Fedora-Rawhide-20261123.n.0"
	stKey   = "0123456789ABCDEF"
	stSec   = "fedcba9876543210"
)

// stageWorld is a simulated Fedora (tree, Koji, openQA, mail relay) and the
// real stage runner pointed at it, with a clock the test moves.
type stageWorld struct {
	mirror *fakefedora.Mirror
	hub    *fakefedora.KojiHub
	oq     *fakefedora.OpenQA
	mail   *fakefedora.MailServer
	now    time.Time
	st     *listener.ComposeStages
}

func newStageWorld(t *testing.T) *stageWorld {
	t.Helper()
	w := &stageWorld{mirror: fakefedora.NewMirror(), hub: fakefedora.NewKojiHub(fakefedora.KojiHubOptions{}),
		now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: stPrev, Status: "FINISHED"})
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: stToday, Status: "STARTED"})
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-43-updates-20261123.0", Status: "FINISHED", Images: []fakefedora.ImageSpec{}})
	root := w.mirror.Start()
	t.Cleanup(w.mirror.Close)
	w.hub.SetNow(time.Date(2026, 11, 23, 3, 10, 0, 0, time.UTC))
	w.hub.AddNightlyImageTasks(stToday, "20261123.n.0", "Rawhide", 3)
	hubURL := w.hub.Start()
	t.Cleanup(w.hub.Close)
	w.oq = fakefedora.NewOpenQA(fakefedora.OpenQAOptions{Keys: []fakefedora.OpenQAKey{{Key: stKey, Secret: stSec, Operator: true}}})
	t.Cleanup(w.oq.Close)
	w.oq.SetOutcome(stToday, "KDE-live-iso", "x86_64", "desktop_terminal", "failed")
	var err error
	if w.mail, err = fakefedora.StartMailServer(fakefedora.MailServerOptions{Logf: t.Logf}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.mail.Close)

	fast := httpclient.Options{RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond}
	ff, err := fedfind.NewClient(fedfind.ClientOptions{Root: root, HTTP: httpclient.New(fast)})
	if err != nil {
		t.Fatal(err)
	}
	kc, err := koji.New(koji.Options{URL: hubURL, HTTP: httpclient.New(fast), Now: w.hub.Now})
	if err != nil {
		t.Fatal(err)
	}
	oc, err := openqa.New(openqa.Options{BaseURL: w.oq.URL(), Credentials: openqa.Credentials{Key: stKey, Secret: stSec}, HTTP: fast})
	if err != nil {
		t.Fatal(err)
	}
	mailer, err := reports.NewMailer(reports.MailConfig{Host: "127.0.0.1", Port: w.mail.Port(), TLS: reports.TLSNone, From: "composeci@example.org"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	routing, err := reports.OverrideRouting([]string{"test-reports@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	w.st = &listener.ComposeStages{Fedfind: ff, Koji: kc, OpenQA: oc, Archive: reports.DataArchive(t.TempDir()),
		Mailer: mailer, Routing: routing, Streams: []fedfind.StreamKind{fedfind.StreamRawhide, fedfind.StreamBranched},
		CompletePoll: time.Minute, ResultsPoll: time.Minute, ResultsGrace: 2 * time.Minute,
		Now: func() time.Time { return w.now }}
	return w
}

// run runs a stage and folds its outcome's data into wf, as the pipeline
// does.
func (w *stageWorld) run(t *testing.T, stage listener.Stage, wf *listener.Workflow) listener.Outcome {
	t.Helper()
	out, err := w.st.Run(context.Background(), stage, *wf)
	if err != nil {
		t.Fatalf("%s: %v", stage, err)
	}
	if wf.Data == nil {
		wf.Data = map[string]string{}
	}
	for k, v := range out.Data {
		wf.Data[k] = v
	}
	return out
}

func TestComposeStagesEndToEnd(t *testing.T) {
	w := newStageWorld(t)
	// Yesterday's compose was tested: its desktop_terminal on KDE passed.
	ctx := context.Background()
	prev, _ := w.st.Fedfind.Resolve(ctx, stPrev)
	comp, err := listener.OpenQACompose(ctx, w.st.Fedfind, prev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.OpenQA.Schedule(ctx, comp, openqa.ScheduleOptions{}); err != nil {
		t.Fatal(err)
	}
	w.oq.Settle()

	wf := &listener.Workflow{ComposeID: stToday}
	if out := w.run(t, listener.StageDiscover, wf); !out.Advance || wf.Data[listener.DataStream] != "rawhide" {
		t.Fatalf("discover: %+v", out)
	}
	out := w.run(t, listener.StageAwaitComplete, wf)
	if out.Advance || out.RetryAfter != time.Minute || !strings.Contains(out.Note, "running") {
		t.Fatalf("await-complete while composing: %+v", out)
	}
	w.mirror.SetStatus(stToday, "FINISHED")
	w.hub.Advance(time.Hour)
	if out := w.run(t, listener.StageAwaitComplete, wf); !out.Advance || wf.Data[listener.DataStatus] != "FINISHED" {
		t.Fatalf("await-complete when done: %+v", out)
	}

	out = w.run(t, listener.StageSchedule, wf)
	posts := len(w.oq.Posts())
	if !out.Advance || !strings.Contains(out.Note, "10 products posted") {
		t.Fatalf("schedule: %+v", out)
	}
	// A redelivered schedule task posts nothing.
	if out := w.run(t, listener.StageSchedule, wf); !out.Advance || !strings.Contains(out.Note, "0 products posted, 10 already scheduled") || len(w.oq.Posts()) != posts {
		t.Fatalf("schedule again: %+v, %d posts (was %d)", out, len(w.oq.Posts()), posts)
	}

	if out := w.run(t, listener.StageAwaitResults, wf); out.Advance || !strings.Contains(out.Note, "pending") {
		t.Fatalf("results pending: %+v", out)
	}
	w.oq.Settle()
	if out := w.run(t, listener.StageAwaitResults, wf); out.Advance || out.RetryAfter != 2*time.Minute || wf.Data[listener.DataFinalSince] == "" {
		t.Fatalf("results just final: %+v", out)
	}
	w.now = w.now.Add(time.Minute)
	if out := w.run(t, listener.StageAwaitResults, wf); out.Advance || out.RetryAfter != time.Minute {
		t.Fatalf("results inside the grace period: %+v", out)
	}
	w.now = w.now.Add(time.Minute)
	if out := w.run(t, listener.StageAwaitResults, wf); !out.Advance {
		t.Fatalf("results after the grace period: %+v", out)
	}

	out = w.run(t, listener.StageCheck, wf)
	if !out.Advance || wf.Data[listener.DataProblem] != "true" || !strings.Contains(out.Note, "1 new failure") {
		t.Fatalf("check: %+v", out)
	}
	if _, err := os.Stat(wf.Data[listener.DataReport]); err != nil {
		t.Errorf("report not archived: %v", err)
	}
	out = w.run(t, listener.StageReport, wf)
	if !out.Advance || wf.Data[listener.DataMessageID] == "" || len(w.mail.Messages()) != 1 {
		t.Fatalf("report: %+v, %d mails", out, len(w.mail.Messages()))
	}
	// A redelivered report task mails nothing.
	if out := w.run(t, listener.StageReport, wf); !out.Advance || !strings.Contains(out.Note, "already mailed") || len(w.mail.Messages()) != 1 {
		t.Fatalf("report again: %+v, %d mails", out, len(w.mail.Messages()))
	}
}

func TestComposeStagesEnds(t *testing.T) {
	w := newStageWorld(t)
	// A stream the pipeline does not watch ends at discovery.
	wf := &listener.Workflow{ComposeID: "Fedora-43-updates-20261123.0"}
	if out := w.run(t, listener.StageDiscover, wf); out.End != listener.StateDone || !strings.Contains(out.Note, "not watched") {
		t.Errorf("unwatched stream: %+v", out)
	}
	// A doomed compose ends the workflow.
	w.mirror.SetStatus(stToday, "DOOMED")
	wf = &listener.Workflow{ComposeID: stToday}
	if out := w.run(t, listener.StageAwaitComplete, wf); out.End != listener.StateDoomed {
		t.Errorf("doomed: %+v", out)
	}
	// Without openQA the openQA stages pass at once.
	w.st.OpenQA = nil
	for _, s := range []listener.Stage{listener.StageSchedule, listener.StageAwaitResults} {
		if out := w.run(t, s, wf); !out.Advance || !strings.Contains(out.Note, "not configured") {
			t.Errorf("%s without openQA: %+v", s, out)
		}
	}
	// A compose ID that cannot be is a permanent error.
	if _, err := w.st.Run(context.Background(), listener.StageDiscover, listener.Workflow{ComposeID: "../x"}); err == nil || !strings.Contains(err.Error(), "permanent") {
		t.Errorf("bad ID: %v", err)
	}
}
