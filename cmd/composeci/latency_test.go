package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/testenv"
)

// BenchmarkFinishedToFirstPost times what the service exists for: from
// Pungi's FINISHED message published on the real RabbitMQ to the first
// POST /api/v1/isos that reaches openQA for the compose. `composeci
// listen` runs in-process on its embedded NATS, against the demo's
// simulated Fedora; each compose is complete when its message goes out
// (STATUS FINISHED, its Koji image tasks closed), so the path is the
// consumer, the events stream, the dispatcher, discover, await-complete
// (one STATUS read, one Koji verdict) and schedule. Composes go one at a
// time — the next once the last is scheduled — so none waits for a worker
// behind another. ns/op counts that wait too; the
// latency is in the metrics: its median and 90th percentile, in
// milliseconds (its log lists every one). Also reported: the requests
// the simulated Koji hub received per compose up to its first post (the
// completeness verdict's).
//
//	go test -run '^$' -bench FinishedToFirstPost -benchtime=20x ./cmd/composeci/
func BenchmarkFinishedToFirstPost(b *testing.B) {
	url := testenv.AMQPURL(b)
	w, _ := mailWorld(b, b.TempDir())
	exchange := fmt.Sprintf("composeci-bench-%d", time.Now().UnixNano())
	bus, err := fakefedora.NewBus(url, exchange)
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	ctx := context.Background()
	if err := bus.DeclareExchange(ctx); err != nil {
		b.Fatal(err)
	}
	// The composes, one per iteration: Rawhide nightlies of the day after
	// the demo's, each with its image tasks, closed once the hub's clock
	// moves on.
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprintf("Fedora-Rawhide-20261124.n.%d", i)
		w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: ids[i], Status: "FINISHED"})
		w.hub.AddNightlyImageTasks(ids[i], fmt.Sprintf("20261124.n.%d", i), "Rawhide", 9,
			fakefedora.KojiRunSchedule(time.Minute, 30*time.Minute, fakefedora.KojiClosed)...)
	}
	w.hub.Advance(48 * time.Hour)

	p := startListen(b, append(w.flags(), "--koji", w.hubURL, "--watch", "rawhide", "--poll-interval", "-1s",
		"--amqp", url, "--amqp-exchange", exchange, "--log-level", "warn")...)
	defer p.stop(b)
	waitFor(b, "the AMQP consumer to connect", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + p.addr + "/healthz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, p)

	firstPost := func(id string) (time.Time, bool) {
		for _, post := range w.oq.Posts() {
			if post.Params["BUILD"] == id {
				return post.At, true
			}
		}
		return time.Time{}, false
	}
	took := make([]time.Duration, 0, b.N)
	kojiBefore := w.hub.Requests()
	b.ResetTimer()
	for i := range b.N {
		id := ids[i]
		sent := time.Now()
		if _, err := bus.PublishComposeStatus(ctx, id, "FINISHED", w.root+"/rawhide/"+id+"/compose"); err != nil {
			b.Fatal(err)
		}
		var at time.Time
		waitFor(b, "the first POST for "+id, 30*time.Second, func() bool {
			var ok bool
			at, ok = firstPost(id)
			return ok
		}, p)
		took = append(took, at.Sub(sent))
		// The schedule stage posts the compose's other products after
		// the first: let it finish, so that the next compose does not
		// wait for a worker behind it.
		waitFor(b, id+" to be scheduled", 30*time.Second, func() bool {
			wf, ok := p.workflow(id)
			return ok && wf.Stage != "discover" && wf.Stage != "await-complete" && wf.Stage != "schedule"
		}, p)
	}
	b.StopTimer()
	koji := w.hub.Requests() - kojiBefore
	slices.Sort(took)
	ms := func(q float64) float64 {
		return float64(took[int(q*float64(len(took)-1))].Microseconds()) / 1000
	}
	b.Logf("%d composes, FINISHED to first POST, sorted: %v", len(took), took)
	b.ReportMetric(ms(0.5), "ms-median")
	b.ReportMetric(ms(0.9), "ms-p90")
	b.ReportMetric(float64(koji)/float64(b.N), "koji-requests/compose")
}
