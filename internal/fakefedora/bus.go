package fakefedora

// This file is the simulated Fedora Messaging bus: a publisher that sends
// messages to a real RabbitMQ exchange in the wire format Fedora's
// publishers use (docs/protocols.md, section (f)), so a consumer
// tested against it meets the real properties, headers and bodies:
//
//   - properties: content_type application/json, content_encoding utf-8,
//     delivery_mode 2 (persistent), message_id a random UUID;
//   - headers: fedora_messaging_schema "base.message" (Pungi and openQA
//     messages have no schema package), fedora_messaging_severity 20 (INFO),
//     sent-at in ISO 8601 without microseconds, "+00:00" as Python writes it
//     or "Z" as Fedora's openQA plugin does;
//   - routing key: the topic, with the org.fedoraproject.prod. prefix;
//   - body: a UTF-8 JSON object.
//
// Every publish waits for the broker's publisher confirm, so a message is
// in the exchange's bound queues when Publish returns. It never imports the
// listener: if the consumer and the fake shared code, a misunderstanding of
// the wire format would pass in both.

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/composeci/composeci/fedfind"
)

// Fedora Messaging topics the bus publishes (AMQP routing keys).
const (
	BusTopicPrefix        = "org.fedoraproject.prod."
	BusTopicComposeStatus = BusTopicPrefix + "pungi.compose.status.change"
	BusTopicJobDone       = BusTopicPrefix + "openqa.job.done"
)

// Header values Fedora's publishers set.
const (
	busSchema       = "base.message"
	busSeverityInfo = 20
	busTimeout      = 10 * time.Second
)

// PublishOptions tunes one message. The zero value publishes a fresh message
// in the standard format.
type PublishOptions struct {
	// MessageID is the AMQP message_id; default a fresh random UUID. Reuse
	// an ID to simulate a duplicate or a redelivery.
	MessageID string
	// SentAt is the sent-at header's time; default now. It is written in
	// UTC without fractional seconds.
	SentAt time.Time
	// SentAtZ writes sent-at with a "Z" suffix, as Fedora's openQA plugin
	// does, instead of Python's "+00:00".
	SentAtZ bool
	// Severity is fedora_messaging_severity; default 20 (INFO).
	Severity int
	// Schema is fedora_messaging_schema; default "base.message".
	Schema string
	// ContentEncoding; default "utf-8".
	ContentEncoding string
	// Priority is the AMQP priority; when non-zero it is copied into a
	// priority header too, as fedora-messaging does.
	Priority uint8
	// Headers are added after the standard ones and override them; a nil
	// value removes a standard header.
	Headers map[string]any
}

// JobDone is the body of an openqa.job.done message, as openQA's AMQP plugin
// builds it (docs/protocols.md, section (f)): the job's id, result and
// reason, the count of jobs of the same BUILD still pending, and the job's
// main settings.
type JobDone struct {
	ID     int64
	Result string // passed, softfailed, failed, incomplete, …
	Reason string // "" is sent as null
	// Remaining is the number of jobs of the same BUILD still pending.
	Remaining int
	GroupID   int64 // 0 is sent as null (a job without a group)
	Build     string
	Test      string
	Arch      string
	Machine   string
	Flavor    string
	Bugref    string // "" is sent as null; BugURL is sent only with a Bugref
	BugURL    string
	// FailedModules lists the failed test modules (sent as [] when empty).
	FailedModules []string
	ISO, HDD1     string // sent (as ISO, HDD_1) only when set
}

// JobDoneBody returns the body openQA's AMQP plugin sends with a job.done
// message for the job. Change the map and send it with Publish to simulate
// an odd message.
func JobDoneBody(j JobDone) map[string]any {
	orNull := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	b := map[string]any{
		"id": j.ID, "result": j.Result, "reason": orNull(j.Reason), "newbuild": nil,
		"remaining": j.Remaining, "group_id": nil,
		"BUILD": j.Build, "TEST": j.Test, "ARCH": j.Arch, "MACHINE": j.Machine, "FLAVOR": j.Flavor,
		"bugref": orNull(j.Bugref), "failedmodules": j.FailedModules,
	}
	if j.GroupID != 0 {
		b["group_id"] = j.GroupID
	}
	if j.Bugref != "" && j.BugURL != "" {
		b["bugurl"] = j.BugURL
	}
	if j.FailedModules == nil {
		b["failedmodules"] = []string{}
	}
	if j.ISO != "" {
		b["ISO"] = j.ISO
	}
	if j.HDD1 != "" {
		b["HDD_1"] = j.HDD1
	}
	return b
}

// ComposeStatusBody returns the body Pungi's messaging notifier sends with a
// pungi.compose.status.change message: status, compose_id and location,
// plus the compose and release fields Pungi adds to every message, derived
// from the ID as the simulated mirror places the compose (compose_label is
// null, as for nightlies; set it for a labelled production compose). An
// empty location is left out. Change the map and send it with Publish to
// simulate an odd message.
func ComposeStatusBody(composeID, status, location string) map[string]any {
	b := map[string]any{"status": status, "compose_id": composeID}
	if location != "" {
		b["location"] = location
	}
	var date, typ, short, version, relType, dir string
	var respin int
	if mc, err := place(composeID); err == nil {
		date, typ, respin = mc.date, mc.typ, mc.respin
		short, version, relType, dir = mc.short, mc.version, mc.relType, mc.dir+"/"
	} else if id, err := fedfind.ParseComposeID(composeID); err == nil {
		// Not one of Fedora's streams (a test product such as DP-1.0):
		// split the prefix at its last dash, which is right for simple
		// short names.
		date, typ, respin, relType = id.Date, id.Type.String(), id.Respin, "ga"
		short, version = id.Prefix, ""
		if i := strings.LastIndex(id.Prefix, "-"); i > 0 {
			short, version = id.Prefix[:i], id.Prefix[i+1:]
		}
	} else {
		return b // not a compose ID: only what the caller gave
	}
	b["compose_date"] = date
	b["compose_type"] = typ
	b["compose_respin"] = respin
	b["compose_label"] = nil
	b["compose_path"] = "/mnt/koji/compose/" + dir + composeID
	b["release_short"] = short
	b["release_name"] = short
	if short == "Fedora" || strings.HasPrefix(short, "Fedora-") {
		b["release_name"] = "Fedora"
	}
	b["release_version"] = version
	b["release_type"] = relType
	b["release_is_layered"] = false
	return b
}

// Bus publishes Fedora Messaging messages to an exchange of a RabbitMQ
// broker. It connects on first use and again after its connection is lost.
// Its methods are safe for concurrent use.
type Bus struct {
	url, exchange string

	mu   sync.Mutex
	conn *amqp.Connection
	ch   *amqp.Channel
}

// NewBus returns a bus that publishes to exchange ("" means amq.topic) on
// the broker at url (amqp://user:password@host:port/vhost). It checks the
// URL but does not connect yet.
func NewBus(url, exchange string) (*Bus, error) {
	if _, err := amqp.ParseURI(url); err != nil {
		return nil, fmt.Errorf("fakefedora: bus URL: %w", err)
	}
	if exchange == "" {
		exchange = "amq.topic"
	}
	return &Bus{url: url, exchange: exchange}, nil
}

// Exchange returns the exchange the bus publishes to.
func (b *Bus) Exchange() string { return b.exchange }

// channel returns an open channel in confirm mode, connecting if needed.
// b.mu is held.
func (b *Bus) channel(ctx context.Context) (*amqp.Channel, error) {
	if b.ch != nil && !b.ch.IsClosed() {
		return b.ch, nil
	}
	if b.conn == nil || b.conn.IsClosed() {
		cfg := amqp.Config{
			Properties: amqp.NewConnectionProperties(),
			Dial: func(network, addr string) (net.Conn, error) {
				d := net.Dialer{Timeout: busTimeout}
				conn, err := d.DialContext(ctx, network, addr)
				if err == nil {
					err = conn.SetDeadline(time.Now().Add(busTimeout))
				}
				return conn, err
			},
		}
		cfg.Properties["app"] = "composeci fakefedora bus"
		cfg.Properties.SetClientConnectionName("fakefedora bus")
		conn, err := amqp.DialConfig(b.url, cfg)
		if err != nil {
			return nil, fmt.Errorf("fakefedora: bus connect: %w", err)
		}
		b.conn = conn
	}
	ch, err := b.conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("fakefedora: bus channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return nil, fmt.Errorf("fakefedora: bus confirm mode: %w", err)
	}
	b.ch = ch
	return ch, nil
}

// DeclareExchange declares the bus's exchange as a topic exchange
// (non-durable, not auto-deleted), for tests that use an exchange of their
// own rather than amq.topic.
func (b *Bus) DeclareExchange(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch, err := b.channel(ctx)
	if err != nil {
		return err
	}
	if err := ch.ExchangeDeclare(b.exchange, amqp.ExchangeTopic, false, false, false, false, nil); err != nil {
		return fmt.Errorf("fakefedora: declare exchange %s: %w", b.exchange, err)
	}
	return nil
}

// PublishComposeStatus sends Pungi's status-change message for a compose
// (body from ComposeStatusBody) and returns its message_id.
func (b *Bus) PublishComposeStatus(ctx context.Context, composeID, status, location string) (string, error) {
	return b.Publish(ctx, BusTopicComposeStatus, ComposeStatusBody(composeID, status, location), PublishOptions{})
}

// PublishJobDone sends openQA's job.done message for a job, with sent-at in
// the "Z" form Fedora's openQA plugin writes, and returns its message_id.
func (b *Bus) PublishJobDone(ctx context.Context, job JobDone) (string, error) {
	return b.Publish(ctx, BusTopicJobDone, JobDoneBody(job), PublishOptions{SentAtZ: true})
}

// Publish sends one message with routing key topic and returns its
// message_id. A []byte or json.RawMessage body is sent as it is (to
// simulate a broken publisher); anything else is encoded as JSON. It
// returns once the broker has confirmed the message.
func (b *Bus) Publish(ctx context.Context, topic string, body any, opts PublishOptions) (string, error) {
	var data []byte
	switch v := body.(type) {
	case []byte:
		data = v
	case json.RawMessage:
		data = v
	default:
		var err error
		if data, err = json.Marshal(body); err != nil {
			return "", fmt.Errorf("fakefedora: message body: %w", err)
		}
	}
	pub := busPublishing(data, opts, time.Now())
	b.mu.Lock()
	defer b.mu.Unlock()
	ch, err := b.channel(ctx)
	if err != nil {
		return "", err
	}
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, b.exchange, topic, false, false, pub)
	if err != nil {
		return "", fmt.Errorf("fakefedora: publish %s: %w", topic, err)
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return "", fmt.Errorf("fakefedora: publish %s: %w", topic, err)
	}
	if !ok {
		return "", fmt.Errorf("fakefedora: publish %s: the broker nacked the message", topic)
	}
	return pub.MessageId, nil
}

// Outgoing is one message for PublishAll.
type Outgoing struct {
	Topic   string
	Body    any
	Options PublishOptions
}

// PublishAll sends the messages in order, as Publish would, but waits for
// the broker's confirms only once, after the last: a flood of traffic, as
// Fedora's bus carries, in the time of a few round trips.
func (b *Bus) PublishAll(ctx context.Context, msgs []Outgoing) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch, err := b.channel(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	confirms := make([]*amqp.DeferredConfirmation, 0, len(msgs))
	for _, m := range msgs {
		data, ok := m.Body.([]byte)
		if !ok {
			if data, err = json.Marshal(m.Body); err != nil {
				return fmt.Errorf("fakefedora: message body: %w", err)
			}
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, b.exchange, m.Topic, false, false, busPublishing(data, m.Options, now))
		if err != nil {
			return fmt.Errorf("fakefedora: publish %s: %w", m.Topic, err)
		}
		confirms = append(confirms, dc)
	}
	for _, dc := range confirms {
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			return fmt.Errorf("fakefedora: publish: %w", err)
		}
		if !ok {
			return errors.New("fakefedora: publish: the broker nacked a message")
		}
	}
	return nil
}

// busPublishing builds the AMQP message in Fedora Messaging's format.
func busPublishing(data []byte, opts PublishOptions, now time.Time) amqp.Publishing {
	if opts.MessageID == "" {
		opts.MessageID = busUUID()
	}
	if opts.SentAt.IsZero() {
		opts.SentAt = now
	}
	if opts.Severity == 0 {
		opts.Severity = busSeverityInfo
	}
	if opts.Schema == "" {
		opts.Schema = busSchema
	}
	if opts.ContentEncoding == "" {
		opts.ContentEncoding = "utf-8"
	}
	sentAt := opts.SentAt.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05") + "+00:00"
	if opts.SentAtZ {
		sentAt = strings.TrimSuffix(sentAt, "+00:00") + "Z"
	}
	headers := amqp.Table{
		"fedora_messaging_schema":   opts.Schema,
		"fedora_messaging_severity": int32(opts.Severity),
		"sent-at":                   sentAt,
	}
	if opts.Priority != 0 {
		headers["priority"] = int32(opts.Priority)
	}
	for k, v := range opts.Headers {
		if v == nil {
			delete(headers, k)
			continue
		}
		headers[k] = v
	}
	return amqp.Publishing{
		ContentType:     "application/json",
		ContentEncoding: opts.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		Priority:        opts.Priority,
		MessageId:       opts.MessageID,
		Headers:         headers,
		Body:            data,
	}
}

// Close closes the bus's connection. A later publish connects again.
func (b *Bus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var err error
	if b.conn != nil && !b.conn.IsClosed() {
		err = b.conn.Close()
	}
	b.conn, b.ch = nil, nil
	if errors.Is(err, amqp.ErrClosed) {
		err = nil
	}
	return err
}

// busUUID returns a random (version 4) UUID, as fedora-messaging's
// uuid.uuid4().
func busUUID() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // never fails (crypto/rand panics rather)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// BusMessage is one message as a subscriber of the bus received it.
type BusMessage struct {
	// Topic is the routing key.
	Topic           string
	ContentType     string
	ContentEncoding string
	DeliveryMode    uint8
	Priority        uint8
	MessageID       string
	Headers         amqp.Table
	Body            []byte
}

// Subscription is a queue of its own on the broker, bound to an exchange,
// that tests read what a publisher sent from: a Fedora Messaging consumer
// reduced to basic.get, so that nothing is delivered behind the test's
// back and Ready counts exactly what was published (a confirmed message
// is already in the queue).
type Subscription struct {
	conn  *amqp.Connection
	ch    *amqp.Channel
	queue string
}

// Subscribe declares a fresh exclusive, auto-deleted queue bound to
// exchange with each binding key ("#" for everything) on the broker at url.
// Close deletes it.
func Subscribe(ctx context.Context, url, exchange string, bindings ...string) (*Subscription, error) {
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: busTimeout}
		return d.DialContext(ctx, network, addr)
	}})
	if err != nil {
		return nil, fmt.Errorf("fakefedora: subscribe: %w", err)
	}
	s := &Subscription{conn: conn, queue: "composeci-test-sub-" + busUUID()}
	fail := func(what string, err error) (*Subscription, error) {
		conn.Close()
		return nil, fmt.Errorf("fakefedora: subscribe: %s: %w", what, err)
	}
	if s.ch, err = conn.Channel(); err != nil {
		return fail("channel", err)
	}
	if _, err := s.ch.QueueDeclare(s.queue, false, true, true, false, nil); err != nil {
		return fail("declare queue", err)
	}
	for _, b := range bindings {
		if err := s.ch.QueueBind(s.queue, b, exchange, false, nil); err != nil {
			return fail("bind "+b, err)
		}
	}
	return s, nil
}

// Ready returns the number of messages waiting in the queue.
func (s *Subscription) Ready() (int, error) {
	q, err := s.ch.QueueDeclarePassive(s.queue, false, true, true, false, nil)
	if err != nil {
		return 0, fmt.Errorf("fakefedora: subscription: %w", err)
	}
	return q.Messages, nil
}

// Next returns the next message, waiting for one until ctx ends.
func (s *Subscription) Next(ctx context.Context) (BusMessage, error) {
	for {
		d, ok, err := s.ch.Get(s.queue, true)
		if err != nil {
			return BusMessage{}, fmt.Errorf("fakefedora: subscription: %w", err)
		}
		if ok {
			return BusMessage{Topic: d.RoutingKey, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding,
				DeliveryMode: d.DeliveryMode, Priority: d.Priority, MessageID: d.MessageId, Headers: d.Headers, Body: d.Body}, nil
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return BusMessage{}, ctx.Err()
		case <-t.C:
		}
	}
}

// Close deletes the queue and closes the connection.
func (s *Subscription) Close() error {
	_, err := s.ch.QueueDelete(s.queue, false, false, false)
	if cerr := s.conn.Close(); err == nil && !errors.Is(cerr, amqp.ErrClosed) {
		err = cerr
	}
	return err
}
