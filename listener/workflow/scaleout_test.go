package workflow

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/listener/event"
)

// The scale-out benchmark: composes whose stages are simulated work —
// a sleep and a request to the simulated openQA, which answers after a
// latency — run through the real engine on the external NATS JetStream,
// by 1, 2 and 4 worker engines. Each worker engine stands for a `composeci
// worker` process: its own NATS connection and its own stage slots
// (scaleOutSlots, the process's --workers). The work is sleep-dominated,
// so a two-core machine is not what limits it: N engines should finish
// the same composes about N times as fast, unless the engine (its
// dispatcher, the work queue, the leases and compare-and-set on the
// bucket) is the bottleneck.
//
//	go test -run '^$' -bench ScaleOut -benchtime=1x ./listener/workflow/
//
// COMPOSECI_SCALEOUT_COMPOSES sets the number of composes (default 200).
// Each sub-benchmark reports composes/s; of_ideal, that over what its slots
// would give if the engine cost nothing (scaleOutIdeal); and, for N > 1,
// x_of_1: its throughput over that of one worker engine in the same run.
// The sub-benchmarks run one after another, so a machine whose load
// changes meanwhile moves x_of_1; of_ideal is measured within each.

const (
	// scaleOutSlots is each worker engine's stage concurrency.
	scaleOutSlots = 2
	// scaleOutSleep and scaleOutLatency make one stage run: a sleep, then
	// a request answered after the latency.
	scaleOutSleep   = 20 * time.Millisecond
	scaleOutLatency = 20 * time.Millisecond
	// scaleOutWait is how long await-results waits after its first run
	// (it finds the jobs running once, as it would in life).
	scaleOutWait = 100 * time.Millisecond
)

func BenchmarkScaleOut(b *testing.B) {
	composes := 200
	if v := os.Getenv("COMPOSECI_SCALEOUT_COMPOSES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("COMPOSECI_SCALEOUT_COMPOSES=%q: want a positive number", v)
		}
		composes = n
	}
	oq := fakefedora.NewOpenQA(fakefedora.OpenQAOptions{})
	b.Cleanup(oq.Close)
	oq.SetLatency(scaleOutLatency)
	var one float64
	for _, n := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("engines=%d", n), func(b *testing.B) {
			var rate float64
			for range b.N {
				rate = scaleOutRun(b, oq.URL(), n, composes)
			}
			b.ReportMetric(rate, "composes/s")
			b.ReportMetric(float64(n*scaleOutSlots), "slots")
			b.ReportMetric(rate/scaleOutIdeal(n), "of_ideal")
			if n == 1 {
				one = rate
			} else if one > 0 {
				b.ReportMetric(rate/one, "x_of_1")
			}
		})
	}
}

// scaleOutIdeal is the throughput of n worker engines if the engine cost
// nothing: each compose's seven stage runs (await-results runs twice) hold
// a slot for their simulated work, and no longer.
func scaleOutIdeal(n int) float64 {
	perCompose := 7 * (scaleOutSleep + scaleOutLatency)
	return float64(n*scaleOutSlots) / perCompose.Seconds()
}

// scaleOutRun runs composes through a dispatcher engine and n worker
// engines on a fresh prefix, and returns the composes finished per second,
// from the first event submitted to the last workflow done.
func scaleOutRun(b *testing.B, openQA string, n, composes int) float64 {
	b.StopTimer()
	site := externalSite(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(client.CloseIdleConnections)
	var done atomic.Int64
	finished := make(chan struct{})
	obs := &scaleOutObserver{last: StageReport, done: &done, want: int64(composes), finished: finished}
	runner := StageRunnerFunc(func(ctx context.Context, stage Stage, w Workflow) (Outcome, error) {
		return scaleOutStage(ctx, client, openQA, stage, w)
	})
	opts := func(workers int, dispatch bool) Options {
		return Options{
			Bus: site.bus, Prefix: site.prefix, Stages: Stages(), Runner: runner,
			Workers: workers, Dispatch: dispatch, Observer: obs,
			MinRetryDelay: 10 * time.Millisecond, OpTimeout: 10 * time.Second,
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var engines []*Engine
	defer func() {
		cancel()
		wg.Wait()
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		for _, e := range engines {
			_ = e.Close(cctx)
		}
	}()
	start := func(o Options) *Engine {
		nctx, ncancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer ncancel()
		e, err := New(nctx, o)
		if err != nil {
			b.Fatal(err)
		}
		engines = append(engines, e)
		for _, p := range e.Parts() {
			wg.Go(func() {
				if err := p.Run(ctx); err != nil && ctx.Err() == nil {
					b.Errorf("%s stopped: %v", p.Name, err)
				}
			})
		}
		return e
	}
	dispatcher := start(opts(0, true))
	for range n {
		start(opts(scaleOutSlots, false))
	}
	b.StartTimer()
	began := time.Now()
	for i := range composes {
		id := fmt.Sprintf("Fedora-Rawhide-20261125.n.%d", i)
		ev := event.Event{Kind: event.KindComposeStatus, ComposeID: id, Status: "FINISHED", Source: event.SourceAMQP,
			MessageID: id, Location: "https://kojipkgs.example/compose/" + id + "/compose"}
		if err := dispatcher.Submit(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	timeout := time.Duration(composes) * 7 * (scaleOutSleep + scaleOutLatency) * 4
	select {
	case <-finished:
	case <-time.After(timeout):
		b.Fatalf("%d of %d composes done after %s", done.Load(), composes, timeout)
	}
	took := time.Since(began)
	b.StopTimer()
	return float64(composes) / took.Seconds()
}

// scaleOutStage is one simulated stage run: a sleep, then a request to
// the simulated openQA; await-results waits once.
func scaleOutStage(ctx context.Context, client *http.Client, openQA string, stage Stage, w Workflow) (Outcome, error) {
	t := time.NewTimer(scaleOutSleep)
	select {
	case <-ctx.Done():
		t.Stop()
		return Outcome{}, ctx.Err()
	case <-t.C:
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, openQA+"/api/v1/jobs?build="+w.ComposeID, nil)
	if err != nil {
		return Outcome{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return Outcome{}, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Outcome{}, fmt.Errorf("openQA: %s", resp.Status)
	}
	if stage == StageAwaitResults && w.Attempt == 1 {
		return Outcome{RetryAfter: scaleOutWait, Note: "jobs running"}, nil
	}
	return Outcome{Advance: true}, nil
}

// scaleOutObserver closes finished when the last stage of want composes
// has advanced.
type scaleOutObserver struct {
	noObserver
	last     Stage
	done     *atomic.Int64
	want     int64
	finished chan struct{}
}

func (o *scaleOutObserver) StageRan(stage Stage, outcome string, _ time.Duration) {
	if stage == o.last && outcome == "advanced" && o.done.Add(1) == o.want {
		close(o.finished)
	}
}
