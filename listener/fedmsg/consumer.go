// Package fedmsg is composeci's Fedora Messaging consumer: AMQP 0-9-1 with
// github.com/rabbitmq/amqp091-go (see docs/architecture.md, "Fedora
// Messaging"). It turns Pungi's compose.status.change and openQA's job.done
// messages into events (package listener/event) and hands them to a Sink,
// acknowledging a message only once Submit has stored it. config.go holds
// the configuration, consumer.go the session loop, decode.go the decoding of
// a message, as pure code.
//
// Delivery outcomes, by case:
//
//   - Submit returned nil: ack.
//   - Submit failed: nack with requeue, then wait (NackDelay, doubling per
//     consecutive failure up to NackMaxDelay) before taking the next delivery,
//     so a failing sink does not spin. A Submit error that wraps
//     fedfind.ErrInvalidInput (the sink refused the event itself) is treated
//     as an invalid message instead, since redelivery cannot cure it.
//   - Invalid message (not a UTF-8 JSON object, a required field missing or of
//     the wrong type, a compose ID or location that does not validate): nack
//     without requeue, as the Python consumer does (fedora-messaging nacks
//     undecodable bodies without requeue). Without a dead-letter exchange
//     (none on Fedora's broker) this drops it; a broker policy with one
//     keeps it there for inspection. Never handed to the sink.
//   - Irrelevant message (a topic composeci does not handle, an openQA BUILD
//     that is not a compose such as Update-… or Kojitask-…-NOREPORT, a compose
//     of a release stream not followed): ack, logged at debug level. Such
//     acks are held while more deliveries wait and go out as one (multiple),
//     at most half the prefetch at a time (holdAck).
//   - Run's context cancelled while Submit ran: no ack or nack; closing the
//     channel returns the message to the queue.
//
// The library's own automatic recovery (amqp091.Config.Recovery) stays off:
// with it a Channel object is reopened in place after a reconnect, so a
// Delivery from before the reconnect could ack its old delivery tag on the
// new channel (a trap of the library). Here every connection is a session
// with its own Channel and a generation number; a delivery is settled only on
// the channel it came from and only while that session is current and open. A delivery left
// unsettled when its channel dies is redelivered by the broker. Each dial
// also builds a fresh amqp091.Config: v1.13–v1.14 zeroed caller-owned SASL
// credentials after a handshake, so a reused Config failed to reconnect
// (go.mod requires v1.16.0, which fixed it).
package fedmsg

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/backoff"
	"github.com/composeci/composeci/listener/event"
)

// Stats is a snapshot of a Consumer's health and counters, for
// health endpoints and metrics. Counters only grow.
type Stats struct {
	Connected bool   `json:"connected"`
	Queue     string `json:"queue"`
	// ConnectedAt is when the current connection started consuming.
	ConnectedAt time.Time `json:"connected_at,omitzero"`
	// LastMessage is when the last delivery arrived, whatever became of it.
	LastMessage time.Time `json:"last_message,omitzero"`
	// Idle is the time since the last delivery, or since the first
	// connection when none has arrived yet; see Consumer.Idle.
	Idle time.Duration `json:"idle"`
	// LastError is the last connection or channel error, if any.
	LastError string `json:"last_error,omitempty"`

	Received    uint64 `json:"received"`    // deliveries
	Submitted   uint64 `json:"submitted"`   // Submit returned nil (then acked)
	Dropped     uint64 `json:"dropped"`     // never reached Submit's success: irrelevant or invalid
	Invalid     uint64 `json:"invalid"`     // of Dropped: invalid, nacked without requeue
	Requeued    uint64 `json:"requeued"`    // Submit failed, nacked with requeue
	Redelivered uint64 `json:"redelivered"` // deliveries flagged redelivered by the broker
	// Unsettled counts deliveries not acked or nacked because their
	// channel was gone by then; the broker redelivers them.
	Unsettled uint64 `json:"unsettled"`
	// Reconnects counts connections established after the first.
	Reconnects uint64 `json:"reconnects"`
	// ConnectFailures counts attempts that failed before consuming.
	ConnectFailures uint64 `json:"connect_failures"`
	// Stalls counts reconnects forced by StallTimeout.
	Stalls uint64 `json:"stalls"`
}

// Consumer consumes Fedora Messaging messages and submits them as Events.
// Its methods are safe for concurrent use; Run runs once at a time.
type Consumer struct {
	cfg     Config
	log     *slog.Logger
	tls     *tls.Config // nil unless the URL is amqps
	sasl    bool        // authenticate with SASL EXTERNAL
	streams map[fedfind.StreamKind]bool
	urlLog  string // the URL without its password

	running  atomic.Bool
	cur      atomic.Pointer[session]
	gen      atomic.Uint64
	sessions atomic.Uint64
	lastMsg  atomic.Int64 // unix nanoseconds
	first    atomic.Int64 // unix nanoseconds of the first consuming connection

	received, submitted, dropped, invalid, requeued, redelivered atomic.Uint64
	unsettled, reconnects, connectFailures, stalls               atomic.Uint64

	mu      sync.Mutex
	lastErr string
}

// NewConsumer checks cfg, fills in its defaults and loads the TLS files. It
// does no network I/O; Run connects. A nil log discards logs.
func NewConsumer(cfg Config, log *slog.Logger) (*Consumer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	def := DefaultConfig()
	if cfg.URL == "" {
		return nil, fmt.Errorf("%w: AMQP URL missing", fedfind.ErrInvalidInput)
	}
	uri, err := amqp.ParseURI(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: AMQP URL: %w", fedfind.ErrInvalidInput, err)
	}
	setDefault(&cfg.Exchange, def.Exchange)
	setDefault(&cfg.App, def.App)
	setDefault(&cfg.AppURL, def.AppURL)
	setDefault(&cfg.Prefetch, def.Prefetch)
	setDefault(&cfg.DialTimeout, def.DialTimeout)
	setDefault(&cfg.SubmitTimeout, def.SubmitTimeout)
	setDefault(&cfg.ReconnectDelay, def.ReconnectDelay)
	setDefault(&cfg.ReconnectMaxDelay, def.ReconnectMaxDelay)
	setDefault(&cfg.NackDelay, def.NackDelay)
	setDefault(&cfg.NackMaxDelay, def.NackMaxDelay)
	cfg.ReconnectMaxDelay = max(cfg.ReconnectMaxDelay, cfg.ReconnectDelay)
	cfg.NackMaxDelay = max(cfg.NackMaxDelay, cfg.NackDelay)
	if cfg.Bindings == nil {
		cfg.Bindings = def.Bindings
	}
	cfg.Bindings = append([]string(nil), cfg.Bindings...)
	if len(cfg.Bindings) == 0 {
		return nil, fmt.Errorf("%w: no AMQP bindings: the queue would receive nothing", fedfind.ErrInvalidInput)
	}
	if cfg.Prefetch < 0 || cfg.Prefetch > 65535 {
		return nil, fmt.Errorf("%w: AMQP prefetch %d out of range 0..65535", fedfind.ErrInvalidInput, cfg.Prefetch)
	}
	if cfg.Queue == "" {
		if cfg.PassiveDeclare {
			return nil, fmt.Errorf("%w: a passive queue declaration needs a fixed queue name", fedfind.ErrInvalidInput)
		}
		cfg.Queue = newUUID()
	}
	c := &Consumer{cfg: cfg, log: log, streams: map[fedfind.StreamKind]bool{}}
	if len(cfg.Streams) == 0 {
		for _, k := range []fedfind.StreamKind{fedfind.StreamRawhide, fedfind.StreamBranched, fedfind.StreamELN,
			fedfind.StreamCloud, fedfind.StreamContainer, fedfind.StreamIoT, fedfind.StreamUpdates,
			fedfind.StreamUpdatesTesting, fedfind.StreamProduction} {
			c.streams[k] = true
		}
	}
	for _, s := range cfg.Streams {
		k := fedfind.StreamKind(strings.ToLower(strings.TrimSpace(s)))
		if !k.Known() {
			return nil, fmt.Errorf("%w: unknown release stream %q", fedfind.ErrInvalidInput, s)
		}
		c.streams[k] = true
	}
	c.urlLog = cfg.URL
	if u, err := url.Parse(cfg.URL); err == nil {
		c.urlLog = u.Redacted()
	}
	if uri.Scheme == "amqps" {
		if c.tls, err = tlsConfig(cfg); err != nil {
			return nil, err
		}
		c.sasl = cfg.Cert != ""
	}
	return c, nil
}

// Queue returns the queue's name (the fresh UUID when none was configured).
func (c *Consumer) Queue() string { return c.cfg.Queue }

// Connected reports whether the consumer holds an open connection and
// channel with an active consumer on the queue.
func (c *Consumer) Connected() bool {
	s := c.cur.Load()
	return s != nil && s.consuming.Load() && !s.ch.IsClosed() && !s.conn.IsClosed()
}

// LastMessage returns when the last delivery arrived (the zero time if none
// has). Every delivery counts, even one that is dropped: it shows the bus is
// alive.
func (c *Consumer) LastMessage() time.Time {
	return unixTime(c.lastMsg.Load())
}

// Idle returns how long the consumer has gone without a delivery: since the
// last one, or since it first connected when none has arrived; zero before
// it has ever connected. A consumer that is Connected but Idle for much
// longer than the bus's usual quiet (openQA alone sends job.done messages
// every few minutes) has silently stalled and should be restarted; see also
// Config.StallTimeout.
func (c *Consumer) Idle() time.Duration {
	t := c.LastMessage()
	if t.IsZero() {
		t = unixTime(c.first.Load())
	}
	if t.IsZero() {
		return 0
	}
	return time.Since(t)
}

// Stats returns a snapshot of the consumer's state and counters.
func (c *Consumer) Stats() Stats {
	st := Stats{
		Connected:       c.Connected(),
		Queue:           c.cfg.Queue,
		LastMessage:     c.LastMessage(),
		Idle:            c.Idle(),
		Received:        c.received.Load(),
		Submitted:       c.submitted.Load(),
		Dropped:         c.dropped.Load(),
		Invalid:         c.invalid.Load(),
		Requeued:        c.requeued.Load(),
		Redelivered:     c.redelivered.Load(),
		Unsettled:       c.unsettled.Load(),
		Reconnects:      c.reconnects.Load(),
		ConnectFailures: c.connectFailures.Load(),
		Stalls:          c.stalls.Load(),
	}
	if s := c.cur.Load(); s != nil && st.Connected {
		st.ConnectedAt = s.started
	}
	c.mu.Lock()
	st.LastError = c.lastErr
	c.mu.Unlock()
	return st
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// errStall ends a session that received nothing for StallTimeout.
var errStall = errors.New("no message for too long (silent stall)")

// Run consumes until ctx is cancelled, then cancels the consumer, closes the
// channel and the connection and returns nil. A lost connection or channel
// is re-established with capped, jittered exponential backoff, for ever; but
// when the very first connection fails for a reason that retrying cannot
// cure (refused credentials or vhost, a missing exchange or queue, a queue
// declared with other flags, an untrusted certificate), Run returns that
// error, so a misconfiguration shows at start.
func (c *Consumer) Run(ctx context.Context, sink event.Sink) error {
	if sink == nil {
		return errors.New("listener: AMQP consumer: nil sink")
	}
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("listener: AMQP consumer already running")
	}
	defer c.running.Store(false)
	c.log.Info("fedora messaging: starting", "url", c.urlLog, "exchange", c.cfg.Exchange, "queue", c.cfg.Queue,
		"durable", c.cfg.Durable, "auto_delete", c.cfg.AutoDelete, "exclusive", c.cfg.Exclusive, "bindings", c.cfg.Bindings)
	failures := 0
	for {
		healthy, err := c.runSession(ctx, sink)
		if ctx.Err() != nil {
			c.log.Info("fedora messaging: stopped", "queue", c.cfg.Queue)
			return nil
		}
		c.setErr(err)
		if c.sessions.Load() == 0 && permanentError(err) {
			return fmt.Errorf("listener: fedora messaging %s: %w", c.urlLog, err)
		}
		if healthy {
			failures = 0
		}
		delay := backoff.Policy{Base: c.cfg.ReconnectDelay, Max: c.cfg.ReconnectMaxDelay, Jitter: true}.Delay(failures)
		failures++
		level := slog.LevelWarn
		if errors.Is(err, errStall) {
			level = slog.LevelInfo
		}
		c.log.Log(ctx, level, "fedora messaging: disconnected; reconnecting", "err", err, "in", delay.Round(time.Millisecond))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			c.log.Info("fedora messaging: stopped", "queue", c.cfg.Queue)
			return nil
		case <-t.C:
		}
	}
}

func (c *Consumer) setErr(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	c.lastErr = err.Error()
	c.mu.Unlock()
}

// permanentError reports whether a connection error will not go away by
// retrying: refused access, a missing or inequivalent queue or exchange, an
// untrusted certificate.
func permanentError(err error) bool {
	var ae *amqp.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case amqp.AccessRefused, amqp.NotFound, amqp.PreconditionFailed:
			return true
		}
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// session is one connection with its channel and consumer. Deliveries
// are settled only through the session they arrived on.
type session struct {
	gen       uint64
	conn      *amqp.Connection
	ch        *amqp.Channel
	tag       string
	started   time.Time
	consuming atomic.Bool

	// The acks of dropped messages held back, to go out as one (see
	// holdAck); used by the session's loop only.
	held      amqp.Delivery // the last delivery whose ack is held
	heldCount int
	noHolding bool // a delivery was left unsettled: ack one by one
}

// closeTimeout bounds the consumer cancel and the channel and connection
// close at the end of a session.
const closeTimeout = 5 * time.Second

// session connects, declares, binds and consumes until the connection or
// channel is lost, the broker cancels the consumer, a stall is detected or
// ctx is cancelled. healthy reports whether the session did real work (a
// delivery, or consuming for ReconnectMaxDelay), which resets the backoff.
func (c *Consumer) runSession(ctx context.Context, sink event.Sink) (healthy bool, err error) {
	conn, err := c.dial(ctx)
	if err != nil {
		c.connectFailures.Add(1)
		return false, fmt.Errorf("connect: %w", err)
	}
	s := &session{gen: c.gen.Add(1), conn: conn}
	defer s.close()
	defer func() {
		// A long session was healthy even without a delivery.
		if !s.started.IsZero() && time.Since(s.started) >= c.cfg.ReconnectMaxDelay {
			healthy = true
		}
	}()
	// Both notify channels are buffered: the library sends the close
	// reason synchronously, and an unbuffered channel that nobody reads at
	// that moment (while Submit runs) would deadlock its shutdown.
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))
	if s.ch, err = conn.Channel(); err != nil {
		c.connectFailures.Add(1)
		return false, fmt.Errorf("open channel: %w", err)
	}
	chClosed := s.ch.NotifyClose(make(chan *amqp.Error, 1))
	deliveries, err := c.setup(s)
	if err != nil {
		c.connectFailures.Add(1)
		return false, err
	}
	s.started = time.Now()
	s.consuming.Store(true)
	if c.sessions.Add(1) > 1 {
		c.reconnects.Add(1)
	}
	c.first.CompareAndSwap(0, s.started.UnixNano())
	c.cur.Store(s)
	defer c.cur.CompareAndSwap(s, nil)
	c.log.Info("fedora messaging: consuming", "queue", c.cfg.Queue, "generation", s.gen)

	var stall <-chan time.Time
	if c.cfg.StallTimeout > 0 {
		tick := time.NewTicker(max(c.cfg.StallTimeout/4, 10*time.Millisecond))
		defer tick.Stop()
		stall = tick.C
	}
	closed := func(what string, e *amqp.Error, ok bool) error {
		if !ok || e == nil {
			return fmt.Errorf("%s closed", what)
		}
		return fmt.Errorf("%s closed: %w", what, e)
	}
	// pause waits after a failed Submit, watching for shutdown and closes.
	pause := func(d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-connClosed:
			return closed("connection", e, ok)
		case e, ok := <-chClosed:
			return closed("channel", e, ok)
		case <-t.C:
			return nil
		}
	}
	nackStreak := 0
	// deliver handles one delivery; done reports the end of the session.
	deliver := func(d amqp.Delivery, ok bool) (done bool, err error) {
		if !ok {
			// The library reports a close before it closes the
			// consumers, so a close reason is already waiting.
			select {
			case e, ok := <-connClosed:
				return true, closed("connection", e, ok)
			case e, ok := <-chClosed:
				return true, closed("channel", e, ok)
			default:
				return true, errors.New("the broker cancelled the consumer (queue deleted?)")
			}
		}
		if s.ch.IsClosed() || conn.IsClosed() {
			// Buffered before the close: not worth a Submit, since it
			// cannot be acked; the broker redelivers it. The close
			// reason is read next.
			c.log.Debug("fedora messaging: delivery of a closed channel skipped", "message_id", d.MessageId)
			return false, nil
		}
		healthy = true
		if !c.handle(ctx, s, sink, d) {
			nackStreak = 0
			return false, nil
		}
		if err := pause(backoff.Policy{Base: c.cfg.NackDelay, Max: c.cfg.NackMaxDelay, Jitter: true}.Delay(nackStreak)); err != nil {
			return true, err
		}
		nackStreak++
		return false, nil
	}
	for {
		if s.heldCount > 0 {
			// Acks are held only while the next delivery is already
			// there: when none is, they go out now.
			select {
			case d, ok := <-deliveries:
				if done, err := deliver(d, ok); done {
					return healthy, err
				}
				continue
			default:
				c.releaseAcks(s)
			}
		}
		select {
		case <-ctx.Done():
			c.releaseAcks(s)
			return healthy, ctx.Err()
		case e, ok := <-connClosed:
			return healthy, closed("connection", e, ok)
		case e, ok := <-chClosed:
			return healthy, closed("channel", e, ok)
		case d, ok := <-deliveries:
			if done, err := deliver(d, ok); done {
				return healthy, err
			}
		case <-stall:
			last := max(c.lastMsg.Load(), s.started.UnixNano())
			if idle := time.Since(time.Unix(0, last)); idle >= c.cfg.StallTimeout {
				c.stalls.Add(1)
				c.log.Warn("fedora messaging: connected but no message; reconnecting", "idle", idle.Round(time.Second), "stall_timeout", c.cfg.StallTimeout)
				return healthy, errStall
			}
		}
	}
}

// dial opens the connection: its TCP connect honours ctx, and ctx's
// cancellation interrupts the TLS and AMQP handshakes.
func (c *Consumer) dial(ctx context.Context) (*amqp.Connection, error) {
	var mu sync.Mutex
	var raw net.Conn
	timeout := c.cfg.DialTimeout
	props := amqp.NewConnectionProperties()
	props["app"] = c.cfg.App
	props["app_url"] = c.cfg.AppURL
	if c.cfg.AppContactsEmail != "" {
		props["app_contacts_email"] = c.cfg.AppContactsEmail
	}
	props.SetClientConnectionName(c.cfg.App + " " + c.cfg.Queue)
	cfg := amqp.Config{
		Heartbeat:  c.cfg.Heartbeat,
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
			mu.Lock()
			raw = conn
			mu.Unlock()
			return conn, nil
		},
	}
	if c.tls != nil {
		cfg.TLSClientConfig = c.tls.Clone()
	}
	if c.sasl {
		cfg.SASL = []amqp.Authentication{&amqp.ExternalAuth{}}
	}
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if raw != nil {
			raw.SetDeadline(time.Unix(1, 0))
		}
	})
	conn, err := amqp.DialConfig(c.cfg.URL, cfg)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if ctx.Err() != nil {
		conn.Close()
		return nil, ctx.Err()
	}
	return conn, nil
}

// setup sets QoS, declares the queue, binds it and starts consuming with
// manual acknowledgements.
func (c *Consumer) setup(s *session) (<-chan amqp.Delivery, error) {
	if err := s.ch.Qos(c.cfg.Prefetch, 0, false); err != nil {
		return nil, fmt.Errorf("set prefetch %d: %w", c.cfg.Prefetch, err)
	}
	declare := s.ch.QueueDeclare
	if c.cfg.PassiveDeclare {
		declare = s.ch.QueueDeclarePassive
	}
	if _, err := declare(c.cfg.Queue, c.cfg.Durable, c.cfg.AutoDelete, c.cfg.Exclusive, false, nil); err != nil {
		return nil, fmt.Errorf("declare queue %s: %w", c.cfg.Queue, err)
	}
	for _, key := range c.cfg.Bindings {
		if err := s.ch.QueueBind(c.cfg.Queue, key, c.cfg.Exchange, false, nil); err != nil {
			return nil, fmt.Errorf("bind queue %s to %s with %q: %w", c.cfg.Queue, c.cfg.Exchange, key, err)
		}
	}
	s.tag = c.cfg.App + "-" + newUUID()
	deliveries, err := s.ch.Consume(c.cfg.Queue, s.tag, false, false, false, false, nil)
	if err != nil {
		s.tag = ""
		return nil, fmt.Errorf("consume from %s: %w", c.cfg.Queue, err)
	}
	return deliveries, nil
}

// close cancels the consumer and closes the channel and the connection,
// each bounded by closeTimeout. Unsettled deliveries go back to the
// queue when the channel closes.
func (s *session) close() {
	s.consuming.Store(false)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if s.ch == nil {
			return
		}
		if s.tag != "" && !s.ch.IsClosed() {
			_ = s.ch.Cancel(s.tag, false)
		}
		_ = s.ch.Close()
	}()
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
	_ = s.conn.CloseDeadline(time.Now().Add(closeTimeout))
	<-done // the connection's shutdown ends any call still waiting
}

// handle decodes one delivery, submits its event and settles it. It reports
// whether the message was requeued after a failed Submit.
func (c *Consumer) handle(ctx context.Context, s *session, sink event.Sink, d amqp.Delivery) (requeued bool) {
	now := time.Now()
	c.received.Add(1)
	c.lastMsg.Store(now.UnixNano())
	if d.Redelivered {
		c.redelivered.Add(1)
	}
	// The delivery's logger is made only when something is logged: most
	// messages are dropped without a word (at info level), and a logger
	// With attributes (formatted at once) was an eighth of their handling.
	var withAttrs *slog.Logger
	log := func() *slog.Logger {
		if withAttrs == nil {
			withAttrs = c.log.With("topic", d.RoutingKey, "message_id", d.MessageId, "delivery_tag", d.DeliveryTag, "redelivered", d.Redelivered)
		}
		return withAttrs
	}
	ev, err := decode(d, now, c.streams)
	switch {
	case errors.Is(err, errIrrelevant):
		c.dropped.Add(1)
		if c.log.Enabled(ctx, slog.LevelDebug) {
			log().Debug("fedora messaging: message ignored", "reason", err)
		}
		c.holdAck(s, d, log)
		return false
	case err != nil:
		c.dropped.Add(1)
		c.invalid.Add(1)
		log().Warn("fedora messaging: invalid message dropped", "err", err)
		c.settle(s, d, log, settleReject)
		return false
	}
	sctx, cancel := context.WithTimeout(ctx, c.cfg.SubmitTimeout)
	err = sink.Submit(sctx, ev)
	cancel()
	switch {
	case err == nil:
		c.submitted.Add(1)
		log().Debug("fedora messaging: event submitted", "kind", ev.Kind, "compose", ev.ComposeID, "status", ev.Status)
		c.settle(s, d, log, settleAck)
		return false
	case ctx.Err() != nil:
		// Shutting down: leave it; the channel's close requeues it. No
		// ack may cover it: the held ones go now, and no more are held.
		c.releaseAcks(s)
		s.noHolding = true
		return false
	case errors.Is(err, fedfind.ErrInvalidInput):
		c.dropped.Add(1)
		c.invalid.Add(1)
		log().Warn("fedora messaging: event refused by the pipeline; dropped", "compose", ev.ComposeID, "err", err)
		c.settle(s, d, log, settleReject)
		return false
	default:
		c.requeued.Add(1)
		log().Warn("fedora messaging: submit failed; message requeued", "compose", ev.ComposeID, "err", err)
		c.settle(s, d, log, settleRequeue)
		return true
	}
}

type settlement int

const (
	settleAck     settlement = iota
	settleReject             // nack without requeue
	settleRequeue            // nack with requeue
)

// settle acks or nacks d on the channel it arrived on, and only while that
// channel's session is the current one and open: a delivery tag means
// nothing on another channel (acking it there would ack some other message,
// or close the channel with PRECONDITION_FAILED unknown delivery tag).
func (c *Consumer) settle(s *session, d amqp.Delivery, log func() *slog.Logger, how settlement) {
	c.releaseAcks(s)
	if c.gen.Load() != s.gen || s.ch.IsClosed() || s.conn.IsClosed() || d.Acknowledger != s.ch {
		c.unsettled.Add(1)
		log().Info("fedora messaging: delivery's channel is gone; the broker will redeliver it")
		return
	}
	var err error
	switch how {
	case settleAck:
		err = d.Ack(false)
	case settleReject:
		err = d.Nack(false, false)
	case settleRequeue:
		err = d.Nack(false, true)
	}
	if err != nil {
		c.unsettled.Add(1)
		log().Warn("fedora messaging: could not settle delivery; the broker will redeliver it", "err", err)
	}
}

// holdAck acks a dropped message later, with the next ones: one ack with
// multiple set settles them all, where one ack each cost most of the
// filter's CPU and as much of the broker's. The session's loop releases the
// held acks as soon as no delivery is waiting, so a quiet queue holds none;
// and when half the prefetch are held, so that the broker keeps sending
// meanwhile.
//
// An ack with multiple set settles every delivery of the channel up to its
// tag. That is right here because deliveries are handled one at a time, in
// order, and each is settled before the next — every settlement releases
// the held acks first — save one case: a Submit cut short by shutdown
// leaves its delivery unsettled on purpose, for the broker to requeue. That
// case releases the held acks before it and stops holding for the session.
func (c *Consumer) holdAck(s *session, d amqp.Delivery, log func() *slog.Logger) {
	if s.noHolding {
		c.settle(s, d, log, settleAck)
		return
	}
	s.held = d
	s.heldCount++
	if s.heldCount >= max(1, c.cfg.Prefetch/2) {
		c.releaseAcks(s)
	}
}

// releaseAcks sends the held acks as one.
func (c *Consumer) releaseAcks(s *session) {
	if s.heldCount == 0 {
		return
	}
	d, n := s.held, s.heldCount
	s.held, s.heldCount = amqp.Delivery{}, 0
	if c.gen.Load() != s.gen || s.ch.IsClosed() || s.conn.IsClosed() || d.Acknowledger != s.ch {
		c.unsettled.Add(uint64(n))
		c.log.Info("fedora messaging: the channel of dropped deliveries is gone; the broker will redeliver them", "deliveries", n)
		return
	}
	if err := d.Ack(true); err != nil {
		c.unsettled.Add(uint64(n))
		c.log.Warn("fedora messaging: could not ack dropped deliveries; the broker will redeliver them", "deliveries", n, "err", err)
	}
}
