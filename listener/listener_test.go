package listener_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/datadir"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/testenv"
	"github.com/composeci/composeci/listener"
	"github.com/composeci/composeci/listener/event"
	"github.com/composeci/composeci/listener/fedmsg"
	"github.com/composeci/composeci/listener/workflow"
	"github.com/composeci/composeci/reports"
	"github.com/composeci/composeci/stages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// updatesWorld is a compose tree of updates composes, which STATUS alone
// decides (no Koji) and which are reported without openQA or mail: the
// least a listener needs to take composes from event to report.
func updatesWorld(t *testing.T, ids ...string) *stages.Compose {
	t.Helper()
	m := fakefedora.NewMirror()
	for _, id := range ids {
		m.MustAddCompose(fakefedora.ComposeSpec{ID: id, Status: "FINISHED"})
	}
	root := m.Start()
	t.Cleanup(m.Close)
	ff, err := fedfind.NewClient(fedfind.ClientOptions{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	archive := reports.DataArchive(t.TempDir())
	return &stages.Compose{
		Fedfind:       ff,
		Discover:      stages.Discover{Streams: []fedfind.StreamKind{fedfind.StreamUpdates}},
		AwaitComplete: stages.AwaitComplete{Fedfind: ff, Poll: 10 * time.Millisecond},
		Schedule:      stages.Schedule{Fedfind: ff},
		Check:         stages.Check{Fedfind: ff, Archive: archive},
		Report:        stages.Report{Archive: archive},
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func baseOptions(t *testing.T, c *stages.Compose) listener.Options {
	return listener.Options{
		DataDir: t.TempDir(),
		Stages:  c,
		Workflow: workflow.Options{Workers: 2, Dispatch: true, TaskAckWait: 2 * time.Second,
			MinRetryDelay: time.Millisecond, ErrorBackoff: 10 * time.Millisecond, MaxErrorBackoff: 50 * time.Millisecond},
		HTTPAddr:       freeAddr(t),
		RestartBackoff: 20 * time.Millisecond,
		Logger:         testenv.Logger(t),
	}
}

func start(t *testing.T, o listener.Options) *listener.Listener {
	t.Helper()
	l, err := listener.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := l.Stop(ctx); err != nil {
			t.Errorf("stopping: %v", err)
		}
	})
	return l
}

func submit(t *testing.T, l *listener.Listener, id string) {
	t.Helper()
	if err := l.Submit(context.Background(), event.Event{Kind: event.KindComposeStatus, ComposeID: id, Source: event.SourceCLI}); err != nil {
		t.Fatal(err)
	}
}

func waitDone(t *testing.T, l *listener.Listener, id string) workflow.Workflow {
	t.Helper()
	var w workflow.Workflow
	testenv.WaitFor(t, 20*time.Second, id+" done", func() error {
		var err error
		if w, err = l.Engine().Get(context.Background(), id); err != nil {
			return err
		}
		if w.State != workflow.StateDone {
			return fmt.Errorf("%s at %s: %s", w.State, w.Stage, w.Note)
		}
		return nil
	})
	return w
}

// externalPrefix is a prefix of the test's own on the external server,
// whose streams are deleted when the test ends.
func externalPrefix(t *testing.T, url string) string {
	prefix := fmt.Sprintf("L%d", time.Now().UnixNano()%1e12)
	t.Cleanup(func() {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Errorf("cleaning up %s: %v", prefix, err)
			return
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range []string{prefix + "_EVENTS", prefix + "_TASKS", prefix + "_RESULTS", "KV_" + prefix + "_workflows"} {
			if err := js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Errorf("cleaning up stream %s: %v", s, err)
			}
		}
	})
	return prefix
}

type health struct {
	OK     bool `json:"ok"`
	Checks []struct {
		Name  string `json:"name"`
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	} `json:"checks"`
}

func getHealth(t *testing.T, addr string) (int, health, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return 0, health{}, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var h health
	_ = json.Unmarshal(b, &h)
	return resp.StatusCode, h, string(b)
}

// TestListenerRecoversWhenNATSConnectionCloses closes the listener's NATS
// connection under its dispatcher and workers: each part returns, the
// supervisor starts it again on a fresh connection, and composes go on
// through the pipeline with nobody stepping in — on the embedded server and
// on the external one alike.
func TestListenerRecoversWhenNATSConnectionCloses(t *testing.T) {
	for _, external := range []bool{false, true} {
		name := map[bool]string{false: "embedded", true: "external"}[external]
		t.Run(name, func(t *testing.T) { testRecovery(t, external) })
	}
}

func testRecovery(t *testing.T, external bool) {
	const first, second = "Fedora-43-updates-20261122.0", "Fedora-43-updates-20261123.0"
	o := baseOptions(t, updatesWorld(t, first, second))
	if external {
		o.Workflow.Bus.URL = testenv.NATSURL(t)
		o.Workflow.Prefix = externalPrefix(t, o.Workflow.Bus.URL)
	}
	l := start(t, o)
	submit(t, l, first)
	waitDone(t, l, first)

	l.Engine().Bus().Conn().Close()
	testenv.WaitFor(t, 10*time.Second, "the dispatcher restarted", func() error {
		for _, p := range l.Parts() {
			if p.Name == "dispatcher" && p.Restarts >= 1 && p.Up {
				return nil
			}
		}
		return fmt.Errorf("parts %+v", l.Parts())
	})
	submit(t, l, second)
	w := waitDone(t, l, second)
	if w.Data[stages.DataReport] != "43-updates/"+second {
		t.Errorf("report path %q", w.Data[stages.DataReport])
	}
	if code, h, body := getHealth(t, o.HTTPAddr); code != http.StatusOK || !h.OK {
		t.Errorf("/healthz after recovery: %d %s", code, body)
	}
	if err := l.Err(); err != nil {
		t.Errorf("supervision failed: %v", err)
	}
}

// TestHealthNamesTheFailingPart: while the AMQP consumer fails (the broker
// has no such exchange to bind its queue to) and waits to be restarted,
// /healthz answers 503 and names it; past its budget the listener fails
// with ErrPartFailed.
func TestHealthNamesTheFailingPart(t *testing.T) {
	o := baseOptions(t, updatesWorld(t))
	cfg := fedmsg.DefaultConfig()
	cfg.URL, cfg.CACert, cfg.Cert, cfg.Key = testenv.AMQPURL(t), "", "", ""
	cfg.Exchange = fmt.Sprintf("composeci-no-such-exchange-%d", time.Now().UnixNano())
	o.AMQP = &cfg
	o.RestartBackoff, o.MaxFailures = 300*time.Millisecond, 4
	l := start(t, o)
	testenv.WaitFor(t, 10*time.Second, "/healthz to name the AMQP consumer", func() error {
		code, h, body := getHealth(t, o.HTTPAddr)
		if code != http.StatusServiceUnavailable || h.OK {
			return fmt.Errorf("%d %s", code, body)
		}
		for _, c := range h.Checks {
			if c.Name == "amqp consumer" && !c.OK && strings.Contains(c.Error, "amqp consumer is down") {
				return nil
			}
		}
		return fmt.Errorf("no failing amqp consumer check in %s", body)
	})
	select {
	case <-l.Failed():
	case <-time.After(20 * time.Second):
		t.Fatal("the listener did not give up on the consumer")
	}
	if err := l.Err(); !errors.Is(err, listener.ErrPartFailed) || !strings.Contains(err.Error(), "amqp consumer") {
		t.Errorf("Err() = %v", err)
	}
}

// TestSecondListenerOnOneDataDir: with the embedded server, the data
// directory has one owner; a second listener is refused at once, naming
// the first, which goes on serving.
func TestSecondListenerOnOneDataDir(t *testing.T) {
	const id = "Fedora-43-updates-20261122.0"
	c := updatesWorld(t, id)
	o := baseOptions(t, c)
	first := start(t, o)

	o2 := o
	o2.HTTPAddr = freeAddr(t)
	second, err := listener.New(o2)
	if err != nil {
		t.Fatal(err)
	}
	err = second.Start(context.Background())
	var inUse *datadir.InUseError
	if !errors.As(err, &inUse) || !strings.Contains(err.Error(), "composeci listen, pid") {
		t.Fatalf("second Start = %v, want a *datadir.InUseError naming the first", err)
	}
	if _, err := net.Dial("tcp", o2.HTTPAddr); err == nil {
		t.Error("the refused listener serves HTTP")
	}
	submit(t, first, id)
	waitDone(t, first, id)
	if code, _, body := getHealth(t, o.HTTPAddr); code != http.StatusOK {
		t.Errorf("the first listener's health: %d %s", code, body)
	}
}

// scrape reads /metrics: the text, and each sample's value by its name
// with labels as Prometheus prints them.
func scrape(t *testing.T, addr string) (string, map[string]float64) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	samples := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err == nil {
			samples[line[:i]] = v
		}
	}
	return string(b), samples
}

// TestMetricsMoveAndLint: /metrics passes promlint, and its counters move
// when a compose goes through the pipeline.
func TestMetricsMoveAndLint(t *testing.T) {
	const id = "Fedora-43-updates-20261122.0"
	o := baseOptions(t, updatesWorld(t, id))
	l := start(t, o)
	text, before := scrape(t, o.HTTPAddr)
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", `composeci_workflows{state="done"}`} {
		if _, ok := before[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	submit(t, l, id)
	waitDone(t, l, id)
	_, after := scrape(t, o.HTTPAddr)
	for name, delta := range map[string]float64{
		`composeci_events_received_total{source="cli",topic="compose.status"}`: 1,
		`composeci_stage_runs_total{outcome="advanced",stage="discover"}`:      1,
		`composeci_stage_runs_total{outcome="advanced",stage="check"}`:         1,
		`composeci_stage_runs_total{outcome="advanced",stage="report"}`:        1,
		`composeci_stage_duration_seconds_count{stage="check"}`:                1,
		`composeci_workflows{state="done"}`:                                    1,
		`composeci_compose_finished_to_report_seconds_count`:                   1,
	} {
		if got := after[name] - before[name]; got < delta {
			t.Errorf("%s moved by %v, want %v or more", name, got, delta)
		}
	}
	if after[`composeci_workflows{state="active"}`] != 0 {
		t.Errorf("a workflow is still counted active")
	}
}
