package listener

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/fedfind/koji"
	"github.com/composeci/composeci/internal/httpclient"
	"github.com/composeci/composeci/openqa"
	"github.com/composeci/composeci/reports"
)

// ComposeStages runs the pipeline's stages with composeci's domain
// packages. Every stage is idempotent, so a redelivered or re-run task does
// nothing twice: scheduling checks openQA's live jobs of the build first,
// the report checks the mail ledger beside the archived report.
type ComposeStages struct {
	Fedfind *fedfind.Client
	Koji    *koji.Client
	// Completeness rules; zero means fedfind.DefaultCompletenessRules.
	Completeness fedfind.CompletenessRules
	// KojiOwner restricts the Koji check to one user id; 0 means any.
	KojiOwner int
	// OpenQA is nil to leave openQA out: schedule and await-results then
	// pass at once and the report has no openQA section.
	OpenQA *openqa.Client
	// ScheduleOptions for openQA (rules, release numbers).
	ScheduleOptions openqa.ScheduleOptions
	// Expected images; nil means the built-in lists.
	Expected fedfind.ExpectedImages
	// Archive keeps the reports.
	Archive reports.Archive
	// Mailer and Routing send reports; a nil Mailer sends none.
	Mailer  *reports.Mailer
	Routing reports.Routing
	// Streams are the release streams handled; a compose of another
	// stream ends as soon as it is discovered. Empty means every stream.
	Streams []fedfind.StreamKind
	// CompletePoll and ResultsPoll are how long an await stage waits before
	// asking again (defaults 2 minutes and 1 minute).
	CompletePoll, ResultsPoll time.Duration
	// ResultsGrace is how long every job must have stayed final before the
	// results count as complete: openQA clones an incomplete job a moment
	// after finishing it (default 2 minutes).
	ResultsGrace time.Duration
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Data keys the stages keep in the workflow.
const (
	DataStream       = "stream"
	DataLocation     = "location"
	DataStatus       = "status"
	DataJobs         = "openqa_jobs"
	DataFinalSince   = "results_final_since"
	DataReport       = "report"
	DataProblem      = "problem"
	DataMessageID    = "message_id"
	DataMailNote     = "mail"
	defaultPollDone  = 2 * time.Minute
	defaultPollJobs  = time.Minute
	defaultJobsGrace = 2 * time.Minute
)

// Run runs one stage for one compose.
func (s *ComposeStages) Run(ctx context.Context, stage Stage, w Workflow) (Outcome, error) {
	id, err := fedfind.ParseComposeID(w.ComposeID)
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	cm, err := s.Fedfind.Locate(id)
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	switch stage {
	case StageDiscover:
		return s.discover(ctx, cm)
	case StageAwaitComplete:
		return s.awaitComplete(ctx, cm)
	case StageSchedule:
		return s.schedule(ctx, cm)
	case StageAwaitResults:
		return s.awaitResults(ctx, cm, w)
	case StageCheck:
		return s.check(ctx, cm)
	case StageReport:
		return s.report(ctx, cm)
	}
	return Outcome{}, fmt.Errorf("%w: unknown stage %q", ErrPermanent, stage)
}

func (s *ComposeStages) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *ComposeStages) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// discover places the compose in the tree and decides whether this
// pipeline handles its stream.
func (s *ComposeStages) discover(_ context.Context, cm *fedfind.Compose) (Outcome, error) {
	data := map[string]string{DataStream: string(cm.Stream.Kind), DataLocation: cm.Location}
	if len(s.Streams) > 0 && !slices.Contains(s.Streams, cm.Stream.Kind) {
		return Outcome{End: StateDone, Note: fmt.Sprintf("not handled: %s composes are not watched", cm.Stream.Kind), Data: data}, nil
	}
	return Outcome{Advance: true, Note: fmt.Sprintf("%s compose at %s", cm.Stream, cm.Location), Data: data}, nil
}

// awaitComplete asks for the completeness verdict: done advances, doomed
// ends the workflow, anything else waits.
func (s *ComposeStages) awaitComplete(ctx context.Context, cm *fedfind.Compose) (Outcome, error) {
	c, err := s.Fedfind.Completeness(ctx, cm, fedfind.CompletenessOptions{Koji: s.Koji, Rules: s.Completeness, OwnerID: s.KojiOwner})
	if err != nil {
		return Outcome{}, err
	}
	note := string(c.Verdict)
	if n := len(c.Reasons); n > 0 {
		note += ": " + c.Reasons[n-1]
	}
	data := map[string]string{DataStatus: string(c.Status)}
	switch c.Verdict {
	case fedfind.VerdictDone:
		if n := len(c.Reasons); n > 0 {
			note = c.Reasons[n-1] // "await-complete done: all 9 Koji image tasks finished"
		}
		return Outcome{Advance: true, Note: note, Data: data}, nil
	case fedfind.VerdictDoomed:
		return Outcome{End: StateDoomed, Note: note, Data: data}, nil
	}
	return Outcome{RetryAfter: orDefault(s.CompletePoll, defaultPollDone), Note: note, Data: data}, nil
}

// schedule posts the compose's openQA jobs; openqa.Schedule skips every
// (flavor, arch) that already has live jobs, so a re-run posts nothing.
func (s *ComposeStages) schedule(ctx context.Context, cm *fedfind.Compose) (Outcome, error) {
	if s.OpenQA == nil {
		return Outcome{Advance: true, Note: "openQA not configured"}, nil
	}
	comp, err := OpenQACompose(ctx, s.Fedfind, cm)
	if err != nil {
		return Outcome{}, err
	}
	res, err := s.OpenQA.Schedule(ctx, comp, s.ScheduleOptions)
	if errors.Is(err, openqa.ErrNoImages) {
		return Outcome{Advance: true, Note: "nothing to test in openQA: " + err.Error()}, nil
	}
	if err != nil {
		return Outcome{}, err // retried; products already posted are skipped next time
	}
	posted, skipped, jobs := 0, 0, 0
	for _, r := range res {
		jobs += len(r.JobIDs)
		if r.Skipped {
			skipped++
		} else {
			posted++
		}
	}
	return Outcome{Advance: true, Note: fmt.Sprintf("openQA: %d products posted, %d already scheduled, %d jobs", posted, skipped, jobs),
		Data: map[string]string{DataJobs: strconv.Itoa(jobs)}}, nil
}

// awaitResults waits until every job of the build is final and has stayed
// so for ResultsGrace (the auto-clone race).
func (s *ComposeStages) awaitResults(ctx context.Context, cm *fedfind.Compose, w Workflow) (Outcome, error) {
	if s.OpenQA == nil {
		return Outcome{Advance: true, Note: "openQA not configured"}, nil
	}
	r, err := s.OpenQA.Results(ctx, cm.ID.String())
	if err != nil {
		return Outcome{}, err
	}
	sum := r.Summary
	now := s.now()
	if !sum.AllFinal {
		return Outcome{RetryAfter: orDefault(s.ResultsPoll, defaultPollJobs),
			Note: fmt.Sprintf("openQA: %d of %d jobs pending", sum.Pending, sum.Total),
			Data: map[string]string{DataFinalSince: ""}}, nil
	}
	grace := orDefault(s.ResultsGrace, defaultJobsGrace)
	since, err := time.Parse(time.RFC3339Nano, w.Data[DataFinalSince])
	if err != nil {
		// First seen final: look again after the grace period.
		return Outcome{RetryAfter: grace, Note: fmt.Sprintf("openQA: all %d jobs final; waiting %s for late re-runs", sum.Total, grace),
			Data: map[string]string{DataFinalSince: now.UTC().Format(time.RFC3339Nano)}}, nil
	}
	if wait := grace - now.Sub(since); wait > 0 {
		return Outcome{RetryAfter: wait, Note: fmt.Sprintf("openQA: all %d jobs final; waiting %s more for late re-runs", sum.Total, wait.Round(time.Second))}, nil
	}
	return Outcome{Advance: true, Note: fmt.Sprintf("openQA: %d jobs final (%d ok, %d not ok)", sum.Total, sum.OK, sum.NotOK)}, nil
}

// check builds the report and archives it; writing it again replaces it.
func (s *ComposeStages) check(ctx context.Context, cm *fedfind.Compose) (Outcome, error) {
	r, err := BuildReport(ctx, CheckDeps{Fedfind: s.Fedfind, OpenQA: s.OpenQA, Expected: s.Expected, Logger: s.Logger}, cm, nil)
	if errors.Is(err, httpclient.ErrNotFound) || errors.Is(err, fedfind.ErrComposeNotFound) {
		return Outcome{}, fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	if err != nil {
		return Outcome{}, err
	}
	written, err := s.Archive.Write(ctx, r)
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Advance: true, Note: r.SummaryLine(),
		Data: map[string]string{DataReport: written.HTML, DataProblem: strconv.FormatBool(r.Problem)}}, nil
}

// report mails the archived report once to its recipients.
func (s *ComposeStages) report(ctx context.Context, cm *fedfind.Compose) (Outcome, error) {
	if s.Mailer == nil {
		return Outcome{Advance: true, Note: "report archived; mail not configured", Data: map[string]string{DataMailNote: "not configured"}}, nil
	}
	r, err := s.Archive.Read(ctx, cm.ID.String())
	if err != nil {
		return Outcome{}, err
	}
	to := s.Routing.Recipients(r)
	id, sent, err := MailOnce(ctx, s.Archive, s.Mailer, to, r, false)
	switch {
	case err != nil && !sent && !reports.Retryable(err):
		return Outcome{}, fmt.Errorf("%w: %w", ErrPermanent, err)
	case err != nil:
		return Outcome{}, err
	case len(to) == 0:
		return Outcome{Advance: true, Note: "report archived; the routing names nobody", Data: map[string]string{DataMailNote: "no recipients"}}, nil
	case !sent:
		return Outcome{Advance: true, Note: "report already mailed", Data: map[string]string{DataMessageID: id}}, nil
	}
	s.log().InfoContext(ctx, "mailed the compose check report", "compose", cm.ID, "message_id", id, "recipients", len(to))
	return Outcome{Advance: true, Note: fmt.Sprintf("report mailed to %d recipients", len(to)), Data: map[string]string{DataMessageID: id}}, nil
}
