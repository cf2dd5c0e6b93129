// Package stages holds the six stages of a compose's workflow — discover,
// await-complete, schedule, await-results, check, report — each a small type
// over the domain packages (fedfind, openqa, checks, reports) holding only
// what it needs. The listener's workflow engine runs them through Compose;
// the CLI's done, schedule, results and check commands run the very same
// stages by hand (AwaitComplete.Verdict, Schedule.Post, AwaitResults.Results,
// Check.Build, Report.MailOnce).
//
// Every stage is idempotent, so a redelivered or re-run task does nothing
// twice: scheduling reads openQA's live jobs of the build first, the report
// consults the mail ledger beside the archived report. The package knows
// nothing of NATS, AMQP or HTTP serving (a test holds it to that).
package stages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/composeci/composeci/fedfind"
)

// Name names a stage.
type Name string

// The stages, in the order a compose goes through them. A workflow stored
// by an older composeci, without confirm, goes on from where it is.
const (
	StageDiscover      Name = "discover"       // the compose is known with its location and stream
	StageAwaitComplete Name = "await-complete" // STATUS final and Koji's image tasks finished
	StageSchedule      Name = "schedule"       // openQA jobs posted, once per (flavor, arch)
	StageAwaitResults  Name = "await-results"  // every job of the build final
	StageConfirm       Name = "confirm"        // new failures re-run once, the re-runs final
	StageCheck         Name = "check"          // findings against the previous compose, archived
	StageReport        Name = "report"         // the report mailed once
)

// Order lists the stages in order.
func Order() []Name {
	return []Name{StageDiscover, StageAwaitComplete, StageSchedule, StageAwaitResults, StageConfirm, StageCheck, StageReport}
}

// How a stage may end its compose's workflow (Outcome.End).
const (
	EndDone   = "done"   // nothing more to do for this compose
	EndDoomed = "doomed" // the compose ended without a result; it was reported
)

// Outcome is what one run of a stage decided.
type Outcome struct {
	// Advance: the stage is complete; the compose moves to the next stage,
	// or to Next when it is set (a doomed compose skips to its report).
	Advance bool
	Next    Name
	// RetryAfter: not yet; run the stage again after this long.
	RetryAfter time.Duration
	// End ends the workflow: EndDone or EndDoomed.
	End string
	// Note says, for people, where the stage stands.
	Note string
	// Data is kept in the workflow for later stages and for people: small
	// strings only, under the Data* keys.
	Data map[string]string
}

// State is what a stage sees of its compose's workflow: the compose and
// what earlier stages recorded.
type State struct {
	ComposeID string
	// Location is the compose's URL as the first event gave it (Pungi's
	// "location"), or "".
	Location string
	Data     map[string]string
}

// Data keys the stages keep in the workflow.
const (
	DataStream        = "stream"              // the compose's stream kind (discover)
	DataLocation      = "location"            // the compose's URL (discover)
	DataStatus        = "status"              // its Pungi STATUS (await-complete)
	DataFinishedAt    = "finished_at"         // when its STATUS was first seen final, RFC 3339 (await-complete)
	DataDoomed        = "doomed"              // "true" when it ended without a result (await-complete)
	DataReasons       = "verdict_reasons"     // the doomed verdict's reasons, one per line (await-complete)
	DataFailed        = "koji_failed_tasks"   // failed Koji image task ids, comma separated (await-complete)
	DataJobs          = "openqa_jobs"         // how many openQA jobs the build has (schedule)
	DataScheduledAt   = "scheduled_at"        // when this pipeline first posted the build to openQA, RFC 3339 (schedule)
	DataFinalSince    = "results_final_since" // when every job was first seen final (await-results)
	DataCompleteSince = "complete_since"      // when await-complete first ran, RFC 3339 (await-complete)
	DataKojiWaived    = "koji_waived"         // "true" when the compose went on on STATUS alone (await-complete)
	DataKojiTasks     = "koji_tasks"          // the verdict's Koji task counts, JSON, when Koji was asked (await-complete)
	DataResultsSince  = "results_since"       // when await-results first ran, RFC 3339 (await-results)
	DataRerunsSince   = "reruns_since"        // when confirm first waited for its re-runs, RFC 3339 (confirm)
	DataResultsGaveUp = "results_gave_up"     // "true" when results were reported with jobs still pending (await-results, confirm)
	DataConfirm       = "confirm"             // "restarted" once confirm made its re-runs (confirm)
	DataConfirmed     = "confirm_reruns"      // how many new failures confirm re-ran (confirm)
	DataRerunsFinal   = "reruns_final_since"  // when every job, re-runs included, was first seen final (confirm)
	DataReport        = "report"              // the report's path in the archive, "<release>/<compose ID>" (check)
	DataProblem       = "problem"             // "true" when the report calls for attention (check)
	DataSummary       = "summary"             // the report's summary line (check)
	DataCounts        = "counts"              // the report's reports.Summary as JSON (check)
	DataMessageID     = "message_id"          // the Message-ID of the mail sent (report)
	DataMailNote      = "mail"                // why no mail was sent (report)
	DataReportedAt    = "reported_at"         // when the report stage ended, RFC 3339 (report)
)

// ErrPermanent marks a stage error that no retry can mend (a compose that
// does not exist, a mail server that refuses the sender): the workflow
// fails at once.
var ErrPermanent = errors.New("permanent failure")

// ErrStalled is wrapped when a compose did not complete within
// AwaitComplete.Timeout.
var ErrStalled = errors.New("compose stalled")

func permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// Compose runs the stages of composes: Run locates the compose and hands
// it to the named stage. It is the listener's stage runner.
type Compose struct {
	// Fedfind locates composes in the tree.
	Fedfind       *fedfind.Client
	Discover      Discover
	AwaitComplete AwaitComplete
	Schedule      Schedule
	AwaitResults  AwaitResults
	// Confirm's Check is set from Check when it runs.
	Confirm Confirm
	Check   Check
	Report  Report
	// Logger says when an event's location is not used; nil discards.
	Logger *slog.Logger
}

// Run runs one stage for one compose.
func (c *Compose) Run(ctx context.Context, stage Name, st State) (Outcome, error) {
	id, err := fedfind.ParseComposeID(st.ComposeID)
	if err != nil {
		return Outcome{}, permanent(err)
	}
	cm, err := c.locate(ctx, id, st)
	if err != nil {
		return Outcome{}, permanent(err)
	}
	switch stage {
	case StageDiscover:
		return c.Discover.Run(ctx, cm, st)
	case StageAwaitComplete:
		return c.AwaitComplete.Run(ctx, cm, st)
	case StageSchedule:
		return c.Schedule.Run(ctx, cm, st)
	case StageAwaitResults:
		return c.AwaitResults.Run(ctx, cm, st)
	case StageConfirm:
		conf := c.Confirm
		conf.Check = c.Check
		return conf.Run(ctx, cm, st)
	case StageCheck:
		return c.Check.Run(ctx, cm, st)
	case StageReport:
		return c.Report.Run(ctx, cm, st)
	}
	return Outcome{}, permanent(fmt.Errorf("unknown stage %q", stage))
}

// locate places the compose: where discover found it, else where the
// event said it is (Pungi's "location", which need not follow the layout
// Locate assumes), else by its ID under the compose root. A location is
// used only when it lies under the compose root and names this compose;
// otherwise it is logged and the ID places the compose. (A deployment
// reading a mirror of Fedora's tree gets Fedora's own URLs in the
// messages: the root it was given wins over them.)
func (c *Compose) locate(ctx context.Context, id fedfind.ComposeID, st State) (*fedfind.Compose, error) {
	root := c.Fedfind.Root() + "/"
	for _, loc := range []string{st.Data[DataLocation], st.Location} {
		if loc == "" {
			continue
		}
		if !strings.HasPrefix(loc, root) {
			logOrDiscard(c.Logger).Debug("compose location outside the compose root; placing the compose by its ID", "compose", id, "location", loc, "root", c.Fedfind.Root())
			continue
		}
		cm, err := c.Fedfind.FromURL(ctx, loc)
		if err == nil && cm.ID == id {
			return cm, nil
		}
		if err == nil {
			err = fmt.Errorf("it names %s", cm.ID)
		}
		logOrDiscard(c.Logger).Warn("compose location not used; placing the compose by its ID", "compose", id, "location", loc, "err", err)
	}
	return c.Fedfind.Locate(id)
}

// stamp formats a time for the workflow's data.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func logOrDiscard(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
