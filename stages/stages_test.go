package stages_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/fedfind/koji"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/httpclient"
	"github.com/composeci/composeci/openqa"
	"github.com/composeci/composeci/reports"
	"github.com/composeci/composeci/stages"
	"github.com/composeci/composeci/triage"
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
	tasks  []int // today's Koji image tasks
	st     *stages.Compose
}

func newStageWorld(t testing.TB) *stageWorld {
	t.Helper()
	w := &stageWorld{mirror: fakefedora.NewMirror(), hub: fakefedora.NewKojiHub(fakefedora.KojiHubOptions{}),
		now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: stPrev, Status: "FINISHED"})
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: stToday, Status: "STARTED"})
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-43-updates-20261123.0", Status: "FINISHED", Images: []fakefedora.ImageSpec{}})
	root := w.mirror.Start()
	t.Cleanup(w.mirror.Close)
	w.hub.SetNow(time.Date(2026, 11, 23, 3, 10, 0, 0, time.UTC))
	w.tasks = w.hub.AddNightlyImageTasks(stToday, "20261123.n.0", "Rawhide", 3)
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
	archive := reports.DataArchive(t.TempDir())
	w.st = &stages.Compose{
		Fedfind:       ff,
		Discover:      stages.Discover{Streams: []fedfind.StreamKind{fedfind.StreamRawhide, fedfind.StreamBranched}},
		AwaitComplete: stages.AwaitComplete{Fedfind: ff, Koji: kc, Poll: time.Minute},
		Schedule:      stages.Schedule{Fedfind: ff, OpenQA: oc},
		AwaitResults:  stages.AwaitResults{OpenQA: oc, Poll: time.Minute, Grace: 2 * time.Minute, Now: func() time.Time { return w.now }},
		Check:         stages.Check{Fedfind: ff, OpenQA: oc, Archive: archive},
		Report:        stages.Report{Archive: archive, Mailer: mailer, Routing: routing},
	}
	return w
}

// run runs a stage and folds its outcome's data into wf, as the pipeline
// does.
func (w *stageWorld) run(t *testing.T, stage stages.Name, wf *stages.State) stages.Outcome {
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
	comp, err := stages.OpenQACompose(ctx, w.st.Fedfind, prev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.Schedule.OpenQA.Schedule(ctx, comp, openqa.ScheduleOptions{}); err != nil {
		t.Fatal(err)
	}
	w.oq.Settle()

	wf := &stages.State{ComposeID: stToday}
	if out := w.run(t, stages.StageDiscover, wf); !out.Advance || wf.Data[stages.DataStream] != "rawhide" {
		t.Fatalf("discover: %+v", out)
	}
	out := w.run(t, stages.StageAwaitComplete, wf)
	if out.Advance || out.RetryAfter != time.Minute || !strings.Contains(out.Note, "running") {
		t.Fatalf("await-complete while composing: %+v", out)
	}
	w.mirror.SetStatus(stToday, "FINISHED")
	w.hub.Advance(time.Hour)
	if out := w.run(t, stages.StageAwaitComplete, wf); !out.Advance || wf.Data[stages.DataStatus] != "FINISHED" || !strings.Contains(wf.Data[stages.DataKojiTasks], `"closed":3`) {
		t.Fatalf("await-complete when done: %+v, %v", out, wf.Data)
	}

	out = w.run(t, stages.StageSchedule, wf)
	posts := len(w.oq.Posts())
	if !out.Advance || !strings.Contains(out.Note, "10 products posted") {
		t.Fatalf("schedule: %+v", out)
	}
	// A redelivered schedule task posts nothing.
	if out := w.run(t, stages.StageSchedule, wf); !out.Advance || !strings.Contains(out.Note, "0 products posted, 10 already scheduled") || len(w.oq.Posts()) != posts {
		t.Fatalf("schedule again: %+v, %d posts (was %d)", out, len(w.oq.Posts()), posts)
	}

	if out := w.run(t, stages.StageAwaitResults, wf); out.Advance || !strings.Contains(out.Note, "pending") {
		t.Fatalf("results pending: %+v", out)
	}
	w.oq.Settle()
	if out := w.run(t, stages.StageAwaitResults, wf); out.Advance || out.RetryAfter != 2*time.Minute || wf.Data[stages.DataFinalSince] == "" {
		t.Fatalf("results just final: %+v", out)
	}
	w.now = w.now.Add(time.Minute)
	if out := w.run(t, stages.StageAwaitResults, wf); out.Advance || out.RetryAfter != time.Minute {
		t.Fatalf("results inside the grace period: %+v", out)
	}
	w.now = w.now.Add(time.Minute)
	if out := w.run(t, stages.StageAwaitResults, wf); !out.Advance {
		t.Fatalf("results after the grace period: %+v", out)
	}

	out = w.run(t, stages.StageCheck, wf)
	if !out.Advance || wf.Data[stages.DataProblem] != "true" || !strings.Contains(out.Note, "1 new failure") {
		t.Fatalf("check: %+v", out)
	}
	if wf.Data[stages.DataReport] != "rawhide/"+stToday {
		t.Errorf("report path %q", wf.Data[stages.DataReport])
	}
	if _, err := w.st.Check.Archive.Read(ctx, stToday); err != nil {
		t.Errorf("report not archived: %v", err)
	}
	if wf.Data[stages.DataFinishedAt] == "" || wf.Data[stages.DataScheduledAt] == "" || !strings.Contains(wf.Data[stages.DataCounts], `"new_failures":1`) {
		t.Errorf("timings and counts not recorded: %v", wf.Data)
	}
	out = w.run(t, stages.StageReport, wf)
	if !out.Advance || wf.Data[stages.DataMessageID] == "" || wf.Data[stages.DataReportedAt] == "" || len(w.mail.Messages()) != 1 {
		t.Fatalf("report: %+v, %d mails", out, len(w.mail.Messages()))
	}
	// A redelivered report task mails nothing.
	if out := w.run(t, stages.StageReport, wf); !out.Advance || !strings.Contains(out.Note, "already mailed") || len(w.mail.Messages()) != 1 {
		t.Fatalf("report again: %+v, %d mails", out, len(w.mail.Messages()))
	}
}

func TestComposeStagesEnds(t *testing.T) {
	w := newStageWorld(t)
	// A stream the pipeline does not watch ends at discovery.
	wf := &stages.State{ComposeID: "Fedora-43-updates-20261123.0"}
	if out := w.run(t, stages.StageDiscover, wf); out.End != stages.EndDone || !strings.Contains(out.Note, "not watched") {
		t.Errorf("unwatched stream: %+v", out)
	}
	// Without openQA the openQA stages pass at once.
	wf = &stages.State{ComposeID: stToday}
	w.st.Schedule.OpenQA, w.st.AwaitResults.OpenQA = nil, nil
	for _, s := range []stages.Name{stages.StageSchedule, stages.StageAwaitResults} {
		if out := w.run(t, s, wf); !out.Advance || !strings.Contains(out.Note, "not configured") {
			t.Errorf("%s without openQA: %+v", s, out)
		}
	}
	// A compose ID that cannot be is a permanent error.
	if _, err := w.st.Run(context.Background(), stages.StageDiscover, stages.State{ComposeID: "../x"}); !errors.Is(err, stages.ErrPermanent) {
		t.Errorf("bad ID: %v", err)
	}
}

// TestScheduleAuthRefusalIsPermanent: a key openQA refuses ends the
// workflow at once, after one refused POST, instead of being retried.
func TestScheduleAuthRefusalIsPermanent(t *testing.T) {
	w := newStageWorld(t)
	w.mirror.SetStatus(stToday, "FINISHED")
	oc, err := openqa.New(openqa.Options{BaseURL: w.oq.URL(), Credentials: openqa.Credentials{Key: stKey, Secret: "wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	w.st.Schedule.OpenQA = oc
	_, err = w.st.Run(context.Background(), stages.StageSchedule, stages.State{ComposeID: stToday})
	if !errors.Is(err, stages.ErrPermanent) || !errors.Is(err, openqa.ErrAuthRefused) {
		t.Errorf("err = %v, want a permanent ErrAuthRefused", err)
	}
	if n := w.oq.Requests("POST", "/api/v1/isos"); n != 1 {
		t.Errorf("%d POSTs, want the 1 refused", n)
	}
}

// TestDoomedComposeIsReported: a compose that ends DOOMED skips scheduling
// and testing, gets a short report with the STATUS and Koji evidence and the
// previous good compose, is mailed once, and ends the workflow as doomed.
func TestDoomedComposeIsReported(t *testing.T) {
	w := newStageWorld(t)
	w.hub.SetTaskSchedule(w.tasks[1], fakefedora.KojiRunSchedule(time.Minute, time.Minute, fakefedora.KojiFailed)...)
	w.hub.Advance(time.Hour)
	w.mirror.SetStatus(stToday, "DOOMED")
	wf := &stages.State{ComposeID: stToday}
	out := w.run(t, stages.StageAwaitComplete, wf)
	if !out.Advance || out.Next != stages.StageCheck || wf.Data[stages.DataDoomed] != "true" {
		t.Fatalf("await-complete of a doomed compose: %+v", out)
	}
	if !strings.Contains(wf.Data[stages.DataReasons], "STATUS is DOOMED") || !strings.Contains(wf.Data[stages.DataReasons], "1 failed") || wf.Data[stages.DataFailed] == "" {
		t.Errorf("evidence recorded: %q, failed tasks %q", wf.Data[stages.DataReasons], wf.Data[stages.DataFailed])
	}
	if out := w.run(t, stages.StageCheck, wf); !out.Advance || wf.Data[stages.DataProblem] != "true" {
		t.Fatalf("check of a doomed compose: %+v", out)
	}
	r, err := w.st.Check.Archive.Read(context.Background(), stToday)
	if err != nil {
		t.Fatal(err)
	}
	if r.Doomed == nil || r.Status != "DOOMED" || r.PreviousComposeID != stPrev || len(r.Doomed.FailedTasks) != 1 {
		t.Errorf("doomed report: status %q previous %q doomed %+v", r.Status, r.PreviousComposeID, r.Doomed)
	}
	for range 2 { // a redelivered report task mails nothing more
		out := w.run(t, stages.StageReport, wf)
		if out.End != stages.EndDoomed {
			t.Fatalf("report of a doomed compose: %+v", out)
		}
	}
	msgs := w.mail.Messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Subject(), "DOOMED, not tested") {
		t.Errorf("%d mails (%v), want one saying DOOMED", len(msgs), msgs)
	}
	if len(w.oq.Posts()) != 0 {
		t.Errorf("a doomed compose was scheduled in openQA")
	}
}

// TestConfirmStage: new failures are re-run once before the check — the
// one that fails again is confirmed, the one that passes is flaky — each
// re-run recorded in the audit trail; a redelivered confirm task restarts
// nothing, and the cap leaves the rest unconfirmed.
func TestConfirmStage(t *testing.T) {
	for _, tc := range []struct {
		name                        string
		max                         int
		restarted, confirmed, flaky int
		unconfirmed                 int
	}{
		{name: "every new failure", max: 20, restarted: 2, confirmed: 1, flaky: 1},
		{name: "capped", max: 1, restarted: 1, confirmed: 1, unconfirmed: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newStageWorld(t)
			w.oq.SetOutcome(stToday, "Workstation-live-iso", "x86_64", "desktop_terminal", "failed", "passed")
			ctx := context.Background()
			data := t.TempDir()
			w.st.Check.Ledger = triage.FileLedger{Dir: data}
			w.st.Check.Known = triage.FileRegistry{Dir: data}
			w.st.Confirm = stages.Confirm{Max: tc.max, Wait: w.st.AwaitResults}
			prev, _ := w.st.Fedfind.Resolve(ctx, stPrev)
			comp, err := stages.OpenQACompose(ctx, w.st.Fedfind, prev)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.st.Schedule.OpenQA.Schedule(ctx, comp, openqa.ScheduleOptions{}); err != nil {
				t.Fatal(err)
			}
			w.oq.Settle()
			w.mirror.SetStatus(stToday, "FINISHED")
			w.hub.Advance(time.Hour)
			wf := &stages.State{ComposeID: stToday}
			for _, s := range []stages.Name{stages.StageDiscover, stages.StageAwaitComplete, stages.StageSchedule} {
				if out := w.run(t, s, wf); !out.Advance {
					t.Fatalf("%s: %+v", s, out)
				}
			}
			w.oq.Settle()
			// until returns when a stage advances, moving the clock past
			// the grace period.
			until := func(s stages.Name) {
				t.Helper()
				for range 10 {
					if out := w.run(t, s, wf); out.Advance {
						return
					}
					w.now = w.now.Add(3 * time.Minute)
				}
				t.Fatalf("%s never advanced", s)
			}
			until(stages.StageAwaitResults)
			jobs := len(w.oq.Jobs())
			out := w.run(t, stages.StageConfirm, wf)
			if out.Advance || wf.Data[stages.DataConfirmed] != strconv.Itoa(tc.restarted) || len(w.oq.Jobs()) != jobs+tc.restarted {
				t.Fatalf("confirm: %+v, %d jobs (was %d)", out, len(w.oq.Jobs()), jobs)
			}
			// Redelivered: nothing restarted twice.
			if out := w.run(t, stages.StageConfirm, wf); out.Advance || len(w.oq.Jobs()) != jobs+tc.restarted {
				t.Fatalf("confirm again: %+v, %d jobs", out, len(w.oq.Jobs()))
			}
			w.oq.Settle()
			until(stages.StageConfirm)

			if out := w.run(t, stages.StageCheck, wf); !out.Advance {
				t.Fatalf("check: %+v", out)
			}
			r, err := w.st.Check.Archive.Read(ctx, stToday)
			if err != nil {
				t.Fatal(err)
			}
			confirmed, unconfirmed := 0, 0
			for _, j := range r.OpenQA.NewFailures {
				switch {
				case j.Confirmed != nil && *j.Confirmed && j.RerunJobID != 0:
					confirmed++
				case j.Confirmed != nil && !*j.Confirmed:
					unconfirmed++
				}
			}
			if confirmed != tc.confirmed || unconfirmed != tc.unconfirmed || len(r.OpenQA.Flaky) != tc.flaky {
				t.Errorf("new failures %+v, flaky %+v: want %d confirmed, %d unconfirmed, %d flaky", r.OpenQA.NewFailures, r.OpenQA.Flaky,
					tc.confirmed, tc.unconfirmed, tc.flaky)
			}
			if len(r.Reruns) != tc.restarted {
				t.Errorf("re-runs %+v, want %d", r.Reruns, tc.restarted)
			}
			for _, e := range r.Reruns {
				if e.By != "composeci" || e.Scope != triage.ScopeConfirm || e.RerunJobID == 0 {
					t.Errorf("re-run entry %+v", e)
				}
			}
		})
	}
}

// TestMailIntentBeforeSend: the report stage records its intent (with the
// deterministic Message-ID) before talking to the SMTP server, and the
// outcome once the server accepted the mail. A send cut after the intent
// — a crash — is sent again under the same Message-ID, once; a recorded
// outcome is never sent again; and when the intent cannot be recorded,
// nothing is sent.
func TestMailIntentBeforeSend(t *testing.T) {
	w := newStageWorld(t)
	ctx := context.Background()
	w.mirror.SetStatus(stToday, "FINISHED")
	cm, err := w.st.Fedfind.Resolve(ctx, stToday)
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.st.Check.Build(ctx, cm, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.Check.Archive.Write(ctx, r); err != nil {
		t.Fatal(err)
	}
	to := w.st.Report.Routing.RecipientsWhen(r, true)
	id := w.st.Report.Mailer.MessageID(r.ComposeID, to)
	// A crash after the intent: the ledger says "sending".
	if err := w.st.Report.Archive.RecordMail(ctx, r.ComposeID, reports.MailRecord{MessageID: id, Recipients: to,
		Version: reports.ContentKey(r), State: reports.MailSending}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := w.st.Report.MailOnce(ctx, r, true, false); err != nil {
			t.Fatal(err)
		}
	}
	msgs := w.mail.Messages()
	if len(msgs) != 1 || msgs[0].Header("Message-ID") != "<"+id+">" {
		t.Fatalf("after an interrupted send: %d mails (want 1 with Message-ID %s)", len(msgs), id)
	}
	mails, _ := w.st.Report.Archive.MailsOf(ctx, r.ComposeID)
	if len(mails) != 1 || mails[0].State != "" || mails[0].MessageID != id {
		t.Errorf("the ledger after the resend: %+v", mails)
	}

	// The intent cannot be recorded: nothing is sent.
	broken := w.st.Report
	broken.Archive = failingLedger{Store: broken.Archive}
	next := r
	next.Status = "FINISHED_INCOMPLETE" // another version
	if _, err := broken.MailOnce(ctx, next, true, false); err == nil || !strings.Contains(err.Error(), "before sending") {
		t.Errorf("MailOnce with a ledger that cannot record: %v", err)
	}
	if n := len(w.mail.Messages()); n != 1 {
		t.Errorf("%d mails after a failed intent, want still 1", n)
	}
}

// failingLedger is a report store whose mail ledger cannot record.
type failingLedger struct{ reports.Store }

func (failingLedger) RecordMail(context.Context, string, reports.MailRecord) error {
	return errors.New("disk full")
}

// TestMailFailedBeforeTheServerTookIt: a send that failed before the
// server could take the message (here, nobody listens) is recorded as
// failed, not as an interrupted send: the next attempt is a first send,
// without a warning of a possible duplicate.
func TestMailFailedBeforeTheServerTookIt(t *testing.T) {
	w := newStageWorld(t)
	ctx := context.Background()
	w.mirror.SetStatus(stToday, "FINISHED")
	cm, err := w.st.Fedfind.Resolve(ctx, stToday)
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.st.Check.Build(ctx, cm, nil)
	if err != nil {
		t.Fatal(err)
	}
	down, err := reports.NewMailer(reports.MailConfig{Host: "127.0.0.1", Port: 1, TLS: reports.TLSNone, From: "composeci@example.org", Timeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs := w.st.Report
	rs.Mailer = down
	if _, err := rs.MailOnce(ctx, r, true, false); err == nil || !reports.NotDelivered(err) {
		t.Fatalf("mailing to a closed port: %v (not delivered: %v)", err, reports.NotDelivered(err))
	}
	mails, _ := rs.Archive.MailsOf(ctx, r.ComposeID)
	if len(mails) != 1 || mails[0].State != reports.MailFailed {
		t.Errorf("the ledger after a failed dial: %+v", mails)
	}
	var logs strings.Builder
	w.st.Report.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	if m, err := w.st.Report.MailOnce(ctx, r, true, false); err != nil || !m.Sent {
		t.Fatalf("the next attempt: %+v %v", m, err)
	}
	if strings.Contains(logs.String(), "did not complete") || len(w.mail.Messages()) != 1 {
		t.Errorf("the next attempt warned of a resend, or mailed %d times:\n%s", len(w.mail.Messages()), logs.String())
	}
}

// TestScheduleGoesOnWithoutWhatOpenQACannotTest: products openQA has no job
// templates for, or refuses for good (an asset host outside its
// allow-list), do not hold the compose up: the stage advances and says so;
// a build with no job then has nothing to await. A 503 that lasts is
// retried later.
func TestScheduleGoesOnWithoutWhatOpenQACannotTest(t *testing.T) {
	tests := []struct {
		name     string
		opts     fakefedora.OpenQAOptions
		fault    *fakefedora.OpenQAFault
		wantErr  bool
		wantJobs string
		note     string
	}{
		{name: "no templates at all", opts: fakefedora.OpenQAOptions{Templates: []fakefedora.OpenQATemplate{}},
			wantJobs: "0", note: "0 products posted, 0 already scheduled, 0 jobs; 10 without job templates in openQA"},
		{name: "templates for one product", opts: fakefedora.OpenQAOptions{Templates: []fakefedora.OpenQATemplate{
			{Flavor: "Server-dvd-iso", Arch: "x86_64", Tests: []string{"install_default", "server_cockpit_default"}}}},
			wantJobs: "2", note: "1 product posted, 0 already scheduled, 2 jobs; 9 without job templates in openQA"},
		{name: "asset host outside the allow-list", opts: fakefedora.OpenQAOptions{DownloadDomains: []string{"nowhere.example"}},
			note: "refused by openQA, not posted again: "},
		{name: "503 for every POST", fault: &fakefedora.OpenQAFault{Method: "POST", Path: "/api/v1/isos", Status: 503, Times: 1000},
			wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newStageWorld(t)
			w.mirror.SetStatus(stToday, "FINISHED")
			tt.opts.Keys = []fakefedora.OpenQAKey{{Key: stKey, Secret: stSec, Operator: true}}
			srv := fakefedora.NewOpenQA(tt.opts)
			t.Cleanup(srv.Close)
			if tt.fault != nil {
				srv.InjectFault(*tt.fault)
			}
			oc, err := openqa.New(openqa.Options{BaseURL: srv.URL(), Credentials: openqa.Credentials{Key: stKey, Secret: stSec},
				HTTP: httpclient.Options{RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond}, RecheckDelay: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			w.st.Schedule.OpenQA, w.st.AwaitResults.OpenQA = oc, oc
			wf := stages.State{ComposeID: stToday, Data: map[string]string{}}
			out, err := w.st.Run(context.Background(), stages.StageSchedule, wf)
			if tt.wantErr {
				if err == nil || errors.Is(err, stages.ErrPermanent) || out.Advance {
					t.Fatalf("outcome %+v, err %v: want an error retried later", out, err)
				}
				return
			}
			if err != nil || !out.Advance || !strings.Contains(out.Note, tt.note) {
				t.Fatalf("outcome %+v, err %v: want an advance noting %q", out, err, tt.note)
			}
			if tt.wantJobs != "" && out.Data[stages.DataJobs] != tt.wantJobs {
				t.Errorf("jobs recorded %q, want %q", out.Data[stages.DataJobs], tt.wantJobs)
			}
			if n := srv.Requests("POST", "/api/v1/isos"); n != 10 {
				t.Errorf("%d POSTs, want each of the 10 products posted once", n)
			}
			if tt.wantJobs != "0" {
				return
			}
			for k, v := range out.Data {
				wf.Data[k] = v
			}
			out, err = w.st.Run(context.Background(), stages.StageAwaitResults, wf)
			if err != nil || !out.Advance || out.Note != "openQA: no jobs for this build" {
				t.Errorf("await-results with no job: %+v, %v", out, err)
			}
		})
	}
}

// TestComposePlacedWhereTheEventSaid: Pungi's location in the event places
// the compose when it lies under the compose root and names the compose,
// whatever the layout; otherwise the compose ID does.
func TestComposePlacedWhereTheEventSaid(t *testing.T) {
	w := newStageWorld(t)
	root := w.st.Fedfind.Root()
	byID := root + "/rawhide/" + stToday + "/compose"
	for _, tt := range []struct {
		name, location, want string
	}{
		{"no location", "", byID},
		{"a layout of its own under the root", root + "/nightly/x/" + stToday + "/compose", root + "/nightly/x/" + stToday + "/compose"},
		{"the compose directory itself", root + "/elsewhere/" + stToday, root + "/elsewhere/" + stToday + "/compose"},
		{"Fedora's URL while the root is a mirror", "https://kojipkgs.fedoraproject.org/compose/rawhide/" + stToday + "/compose", byID},
		{"another compose", root + "/rawhide/" + stPrev + "/compose", byID},
		{"not a compose URL", root + "/rawhide/", byID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := w.st.Run(context.Background(), stages.StageDiscover, stages.State{ComposeID: stToday, Location: tt.location})
			if err != nil {
				t.Fatal(err)
			}
			if got := out.Data[stages.DataLocation]; got != tt.want {
				t.Errorf("placed at %s, want %s", got, tt.want)
			}
			// Later stages keep to where discover placed it.
			st := stages.State{ComposeID: stToday, Data: out.Data}
			if out, err = w.st.Run(context.Background(), stages.StageDiscover, st); err != nil || out.Data[stages.DataLocation] != tt.want {
				t.Errorf("placed again at %s, %v; want %s", out.Data[stages.DataLocation], err, tt.want)
			}
		})
	}
}

// TestWaitsAreBounded: no wait of the pipeline is endless. Jobs stuck in
// openQA are reported as pending after AwaitResults.Timeout; Koji tasks
// that never finish hold up a compose with a final STATUS for KojiWait at
// most; a compose whose STATUS never becomes final fails after
// AwaitComplete.Timeout, saying why.
func TestWaitsAreBounded(t *testing.T) {
	t.Run("openQA jobs that never end", func(t *testing.T) {
		w := newStageWorld(t)
		w.mirror.SetStatus(stToday, "FINISHED")
		wf := &stages.State{ComposeID: stToday}
		w.run(t, stages.StageSchedule, wf)
		if out := w.run(t, stages.StageAwaitResults, wf); out.Advance || wf.Data[stages.DataResultsSince] == "" {
			t.Fatalf("results pending: %+v, %v", out, wf.Data)
		}
		w.now = w.now.Add(8*time.Hour - time.Second)
		if out := w.run(t, stages.StageAwaitResults, wf); out.Advance {
			t.Fatalf("gave up before the timeout: %+v", out)
		}
		w.now = w.now.Add(time.Second)
		out := w.run(t, stages.StageAwaitResults, wf)
		if !out.Advance || wf.Data[stages.DataResultsGaveUp] != "true" || !strings.Contains(out.Note, "22 of 22 jobs still pending after 8h0m0s; reported as pending") {
			t.Fatalf("after the timeout: %+v", out)
		}
		// Sent back to await-results later (re-runs asked for), the
		// wait starts afresh rather than giving up at once.
		if wf.Data[stages.DataResultsSince] != "" {
			t.Errorf("the wait's start outlived it: %q", wf.Data[stages.DataResultsSince])
		}
		w.now = w.now.Add(24 * time.Hour)
		if out := w.run(t, stages.StageAwaitResults, wf); out.Advance || wf.Data[stages.DataResultsSince] == "" {
			t.Fatalf("a second wait gave up at once: %+v", out)
		}
		if out := w.run(t, stages.StageCheck, wf); !out.Advance {
			t.Fatalf("check: %+v", out)
		}
		r, err := w.st.Check.Archive.Read(context.Background(), stToday)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.OpenQA.Pending) != 22 {
			t.Errorf("the report lists %d jobs as pending, want 22", len(r.OpenQA.Pending))
		}
	})
	t.Run("Koji tasks that never end", func(t *testing.T) {
		w := newStageWorld(t)
		w.st.AwaitComplete.Now = func() time.Time { return w.now }
		w.mirror.SetStatus(stToday, "FINISHED") // the hub's tasks stay open
		wf := &stages.State{ComposeID: stToday}
		if out := w.run(t, stages.StageAwaitComplete, wf); out.Advance {
			t.Fatalf("advanced with Koji tasks open: %+v", out)
		}
		w.now = w.now.Add(2 * time.Hour)
		out := w.run(t, stages.StageAwaitComplete, wf)
		if !out.Advance || wf.Data[stages.DataKojiWaived] != "true" || !strings.Contains(out.Note, "STATUS FINISHED for 2h0m0s, yet Koji image tasks: 3 unfinished") {
			t.Fatalf("after KojiWait: %+v", out)
		}
	})
	t.Run("a compose that never finishes", func(t *testing.T) {
		w := newStageWorld(t)
		w.st.AwaitComplete.Now = func() time.Time { return w.now }
		wf := &stages.State{ComposeID: stToday} // STARTED
		w.run(t, stages.StageAwaitComplete, wf)
		w.now = w.now.Add(24 * time.Hour)
		_, err := w.st.Run(context.Background(), stages.StageAwaitComplete, *wf)
		if !errors.Is(err, stages.ErrPermanent) || !errors.Is(err, stages.ErrStalled) || !strings.Contains(err.Error(), "not complete 24h0m0s after the pipeline first looked (STATUS STARTED; running: ") {
			t.Fatalf("after the timeout: %v", err)
		}
	})
}
