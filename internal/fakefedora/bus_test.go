package fakefedora

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"regexp"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/composeci/composeci/internal/testenv"
)

// These tests publish through a real RabbitMQ (AMQP_URL below) and read the
// messages back raw with amqp091, checking properties, headers and bodies
// against docs/protocols.md, section (f), not against the consumer.

// busTestURL returns the broker's URL (see testenv.AMQPURL).
func busTestURL(t *testing.T) string { return testenv.AMQPURL(t) }

// busRig is a bus on an exchange of the test's own and a raw channel that
// reads what arrives on it.
type busRig struct {
	bus      *Bus
	ch       *amqp.Channel
	exchange string
}

func newBusRig(t *testing.T) *busRig {
	t.Helper()
	u := busTestURL(t)
	exchange := "composeci-test-bus-" + busUUID()
	bus, err := NewBus(u, exchange)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := bus.DeclareExchange(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := amqp.Dial(u)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		bus.Close()
		if err := ch.ExchangeDelete(exchange, false, false); err != nil {
			t.Errorf("delete exchange %s: %v", exchange, err)
		}
		conn.Close()
	})
	return &busRig{bus: bus, ch: ch, exchange: exchange}
}

// queue declares an exclusive, server-named queue bound with key.
func (r *busRig) queue(t *testing.T, key string) string {
	t.Helper()
	q, err := r.ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ch.QueueBind(q.Name, key, r.exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	return q.Name
}

// get takes the next message of queue, failing if none arrives in time.
func (r *busRig) get(t *testing.T, queue string) amqp.Delivery {
	t.Helper()
	var d amqp.Delivery
	testenv.WaitFor(t, 5*time.Second, "a message on "+queue, func() error {
		got, ok, err := r.ch.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return errors.New("queue empty")
		}
		d = got
		return nil
	})
	return d
}

var (
	reUUID4      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	rePythonTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$`)
	reZuluTime   = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
)

// checkEnvelope checks the properties and headers every Fedora message has.
func checkEnvelope(t *testing.T, d amqp.Delivery, topic string, sentAt *regexp.Regexp) {
	t.Helper()
	if d.RoutingKey != topic {
		t.Errorf("routing key %q, want %q", d.RoutingKey, topic)
	}
	if d.ContentType != "application/json" || d.ContentEncoding != "utf-8" || d.DeliveryMode != 2 {
		t.Errorf("content_type %q, content_encoding %q, delivery_mode %d; want application/json, utf-8, 2", d.ContentType, d.ContentEncoding, d.DeliveryMode)
	}
	if !reUUID4.MatchString(d.MessageId) {
		t.Errorf("message_id %q is not a UUID4", d.MessageId)
	}
	if got := d.Headers["fedora_messaging_schema"]; got != "base.message" {
		t.Errorf("fedora_messaging_schema = %#v, want base.message", got)
	}
	if got := d.Headers["fedora_messaging_severity"]; got != int32(20) {
		t.Errorf("fedora_messaging_severity = %#v, want 20", got)
	}
	s, _ := d.Headers["sent-at"].(string)
	if !sentAt.MatchString(s) {
		t.Errorf("sent-at = %#v, want the form %s", d.Headers["sent-at"], sentAt)
	}
	if at, err := time.Parse(time.RFC3339, s); err != nil || time.Since(at) > time.Minute || time.Until(at) > time.Second {
		t.Errorf("sent-at %q is not now (%v)", s, err)
	}
}

func decodeBody(t *testing.T, d amqp.Delivery) map[string]any {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(d.Body, &body); err != nil {
		t.Fatalf("body %q: %v", d.Body, err)
	}
	return body
}

func TestBusComposeStatusWireFormat(t *testing.T) {
	r := newBusRig(t)
	q := r.queue(t, BusTopicComposeStatus)
	tests := []struct {
		id, status, location string
		want                 map[string]any
	}{
		{
			id: "Fedora-Rawhide-20261122.n.0", status: "FINISHED",
			location: "https://kojipkgs.fedoraproject.org/compose/rawhide/Fedora-Rawhide-20261122.n.0/compose",
			want: map[string]any{
				"compose_date": "20261122", "compose_type": "nightly", "compose_respin": 0.0, "compose_label": nil,
				"compose_path":  "/mnt/koji/compose/rawhide/Fedora-Rawhide-20261122.n.0",
				"release_short": "Fedora", "release_name": "Fedora", "release_version": "Rawhide", "release_type": "ga",
				"release_is_layered": false,
			},
		},
		{
			id: "Fedora-44-20261121.n.2", status: "FINISHED_INCOMPLETE",
			location: "http://kojipkgs.fedoraproject.org/compose/branched/Fedora-44-20261121.n.2/compose",
			want: map[string]any{
				"compose_date": "20261121", "compose_type": "nightly", "compose_respin": 2.0,
				"compose_path": "/mnt/koji/compose/branched/Fedora-44-20261121.n.2", "release_version": "44",
			},
		},
		{
			id: "Fedora-44-updates-20261120.0", status: "STARTED",
			location: "https://kojipkgs.fedoraproject.org/compose/updates/Fedora-44-updates-20261120.0/compose",
			want: map[string]any{
				"compose_type": "production", "release_version": "44", "release_type": "updates",
				"compose_path": "/mnt/koji/compose/updates/Fedora-44-updates-20261120.0",
			},
		},
		{
			id: "Fedora-Cloud-44-20261120.0", status: "DOOMED",
			location: "https://kojipkgs.fedoraproject.org/compose/cloud/Fedora-Cloud-44-20261120.0/compose",
			want:     map[string]any{"release_short": "Fedora-Cloud", "release_version": "44", "compose_type": "production"},
		},
		{
			// not a Fedora stream: still the full set of fields
			id: "DP-1.0-20161013.t.4", status: "TERMINATED", location: "http://example.com/DP-1.0-20161013.t.4/compose",
			want: map[string]any{"release_short": "DP", "release_version": "1.0", "compose_type": "test", "compose_respin": 4.0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			id, err := r.bus.PublishComposeStatus(t.Context(), tt.id, tt.status, tt.location)
			if err != nil {
				t.Fatal(err)
			}
			d := r.get(t, q)
			checkEnvelope(t, d, BusTopicComposeStatus, rePythonTime)
			if d.MessageId != id {
				t.Errorf("message_id %q, Publish returned %q", d.MessageId, id)
			}
			body := decodeBody(t, d)
			want := map[string]any{"status": tt.status, "compose_id": tt.id, "location": tt.location}
			for k, v := range tt.want {
				want[k] = v
			}
			for k, v := range want {
				if got, ok := body[k]; !ok || got != v {
					t.Errorf("body[%q] = %#v, want %#v", k, got, v)
				}
			}
			for _, k := range []string{"compose_date", "compose_type", "compose_respin", "compose_label", "compose_path",
				"release_short", "release_name", "release_version", "release_type", "release_is_layered"} {
				if _, ok := body[k]; !ok {
					t.Errorf("body has no %q", k)
				}
			}
		})
	}
}

func TestBusJobDoneWireFormat(t *testing.T) {
	r := newBusRig(t)
	q := r.queue(t, "#.openqa.job.done")
	job := JobDone{
		ID: 4242, Result: "failed", Remaining: 3, GroupID: 1,
		Build: "Fedora-Rawhide-20261122.n.0", Test: "install_default", Arch: "x86_64", Machine: "64bit", Flavor: "Server-dvd-iso",
		Bugref: "rhbz#123", BugURL: "https://bugzilla.redhat.com/123", FailedModules: []string{"_boot_to_anaconda"},
		ISO: "Fedora-Server-dvd-x86_64-Rawhide-20261122.n.0.iso",
	}
	id, err := r.bus.PublishJobDone(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	d := r.get(t, q)
	checkEnvelope(t, d, BusTopicJobDone, reZuluTime)
	if d.MessageId != id {
		t.Errorf("message_id %q, Publish returned %q", d.MessageId, id)
	}
	body := decodeBody(t, d)
	want := map[string]any{
		"id": 4242.0, "result": "failed", "reason": nil, "newbuild": nil, "remaining": 3.0, "group_id": 1.0,
		"BUILD": job.Build, "TEST": job.Test, "ARCH": "x86_64", "MACHINE": "64bit", "FLAVOR": "Server-dvd-iso",
		"bugref": "rhbz#123", "bugurl": job.BugURL, "ISO": job.ISO,
	}
	for k, v := range want {
		if got, ok := body[k]; !ok || got != v {
			t.Errorf("body[%q] = %#v, want %#v", k, got, v)
		}
	}
	if fm, _ := body["failedmodules"].([]any); len(fm) != 1 || fm[0] != "_boot_to_anaconda" {
		t.Errorf("failedmodules = %#v", body["failedmodules"])
	}
	for _, k := range []string{"DISTRI", "VERSION", "HDD_1"} {
		if _, ok := body[k]; ok {
			t.Errorf("body has %q, which openQA does not send", k)
		}
	}

	// A passed job without group or bugref: nulls and an empty list.
	if _, err := r.bus.PublishJobDone(t.Context(), JobDone{ID: 1, Result: "passed", Build: "Update-FEDORA-2026-abc"}); err != nil {
		t.Fatal(err)
	}
	body = decodeBody(t, r.get(t, q))
	for _, k := range []string{"group_id", "bugref", "reason"} {
		if v, ok := body[k]; !ok || v != nil {
			t.Errorf("body[%q] = %#v, want null", k, v)
		}
	}
	if fm, ok := body["failedmodules"].([]any); !ok || len(fm) != 0 {
		t.Errorf("failedmodules = %#v, want []", body["failedmodules"])
	}
	if _, ok := body["bugurl"]; ok {
		t.Error("bugurl sent without a bugref")
	}
}

func TestBusPublishOptions(t *testing.T) {
	r := newBusRig(t)
	const topic = "org.fedoraproject.prod.test.bus"
	q := r.queue(t, topic)
	ctx := t.Context()

	// The same message_id twice: a duplicate, as at-least-once delivery
	// produces.
	at := time.Date(2019, 7, 30, 19, 12, 22, 987654321, time.UTC)
	opts := PublishOptions{MessageID: "2019-0d8f1d0a-6b5d-4b7b-a8d4-1d3e0a7c9b11", SentAt: at, Severity: 30, Priority: 3,
		Headers: map[string]any{"fedora_messaging_user_adamwill": true, "fedora_messaging_schema": nil}}
	for range 2 {
		id, err := r.bus.Publish(ctx, topic, map[string]any{"k": "v"}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if id != opts.MessageID {
			t.Fatalf("Publish returned %q, want %q", id, opts.MessageID)
		}
	}
	for range 2 {
		d := r.get(t, q)
		if d.MessageId != opts.MessageID {
			t.Errorf("message_id %q, want %q", d.MessageId, opts.MessageID)
		}
		if got := d.Headers["sent-at"]; got != "2019-07-30T19:12:22+00:00" {
			t.Errorf("sent-at %#v, want 2019-07-30T19:12:22+00:00 (no fraction)", got)
		}
		if d.Headers["fedora_messaging_severity"] != int32(30) || d.Priority != 3 || d.Headers["priority"] != int32(3) {
			t.Errorf("severity %#v, priority %d / header %#v", d.Headers["fedora_messaging_severity"], d.Priority, d.Headers["priority"])
		}
		if d.Headers["fedora_messaging_user_adamwill"] != true {
			t.Errorf("extra header missing: %#v", d.Headers)
		}
		if _, ok := d.Headers["fedora_messaging_schema"]; ok {
			t.Errorf("schema header not removed: %#v", d.Headers)
		}
	}

	// Raw bytes go out as they are, with the encoding given.
	if _, err := r.bus.Publish(ctx, topic, []byte("\xff not json"), PublishOptions{ContentEncoding: "latin-1"}); err != nil {
		t.Fatal(err)
	}
	d := r.get(t, q)
	if string(d.Body) != "\xff not json" || d.ContentEncoding != "latin-1" {
		t.Errorf("raw body %q, encoding %q", d.Body, d.ContentEncoding)
	}
}

func TestBusReconnectsAfterClose(t *testing.T) {
	r := newBusRig(t)
	const topic = "org.fedoraproject.prod.test.reconnect"
	q := r.queue(t, topic)
	ctx := t.Context()
	if _, err := r.bus.Publish(ctx, topic, map[string]any{"n": 1}, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	// Close drops the connection; the next publish opens a new one.
	if err := r.bus.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.bus.Publish(ctx, topic, map[string]any{"n": 2}, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	for want := 1.0; want <= 2; want++ {
		if got := decodeBody(t, r.get(t, q))["n"]; got != want {
			t.Errorf("n = %v, want %v", got, want)
		}
	}
}

func TestBusErrors(t *testing.T) {
	if _, err := NewBus("http://example.com/", "x"); err == nil {
		t.Error("NewBus accepted an http URL")
	}
	// A broker that is not there: Publish fails, honouring ctx.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	b, err := NewBus("amqp://guest:guest@"+addr+"/", "")
	if err != nil {
		t.Fatal(err)
	}
	if b.Exchange() != "amq.topic" {
		t.Errorf("default exchange %q", b.Exchange())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := b.PublishComposeStatus(ctx, "Fedora-Rawhide-20261122.n.0", "FINISHED", ""); err == nil {
		t.Error("Publish to a closed port succeeded")
	}
}

func TestBusComposeStatusBodyWithoutLocation(t *testing.T) {
	b := ComposeStatusBody("Fedora-eln-20261122.n.0", "STARTED", "")
	if _, ok := b["location"]; ok {
		t.Error("empty location sent")
	}
	if b["release_version"] != "eln" || b["compose_path"] != "/mnt/koji/compose/eln/Fedora-eln-20261122.n.0" {
		t.Errorf("ELN body %v", b)
	}
	b = ComposeStatusBody("../../etc", "FINISHED", "")
	if len(b) != 2 {
		t.Errorf("body of a non-ID has extra fields: %v", b)
	}
}

// TestSubscription reads back what the bus publishes through a
// Subscription: only the bound topics, counted exactly, the queue gone
// after Close.
func TestSubscription(t *testing.T) {
	r := newBusRig(t)
	ctx := t.Context()
	sub, err := Subscribe(ctx, busTestURL(t), r.exchange, BusTopicJobDone)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.bus.PublishComposeStatus(ctx, "Fedora-Rawhide-20261122.n.0", "FINISHED", ""); err != nil {
		t.Fatal(err)
	}
	id, err := r.bus.PublishJobDone(ctx, JobDone{ID: 42, Result: "passed", Build: "Fedora-Rawhide-20261122.n.0"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := sub.Ready(); err != nil || n != 1 {
		t.Fatalf("Ready = %d, %v; want the one job.done", n, err)
	}
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Topic != BusTopicJobDone || m.MessageID != id || m.ContentType != "application/json" || m.DeliveryMode != 2 ||
		m.Headers["fedora_messaging_schema"] != "base.message" || !json.Valid(m.Body) {
		t.Errorf("message = %+v", m)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := sub.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next on an empty queue = %v", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	conn, err := amqp.Dial(busTestURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclarePassive(sub.queue, false, true, true, false, nil); err == nil {
		t.Error("the subscription's queue outlived Close")
	}
}
