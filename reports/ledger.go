package reports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"time"
)

// FileMailLedger is the file, beside a compose's report, that records the
// mails sent of it.
const FileMailLedger = "mail.json"

// MailRecord is one mail of a report that went out.
type MailRecord struct {
	MessageID  string    `json:"message_id"`
	Recipients []string  `json:"recipients"`
	SentAt     time.Time `json:"sent_at"`
	// Version is the ContentKey of the report mailed, so that a re-issued
	// report can be told from the one already mailed; "" in records
	// written before versions were kept.
	Version string `json:"version,omitempty"`
	// InReplyTo is, for an update (a later version mailed to the same
	// people), the Message-ID of the first mail: the thread it belongs to.
	InReplyTo string `json:"in_reply_to,omitempty"`
	// State is MailSending while the mail is being handed to the server
	// (recorded before, so that a crash leaves a trace), "" once the server
	// accepted it.
	State string `json:"state,omitempty"`
}

// MailSending marks the intent to send a mail, recorded before the SMTP
// server is asked: a record still in this state after a crash means the
// mail may or may not have reached the server.
const MailSending = "sending"

// MailFailed marks an intent whose send failed before the server could
// take the message (NotDelivered): nothing went out, and the next attempt
// is a first send, not a resend.
const MailFailed = "failed"

// MailsOf returns every mail recorded of a compose's report, oldest first.
func (a Archive) MailsOf(ctx context.Context, composeID string) ([]MailRecord, error) {
	l, err := a.readLedger(ctx, composeID)
	return l.Sent, err
}

// mailLedger is the content of FileMailLedger.
type mailLedger struct {
	ComposeID string       `json:"compose_id"`
	Sent      []MailRecord `json:"sent"`
}

// SentMail returns the mail of a compose's report already sent with this
// Message-ID (the deterministic MessageID of the compose and recipients),
// and whether there was one. A retried send checks it first, so a report
// is mailed once to one list of recipients however often check runs.
func (a Archive) SentMail(ctx context.Context, composeID, messageID string) (MailRecord, bool, error) {
	l, err := a.readLedger(ctx, composeID)
	if err != nil {
		return MailRecord{}, false, err
	}
	for _, s := range l.Sent {
		if s.MessageID == messageID {
			return s, true, nil
		}
	}
	return MailRecord{}, false, nil
}

// RecordMail notes that a compose's report was mailed. The ledger is
// rewritten atomically under the archive's lock.
func (a Archive) RecordMail(ctx context.Context, composeID string, rec MailRecord) error {
	return a.rewriteLedger(ctx, composeID, FileMailLedger, func() (any, error) {
		l, err := a.readLedger(ctx, composeID)
		if err != nil {
			return nil, err
		}
		l.ComposeID = composeID
		l.Sent = slices.DeleteFunc(l.Sent, func(s MailRecord) bool { return s.MessageID == rec.MessageID })
		l.Sent = append(l.Sent, rec)
		return l, nil
	})
}

// rewriteLedger rewrites the ledger file name beside a compose's report
// under the file's own lock: edit reads the ledger and returns it changed,
// and it is written atomically, so two processes recording at once both
// land.
func (a Archive) rewriteLedger(ctx context.Context, composeID, name string, edit func() (any, error)) error {
	_, _, dir, err := a.location(composeID)
	if err != nil {
		return err
	}
	root, err := a.openRoot(true)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	unlock, err := lockExclusive(ctx, root, path.Join(dir, name+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	v, err := edit()
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return writeAtomic(root, path.Join(dir, name), append(b, '\n'))
}

func (a Archive) readLedger(ctx context.Context, composeID string) (mailLedger, error) {
	_, _, dir, err := a.location(composeID)
	if err != nil {
		return mailLedger{}, err
	}
	if err := ctx.Err(); err != nil {
		return mailLedger{}, err
	}
	root, err := a.openRoot(false)
	if errors.Is(err, ErrNotFound) {
		return mailLedger{}, nil
	}
	if err != nil {
		return mailLedger{}, err
	}
	defer root.Close()
	b, err := root.ReadFile(path.Join(dir, FileMailLedger))
	if errors.Is(err, fs.ErrNotExist) {
		return mailLedger{}, nil
	}
	if err != nil {
		return mailLedger{}, fmt.Errorf("archive: %w", err)
	}
	var l mailLedger
	if err := json.Unmarshal(b, &l); err != nil {
		return mailLedger{}, fmt.Errorf("archive: %s/%s: %w", dir, FileMailLedger, err)
	}
	return l, nil
}
