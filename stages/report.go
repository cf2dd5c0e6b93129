package stages

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/reports"
)

// Report mails the archived report once to its recipients. A doomed
// compose's report goes to the error lists too (it is a problem) and ends
// the workflow as doomed.
type Report struct {
	Archive reports.Archive
	// Mailer and Routing send reports; a nil Mailer sends none.
	Mailer  *reports.Mailer
	Routing reports.Routing
	Logger  *slog.Logger
}

// MailOnce mails r to its recipients unless the archive's mail ledger shows
// it already went to exactly them (same Message-ID), and records the mail:
// what `composeci check --email` runs. It reports the recipients, the
// Message-ID and whether the mail was sent now. With no recipients it sends
// nothing; force sends even if the ledger has it.
func (s Report) MailOnce(ctx context.Context, r reports.Report, force bool) (to []string, messageID string, sent bool, err error) {
	to = s.Routing.Recipients(r)
	if len(to) == 0 {
		return nil, "", false, nil
	}
	id := s.Mailer.MessageID(r.ComposeID, to)
	if _, ok, err := s.Archive.SentMail(ctx, r.ComposeID, id); err != nil {
		return to, id, false, err
	} else if ok && !force {
		return to, id, false, nil
	}
	// Once the mail is on its way, a shutdown must not cut it between the
	// server's acceptance and the ledger: that would mail it again after
	// the restart. The mailer's own timeout bounds the wait.
	ctx = context.WithoutCancel(ctx)
	m, err := s.Mailer.Send(ctx, r, to)
	if err != nil {
		return to, id, false, err
	}
	if err := s.Archive.RecordMail(ctx, r.ComposeID, reports.MailRecord{MessageID: m.MessageID, Recipients: m.Recipients, SentAt: time.Now().UTC()}); err != nil {
		return to, m.MessageID, true, fmt.Errorf("mailed (Message-ID %s), but recording it failed: %w", m.MessageID, err)
	}
	return to, m.MessageID, true, nil
}

// Run mails the archived report and ends the workflow.
func (s Report) Run(ctx context.Context, cm *fedfind.Compose, _ State) (Outcome, error) {
	r, err := s.Archive.Read(ctx, cm.ID.String())
	if err != nil {
		return Outcome{}, err
	}
	end := Outcome{Advance: true, Data: map[string]string{DataReportedAt: stamp(time.Now())}}
	if r.Doomed != nil {
		end.Advance, end.End = false, EndDoomed
	}
	if s.Mailer == nil {
		end.Note, end.Data[DataMailNote] = "report archived; mail not configured", "not configured"
		return end, nil
	}
	to, id, sent, err := s.MailOnce(ctx, r, false)
	switch {
	case err != nil && !sent && !reports.Retryable(err):
		return Outcome{}, permanent(err)
	case err != nil:
		return Outcome{}, err
	case len(to) == 0:
		end.Note, end.Data[DataMailNote] = "report archived; the routing names nobody", "no recipients"
		return end, nil
	case !sent:
		end.Note, end.Data[DataMessageID] = "report already mailed", id
		return end, nil
	}
	logOrDiscard(s.Logger).InfoContext(ctx, "mailed the compose check report", "compose", cm.ID, "message_id", id, "recipients", len(to))
	end.Note, end.Data[DataMessageID] = fmt.Sprintf("report mailed to %s", plural(len(to), "recipient", "recipients")), id
	return end, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
