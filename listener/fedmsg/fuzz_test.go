package fedmsg

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/listener/event"
)

// fuzzStreams are the streams the fuzzed listener follows; allStreams is a
// superset of them.
var (
	fuzzStreams = map[fedfind.StreamKind]bool{fedfind.StreamRawhide: true, fedfind.StreamBranched: true, fedfind.StreamProduction: true}
	allStreams  = map[fedfind.StreamKind]bool{
		fedfind.StreamRawhide: true, fedfind.StreamBranched: true, fedfind.StreamELN: true, fedfind.StreamCloud: true,
		fedfind.StreamContainer: true, fedfind.StreamIoT: true, fedfind.StreamUpdates: true, fedfind.StreamUpdatesTesting: true,
		fedfind.StreamProduction: true, fedfind.StreamOther: true,
	}
)

// FuzzDecode feeds arbitrary AMQP deliveries — topic, body, content
// encoding, the sent-at header (as a string or as bytes) and the AMQP
// timestamp — to the decoder and filter the consumer applies to every
// message. Whatever the message, decode gives an event or an error, never
// both and never a panic, and an event it gives is one the workflow can
// store: it validates, its kind is its topic's, its compose ID is
// canonical and of a followed stream, its status a Pungi STATUS, its
// location an http(s) URL, its time in UTC. It is deterministic, following
// more streams never loses an event, and the event re-sent as a plain
// Fedora Messaging message decodes to itself.
func FuzzDecode(f *testing.F) {
	const raw = "org.fedoraproject.prod." + suffixComposeStatus
	const done = "org.fedoraproject.prod." + suffixJobDone
	for _, s := range []struct {
		topic, body, enc, sentAt string
		asBytes                  bool
		ts                       int64
	}{
		{raw, `{"status": "FINISHED", "compose_id": "Fedora-Rawhide-20261122.n.0", "location": "https://kojipkgs.fedoraproject.org/compose/rawhide/Fedora-Rawhide-20261122.n.0/compose", "compose_respin": 0, "compose_label": null}`, "utf-8", "2026-11-22T07:59:58+00:00", false, 0},
		{"org.fedoraproject.stg." + suffixComposeStatus, `{"status": "STARTED", "compose_id": "Fedora-45-20261122.0", "location": null}`, "", "", false, 1795834800},
		{done, `{"id": 7, "BUILD": "Fedora-44-20261122.n.0", "remaining": 0}`, "utf-8", "2026-11-22T07:00:00.5Z", false, 0},
		{raw, `{"status": "DOOMED", "compose_id": "Fedora-Rawhide-20261122.n.1"}`, "UTF8", "2026-11-22T06:00:00", true, 0},
		{raw, `{"status": "FINISHED_INCOMPLETE", "compose_id": "Fedora-44-20261010.1", "location": "http://h/c"}`, "utf-8", "yesterday", false, 1795834800},
		{done, `{"BUILD": "Update-FEDORA-2026-abc"}`, "utf-8", "", false, 0},
		{done, `{"BUILD": 42}`, "utf-8", "", false, 0},
		{raw, `{"status": "FINISHED", "compose_id": "../../etc"}`, "utf-8", "", false, 0},
		{raw, `{"status": "FINISHED", "compose_id": "Fedora-eln-20261122.n.0"}`, "utf-8", "", false, 0},
		{raw, `{"status": "FINISHED", "compose_id": "Fedora-Rawhide-20261122.n.0", "location": "https://u:p@example.com/compose"}`, "utf-8", "", false, 0},
		{raw, `{"status": "FINISHED"`, "utf-8", "", false, 0},
		{raw, `null`, "utf-8", "", false, 0},
		{raw, `{}`, "utf-16", "", false, 0},
		{"org.fedoraproject.prod.pungi.compose.phase.start", `{}`, "utf-8", "", false, 0},
	} {
		f.Add(s.topic, []byte(s.body), s.enc, s.sentAt, s.asBytes, s.ts)
	}
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.FixedZone("CET", 3600))
	f.Fuzz(func(t *testing.T, topic string, body []byte, enc, sentAt string, asBytes bool, ts int64) {
		d := amqp.Delivery{RoutingKey: topic, ContentType: "application/json", ContentEncoding: enc, MessageId: "m-1", Body: body}
		if sentAt != "" {
			d.Headers = amqp.Table{"sent-at": sentAt}
			if asBytes {
				d.Headers["sent-at"] = []byte(sentAt)
			}
		}
		if ts != 0 {
			d.Timestamp = time.Unix(ts%(1<<40), 0)
		}
		ev, err := decode(d, now, fuzzStreams)
		again, err2 := decode(d, now, fuzzStreams)
		if ev != again || (err == nil) != (err2 == nil) {
			t.Fatalf("decode is not deterministic: %+v, %v then %+v, %v", ev, err, again, err2)
		}
		wide, werr := decode(d, now, allStreams)
		if err != nil {
			if ev != (event.Event{}) {
				t.Fatalf("decode returned both %+v and %v", ev, err)
			}
			if !topicIs(topic, suffixComposeStatus) && !topicIs(topic, suffixJobDone) && !errors.Is(err, errIrrelevant) {
				t.Fatalf("message of topic %q is not irrelevant: %v", topic, err)
			}
			if werr == nil && !errors.Is(err, errIrrelevant) {
				t.Fatalf("invalid with some streams (%v), valid with all: %+v", err, wide)
			}
			return
		}
		if werr != nil || wide != ev {
			t.Fatalf("followed with some streams (%+v), not with all: %+v, %v", ev, wide, werr)
		}
		checkDecoded(t, d, ev)
		if _, err := decode(d, now, map[fedfind.StreamKind]bool{}); !errors.Is(err, errIrrelevant) {
			t.Fatalf("decoded with no stream followed: %v", err)
		}
		// The event as a fresh message: the fields it came from, sent-at
		// in the Python form, nothing else.
		fields := map[string]any{}
		switch ev.Kind {
		case event.KindComposeStatus:
			fields["compose_id"], fields["status"] = ev.ComposeID, ev.Status
			if ev.Location != "" {
				fields["location"] = ev.Location
			}
		case event.KindOpenQAJobDone:
			fields["BUILD"] = ev.ComposeID
		}
		b, err := json.Marshal(fields)
		if err != nil {
			t.Fatal(err)
		}
		re := amqp.Delivery{RoutingKey: topic, ContentEncoding: "utf-8", MessageId: ev.MessageID, Body: b,
			Headers: amqp.Table{"sent-at": ev.At.Format(time.RFC3339Nano)}}
		if back, err := decode(re, now.Add(time.Hour), fuzzStreams); err != nil || back != ev {
			t.Fatalf("event %+v re-sent as %s decodes to %+v, %v", ev, b, back, err)
		}
	})
}

// checkDecoded holds an event decode gave to what the workflow relies on.
func checkDecoded(t *testing.T, d amqp.Delivery, ev event.Event) {
	t.Helper()
	if err := ev.Validate(); err != nil {
		t.Fatalf("decoded an event that does not validate: %+v: %v", ev, err)
	}
	if ev.Source != event.SourceAMQP || ev.Topic != d.RoutingKey || ev.MessageID != d.MessageId {
		t.Fatalf("event %+v does not name its message", ev)
	}
	id, _ := fedfind.ParseComposeID(ev.ComposeID)
	if !fuzzStreams[fedfind.StreamOf(id).Kind] {
		t.Fatalf("event of a stream not followed: %+v", ev)
	}
	if ev.At.IsZero() || ev.At.Location() != time.UTC {
		t.Fatalf("event time %v is not a UTC time", ev.At)
	}
	switch ev.Kind {
	case event.KindComposeStatus:
		if !topicIs(d.RoutingKey, suffixComposeStatus) || !fedfind.ValidStatus(ev.Status) {
			t.Fatalf("bad status event %+v", ev)
		}
		if _, err := checkLocation(ev.Location); ev.Location != "" && (err != nil ||
			!(strings.HasPrefix(ev.Location, "http://") || strings.HasPrefix(ev.Location, "https://"))) {
			t.Fatalf("bad location in %+v", ev)
		}
	case event.KindOpenQAJobDone:
		if !topicIs(d.RoutingKey, suffixJobDone) || ev.Status != "" || ev.Location != "" || !isComposeBuild(ev.ComposeID) {
			t.Fatalf("bad job event %+v", ev)
		}
	default:
		t.Fatalf("unknown kind in %+v", ev)
	}
}

// FuzzSentAt reads arbitrary sent-at headers: the time is never zero and
// always UTC, a header in either of the forms Fedora's publishers write is
// read to the nanosecond, and an unreadable one falls back to the AMQP
// timestamp, then to now.
func FuzzSentAt(f *testing.F) {
	for _, s := range []string{"2026-11-22T07:59:58+00:00", "2026-11-22T07:00:00.5Z", "2026-11-22T06:00:00", " 2026-11-22T06:00:00.123456 ",
		"2026-11-22T07:59:58-05:00", "yesterday", "", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999+14:00"} {
		f.Add(s, int64(0))
		f.Add(s, int64(1795834800))
	}
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.FixedZone("CET", 3600))
	f.Fuzz(func(t *testing.T, s string, ts int64) {
		d := amqp.Delivery{Headers: amqp.Table{"sent-at": s}}
		if ts != 0 {
			d.Timestamp = time.Unix(ts%(1<<40), 0)
		}
		at := sentAt(d, now)
		if at.Location() != time.UTC {
			t.Fatalf("sent-at %q: %v is not UTC", s, at)
		}
		want := now.UTC()
		if !d.Timestamp.IsZero() {
			want = d.Timestamp.UTC()
		}
		if p, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s)); err == nil {
			want = p.UTC()
		} else if p, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", strings.TrimSpace(s), time.UTC); err == nil {
			want = p
		}
		if !at.Equal(want) {
			t.Fatalf("sent-at %q, timestamp %d: %v, want %v", s, ts, at, want)
		}
		d.Headers["sent-at"] = []byte(s)
		if b := sentAt(d, now); !b.Equal(at) {
			t.Fatalf("sent-at %q as bytes: %v, as a string %v", s, b, at)
		}
		if !at.IsZero() {
			d.Headers["sent-at"] = at.In(now.Location())
			if b := sentAt(d, now); !b.Equal(at) {
				t.Fatalf("sent-at %v as an AMQP timestamp: %v", at, b)
			}
		}
	})
}
