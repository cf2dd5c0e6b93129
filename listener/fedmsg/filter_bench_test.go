package fedmsg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/listener/event"
)

// What the listener reads and drops, as on Fedora's bus: its bindings
// deliver every openQA job.done message, and most are update tests
// (BUILD Update-FEDORA-…), with Koji task tests among them; none names a
// compose. Nine in ten of these are update tests.
func irrelevantTraffic(n int) []fakefedora.Outgoing {
	out := make([]fakefedora.Outgoing, n)
	for i := range out {
		build := fmt.Sprintf("Update-FEDORA-2026-%010x", i)
		if i%10 == 9 {
			build = fmt.Sprintf("Kojitask-%d-NOREPORT", 140000000+i)
		}
		out[i] = fakefedora.Outgoing{
			Topic: fakefedora.BusTopicJobDone,
			Body: fakefedora.JobDoneBody(fakefedora.JobDone{
				ID: int64(4000000 + i), Result: "passed", Remaining: i % 40, Build: build,
				Test: "base_selinux", Arch: "x86_64", Machine: "64bit", Flavor: "updates-server",
			}),
			Options: fakefedora.PublishOptions{SentAtZ: true},
		}
	}
	return out
}

// BenchmarkAMQPFilter is the listener's filter on the real broker: b.N
// messages that it must read and drop wait in its queue; the consumer
// (logging at info level, as in service) is started, and the benchmark
// ends when it has received them all. ns/op is the time per message; the
// metrics are messages per second and this process's CPU (user and
// system, getrusage) per message — the consumer's, as the publisher is
// done before the consumer starts.
//
//	go test -run '^$' -bench AMQPFilter -benchtime=20000x ./listener/fedmsg/
func BenchmarkAMQPFilter(b *testing.B) {
	r := newAMQPRig(b)
	cfg := r.config(b)
	ch := r.channel(b)
	if _, err := ch.QueueDeclare(cfg.Queue, cfg.Durable, cfg.AutoDelete, cfg.Exclusive, false, nil); err != nil {
		b.Fatal(err)
	}
	for _, key := range cfg.Bindings {
		if err := ch.QueueBind(cfg.Queue, key, cfg.Exchange, false, nil); err != nil {
			b.Fatal(err)
		}
	}
	msgs := irrelevantTraffic(b.N)
	for len(msgs) > 0 {
		chunk := msgs[:min(len(msgs), 5000)]
		msgs = msgs[len(chunk):]
		if err := r.bus.PublishAll(b.Context(), chunk); err != nil {
			b.Fatal(err)
		}
	}
	if n := r.messages(b, cfg.Queue); n != b.N {
		b.Fatalf("%d messages queued, want %d", n, b.N)
	}
	c, err := NewConsumer(cfg, slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	sink := event.SinkFunc(func(context.Context, event.Event) error {
		return fmt.Errorf("nothing here is for composeci")
	})

	cpu0 := processCPU(b)
	b.ResetTimer()
	began := time.Now()
	go func() { done <- c.Run(ctx, sink) }()
	for c.Stats().Received < uint64(b.N) {
		time.Sleep(2 * time.Millisecond)
	}
	took := time.Since(began)
	b.StopTimer()
	cpu := processCPU(b) - cpu0
	cancel()
	if err := <-done; err != nil && ctx.Err() == nil {
		b.Fatal(err)
	}
	st := c.Stats()
	if st.Dropped != uint64(b.N) || st.Invalid != 0 || st.Submitted != 0 {
		b.Fatalf("stats %+v: want all %d dropped as irrelevant", st, b.N)
	}
	if n := r.messages(b, cfg.Queue); n != 0 {
		b.Fatalf("%d messages left in the queue: every dropped message must be acked", n)
	}
	b.ReportMetric(float64(b.N)/took.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
}

// BenchmarkDecodeIrrelevant is the filter without the broker: decoding
// the messages BenchmarkAMQPFilter sends, each found not for composeci.
//
//	go test -run '^$' -bench DecodeIrrelevant -benchmem ./listener/fedmsg/
func BenchmarkDecodeIrrelevant(b *testing.B) {
	const n = 100
	deliveries := make([]amqp.Delivery, n)
	for i, m := range irrelevantTraffic(n) {
		body, err := json.Marshal(m.Body)
		if err != nil {
			b.Fatal(err)
		}
		deliveries[i] = amqp.Delivery{RoutingKey: m.Topic, ContentEncoding: "utf-8", MessageId: fmt.Sprint(i), Body: body,
			Headers: amqp.Table{"sent-at": "2026-11-25T04:00:00Z"}}
	}
	cfg := DefaultConfig()
	cfg.URL, cfg.CACert, cfg.Cert, cfg.Key = "amqp://localhost/", "", "", ""
	c, err := NewConsumer(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := decode(deliveries[i%n], now, c.streams); !errors.Is(err, errIrrelevant) {
			b.Fatalf("message %d: %v, want irrelevant", i%n, err)
		}
		i++
	}
}

// processCPU is the user and system CPU this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// decodeBodyReference is how decodeBody read a body before it scanned for
// its fields: all of it, into a map. Kept to hold the scanner to it and to
// measure what the scan saves (BenchmarkDecodeBody).
func decodeBodyReference(body []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null")
	}
	return m, nil
}

func TestDecodeBodyMatchesEncodingJSON(t *testing.T) {
	bodies := []string{
		`{}`, ` { "BUILD" : "x" } `, `{"BUILD": "a", "BUILD": "b"}`, `{"B\u0055ILD": "escaped name"}`,
		`{"BUILD": "\u00e9t\u00e9 \ud83d\ude00"}`, `{"BUILD": null}`, `{"BUILD": 42}`, `{"BUILD": ["x"]}`,
		`{"x": {"BUILD": "nested"}, "y": [1, 2, {"z": null}]}`, `{"a": 1e400}`, `{"a": -0.5E+3, "b": true, "c": false}`,
		`null`, `[]`, `"s"`, `42`, ``, ` `, `{`, `{"BUILD": "x"`, `{"BUILD": "x"} {}`, `{"BUILD": "x"} x`, `{"BUILD": "x",}`,
		`{BUILD: "x"}`, `{"BUILD": 'x'}`, `{"BUILD": "x\q"}`, `{"a": 01}`, `{"a": .5}`, `{"a": tru}`, "{\"a\": \"\t\"}",
		`{"compose_id": "Fedora-Rawhide-20261122.n.0", "status": "FINISHED", "location": "https://x/y"}`,
	}
	for _, m := range irrelevantTraffic(20) {
		b, err := json.Marshal(m.Body)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, string(b))
	}
	keys := []string{"BUILD", "compose_id", "status", "location"}
	for _, body := range bodies {
		got, err := decodeBody(amqp.Delivery{Body: []byte(body)}, keys...)
		want, wantErr := decodeBodyReference([]byte(body))
		if (err == nil) != (wantErr == nil) {
			t.Errorf("%q: error %v, encoding/json's %v", body, err, wantErr)
			continue
		}
		for _, k := range keys {
			g, gok := got[k]
			w, wok := want[k]
			if gok != wok || string(g) != string(w) {
				t.Errorf("%q: %s is %q (%v), encoding/json's %q (%v)", body, k, g, gok, w, wok)
			}
			gs, gerr := field(got, k, false)
			var ws string
			werr := error(nil)
			if wok && string(w) != "null" {
				werr = json.Unmarshal(w, &ws)
			}
			if gs != ws || (gerr == nil) != (werr == nil) {
				t.Errorf("%q: field %s is %q, %v; encoding/json's %q, %v", body, k, gs, gerr, ws, werr)
			}
		}
	}
}

// BenchmarkDecodeBody compares the scan for the fields the filter needs
// with the reference, which decodes each body whole into a map.
//
//	go test -run '^$' -bench DecodeBody -benchmem ./listener/fedmsg/
func BenchmarkDecodeBody(b *testing.B) {
	var bodies [][]byte
	for _, m := range irrelevantTraffic(100) {
		body, err := json.Marshal(m.Body)
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, body)
	}
	b.Run("encoding-json-map", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m, err := decodeBodyReference(bodies[i%len(bodies)])
			if err != nil {
				b.Fatal(err)
			}
			var build string
			if err := json.Unmarshal(m["BUILD"], &build); err != nil || build == "" {
				b.Fatal(build, err)
			}
			i++
		}
	})
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m, err := decodeBody(amqp.Delivery{Body: bodies[i%len(bodies)]}, "BUILD")
			if err != nil {
				b.Fatal(err)
			}
			if build, err := field(m, "BUILD", true); err != nil || build == "" {
				b.Fatal(build, err)
			}
			i++
		}
	})
}
