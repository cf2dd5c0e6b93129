package fedmsg

// This file is the Fedora Messaging publisher: one message per version of a
// compose's report, in the wire format Fedora's publishers use
// (docs/protocols.md, section (f); docs/messages.md), confirmed by the
// broker, recorded in a delivery ledger.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/redact"
	"github.com/composeci/composeci/reports"
)

// What composeci publishes.
const (
	// DefaultTopicPrefix is the production prefix of Fedora's topics.
	DefaultTopicPrefix = "org.fedoraproject.prod"
	// TopicComposeCheckComplete is the topic of a compose check report,
	// after the prefix and a dot.
	TopicComposeCheckComplete = "composeci." + reports.EventComposeCheckComplete
	// SchemaComposeCheckComplete is the fedora_messaging_schema header: the
	// name a Python schema package would register the body's schema
	// under (docs/messages.schema.json is that schema).
	SchemaComposeCheckComplete = "composeci.compose.check.complete.v1"
)

// Fedora Messaging's severities (fedora_messaging_severity).
const (
	SeverityInfo    = 20
	SeverityWarning = 30
)

// ErrNotConfirmed is wrapped when the broker nacked a message, or did not
// confirm it within PublisherConfig.ConfirmTimeout. The message may or may
// not be in the broker: a retry publishes it again under the same
// message_id.
var ErrNotConfirmed = errors.New("the broker did not confirm the message")

// PublisherConfig configures a Publisher. The zero value of each field but
// URL takes the default it names.
type PublisherConfig struct {
	// URL of the broker, amqps://… or amqp://…, with user, password and
	// vhost. Required. It is never logged with its password.
	URL string
	// CACert, Cert and Key are PEM files for TLS, as in Config: used only
	// with amqps:// URLs; with Cert and Key the client authenticates with
	// SASL EXTERNAL.
	CACert, Cert, Key string
	// Exchange is published to; default "amq.topic". It is not declared:
	// it must exist.
	Exchange string
	// TopicPrefix goes before TopicComposeCheckComplete, joined by a dot;
	// default DefaultTopicPrefix ("org.fedoraproject.stg" on staging).
	TopicPrefix string
	// App and AppURL are announced in the connection's client_properties;
	// defaults "composeci" and the project's URL.
	App, AppURL string
	// DialTimeout bounds the TCP, TLS and AMQP handshakes; default 30 s.
	DialTimeout time.Duration
	// ConfirmTimeout bounds the wait for the broker's confirm; default 30 s.
	ConfirmTimeout time.Duration
	// Clock stamps sent-at and the ledger; default time.Now.
	Clock func() time.Time
}

// Publisher publishes compose check notifications to a Fedora Messaging
// (AMQP 0-9-1) broker with publisher confirms, each report version once. It
// connects on first use and again after its connection is lost. Its
// methods are safe for concurrent use; publications go one at a time.
type Publisher struct {
	cfg      PublisherConfig
	topic    string
	endpoint string // broker, exchange and topic, without credentials
	tls      *tls.Config
	sasl     bool
	ledger   reports.Deliveries
	log      *slog.Logger

	mu     sync.Mutex
	conn   *amqp.Connection
	ch     *amqp.Channel
	closed chan *amqp.Error // ch's NotifyClose

	published, failed atomic.Int64
}

// NewPublisher checks cfg and loads the TLS files; it does no network I/O.
// ledger records what was published (usually the report Archive); nil is
// allowed for Publish alone. A nil log discards.
func NewPublisher(cfg PublisherConfig, ledger reports.Deliveries, log *slog.Logger) (*Publisher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.URL == "" {
		return nil, fmt.Errorf("%w: AMQP publish URL missing", fedfind.ErrInvalidInput)
	}
	uri, err := amqp.ParseURI(cfg.URL)
	if err != nil {
		// The parse error may quote the URL, password and all.
		return nil, fmt.Errorf("%w: AMQP publish URL: %s", fedfind.ErrInvalidInput, strings.ReplaceAll(err.Error(), cfg.URL, redact.URL(cfg.URL)))
	}
	def := DefaultConfig()
	setDefault(&cfg.Exchange, def.Exchange)
	setDefault(&cfg.TopicPrefix, DefaultTopicPrefix)
	setDefault(&cfg.App, def.App)
	setDefault(&cfg.AppURL, def.AppURL)
	setDefault(&cfg.DialTimeout, def.DialTimeout)
	setDefault(&cfg.ConfirmTimeout, 30*time.Second)
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	prefix := strings.Trim(cfg.TopicPrefix, ".")
	if prefix == "" || strings.ContainsAny(prefix, "*# \t\r\n") {
		return nil, fmt.Errorf("%w: topic prefix %q", fedfind.ErrInvalidInput, cfg.TopicPrefix)
	}
	p := &Publisher{cfg: cfg, topic: prefix + "." + TopicComposeCheckComplete, ledger: ledger, log: log}
	p.endpoint = fmt.Sprintf("%s://%s/%s %s %s", uri.Scheme, net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port)), uri.Vhost, cfg.Exchange, p.topic)
	if uri.Scheme == "amqps" {
		if p.tls, err = tlsConfig(Config{CACert: cfg.CACert, Cert: cfg.Cert, Key: cfg.Key}); err != nil {
			return nil, err
		}
		p.sasl = cfg.Cert != ""
	}
	return p, nil
}

// Topic returns the routing key of every message: the prefix, a dot and
// TopicComposeCheckComplete.
func (p *Publisher) Topic() string { return p.topic }

// Endpoint names where messages go, for logs and the ledger: the broker's
// scheme, host, port and vhost (no user or password), the exchange and the
// topic.
func (p *Publisher) Endpoint() string { return p.endpoint }

// MessageID returns the message_id of n's message: DeliveryID over the
// endpoint, the compose and the report version. It is deterministic, so a
// message published again after a crash between the broker's confirm and
// the ledger carries the same id, and consumers that remember ids drop it;
// it has a version 4 UUID's form, which fedora-messaging requires.
func (p *Publisher) MessageID(n reports.Notification) string {
	return reports.DeliveryID(reports.ChannelAMQP, p.endpoint, n.ComposeID, n.Version)
}

// Stats counts what Publish did: messages the broker confirmed, and
// attempts that failed.
func (p *Publisher) Stats() (published, failed int64) { return p.published.Load(), p.failed.Load() }

// Message builds n's AMQP message as fedora-messaging does: JSON body,
// content_type application/json, content_encoding utf-8, persistent
// delivery, the deterministic message_id, and the headers
// fedora_messaging_schema, fedora_messaging_severity (WARNING for a report
// with a problem, INFO otherwise), sent-at (ISO 8601, UTC, whole seconds,
// "+00:00") and priority 0 (fedora-messaging mirrors the priority there).
// No fedora_messaging_schema_package header is sent: there is no Python
// package of the schema to name.
func (p *Publisher) Message(n reports.Notification, now time.Time) (amqp.Publishing, error) {
	body, err := n.JSON()
	if err != nil {
		return amqp.Publishing{}, err
	}
	severity := SeverityInfo
	if n.Problem {
		severity = SeverityWarning
	}
	return amqp.Publishing{
		ContentType:     "application/json",
		ContentEncoding: "utf-8",
		DeliveryMode:    amqp.Persistent,
		MessageId:       p.MessageID(n),
		Headers: amqp.Table{
			"fedora_messaging_schema":   SchemaComposeCheckComplete,
			"fedora_messaging_severity": int32(severity),
			"sent-at":                   now.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05") + "+00:00",
			"priority":                  int32(0),
		},
		Body: body,
	}, nil
}

// PublishOnce publishes n unless the ledger shows this version already
// went to this endpoint, and records it once the broker confirmed it. It
// returns the delivery (the earlier one when nothing was published) and
// whether it was published now.
//
// The one window left: a crash after the broker's confirm and before the
// record. The next attempt publishes the message again, with the same
// message_id. A failure to record returns published true with the error.
func (p *Publisher) PublishOnce(ctx context.Context, n reports.Notification) (reports.Delivery, bool, error) {
	if p.ledger == nil {
		return reports.Delivery{}, false, errors.New("fedmsg: publish: no delivery ledger")
	}
	id := p.MessageID(n)
	if d, ok, err := p.ledger.Delivered(ctx, n.ComposeID, id); err != nil {
		return reports.Delivery{}, false, fmt.Errorf("fedmsg: publish: %w", err)
	} else if ok {
		return d, false, nil
	}
	d, err := p.Publish(ctx, n)
	if err != nil {
		return reports.Delivery{}, false, err
	}
	if err := p.ledger.RecordDelivery(context.WithoutCancel(ctx), n.ComposeID, d); err != nil {
		return d, true, fmt.Errorf("fedmsg: published %s (message_id %s), but recording it failed: %w", n.ComposeID, d.ID, err)
	}
	return d, true, nil
}

// Publish publishes n whatever the ledger says and waits for the broker's
// confirm. ctx bounds connecting and sending; once the message is sent,
// the wait for its confirm is bounded by ConfirmTimeout alone, so that a
// shutdown does not leave a confirmed message unrecorded. A nack or no
// confirm in time wraps ErrNotConfirmed.
func (p *Publisher) Publish(ctx context.Context, n reports.Notification) (reports.Delivery, error) {
	now := p.cfg.Clock()
	msg, err := p.Message(n, now)
	if err != nil {
		return reports.Delivery{}, err
	}
	d := reports.Delivery{ID: msg.MessageId, Channel: reports.ChannelAMQP, Endpoint: p.endpoint, Version: n.Version, Attempts: 1}
	if err := p.publish(ctx, msg); err != nil {
		p.failed.Add(1)
		p.log.WarnContext(ctx, "publishing the compose check message failed", "compose", n.ComposeID, "topic", p.topic,
			"message_id", d.ID, "broker", redact.URL(p.cfg.URL), "err", err)
		return reports.Delivery{}, fmt.Errorf("fedmsg: publish %s of %s: %w", p.topic, n.ComposeID, err)
	}
	p.published.Add(1)
	d.DeliveredAt = p.cfg.Clock().UTC().Truncate(time.Second)
	p.log.InfoContext(ctx, "published the compose check message", "compose", n.ComposeID, "topic", p.topic,
		"message_id", d.ID, "version", n.Version)
	return d, nil
}

// publish sends one message on the confirm-mode channel and waits for its
// confirm. A failure drops the connection, so the next publish starts on a
// fresh one.
func (p *Publisher) publish(ctx context.Context, msg amqp.Publishing) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch, err := p.channel(ctx)
	if err != nil {
		return err
	}
	// mandatory false: a message no queue is bound for is the
	// subscribers' business, and the broker confirms it all the same.
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, p.cfg.Exchange, p.topic, false, false, msg)
	if err != nil {
		p.reset()
		return err
	}
	wait, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.ConfirmTimeout)
	defer cancel()
	ok, err := dc.WaitContext(wait)
	switch {
	case err != nil:
		p.reset()
		return fmt.Errorf("%w: no confirm within %s: %w", ErrNotConfirmed, p.cfg.ConfirmTimeout, err)
	case !ok:
		// A nack, or the channel closed before the confirm (an exchange
		// that does not exist closes it): then start afresh next time.
		if !ch.IsClosed() {
			return fmt.Errorf("%w: the broker nacked it", ErrNotConfirmed)
		}
		cause := "the channel closed before the confirm"
		if cerr := p.closeReason(); cerr != nil {
			cause += ": " + cerr.Error()
		}
		p.reset()
		return fmt.Errorf("%w: %s", ErrNotConfirmed, cause)
	}
	return nil
}

// channel returns the open confirm-mode channel, connecting if needed.
// p.mu is held.
func (p *Publisher) channel(ctx context.Context) (*amqp.Channel, error) {
	if p.ch != nil && !p.ch.IsClosed() && p.conn != nil && !p.conn.IsClosed() {
		return p.ch, nil
	}
	p.reset()
	conn, err := p.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", redact.URL(p.cfg.URL), err)
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("opening a channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		conn.Close()
		return nil, fmt.Errorf("confirm mode: %w", err)
	}
	p.conn, p.ch = conn, ch
	p.closed = ch.NotifyClose(make(chan *amqp.Error, 1))
	return ch, nil
}

// closeReason returns why the channel closed, if the broker said.
func (p *Publisher) closeReason() error {
	select {
	case e, ok := <-p.closed:
		if ok && e != nil {
			return e
		}
	default:
	}
	return nil
}

// reset closes the connection, if any. p.mu is held.
func (p *Publisher) reset() {
	if p.conn != nil && !p.conn.IsClosed() {
		_ = p.conn.Close()
	}
	p.conn, p.ch, p.closed = nil, nil, nil
}

// dial connects with the configured TLS and SASL, announcing the app.
func (p *Publisher) dial(ctx context.Context) (*amqp.Connection, error) {
	timeout := p.cfg.DialTimeout
	props := amqp.NewConnectionProperties()
	props["app"] = p.cfg.App
	props["app_url"] = p.cfg.AppURL
	props.SetClientConnectionName(p.cfg.App + " publisher")
	cfg := amqp.Config{
		Properties: props,
		Locale:     "en_US",
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: timeout}
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Until the handshake ends (the library then clears it).
			if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
				conn.Close()
				return nil, err
			}
			return conn, nil
		},
	}
	if p.tls != nil {
		cfg.TLSClientConfig = p.tls.Clone()
	}
	if p.sasl {
		cfg.SASL = []amqp.Authentication{&amqp.ExternalAuth{}}
	}
	conn, err := amqp.DialConfig(p.cfg.URL, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return conn, nil
}

// Close closes the publisher's connection. A later publish connects again.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var err error
	if p.conn != nil && !p.conn.IsClosed() {
		err = p.conn.Close()
	}
	p.conn, p.ch, p.closed = nil, nil, nil
	if errors.Is(err, amqp.ErrClosed) {
		err = nil
	}
	return err
}
