package stages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/reports"
)

// Report tells people and machines of the archived report: it mails it to
// the routing's recipients, delivers it to the routing's webhooks and
// publishes it to Fedora Messaging — each version of a report once per
// recipient list and endpoint, and to a `when = "change"` entry only when
// the stream changed since the previous compose. A doomed compose's report
// goes to the error lists too (it is a problem) and ends the workflow as
// doomed.
type Report struct {
	Archive reports.Store
	// Mailer and Routing send reports; a nil Mailer sends none.
	Mailer  *reports.Mailer
	Routing reports.Routing
	// Webhooks delivers to the routing's [[webhook]] entries; nil: none.
	Webhooks *reports.WebhookSender
	// Publisher publishes to Fedora Messaging; nil: none.
	Publisher Publisher
	// BaseURL is the public URL of composeci's web server, for the links
	// of webhook and Fedora Messaging notifications ("": the compose's
	// location only).
	BaseURL string
	Logger  *slog.Logger
}

// Publisher publishes a notification once per report version (package
// listener/fedmsg's Publisher).
type Publisher interface {
	PublishOnce(ctx context.Context, n reports.Notification) (reports.Delivery, bool, error)
	Endpoint() string
}

// Told is what Notify did.
type Told struct {
	// Change is how the stream changed since the previous compose.
	Change reports.Change
	// Mail is what happened to the mail.
	Mail Mailed
	// Webhooks delivered now, and already before (this version).
	Delivered, AlreadyDelivered int
	// Published is true when a message went to Fedora Messaging now;
	// AlreadyPublished when this version had gone before.
	Published, AlreadyPublished bool
}

// Mailed is what MailOnce did.
type Mailed struct {
	// To are the recipients (none: nothing to mail).
	To []string
	// MessageID of the mail sent now, or of the one sent before.
	MessageID string
	// Sent is true when mailed now; Update when it was a later version of
	// a report already mailed to them.
	Sent, Update bool
}

// MailOnce mails r to its recipients unless the archive's mail ledger shows
// this version of it (its ContentKey) already went to exactly them, and
// records the mail: what `composeci check --email` runs. A later version —
// the report issued again after re-runs changed its classification — is
// mailed as an update in reply to the first mail; a report checked again
// without any change is not mailed again. changed says whether the stream
// changed since the previous compose (entries with when = "change" hear
// only then). force sends even if the ledger has it.
func (s Report) MailOnce(ctx context.Context, r reports.Report, changed, force bool) (Mailed, error) {
	to := s.Routing.RecipientsWhen(r, changed)
	if len(to) == 0 {
		return Mailed{}, nil
	}
	first := s.Mailer.MessageID(r.ComposeID, to)
	version := reports.ContentKey(r)
	mails, err := s.Archive.MailsOf(ctx, r.ComposeID)
	if err != nil {
		return Mailed{To: to}, err
	}
	var issue reports.Issue
	interrupted := ""
	for _, m := range mails {
		if m.MessageID != first && m.InReplyTo != first {
			continue // another list of recipients
		}
		if m.State == reports.MailFailed {
			continue // nothing went out
		}
		if m.State == reports.MailSending {
			// The server may have this mail already: send it again under
			// the same Message-ID, which receivers drop as a duplicate.
			interrupted = m.MessageID
			continue
		}
		// A record without a version was written before versions were
		// kept: it counts as this version, never mailed twice.
		if (m.Version == version || m.Version == "") && !force {
			return Mailed{To: to, MessageID: m.MessageID}, nil
		}
		if m.Version != version {
			issue = s.Mailer.UpdateIssue(r.ComposeID, to, version)
		}
	}
	if interrupted != "" {
		logOrDiscard(s.Logger).WarnContext(ctx, "a send of this report did not complete (a crash, or a failure the server may have accepted); sending it again under the same Message-ID",
			"compose", r.ComposeID, "message_id", interrupted)
	}
	// Once the mail is on its way, a shutdown must not cut it between the
	// server's acceptance and the ledger: that would mail it again after
	// the restart. The mailer's own timeout bounds the wait.
	ctx = context.WithoutCancel(ctx)
	id := first
	if issue.Update() {
		id = issue.MessageID
	}
	rec := reports.MailRecord{MessageID: id, Recipients: to, SentAt: time.Now().UTC(), Version: version, InReplyTo: issue.InReplyTo, State: reports.MailSending}
	// The intent first: a crash from here on leaves a record that the mail
	// may be out, and the retry reuses its Message-ID.
	if err := s.Archive.RecordMail(ctx, r.ComposeID, rec); err != nil {
		return Mailed{To: to}, fmt.Errorf("recording the mail before sending it: %w", err)
	}
	m, err := s.Mailer.SendIssue(ctx, r, to, issue)
	if err != nil {
		if reports.NotDelivered(err) {
			// The server never took it: the next attempt is a first send.
			rec.State = reports.MailFailed
			if rerr := s.Archive.RecordMail(ctx, r.ComposeID, rec); rerr != nil {
				logOrDiscard(s.Logger).WarnContext(ctx, "recording a failed send", "compose", r.ComposeID, "err", rerr)
			}
		}
		return Mailed{To: to}, err // nothing known to have gone: no Message-ID to tell of
	}
	done := Mailed{To: to, MessageID: m.MessageID, Sent: true, Update: issue.Update()}
	rec.MessageID, rec.Recipients, rec.SentAt, rec.State = m.MessageID, m.Recipients, time.Now().UTC(), ""
	if err := s.Archive.RecordMail(ctx, r.ComposeID, rec); err != nil {
		return done, fmt.Errorf("mailed (Message-ID %s), but recording it failed: %w", m.MessageID, err)
	}
	return done, nil
}

// Change is how r's stream changed since its previous compose, whose
// archived report it compares with (none archived: a change).
func (s Report) Change(ctx context.Context, r reports.Report) (reports.Change, error) {
	var prev *reports.Report
	if r.PreviousComposeID != "" {
		p, err := s.Archive.Read(ctx, r.PreviousComposeID)
		switch {
		case err == nil:
			prev = &p
		case !errors.Is(err, reports.ErrNotFound):
			return reports.Change{}, err
		}
	}
	return reports.Changes(prev, r), nil
}

// Notify tells every channel of r: mail (with a Mailer), the routing's
// webhooks (with Webhooks) and Fedora Messaging (with a Publisher), each
// once per version of the report. The first error is returned after every
// channel was tried: one broken webhook does not keep the mail back.
func (s Report) Notify(ctx context.Context, r reports.Report, force bool) (Told, error) {
	ch, err := s.Change(ctx, r)
	if err != nil {
		return Told{}, err
	}
	told := Told{Change: ch}
	var errs []error
	if s.Mailer != nil {
		if told.Mail, err = s.MailOnce(ctx, r, ch.Changed(), force); err != nil {
			errs = append(errs, err)
		}
	}
	var n reports.Notification
	hooks := s.Routing.WebhooksFor(r, ch.Changed())
	if (s.Webhooks != nil && len(hooks) > 0) || s.Publisher != nil {
		n = reports.NewNotification(r, ch, reports.ReportLinks(s.BaseURL, r))
	}
	if s.Webhooks != nil {
		for _, w := range hooks {
			var sent bool
			if force {
				_, err = s.Webhooks.Send(ctx, w, n)
				sent = err == nil
			} else {
				_, sent, err = s.Webhooks.Deliver(ctx, w, n)
			}
			switch {
			case err != nil:
				errs = append(errs, err)
			case sent:
				told.Delivered++
			default:
				told.AlreadyDelivered++
			}
		}
	}
	if s.Publisher != nil {
		_, sent, err := s.Publisher.PublishOnce(ctx, n)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("publishing to %s: %w", s.Publisher.Endpoint(), err))
		case sent:
			told.Published = true
		default:
			told.AlreadyPublished = true
		}
	}
	return told, errors.Join(errs...)
}

// Run tells of the archived report and ends the workflow.
func (s Report) Run(ctx context.Context, cm *fedfind.Compose, _ State) (Outcome, error) {
	r, err := s.Archive.Read(ctx, cm.ID.String())
	if err != nil {
		return Outcome{}, err
	}
	end := Outcome{Advance: true, Data: map[string]string{DataReportedAt: stamp(time.Now())}}
	if r.Doomed != nil {
		end.Advance, end.End = false, EndDoomed
	}
	if s.Mailer == nil && s.Webhooks == nil && s.Publisher == nil {
		end.Note, end.Data[DataMailNote] = "report archived; no notification configured", "not configured"
		return end, nil
	}
	told, err := s.Notify(ctx, r, false)
	if told.Mail.Sent {
		logOrDiscard(s.Logger).InfoContext(ctx, "mailed the compose check report", "compose", cm.ID, "message_id", told.Mail.MessageID,
			"recipients", len(told.Mail.To), "update", told.Mail.Update)
	}
	if err != nil {
		if reports.Permanent(err) {
			return Outcome{}, permanent(err)
		}
		return Outcome{}, err
	}
	end.Note = told.String()
	if told.Mail.MessageID != "" {
		end.Data[DataMessageID] = told.Mail.MessageID
	}
	if s.Mailer != nil && len(told.Mail.To) == 0 {
		end.Data[DataMailNote] = "no recipients"
	}
	return end, nil
}

// String says what was told, for the workflow's history.
func (t Told) String() string {
	var parts []string
	switch {
	case t.Mail.Sent && t.Mail.Update:
		parts = append(parts, fmt.Sprintf("updated report mailed to %s", plural(len(t.Mail.To), "recipient", "recipients")))
	case t.Mail.Sent:
		parts = append(parts, fmt.Sprintf("report mailed to %s", plural(len(t.Mail.To), "recipient", "recipients")))
	case t.Mail.MessageID != "":
		parts = append(parts, "report already mailed")
	}
	if t.Delivered > 0 {
		parts = append(parts, plural(t.Delivered, "webhook", "webhooks")+" told")
	}
	if t.AlreadyDelivered > 0 {
		parts = append(parts, plural(t.AlreadyDelivered, "webhook", "webhooks")+" told before")
	}
	if t.Published {
		parts = append(parts, "published to Fedora Messaging")
	} else if t.AlreadyPublished {
		parts = append(parts, "published before")
	}
	if len(parts) == 0 {
		if t.Change.Changed() {
			return "report archived; the routing names nobody"
		}
		return "report archived; nothing changed since the previous compose, nobody to tell"
	}
	return strings.Join(parts, "; ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
