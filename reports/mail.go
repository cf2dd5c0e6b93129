package reports

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/composeci/composeci/fedfind"
)

// Secret is a string that never prints: %v, %s, slog and JSON all show
// "REDACTED". The SMTP password is one, so that logging a MailConfig is
// harmless.
type Secret string

// String returns "REDACTED" (or "" for an empty secret).
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// GoString keeps %#v from printing the secret.
func (s Secret) GoString() string { return `reports.Secret("` + s.String() + `")` }

// LogValue keeps slog from printing the secret.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps encoders from printing the secret.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// The TLS policies of MailConfig.TLS.
const (
	// TLSStartTLS requires STARTTLS: a server that does not offer it, or a
	// certificate that does not verify, fails the send. The default.
	TLSStartTLS = "starttls"
	// TLSOpportunistic uses STARTTLS when the server offers it and sends in
	// clear text otherwise.
	TLSOpportunistic = "opportunistic"
	// TLSNone never uses TLS (a relay on localhost).
	TLSNone = "none"
)

// MailConfig configures a Mailer. Its TOML keys match the CLI's [smtp]
// table.
type MailConfig struct {
	// Host and Port are the SMTP server; Port defaults to 25.
	Host string `toml:"host"`
	Port int    `toml:"port"`
	// TLS is the TLS policy: starttls (default), opportunistic or none.
	TLS string `toml:"tls"`
	// Username enables SMTP AUTH. The password comes from Password, else
	// the file PasswordFile (trailing newline dropped), else the
	// environment variable named by PasswordEnv.
	Username     string `toml:"username"`
	Password     Secret `toml:"password"`
	PasswordFile string `toml:"password-file"`
	PasswordEnv  string `toml:"password-env"`
	// Auth is the SASL mechanism: plain (default), login, cram-md5,
	// scram-sha-256 or auto (the strongest the server offers). PLAIN and
	// LOGIN refuse to send a password unencrypted except to localhost.
	Auth string `toml:"auth"`
	// From is the sender address, required.
	From string `toml:"from"`
	// Timeout bounds connecting and each SMTP command; default 30s.
	Timeout time.Duration `toml:"timeout"`
	// HELO is the name given in EHLO; default the local host name.
	HELO string `toml:"helo"`
	// CAFile adds PEM CA certificates to the system pool to verify the
	// server with.
	CAFile string `toml:"ca-file"`
	// MessageIDDomain is the right-hand side of Message-IDs; default
	// "composeci".
	MessageIDDomain string `toml:"message-id-domain"`
	// TLSConfig, when set, is used as is for STARTTLS (tests, or callers
	// with their own trust store); its ServerName defaults to Host.
	TLSConfig *tls.Config `toml:"-"`
	// Clock stamps the Date header; nil means time.Now. Golden tests fix it.
	Clock func() time.Time `toml:"-"`
}

// ErrNoRecipients is returned by Send when there is nobody to mail.
var ErrNoRecipients = errors.New("no recipients")

// ErrNoStartTLS is wrapped by Send's error when the TLS policy is starttls
// and the server does not offer STARTTLS, as a plain local relay does not.
// It is Permanent: the configuration must change.
var ErrNoStartTLS = errors.New("the server does not offer STARTTLS, which --smtp-tls starttls (the default) requires; for a local relay without TLS, use --smtp-tls none (or opportunistic)")

// Mailer mails compose check reports.
type Mailer struct {
	cfg      MailConfig
	password string
	tls      *tls.Config
	auth     mail.SMTPAuthType
	policy   mail.TLSPolicy
	render   *Renderer
	log      *slog.Logger
	// boundary fixes the MIME boundary for golden tests; "" lets go-mail
	// draw a random one.
	boundary string
	// sent and failed count Send's outcomes, for metrics.
	sent, failed atomic.Int64
}

// NewMailer checks cfg, reads the password and parses the templates. The
// logger receives one line per message sent (never the password); nil
// discards.
func NewMailer(cfg MailConfig, logger *slog.Logger) (*Mailer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Host == "" {
		return nil, fmt.Errorf("%w: mail: no SMTP host", fedfind.ErrInvalidInput)
	}
	if cfg.From == "" {
		return nil, fmt.Errorf("%w: mail: no sender address", fedfind.ErrInvalidInput)
	}
	from, err := NormalizeAddresses([]string{cfg.From})
	if err != nil {
		return nil, fmt.Errorf("mail: from: %w", err)
	}
	cfg.From = from[0]
	if cfg.Port == 0 {
		cfg.Port = 25
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("%w: mail: port %d", fedfind.ErrInvalidInput, cfg.Port)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MessageIDDomain == "" {
		cfg.MessageIDDomain = "composeci"
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	m := &Mailer{cfg: cfg, log: logger}
	switch strings.ToLower(cfg.TLS) {
	case "", TLSStartTLS:
		m.policy = mail.TLSMandatory
	case TLSOpportunistic:
		m.policy = mail.TLSOpportunistic
	case TLSNone:
		m.policy = mail.NoTLS
	default:
		return nil, fmt.Errorf("%w: mail: TLS policy %q (want starttls, opportunistic or none)", fedfind.ErrInvalidInput, cfg.TLS)
	}
	if cfg.Username != "" {
		switch strings.ToLower(cfg.Auth) {
		case "", "plain":
			m.auth = mail.SMTPAuthPlain
		case "login":
			m.auth = mail.SMTPAuthLogin
		case "cram-md5":
			m.auth = mail.SMTPAuthCramMD5
		case "scram-sha-256":
			m.auth = mail.SMTPAuthSCRAMSHA256
		case "auto":
			m.auth = mail.SMTPAuthAutoDiscover
		default:
			return nil, fmt.Errorf("%w: mail: auth %q (want plain, login, cram-md5, scram-sha-256 or auto)", fedfind.ErrInvalidInput, cfg.Auth)
		}
		if m.password, err = cfg.readPassword(); err != nil {
			return nil, err
		}
	}
	if m.tls, err = cfg.tlsConfig(); err != nil {
		return nil, err
	}
	if m.render, err = NewRenderer(); err != nil {
		return nil, err
	}
	return m, nil
}

// readPassword finds the password; its errors never quote it.
func (c MailConfig) readPassword() (string, error) {
	switch {
	case c.Password != "":
		return string(c.Password), nil
	case c.PasswordFile != "":
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("mail: reading password file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case c.PasswordEnv != "":
		if v, ok := os.LookupEnv(c.PasswordEnv); ok {
			return v, nil
		}
		return "", fmt.Errorf("%w: mail: password variable %s is not set", fedfind.ErrInvalidInput, c.PasswordEnv)
	}
	return "", fmt.Errorf("%w: mail: username %q given without a password, password file or password variable", fedfind.ErrInvalidInput, c.Username)
}

func (c MailConfig) tlsConfig() (*tls.Config, error) {
	if c.TLSConfig != nil {
		t := c.TLSConfig.Clone()
		if t.ServerName == "" {
			t.ServerName = c.Host
		}
		return t, nil
	}
	t := &tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mail: CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: mail: no PEM certificates in %s", fedfind.ErrInvalidInput, c.CAFile)
		}
		t.RootCAs = pool
	}
	return t, nil
}

// MessageID returns the Message-ID of the report of a compose sent to a
// set of recipients (without angle brackets): the first 16 hex digits of a
// SHA-256 over the compose ID and the recipients (distinct, sorted
// case-insensitively by address), then the compose ID, @domain. A retried
// send of the same report to the same people carries the same ID, so
// receivers and archives recognise the duplicate; a different recipient set
// gets a different ID.
func MessageID(composeID string, to []string, domain string) string {
	if domain == "" {
		domain = "composeci"
	}
	keys := make([]string, 0, len(to))
	for _, a := range merge(to) {
		keys = append(keys, addrKey(a))
	}
	sum := sha256.Sum256([]byte(composeID + "\n" + strings.Join(keys, "\n")))
	return hex.EncodeToString(sum[:8]) + "." + composeID + "@" + domain
}

// UpdateMessageID returns the Message-ID of a later version of a report
// mailed to the same recipients: like MessageID, over the version (the
// report's ContentKey) too, and naming the version's first 8 digits. The
// same update retried carries the same ID.
func UpdateMessageID(composeID string, to []string, version, domain string) string {
	if domain == "" {
		domain = "composeci"
	}
	keys := make([]string, 0, len(to))
	for _, a := range merge(to) {
		keys = append(keys, addrKey(a))
	}
	sum := sha256.Sum256([]byte(composeID + "\n" + strings.Join(keys, "\n") + "\nversion " + version))
	return hex.EncodeToString(sum[:8]) + ".v" + version[:min(8, len(version))] + "." + composeID + "@" + domain
}

// Issue says which mail of a report's thread a message is: the zero value
// is the first; an update has its own Message-ID and replies to the first,
// so mail clients show them together.
type Issue struct {
	// MessageID of the update; "" for the first mail.
	MessageID string
	// InReplyTo is the first mail's Message-ID.
	InReplyTo string
}

// Update reports whether the issue is an update of a mailed report.
func (i Issue) Update() bool { return i.MessageID != "" }

// UpdateIssue is the issue of version of a report of composeID mailed to
// to again, in reply to the first mail.
func (m *Mailer) UpdateIssue(composeID string, to []string, version string) Issue {
	rcpts, err := NormalizeAddresses(to)
	if err != nil {
		rcpts = to
	}
	return Issue{MessageID: UpdateMessageID(composeID, rcpts, version, m.cfg.MessageIDDomain),
		InReplyTo: MessageID(composeID, rcpts, m.cfg.MessageIDDomain)}
}

// MessageID is the Message-ID this mailer gives the report of composeID to
// the recipients to (see the function MessageID).
func (m *Mailer) MessageID(composeID string, to []string) string {
	rcpts, err := NormalizeAddresses(to)
	if err != nil {
		rcpts = to
	}
	return MessageID(composeID, rcpts, m.cfg.MessageIDDomain)
}

// Message builds the email of r to the given recipients: multipart/
// alternative with the text report first and the HTML report second (mail
// clients show the last part they can), a deterministic Message-ID, and
// Auto-Submitted so that vacation responders stay quiet.
func (m *Mailer) Message(r Report, to []string) (*mail.Msg, error) {
	return m.IssueMessage(r, to, Issue{})
}

// IssueMessage builds the email of one issue of r: an update's subject
// says so, and it replies to the first mail.
func (m *Mailer) IssueMessage(r Report, to []string, issue Issue) (*mail.Msg, error) {
	rcpts, err := NormalizeAddresses(to)
	if err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	if len(rcpts) == 0 {
		return nil, ErrNoRecipients
	}
	if _, err := fedfind.ParseComposeID(r.ComposeID); err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	var text, html bytes.Buffer
	if err := m.render.Text(&text, r); err != nil {
		return nil, err
	}
	if err := m.render.HTML(&html, r); err != nil {
		return nil, err
	}
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := msg.From(m.cfg.From); err != nil {
		return nil, fmt.Errorf("mail: from: %w", err)
	}
	if err := msg.To(rcpts...); err != nil {
		return nil, fmt.Errorf("mail: to: %w", err)
	}
	if issue.Update() {
		msg.Subject(Subject(r) + " [updated]")
		msg.SetMessageIDWithValue(issue.MessageID)
		msg.SetGenHeader(mail.HeaderInReplyTo, "<"+issue.InReplyTo+">")
		msg.SetGenHeader(mail.HeaderReferences, "<"+issue.InReplyTo+">")
	} else {
		msg.Subject(Subject(r))
		msg.SetMessageIDWithValue(MessageID(r.ComposeID, rcpts, m.cfg.MessageIDDomain))
	}
	msg.SetDateWithValue(m.cfg.Clock())
	msg.SetUserAgent("composeci")
	msg.SetGenHeader(mail.Header("Auto-Submitted"), "auto-generated")
	msg.SetGenHeader(mail.Header("X-Composeci-Compose"), r.ComposeID)
	problem := "no"
	if r.Problem {
		problem = "yes"
	}
	msg.SetGenHeader(mail.Header("X-Composeci-Problem"), problem)
	msg.SetBodyString(mail.TypeTextPlain, text.String())
	msg.AddAlternativeString(mail.TypeTextHTML, html.String())
	if m.boundary != "" {
		msg.SetBoundary(m.boundary)
	}
	return msg, nil
}

// WriteMessage writes the email of r as it would be sent, for a dry run.
func (m *Mailer) WriteMessage(w io.Writer, r Report, to []string) error {
	msg, err := m.Message(r, to)
	if err != nil {
		return err
	}
	if _, err := msg.WriteTo(w); err != nil {
		return fmt.Errorf("mail: writing message: %w", err)
	}
	return nil
}

// Sent describes a sent report.
type Sent struct {
	MessageID  string
	Recipients []string
}

// Send mails r to the recipients (usually Routing.Recipients(r)). With no
// recipients it sends nothing and returns ErrNoRecipients. Whether an error
// is worth retrying is Retryable's to say.
func (m *Mailer) Send(ctx context.Context, r Report, to []string) (Sent, error) {
	return m.SendIssue(ctx, r, to, Issue{})
}

// SendIssue mails one issue of r (see Issue): the first, or an update.
func (m *Mailer) SendIssue(ctx context.Context, r Report, to []string, issue Issue) (Sent, error) {
	msg, err := m.IssueMessage(r, to, issue)
	if err != nil {
		return Sent{}, err
	}
	rcpts, _ := NormalizeAddresses(to) // Message checked them
	sent := Sent{MessageID: MessageID(r.ComposeID, rcpts, m.cfg.MessageIDDomain), Recipients: rcpts}
	if issue.Update() {
		sent.MessageID = issue.MessageID
	}
	// WithTLSPolicy, not WithTLSPortPolicy: the latter picks ports and
	// falls back to clear text on port 25 by itself.
	opts := []mail.Option{
		mail.WithPort(m.cfg.Port),
		mail.WithTLSPolicy(m.policy),
		mail.WithTLSConfig(m.tls),
		mail.WithTimeout(m.cfg.Timeout),
	}
	if m.cfg.HELO != "" {
		opts = append(opts, mail.WithHELO(m.cfg.HELO))
	}
	if m.cfg.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(m.auth), mail.WithUsername(m.cfg.Username), mail.WithPassword(m.password))
	}
	client, err := mail.NewClient(m.cfg.Host, opts...)
	if err != nil {
		return Sent{}, fmt.Errorf("mail: %w", err)
	}
	server := m.Server()
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		m.failed.Add(1)
		// The caller reports the error (the CLI in one line, the pipeline
		// in the stage's outcome): a log record here would say it twice.
		m.log.DebugContext(ctx, "mailing compose check report failed", "compose", r.ComposeID,
			"message_id", sent.MessageID, "smtp", server, "err", err)
		if m.policy == mail.TLSMandatory && noStartTLS(err) {
			err = ErrNoStartTLS
		}
		return Sent{}, fmt.Errorf("mail: sending the report of %s via %s: %w", r.ComposeID, server, err)
	}
	m.sent.Add(1)
	m.log.InfoContext(ctx, "mailed compose check report", "compose", r.ComposeID, "message_id", sent.MessageID,
		"recipients", strings.Join(rcpts, ", "), "smtp", server)
	return sent, nil
}

// Server is the SMTP server as configured, HOST:PORT.
func (m *Mailer) Server() string { return net.JoinHostPort(m.cfg.Host, strconv.Itoa(m.cfg.Port)) }

// noStartTLS recognises go-mail's refusal to go on without the STARTTLS
// its TLSMandatory policy requires. go-mail (v0.8) makes it a plain error,
// so its words are all there is to go by; TestSendStartTLSFailures holds
// them to a server that really offers no STARTTLS.
func noStartTLS(err error) bool {
	return strings.Contains(err.Error(), "does not support STARTTLS")
}

// Stats counts what Send did: mails the server accepted, and attempts that
// failed.
func (m *Mailer) Stats() (sent, failed int64) { return m.sent.Load(), m.failed.Load() }

// Permanent reports whether a notification error needs a person: an
// address or a configuration that is wrong, an SMTP server that refuses
// for good, a webhook that rejects the delivery. Other errors (a network
// that failed, a server that was busy) may go away by themselves.
func Permanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrNoRecipients) || errors.Is(err, fedfind.ErrInvalidInput) || errors.Is(err, ErrWebhookRejected) ||
		errors.Is(err, ErrNoStartTLS) {
		return true
	}
	var se *mail.SendError
	return errors.As(err, &se) && !se.IsTemp()
}

// NotDelivered reports whether a Send error proves the server never took
// the message: the connection, the TLS handshake or the envelope (MAIL
// FROM, RCPT TO, DATA) failed before the message's end was sent. Any other
// failure — the end of DATA, a timeout after it, an error of unknown kind
// — may come after the server accepted it.
func NotDelivered(err error) bool {
	if err == nil {
		return false
	}
	var se *mail.SendError
	if errors.As(err, &se) {
		switch se.Reason {
		case mail.ErrGetSender, mail.ErrGetRcpts, mail.ErrSMTPMailFrom, mail.ErrSMTPRcptTo, mail.ErrSMTPData, mail.ErrConnCheck, mail.ErrNoUnencoded:
			return true
		}
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, ErrNoStartTLS) || errors.Is(err, ErrNoRecipients) || errors.Is(err, fedfind.ErrInvalidInput)
}

// Retryable reports whether a Send error may go away by itself: a network
// failure or a temporary (4xx) SMTP answer. A refused address, failed
// authentication or a certificate that does not verify will not.
func Retryable(err error) bool {
	if Permanent(err) {
		return false
	}
	if err == nil || errors.Is(err, ErrNoRecipients) || errors.Is(err, fedfind.ErrInvalidInput) {
		return false
	}
	var se *mail.SendError
	if errors.As(err, &se) {
		return se.IsTemp()
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}
