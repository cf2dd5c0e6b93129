package fedmsg

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/checks/checkstest"
	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/testenv"
	"github.com/composeci/composeci/reports"
)

// The publisher is tested against the real RabbitMQ: each test declares a
// topic exchange of its own and reads what arrives through a queue of its
// own (fakefedora.Subscription), both deleted afterwards, and checks the
// message against docs/protocols.md (f) and docs/messages.md.

var (
	uuid4      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	sentAtForm = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$`)
)

// publishRig is a test's exchange, a subscription to everything on it and
// an archive to record in.
type publishRig struct {
	url      string
	exchange string
	sub      *fakefedora.Subscription
	archive  reports.Archive
	admin    *amqp.Channel
}

func newPublishRig(t *testing.T, declare bool) *publishRig {
	t.Helper()
	r := &publishRig{url: testenv.AMQPURL(t), exchange: "composeci-test-pub-" + newUUID(), archive: reports.Archive{Dir: t.TempDir()}}
	conn, err := amqp.Dial(r.url)
	if err != nil {
		t.Fatal(err)
	}
	if r.admin, err = conn.Channel(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.admin.ExchangeDelete(r.exchange, false, false); err != nil {
			t.Errorf("delete exchange %s: %v", r.exchange, err)
		}
		conn.Close()
	})
	if declare {
		r.declare(t)
	}
	return r
}

// declare creates the exchange and the subscription bound to "#".
func (r *publishRig) declare(t *testing.T) {
	t.Helper()
	if err := r.admin.ExchangeDeclare(r.exchange, amqp.ExchangeTopic, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	sub, err := fakefedora.Subscribe(t.Context(), r.url, r.exchange, "#")
	if err != nil {
		t.Fatal(err)
	}
	r.sub = sub
	t.Cleanup(func() {
		if err := sub.Close(); err != nil {
			t.Errorf("close subscription: %v", err)
		}
	})
}

func (r *publishRig) publisher(t *testing.T, mod func(*PublisherConfig)) *Publisher {
	t.Helper()
	cfg := PublisherConfig{URL: r.url, Exchange: r.exchange, DialTimeout: 5 * time.Second, ConfirmTimeout: 5 * time.Second,
		Clock: func() time.Time { return time.Date(2026, 11, 22, 19, 0, 0, 500, time.UTC) }}
	if mod != nil {
		mod(&cfg)
	}
	p, err := NewPublisher(cfg, r.archive, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// ready returns the number of messages waiting in the subscription.
func (r *publishRig) ready(t *testing.T) int {
	t.Helper()
	n, err := r.sub.Ready()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// exampleNotification is the notification of checkstest's example compose
// (a problem: new failures and missing images), changed by mod.
func exampleNotification(t *testing.T, mod func(*checks.Input)) reports.Notification {
	t.Helper()
	in := checkstest.Example()
	if mod != nil {
		mod(&in)
	}
	r := reports.Build(checks.Run(in), reports.Meta{Status: "FINISHED_INCOMPLETE",
		Location:    "https://kojipkgs.fedoraproject.org/compose/rawhide/Fedora-Rawhide-20261122.n.0/compose",
		GeneratedAt: time.Date(2026, 11, 22, 18, 30, 0, 0, time.UTC)})
	return reports.NewNotification(r, reports.Changes(nil, r), reports.ReportLinks("https://composeci.example.org", r))
}

// schemaRequired returns the top-level required keys of the documented
// JSON Schema.
func schemaRequired(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../docs/messages.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s struct{ Required []string }
	if err := json.Unmarshal(b, &s); err != nil || len(s.Required) == 0 {
		t.Fatalf("docs/messages.schema.json: %v", err)
	}
	return s.Required
}

// TestPublishComposeCheck publishes a report version, reads it back as a
// Fedora Messaging consumer would, and publishes the same version again:
// nothing goes out the second time.
func TestPublishComposeCheck(t *testing.T) {
	rig := newPublishRig(t, true)
	p := rig.publisher(t, nil)
	n := exampleNotification(t, nil)

	d, published, err := p.PublishOnce(t.Context(), n)
	if err != nil || !published {
		t.Fatalf("PublishOnce = %+v, %v, %v", d, published, err)
	}
	m, err := rig.sub.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if m.Topic != "org.fedoraproject.prod.composeci.compose.check.complete" || p.Topic() != m.Topic {
		t.Errorf("topic %q (publisher says %q)", m.Topic, p.Topic())
	}
	if m.ContentType != "application/json" || m.ContentEncoding != "utf-8" || m.DeliveryMode != amqp.Persistent {
		t.Errorf("properties: content_type %q, content_encoding %q, delivery_mode %d", m.ContentType, m.ContentEncoding, m.DeliveryMode)
	}
	if !uuid4.MatchString(m.MessageID) || m.MessageID != p.MessageID(n) || m.MessageID != d.ID {
		t.Errorf("message_id %q, want the version 4 UUID %q", m.MessageID, p.MessageID(n))
	}
	wantHeaders := map[string]any{
		"fedora_messaging_schema":   "composeci.compose.check.complete.v1",
		"fedora_messaging_severity": int32(30), // a problem: WARNING
		"sent-at":                   "2026-11-22T19:00:00+00:00",
		"priority":                  int32(0),
	}
	for k, want := range wantHeaders {
		if got := m.Headers[k]; got != want {
			t.Errorf("header %s = %#v, want %#v", k, got, want)
		}
	}
	if len(m.Headers) != len(wantHeaders) || !sentAtForm.MatchString(m.Headers["sent-at"].(string)) {
		t.Errorf("headers = %v", m.Headers)
	}
	var body map[string]any
	if err := json.Unmarshal(m.Body, &body); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, m.Body)
	}
	for _, k := range schemaRequired(t) {
		if _, ok := body[k]; !ok {
			t.Errorf("the body lacks the required key %q", k)
		}
	}
	if body["compose_id"] != "Fedora-Rawhide-20261122.n.0" || body["version"] != n.Version || body["event"] != "compose.check.complete" ||
		body["problem"] != true || body["changed"] != true {
		t.Errorf("body = %s", m.Body)
	}
	recs, err := rig.archive.DeliveriesOf(t.Context(), n.ComposeID)
	if err != nil || len(recs) != 1 || recs[0] != d || d.Channel != reports.ChannelAMQP || d.Version != n.Version {
		t.Fatalf("ledger = %+v, %v; want exactly %+v", recs, err, d)
	}
	if strings.Contains(d.Endpoint, "guest") {
		t.Errorf("the ledger's endpoint %q holds credentials", d.Endpoint)
	}

	// The same version again: nothing is published.
	again, published, err := p.PublishOnce(t.Context(), n)
	if err != nil || published || again != d {
		t.Errorf("second PublishOnce = %+v, %v, %v; want the first delivery, not published", again, published, err)
	}
	if got := rig.ready(t); got != 0 {
		t.Errorf("%d messages published for a version already published", got)
	}
	if pub, failed := p.Stats(); pub != 1 || failed != 0 {
		t.Errorf("Stats = %d, %d", pub, failed)
	}

	// A new version of the report (one job fewer) is a new message.
	n2 := exampleNotification(t, func(in *checks.Input) { in.Jobs = in.Jobs[:len(in.Jobs)-1] })
	if n2.Version == n.Version {
		t.Fatal("the changed report has the same version")
	}
	if _, published, err := p.PublishOnce(t.Context(), n2); err != nil || !published {
		t.Fatalf("PublishOnce(new version) = %v, %v", published, err)
	}
	m2, err := rig.sub.Next(t.Context())
	if err != nil || m2.MessageID == m.MessageID || m2.MessageID != p.MessageID(n2) {
		t.Errorf("the new version's message_id %q (first %q), %v", m2.MessageID, m.MessageID, err)
	}
}

func TestPublishSeverityAndPrefix(t *testing.T) {
	rig := newPublishRig(t, true)
	p := rig.publisher(t, func(c *PublisherConfig) { c.TopicPrefix = "org.fedoraproject.stg." })
	n := exampleNotification(t, nil)
	n.Problem = false // as a good compose's
	if _, err := p.Publish(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	m, err := rig.sub.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if m.Topic != "org.fedoraproject.stg.composeci.compose.check.complete" || m.Headers["fedora_messaging_severity"] != int32(20) {
		t.Errorf("topic %q, severity %v", m.Topic, m.Headers["fedora_messaging_severity"])
	}
	if recs, _ := rig.archive.DeliveriesOf(t.Context(), n.ComposeID); len(recs) != 0 {
		t.Errorf("Publish recorded %+v: only PublishOnce records", recs)
	}
}

// TestPublishFailsThenRecovers: publishing to an exchange that does not
// exist is an error (the broker closes the channel instead of confirming)
// and records nothing; once it exists, the same publisher reconnects and
// publishes. Then its connection is closed under it, and it reconnects.
func TestPublishFailsThenRecovers(t *testing.T) {
	rig := newPublishRig(t, false)
	p := rig.publisher(t, nil)
	n := exampleNotification(t, nil)
	_, published, err := p.PublishOnce(t.Context(), n)
	if err == nil || published {
		t.Fatalf("publishing to a missing exchange: %v, published %v", err, published)
	}
	if !errors.Is(err, ErrNotConfirmed) && !errors.Is(err, amqp.ErrClosed) && !strings.Contains(err.Error(), "NOT_FOUND") {
		t.Errorf("err = %v", err)
	}
	if recs, _ := rig.archive.DeliveriesOf(t.Context(), n.ComposeID); len(recs) != 0 {
		t.Fatalf("a failed publish was recorded: %+v", recs)
	}
	rig.declare(t)
	if _, published, err := p.PublishOnce(t.Context(), n); err != nil || !published {
		t.Fatalf("after the exchange appeared: %v, %v", published, err)
	}
	p.mu.Lock()
	p.conn.Close() // the broker went away and came back
	p.mu.Unlock()
	if _, err := p.Publish(t.Context(), n); err != nil {
		t.Fatalf("after the connection closed: %v", err)
	}
	if got := rig.ready(t); got != 2 {
		t.Errorf("%d messages, want 2", got)
	}
}

func TestNewPublisherErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  PublisherConfig
	}{
		{"no URL", PublisherConfig{}},
		{"not AMQP", PublisherConfig{URL: "http://user:hunter2@example.org/"}},
		{"a wildcard in the prefix", PublisherConfig{URL: "amqp://localhost/", TopicPrefix: "org.#"}},
		{"a half client certificate", PublisherConfig{URL: "amqps://localhost/", Cert: "cert.pem"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewPublisher(tt.cfg, nil, nil)
			if !errors.Is(err, fedfind.ErrInvalidInput) {
				t.Fatalf("err = %v, want ErrInvalidInput", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error quotes the password: %v", err)
			}
		})
	}
	p, err := NewPublisher(PublisherConfig{URL: "amqp://u:hunter2@broker.example.org:5673/%2Fpub"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Endpoint(); got != "amqp://broker.example.org:5673//pub amq.topic org.fedoraproject.prod.composeci.compose.check.complete" {
		t.Errorf("Endpoint() = %q", got)
	}
	if _, _, err := p.PublishOnce(t.Context(), exampleNotification(t, nil)); err == nil {
		t.Error("PublishOnce without a ledger: no error")
	}
	if !slices.Contains(schemaRequired(t), "version") {
		t.Error("the schema does not require version")
	}
}

// TestPublishNacked: a queue that refuses messages (full, with
// reject-publish overflow) makes the broker nack; the publish fails and
// nothing is recorded.
func TestPublishNacked(t *testing.T) {
	rig := newPublishRig(t, true)
	full := "composeci-test-full-" + newUUID()
	if _, err := rig.admin.QueueDeclare(full, false, true, false, false,
		amqp.Table{"x-max-length": int32(0), "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rig.admin.QueueDelete(full, false, false, false) })
	if err := rig.admin.QueueBind(full, "#", rig.exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	p := rig.publisher(t, nil)
	n := exampleNotification(t, nil)
	_, published, err := p.PublishOnce(t.Context(), n)
	if !errors.Is(err, ErrNotConfirmed) || published || !strings.Contains(err.Error(), "nacked") {
		t.Fatalf("PublishOnce = %v, published %v; want a nack", err, published)
	}
	if recs, _ := rig.archive.DeliveriesOf(t.Context(), n.ComposeID); len(recs) != 0 {
		t.Errorf("a nacked message was recorded: %+v", recs)
	}
	if _, failed := p.Stats(); failed != 1 {
		t.Errorf("failed = %d", failed)
	}
}
