package fedmsg

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/listener/event"

	"github.com/composeci/composeci/internal/testenv"
)

// The consumer is tested against a real RabbitMQ (COMPOSECI_TEST_AMQP_URL,
// default the local broker with guest/guest), with messages published by
// the simulated Fedora bus in Fedora's wire format. Each test has its own
// topic exchange and queue, deleted afterwards.

// amqpTestURL returns the broker's URL (see testenv.AMQPURL).
func amqpTestURL(t testing.TB) string { return testenv.AMQPURL(t) }

// amqpRig is a test's own topic exchange, a bus publishing to it and an
// administrative channel.
type amqpRig struct {
	url      string
	exchange string
	bus      *fakefedora.Bus
	conn     *amqp.Connection
	ch       *amqp.Channel
}

func newAMQPRig(t testing.TB) *amqpRig {
	t.Helper()
	u := amqpTestURL(t)
	r := &amqpRig{url: u, exchange: "composeci-test-" + newUUID()}
	var err error
	if r.conn, err = amqp.Dial(u); err != nil {
		t.Fatal(err)
	}
	if r.ch, err = r.conn.Channel(); err != nil {
		t.Fatal(err)
	}
	if err := r.ch.ExchangeDeclare(r.exchange, amqp.ExchangeTopic, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if r.bus, err = fakefedora.NewBus(u, r.exchange); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.bus.Close()
		if err := r.channel(t).ExchangeDelete(r.exchange, false, false); err != nil {
			t.Errorf("delete exchange %s: %v", r.exchange, err)
		}
		r.conn.Close()
	})
	return r
}

// channel returns the admin channel, reopened if a failed passive declare
// closed it.
func (r *amqpRig) channel(t testing.TB) *amqp.Channel {
	t.Helper()
	if r.ch.IsClosed() {
		var err error
		if r.ch, err = r.conn.Channel(); err != nil {
			t.Fatal(err)
		}
	}
	return r.ch
}

// config returns a consumer configuration on the rig's exchange with a
// fixed queue that outlives the consumer (so the test can inspect it
// afterwards; it is deleted in cleanup) and short delays.
func (r *amqpRig) config(t testing.TB) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.URL, cfg.CACert, cfg.Cert, cfg.Key = r.url, "", "", ""
	cfg.Exchange = r.exchange
	cfg.Queue = "composeci-test-" + newUUID()
	cfg.Durable, cfg.AutoDelete, cfg.Exclusive = false, false, false
	cfg.DialTimeout = 5 * time.Second
	cfg.ReconnectDelay, cfg.ReconnectMaxDelay = 20*time.Millisecond, 200*time.Millisecond
	cfg.NackDelay, cfg.NackMaxDelay = 10*time.Millisecond, 50*time.Millisecond
	cfg.SubmitTimeout = 10 * time.Second
	t.Cleanup(func() {
		if _, err := r.channel(t).QueueDelete(cfg.Queue, false, false, false); err != nil {
			t.Errorf("delete queue %s: %v", cfg.Queue, err)
		}
	})
	return cfg
}

// messages returns the number of ready messages in a queue.
func (r *amqpRig) messages(t testing.TB, queue string) int {
	t.Helper()
	q, err := r.channel(t).QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect queue %s: %v", queue, err)
	}
	return q.Messages
}

// publish sends a message through the bus and returns its message_id.
func (r *amqpRig) publish(t *testing.T, topic string, body any, opts fakefedora.PublishOptions) string {
	t.Helper()
	id, err := r.bus.Publish(t.Context(), topic, body, opts)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// runConsumer starts c.Run and returns a function that cancels it and
// returns Run's error (also called in cleanup).
func runConsumer(t *testing.T, c *Consumer, sink event.Sink) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, sink) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return within 10 s of its context's cancellation")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func newTestConsumer(t *testing.T, cfg Config) *Consumer {
	t.Helper()
	c, err := NewConsumer(cfg, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// amqpWait polls cond until it holds, failing the test after 10 s.
func amqpWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, what, func() error {
		if !cond() {
			return errors.New("not yet")
		}
		return nil
	})
}

// testSink records every Submit; hook, when set, decides its result from
// the event and the number of earlier calls with the same message_id.
type testSink struct {
	mu    sync.Mutex
	calls []event.Event
	ok    []event.Event
	hook  func(ctx context.Context, e event.Event, seen int) error
}

func (s *testSink) Submit(ctx context.Context, e event.Event) error {
	s.mu.Lock()
	seen := 0
	for _, c := range s.calls {
		if c.MessageID == e.MessageID {
			seen++
		}
	}
	s.calls = append(s.calls, e)
	hook := s.hook
	s.mu.Unlock()
	var err error
	if hook != nil {
		err = hook(ctx, e, seen)
	}
	if err == nil {
		s.mu.Lock()
		s.ok = append(s.ok, e)
		s.mu.Unlock()
	}
	return err
}

func (s *testSink) submitted() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ok)
}

func (s *testSink) called() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func TestAMQPComposeStatusAckedOnlyAfterSubmit(t *testing.T) {
	r := newAMQPRig(t)
	cfg := r.config(t)
	c := newTestConsumer(t, cfg)
	if !strings.HasPrefix(c.Queue(), "composeci-test-") {
		t.Fatalf("queue %q", c.Queue())
	}
	sentAt := time.Date(2026, 11, 22, 10, 11, 12, 0, time.UTC)
	tests := []struct {
		name     string
		id       string
		status   string
		location string
		opts     fakefedora.PublishOptions
	}{
		{"https location, +00:00 sent-at", "Fedora-Rawhide-20261122.n.0", "FINISHED",
			"https://kojipkgs.fedoraproject.org/compose/rawhide/Fedora-Rawhide-20261122.n.0/compose",
			fakefedora.PublishOptions{SentAt: sentAt}},
		{"http location, Z sent-at", "Fedora-44-20261122.n.1", "FINISHED_INCOMPLETE",
			"http://kojipkgs.fedoraproject.org/compose/branched/Fedora-44-20261122.n.1/compose",
			fakefedora.PublishOptions{SentAt: sentAt.Add(time.Hour), SentAtZ: true}},
		{"no location, STARTED", "Fedora-44-updates-20261122.0", "STARTED", "",
			fakefedora.PublishOptions{SentAt: sentAt.Add(2 * time.Hour)}},
	}
	// The first delivery of every message fails in the sink: the message
	// must come back (it was not acked before Submit) and then be acked.
	sink := &testSink{hook: func(_ context.Context, e event.Event, seen int) error {
		if seen == 0 {
			return errors.New("store unavailable")
		}
		return nil
	}}
	stop := runConsumer(t, c, sink)
	amqpWait(t, "the consumer to connect", c.Connected)

	want := map[string]event.Event{}
	for _, tt := range tests {
		body := fakefedora.ComposeStatusBody(tt.id, tt.status, tt.location)
		id := r.publish(t, fakefedora.BusTopicComposeStatus, body, tt.opts)
		want[id] = event.Event{Kind: event.KindComposeStatus, ComposeID: tt.id, Status: tt.status, Location: tt.location,
			Source: event.SourceAMQP, MessageID: id, Topic: TopicComposeStatusChange, At: tt.opts.SentAt}
	}
	amqpWait(t, "every message to be submitted", func() bool { return len(sink.submitted()) == len(tests) })
	for _, e := range sink.called() {
		w, ok := want[e.MessageID]
		if !ok {
			t.Errorf("unexpected event %+v", e)
			continue
		}
		if !e.At.Equal(w.At) {
			t.Errorf("%s: At %v, want %v (sent-at)", w.ComposeID, e.At, w.At)
		}
		e.At = w.At
		if e != w {
			t.Errorf("event\n got %+v\nwant %+v", e, w)
		}
	}
	if n := len(sink.called()); n != 2*len(tests) {
		t.Errorf("%d Submit calls, want %d (a failure and a success each)", n, 2*len(tests))
	}
	st := c.Stats()
	if st.Received != 6 || st.Submitted != 3 || st.Requeued != 3 || st.Redelivered != 3 || st.Dropped != 0 || st.Unsettled != 0 {
		t.Errorf("stats %+v", st)
	}
	if st.LastMessage.IsZero() || !st.Connected || st.ConnectedAt.IsZero() {
		t.Errorf("liveness %+v", st)
	}
	if err := c.Run(t.Context(), sink); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("a second Run: %v, want already running", err)
	}
	// Stop: anything unacked goes back to the queue when the channel closes.
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	if n := r.messages(t, cfg.Queue); n != 0 {
		t.Errorf("%d messages left in the queue after all were submitted: not acked", n)
	}
}

func TestAMQPOpenQAJobDoneMappedNonComposeSkipped(t *testing.T) {
	r := newAMQPRig(t)
	cfg := r.config(t)
	c := newTestConsumer(t, cfg)
	sink := &testSink{}
	stop := runConsumer(t, c, sink)
	amqpWait(t, "the consumer to connect", c.Connected)

	builds := []struct {
		build   string
		compose bool
	}{
		{"Update-FEDORA-2026-0a1b2c3d4e", false},
		{"Fedora-Rawhide-20261122.n.0", true},
		{"Kojitask-123456_123457-NOREPORT", false},
		{"TAG_f44-build-side-12345-NOREPORT", false},
		{"COPR_someone/something-NOREPORT", false},
		{"Fedora-CoreOS-44.20261122.91.0", false},
		{"Fedora-Rawhide-20261122.n.0-EXTRA", false},
		{"Fedora-Rawhide-20261122.n.0-NOREPORT", false},
		{"../../etc", false},
		{"Fedora-44-20261122.n.0", true},
	}
	sentAt := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	var want []event.Event
	for i, b := range builds {
		id, err := r.bus.Publish(t.Context(), fakefedora.BusTopicJobDone, fakefedora.JobDoneBody(fakefedora.JobDone{
			ID: int64(100 + i), Result: "passed", Build: b.build, Test: "install_default", Arch: "x86_64", Machine: "64bit", Flavor: "Server-dvd-iso",
		}), fakefedora.PublishOptions{SentAt: sentAt, SentAtZ: true})
		if err != nil {
			t.Fatal(err)
		}
		if b.compose {
			want = append(want, event.Event{Kind: event.KindOpenQAJobDone, ComposeID: b.build, Source: event.SourceAMQP, MessageID: id, Topic: TopicOpenQAJobDone, At: sentAt})
		}
	}
	amqpWait(t, "every message to be received", func() bool { return c.Stats().Received == uint64(len(builds)) })
	amqpWait(t, "the compose builds to be submitted", func() bool { return len(sink.submitted()) == len(want) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := sink.called()
	for i := range got {
		if !got[i].At.Equal(sentAt) {
			t.Errorf("At %v, want %v", got[i].At, sentAt)
		}
		got[i].At = sentAt
	}
	if !slices.Equal(got, want) {
		t.Errorf("events\n got %+v\nwant %+v", got, want)
	}
	st := c.Stats()
	if st.Dropped != uint64(len(builds)-len(want)) || st.Invalid != 0 || st.Submitted != uint64(len(want)) {
		t.Errorf("stats %+v", st)
	}
	if n := r.messages(t, cfg.Queue); n != 0 {
		t.Errorf("%d messages left in the queue: skipped builds must be acked", n)
	}
}

func TestAMQPInvalidAndIrrelevantMessagesDropped(t *testing.T) {
	r := newAMQPRig(t)
	cfg := r.config(t)
	const phaseTopic = "org.fedoraproject.prod.pungi.compose.phase.start"
	cfg.Bindings = append(cfg.Bindings, phaseTopic)
	c := newTestConsumer(t, cfg)
	sink := &testSink{}
	stop := runConsumer(t, c, sink)
	amqpWait(t, "the consumer to connect", c.Connected)

	status := func(mod func(map[string]any)) map[string]any {
		b := fakefedora.ComposeStatusBody("Fedora-Rawhide-20261122.n.0", "FINISHED",
			"https://kojipkgs.fedoraproject.org/compose/rawhide/Fedora-Rawhide-20261122.n.0/compose")
		mod(b)
		return b
	}
	tests := []struct {
		name    string
		topic   string
		body    any
		opts    fakefedora.PublishOptions
		invalid bool // else irrelevant
	}{
		{"not JSON", fakefedora.BusTopicComposeStatus, []byte("FINISHED Fedora-Rawhide-20261122.n.0"), fakefedora.PublishOptions{}, true},
		{"a JSON array", fakefedora.BusTopicComposeStatus, []byte(`["Fedora-Rawhide-20261122.n.0"]`), fakefedora.PublishOptions{}, true},
		{"JSON null", fakefedora.BusTopicComposeStatus, []byte(`null`), fakefedora.PublishOptions{}, true},
		{"not UTF-8", fakefedora.BusTopicComposeStatus, []byte("{\"compose_id\": \"Fedora-\xff\", \"status\": \"FINISHED\"}"), fakefedora.PublishOptions{}, true},
		{"latin-1 encoding", fakefedora.BusTopicComposeStatus, status(func(map[string]any) {}), fakefedora.PublishOptions{ContentEncoding: "latin-1"}, true},
		{"path in compose_id", fakefedora.BusTopicComposeStatus, status(func(b map[string]any) { b["compose_id"] = "../../etc" }), fakefedora.PublishOptions{}, true},
		{"no compose_id", fakefedora.BusTopicComposeStatus, status(func(b map[string]any) { delete(b, "compose_id") }), fakefedora.PublishOptions{}, true},
		{"numeric compose_id", fakefedora.BusTopicComposeStatus, status(func(b map[string]any) { b["compose_id"] = 20261122 }), fakefedora.PublishOptions{}, true},
		{"no status", fakefedora.BusTopicComposeStatus, status(func(b map[string]any) { delete(b, "status") }), fakefedora.PublishOptions{}, true},
		{"odd status", fakefedora.BusTopicComposeStatus, status(func(b map[string]any) { b["status"] = "finished; rm -rf" }), fakefedora.PublishOptions{}, true},
		{"file location", fakefedora.BusTopicComposeStatus, status(func(b map[string]any) { b["location"] = "file:///etc/passwd" }), fakefedora.PublishOptions{}, true},
		{"job.done without BUILD", fakefedora.BusTopicJobDone, map[string]any{"id": 1, "result": "passed"}, fakefedora.PublishOptions{}, true},
		{"non-Fedora compose", fakefedora.BusTopicComposeStatus, fakefedora.ComposeStatusBody("DP-1.0-20161013.t.4", "FINISHED", "http://example.com/DP-1.0-20161013.t.4/compose"), fakefedora.PublishOptions{}, false},
		{"unhandled topic", phaseTopic, status(func(map[string]any) {}), fakefedora.PublishOptions{}, false},
	}
	invalid := 0
	for _, tt := range tests {
		r.publish(t, tt.topic, tt.body, tt.opts)
		if tt.invalid {
			invalid++
		}
	}
	sentinel := r.publish(t, fakefedora.BusTopicComposeStatus, status(func(map[string]any) {}), fakefedora.PublishOptions{})
	amqpWait(t, "the valid message to be submitted", func() bool { return len(sink.submitted()) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := sink.called(); len(got) != 1 || got[0].MessageID != sentinel {
		t.Errorf("the sink got %+v, want only the valid message %s", got, sentinel)
	}
	st := c.Stats()
	if st.Received != uint64(len(tests)+1) || st.Dropped != uint64(len(tests)) || st.Invalid != uint64(invalid) || st.Redelivered != 0 {
		t.Errorf("stats %+v; want %d received, %d dropped, %d invalid, none redelivered", st, len(tests)+1, len(tests), invalid)
	}
	if n := r.messages(t, cfg.Queue); n != 0 {
		t.Errorf("%d messages left in the queue: dropped messages must be settled", n)
	}
}

func TestAMQPDuplicatesReachSinkWithTheirMessageID(t *testing.T) {
	r := newAMQPRig(t)
	cfg := r.config(t)
	c := newTestConsumer(t, cfg)
	sink := &testSink{}
	runConsumer(t, c, sink)
	amqpWait(t, "the consumer to connect", c.Connected)
	body := fakefedora.ComposeStatusBody("Fedora-Rawhide-20261122.n.0", "FINISHED", "")
	const id = "5b0c7e4e-2f0a-4c1e-9d7b-0e6f3c2a1b90"
	for range 2 {
		r.publish(t, fakefedora.BusTopicComposeStatus, body, fakefedora.PublishOptions{MessageID: id})
	}
	amqpWait(t, "both copies to be submitted", func() bool { return len(sink.submitted()) == 2 })
	for _, e := range sink.submitted() {
		if e.MessageID != id || e.ComposeID != "Fedora-Rawhide-20261122.n.0" {
			t.Errorf("event %+v, want message_id %s", e, id)
		}
	}
}

// amqpProxy is a TCP proxy between the consumer and the broker whose
// connections the test can cut, and which can refuse new ones for a while.
type amqpProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	down   bool
	wg     sync.WaitGroup
}

func newAMQPProxy(t *testing.T, target string) *amqpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &amqpProxy{l: l, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		l.Close()
		p.cut(true)
		p.wg.Wait()
	})
	return p
}

func (p *amqpProxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			in.Close()
			continue
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		p.wg.Add(2)
		go pipe(in, out)
		go pipe(out, in)
	}
}

// cut closes every proxied connection; with down, new ones are refused
// until resume.
func (p *amqpProxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *amqpProxy) resume() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// url is the broker URL rewritten to go through the proxy.
func (p *amqpProxy) url(t *testing.T, broker string) string {
	t.Helper()
	u, err := url.Parse(broker)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.l.Addr().String()
	return u.String()
}

func TestAMQPReconnectLosesNothingWithDurableQueue(t *testing.T) {
	r := newAMQPRig(t)
	cfg := r.config(t)
	uri, err := amqp.ParseURI(r.url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newAMQPProxy(t, net.JoinHostPort(uri.Host, fmt.Sprint(uri.Port)))
	cfg.URL = proxy.url(t, r.url)
	cfg.Durable, cfg.AutoDelete, cfg.Exclusive = true, false, false
	c := newTestConsumer(t, cfg)

	// The sink holds the first message until the connection is cut.
	inFirst, release := make(chan struct{}), make(chan struct{})
	var firstID string
	var firstOnce sync.Once
	sink := &testSink{hook: func(_ context.Context, e event.Event, seen int) error {
		first := false
		firstOnce.Do(func() { firstID, first = e.MessageID, true })
		if first {
			close(inFirst)
			<-release
		}
		return nil
	}}
	stop := runConsumer(t, c, sink)
	amqpWait(t, "the consumer to connect", c.Connected)

	ids := map[string]bool{}
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			body := fakefedora.ComposeStatusBody(fmt.Sprintf("Fedora-Rawhide-20261122.n.%d", i), "FINISHED", "")
			ids[r.publish(t, fakefedora.BusTopicComposeStatus, body, fakefedora.PublishOptions{})] = true
		}
	}
	publish(0, 5)
	<-inFirst
	// Cut the consumer off mid-message and keep it off.
	proxy.cut(true)
	amqpWait(t, "the consumer to notice the cut", func() bool { return !c.Connected() })
	// Its Submit succeeds now, but its channel is gone: it must not be
	// acked (least of all on a new channel); the broker redelivers it.
	close(release)
	publish(5, 10) // into the durable queue while nobody consumes
	amqpWait(t, "reconnection attempts to fail", func() bool { return c.Stats().ConnectFailures > 0 })
	proxy.resume()
	amqpWait(t, "every message to be submitted", func() bool {
		seen := map[string]bool{}
		for _, e := range sink.submitted() {
			seen[e.MessageID] = true
		}
		return len(seen) == len(ids)
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Reconnects != 1 {
		t.Errorf("%d reconnects, want 1 (an ack on the wrong channel would close it and force another)", st.Reconnects)
	}
	if st.Unsettled != 1 {
		t.Errorf("%d deliveries left unsettled, want 1 (the one held across the cut)", st.Unsettled)
	}
	if st.Redelivered == 0 {
		t.Error("no redelivery counted")
	}
	n := 0
	for _, e := range sink.submitted() {
		if !ids[e.MessageID] {
			t.Errorf("unexpected event %+v", e)
		}
		if e.MessageID == firstID {
			n++
		}
	}
	if n != 2 {
		t.Errorf("the message held across the cut was submitted %d times, want 2 (before the cut and redelivered)", n)
	}
	if n := r.messages(t, cfg.Queue); n != 0 {
		t.Errorf("%d messages left in the queue", n)
	}
}

func TestAMQPCancelStopsRunPromptly(t *testing.T) {
	t.Run("while Submit runs", func(t *testing.T) {
		r := newAMQPRig(t)
		cfg := r.config(t)
		c := newTestConsumer(t, cfg)
		in := make(chan struct{}, 1)
		sink := &testSink{hook: func(ctx context.Context, _ event.Event, _ int) error {
			in <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		}}
		stop := runConsumer(t, c, sink)
		amqpWait(t, "the consumer to connect", c.Connected)
		r.publish(t, fakefedora.BusTopicComposeStatus, fakefedora.ComposeStatusBody("Fedora-Rawhide-20261122.n.0", "FINISHED", ""), fakefedora.PublishOptions{})
		<-in
		if err := stop(); err != nil {
			t.Errorf("Run: %v, want nil after cancel", err)
		}
		if c.Connected() {
			t.Error("still connected after Run returned")
		}
		// Not acked: back in the queue for the next consumer.
		amqpWait(t, "the message to return to the queue", func() bool { return r.messages(t, cfg.Queue) == 1 })
	})
	t.Run("while idle", func(t *testing.T) {
		r := newAMQPRig(t)
		c := newTestConsumer(t, r.config(t))
		stop := runConsumer(t, c, &testSink{})
		amqpWait(t, "the consumer to connect", c.Connected)
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Run("while the broker is unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		cfg := DefaultConfig()
		cfg.URL, cfg.CACert, cfg.Cert, cfg.Key = "amqp://guest:guest@"+addr+"/", "", "", ""
		cfg.ReconnectDelay = 20 * time.Millisecond
		c := newTestConsumer(t, cfg)
		stop := runConsumer(t, c, &testSink{})
		amqpWait(t, "a failed attempt", func() bool { return c.Stats().ConnectFailures > 1 })
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		if st := c.Stats(); st.LastError == "" || st.Connected {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestAMQPStallForcesReconnect(t *testing.T) {
	r := newAMQPRig(t)
	cfg := r.config(t)
	cfg.StallTimeout = 150 * time.Millisecond
	c := newTestConsumer(t, cfg)
	if c.Idle() != 0 {
		t.Errorf("Idle %v before connecting", c.Idle())
	}
	runConsumer(t, c, &testSink{})
	amqpWait(t, "a stall to be detected", func() bool { st := c.Stats(); return st.Stalls >= 1 && st.Reconnects >= 1 })
	amqpWait(t, "the consumer to be connected again", c.Connected)
	if c.Idle() < cfg.StallTimeout {
		t.Errorf("Idle %v after a stall of %v", c.Idle(), cfg.StallTimeout)
	}
	if !c.LastMessage().IsZero() {
		t.Errorf("LastMessage %v with no message", c.LastMessage())
	}
}

func TestAMQPFirstConnectionFailsFastOnMisconfiguration(t *testing.T) {
	r := newAMQPRig(t)
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"missing queue, passive", func(c *Config) { c.Queue, c.PassiveDeclare = "composeci-test-missing-"+newUUID(), true }, "404"},
		{"missing exchange", func(c *Config) { c.Exchange = "composeci-test-missing-" + newUUID() }, "404"},
		{"bad password", func(c *Config) {
			u, _ := url.Parse(c.URL)
			u.User = url.UserPassword("guest", "wrong-"+newUUID())
			c.URL = u.String()
		}, "403"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := r.config(t)
			tt.mod(&cfg)
			c := newTestConsumer(t, cfg)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := c.Run(ctx, &testSink{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run: %v, want an error with %s", err, tt.want)
			}
			if ctx.Err() != nil {
				t.Error("Run retried instead of failing")
			}
		})
	}
}

// The tests below need no broker.

func amqpTestDelivery(topic string, body string, headers amqp.Table) amqp.Delivery {
	return amqp.Delivery{RoutingKey: topic, ContentType: "application/json", ContentEncoding: "utf-8",
		MessageId: "m-1", Headers: headers, Body: []byte(body)}
}

func TestAMQPDecode(t *testing.T) {
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	fedora := map[fedfind.StreamKind]bool{fedfind.StreamRawhide: true, fedfind.StreamBranched: true, fedfind.StreamProduction: true}
	const raw = "org.fedoraproject.prod.pungi.compose.status.change"
	const done = "org.fedoraproject.prod.openqa.job.done"
	tests := []struct {
		name    string
		d       amqp.Delivery
		want    event.Event
		outcome string // "", "irrelevant", "invalid"
		words   string // in the error, when set
	}{
		{
			name: "rawhide finished",
			d: amqpTestDelivery(raw, `{"status": "FINISHED", "compose_id": "Fedora-Rawhide-20261122.n.0", "location": "https://kojipkgs.fedoraproject.org/compose/rawhide/Fedora-Rawhide-20261122.n.0/compose", "compose_respin": 0, "compose_label": null}`,
				amqp.Table{"sent-at": "2026-11-22T07:59:58+00:00"}),
			want: event.Event{Kind: event.KindComposeStatus, ComposeID: "Fedora-Rawhide-20261122.n.0", Status: "FINISHED",
				Location: "https://kojipkgs.fedoraproject.org/compose/rawhide/Fedora-Rawhide-20261122.n.0/compose",
				Source:   event.SourceAMQP, MessageID: "m-1", Topic: raw, At: time.Date(2026, 11, 22, 7, 59, 58, 0, time.UTC)},
		},
		{
			name: "staging prefix, null location, no sent-at",
			d:    amqpTestDelivery("org.fedoraproject.stg.pungi.compose.status.change", `{"status": "STARTED", "compose_id": "Fedora-45-20261122.0", "location": null}`, nil),
			want: event.Event{Kind: event.KindComposeStatus, ComposeID: "Fedora-45-20261122.0", Status: "STARTED", Source: event.SourceAMQP, MessageID: "m-1",
				Topic: "org.fedoraproject.stg.pungi.compose.status.change", At: now},
		},
		{
			name: "job done, Z sent-at with fraction",
			d:    amqpTestDelivery(done, `{"id": 7, "BUILD": "Fedora-44-20261122.n.0", "remaining": 0}`, amqp.Table{"sent-at": "2026-11-22T07:00:00.5Z"}),
			want: event.Event{Kind: event.KindOpenQAJobDone, ComposeID: "Fedora-44-20261122.n.0", Source: event.SourceAMQP, MessageID: "m-1", Topic: done,
				At: time.Date(2026, 11, 22, 7, 0, 0, 5e8, time.UTC)},
		},
		{
			name: "no content encoding is UTF-8; sent-at without zone is UTC",
			d: func() amqp.Delivery {
				d := amqpTestDelivery(raw, `{"status": "DOOMED", "compose_id": "Fedora-Rawhide-20261122.n.1"}`, amqp.Table{"sent-at": []byte("2026-11-22T06:00:00")})
				d.ContentEncoding = ""
				return d
			}(),
			want: event.Event{Kind: event.KindComposeStatus, ComposeID: "Fedora-Rawhide-20261122.n.1", Status: "DOOMED", Source: event.SourceAMQP, MessageID: "m-1", Topic: raw,
				At: time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)},
		},
		{
			name: "AMQP timestamp when sent-at is unreadable",
			d: func() amqp.Delivery {
				d := amqpTestDelivery(raw, `{"status": "FINISHED", "compose_id": "Fedora-Rawhide-20261122.n.0"}`, amqp.Table{"sent-at": "yesterday"})
				d.Timestamp = time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)
				return d
			}(),
			want: event.Event{Kind: event.KindComposeStatus, ComposeID: "Fedora-Rawhide-20261122.n.0", Status: "FINISHED", Source: event.SourceAMQP, MessageID: "m-1", Topic: raw,
				At: time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)},
		},
		{
			name: "location scheme in capitals is written in lower case",
			d:    amqpTestDelivery(raw, `{"status": "FINISHED", "compose_id": "Fedora-Rawhide-20261122.n.0", "location": "HTTPS://Kojipkgs.example.org/Compose"}`, nil),
			want: event.Event{Kind: event.KindComposeStatus, ComposeID: "Fedora-Rawhide-20261122.n.0", Status: "FINISHED",
				Location: "https://Kojipkgs.example.org/Compose", Source: event.SourceAMQP, MessageID: "m-1", Topic: raw, At: now},
		},
		{name: "unknown topic", d: amqpTestDelivery("org.fedoraproject.prod.pungi.compose.phase.start", `{}`, nil), outcome: "irrelevant"},
		{name: "topic that only ends alike", d: amqpTestDelivery("org.fedoraproject.prod.notpungi.compose.status.change", `{}`, nil), outcome: "irrelevant"},
		{name: "stream not followed", d: amqpTestDelivery(raw, `{"status": "FINISHED", "compose_id": "Fedora-eln-20261122.n.0"}`, nil), outcome: "irrelevant"},
		{name: "not a Fedora compose", d: amqpTestDelivery(raw, `{"status": "FINISHED", "compose_id": "DP-1.0-20161013.t.4"}`, nil), outcome: "irrelevant"},
		{name: "update build", d: amqpTestDelivery(done, `{"BUILD": "Update-FEDORA-2026-abc"}`, nil), outcome: "irrelevant"},
		{name: "non-canonical build", d: amqpTestDelivery(done, `{"BUILD": "Fedora-Rawhide-20261122.nightly.0"}`, nil), outcome: "irrelevant"},
		{name: "build of a path", d: amqpTestDelivery(done, `{"BUILD": "../../etc"}`, nil), outcome: "irrelevant"},
		{name: "numeric build", d: amqpTestDelivery(done, `{"BUILD": 42}`, nil), outcome: "invalid"},
		{name: "path compose ID", d: amqpTestDelivery(raw, `{"status": "FINISHED", "compose_id": "../../etc"}`, nil), outcome: "invalid"},
		{name: "non-canonical compose ID", d: amqpTestDelivery(raw, `{"status": "FINISHED", "compose_id": "Fedora-Rawhide-20261122.nightly.0"}`, nil), outcome: "invalid"},
		{name: "empty status", d: amqpTestDelivery(raw, `{"status": "", "compose_id": "Fedora-Rawhide-20261122.n.0"}`, nil), outcome: "invalid"},
		{name: "ftp location", d: amqpTestDelivery(raw, `{"status": "FINISHED", "compose_id": "Fedora-Rawhide-20261122.n.0", "location": "ftp://x/y"}`, nil), outcome: "invalid"},
		{name: "location without host", d: amqpTestDelivery(raw, `{"status": "FINISHED", "compose_id": "Fedora-Rawhide-20261122.n.0", "location": "https:///compose"}`, nil), outcome: "invalid"},
		{name: "location with credentials", d: amqpTestDelivery(raw, `{"status": "FINISHED", "compose_id": "Fedora-Rawhide-20261122.n.0", "location": "https://u:p@example.com/compose"}`, nil), outcome: "invalid"},
		{name: "truncated JSON", d: amqpTestDelivery(raw, `{"status": "FINISHED"`, nil), outcome: "invalid"},
		{name: "JSON string", d: amqpTestDelivery(raw, `"FINISHED"`, nil), outcome: "invalid", words: "body is not a JSON object: a JSON string"},
		{name: "JSON array", d: amqpTestDelivery(raw, `[1,2,3]`, nil), outcome: "invalid", words: "body is not a JSON object: a JSON array"},
		{name: "JSON null", d: amqpTestDelivery(raw, `null`, nil), outcome: "invalid", words: "body is not a JSON object: a JSON null"},
		{name: "not JSON, starting as null would", d: amqpTestDelivery(raw, `not json {`, nil), outcome: "invalid", words: "invalid character"},
		{name: "UTF-16", d: func() amqp.Delivery {
			d := amqpTestDelivery(raw, `{}`, nil)
			d.ContentEncoding = "utf-16"
			return d
		}(), outcome: "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := decode(tt.d, now, fedora)
			switch tt.outcome {
			case "":
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if ev != tt.want {
					t.Errorf("event\n got %+v\nwant %+v", ev, tt.want)
				}
			case "irrelevant":
				if !errors.Is(err, errIrrelevant) {
					t.Errorf("got %+v, %v; want irrelevant", ev, err)
				}
			case "invalid":
				if err == nil || errors.Is(err, errIrrelevant) {
					t.Errorf("got %+v, %v; want invalid", ev, err)
				}
			}
			if tt.words != "" && (err == nil || !strings.Contains(err.Error(), tt.words)) {
				t.Errorf("error %v, want one saying %q", err, tt.words)
			}
		})
	}
}

func TestAMQPConfigDefaults(t *testing.T) {
	c, err := NewConsumer(Config{URL: "amqp://guest:guest@localhost/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	if c.cfg.Exchange != "amq.topic" || c.cfg.Prefetch != 25 || !slices.Equal(c.cfg.Bindings, def.Bindings) ||
		c.cfg.App != "composeci" || c.cfg.SubmitTimeout != time.Minute || c.cfg.ReconnectMaxDelay != time.Minute {
		t.Errorf("defaults not filled: %+v", c.cfg)
	}
	if !reUUIDForTest(c.Queue()) {
		t.Errorf("queue %q is not a UUID", c.Queue())
	}
	c2, _ := NewConsumer(Config{URL: "amqp://localhost/"}, nil)
	if c2.Queue() == c.Queue() {
		t.Error("two consumers share a queue name")
	}
	if c.tls != nil || c.sasl {
		t.Error("TLS for an amqp:// URL")
	}
	if c.streams[fedfind.StreamOther] || !c.streams[fedfind.StreamRawhide] || !c.streams[fedfind.StreamUpdates] {
		t.Errorf("default streams %v", c.streams)
	}
	if !def.AutoDelete || !def.Exclusive || def.Durable || def.URL != FedoraPublicBrokerURL {
		t.Errorf("DefaultConfig %+v", def)
	}

	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"no URL", Config{}},
		{"http URL", Config{URL: "http://localhost/"}},
		{"passive without a queue", Config{URL: "amqp://localhost/", PassiveDeclare: true}},
		{"unknown stream", Config{URL: "amqp://localhost/", Streams: []string{"rawhide", "fedora-99"}}},
		{"no bindings", Config{URL: "amqp://localhost/", Bindings: []string{}}},
		{"missing CA", Config{URL: "amqps://localhost/", CACert: filepath.Join(t.TempDir(), "none.pem")}},
		{"cert without key", Config{URL: "amqps://localhost/", Cert: "x.pem"}},
	} {
		if _, err := NewConsumer(tt.cfg, nil); !errors.Is(err, fedfind.ErrInvalidInput) {
			t.Errorf("%s: %v, want ErrInvalidInput", tt.name, err)
		}
	}
	c3, err := NewConsumer(Config{URL: "amqp://localhost/", Streams: []string{"Rawhide", "other"}}, nil)
	if err != nil || !c3.streams[fedfind.StreamOther] || c3.streams[fedfind.StreamBranched] {
		t.Errorf("streams %v, %v", c3.streams, err)
	}
}

func reUUIDForTest(s string) bool {
	const hex = "0123456789abcdef"
	if len(s) != 36 || s[14] != '4' {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune(hex, r) {
				return false
			}
		}
	}
	return true
}

func TestAMQPTLSWithClientCertificateUsesExternalAuth(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fedora"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)

	cfg := DefaultConfig()
	cfg.CACert, cfg.Cert, cfg.Key = certFile, certFile, keyFile
	c, err := NewConsumer(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.sasl || c.tls == nil || len(c.tls.Certificates) != 1 || c.tls.RootCAs == nil || c.tls.MinVersion != 0x0303 {
		t.Errorf("TLS %+v, SASL EXTERNAL %v", c.tls, c.sasl)
	}
	// Without a client certificate: TLS with the URL's credentials.
	cfg.Cert, cfg.Key = "", ""
	if c, err = NewConsumer(cfg, nil); err != nil || c.sasl || c.tls == nil {
		t.Errorf("no client certificate: %v, SASL EXTERNAL %v", err, c.sasl)
	}
}

// TestAMQPHeldAcksNeverCoverAnUnsettledDelivery: the acks of dropped
// messages go out together (one ack with multiple set), and a Submit cut
// short by shutdown leaves its delivery unsettled for the broker to requeue.
// No held ack may settle it: the dropped messages before it are acked, it
// is back in the queue.
func TestAMQPHeldAcksNeverCoverAnUnsettledDelivery(t *testing.T) {
	r := newAMQPRig(t)
	cfg := r.config(t)
	ch := r.channel(t)
	if _, err := ch.QueueDeclare(cfg.Queue, cfg.Durable, cfg.AutoDelete, cfg.Exclusive, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, key := range cfg.Bindings {
		if err := ch.QueueBind(cfg.Queue, key, cfg.Exchange, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Queued before the consumer starts, so that they come in a burst and
	// their acks are held: dropped ones, the compose's, dropped ones.
	msgs := irrelevantTraffic(2 * cfg.Prefetch)
	for i := range msgs {
		msgs[i].Options.MessageID = fmt.Sprintf("dropped-%d", i)
	}
	const relevant = "the-compose"
	msgs = slices.Insert(msgs, cfg.Prefetch/2+3, fakefedora.Outgoing{Topic: fakefedora.BusTopicComposeStatus,
		Body: fakefedora.ComposeStatusBody("Fedora-Rawhide-20261122.n.0", "FINISHED", ""), Options: fakefedora.PublishOptions{MessageID: relevant}})
	if err := r.bus.PublishAll(t.Context(), msgs); err != nil {
		t.Fatal(err)
	}
	c := newTestConsumer(t, cfg)
	in := make(chan struct{}, 1)
	sink := &testSink{hook: func(ctx context.Context, _ event.Event, _ int) error {
		in <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}}
	stop := runConsumer(t, c, sink)
	<-in
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	before := cfg.Prefetch/2 + 3
	if st := c.Stats(); st.Dropped < uint64(before) || st.Submitted != 0 {
		t.Errorf("stats %+v: want the %d dropped messages before the compose's", st, before)
	}
	left := map[string]bool{}
	for {
		d, ok, err := r.channel(t).Get(cfg.Queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		left[d.MessageId] = true
	}
	if !left[relevant] {
		t.Errorf("the compose's message, never settled, is not back in the queue (left: %d messages)", len(left))
	}
	for i := range before {
		if id := fmt.Sprintf("dropped-%d", i); left[id] {
			t.Errorf("%s, dropped before the compose's message, was not acked", id)
		}
	}
}
