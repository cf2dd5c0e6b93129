package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/composeci/composeci/internal/fakefedora"

	"github.com/composeci/composeci/internal/testenv"
)

// mailWorld starts the demo's simulated Fedora, mail relay included, on
// data; it stops when the test ends.
func mailWorld(t testing.TB, data string) (*demoWorld, *fakefedora.MailServer) {
	t.Helper()
	w, err := startDemoWorld(data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.close)
	return w, w.mail
}

// mailsAbout counts the mails the relay received about a compose.
func mailsAbout(mail *fakefedora.MailServer, composeID string) int {
	n := 0
	for _, m := range mail.Messages() {
		if strings.HasPrefix(m.Subject(), composeID+" ") {
			n++
		}
	}
	return n
}

// syncBuffer is a bytes.Buffer safe for the listener's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// listenProcess is a `composeci listen` running in-process until stop.
type listenProcess struct {
	cancel context.CancelFunc
	done   chan int
	out    *syncBuffer
	addr   string
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startListen(t testing.TB, args ...string) *listenProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &listenProcess{cancel: cancel, done: make(chan int, 1), out: &syncBuffer{}, addr: freeAddr(t)}
	full := append([]string{"listen", "--http", p.addr}, args...)
	go func() {
		p.done <- run(ctx, full, strings.NewReader(""), p.out, p.out, func(string) string { return "" })
	}()
	return p
}

// stop is a SIGTERM: the process winds down and exits 0.
func (p *listenProcess) stop(t testing.TB) {
	t.Helper()
	p.cancel()
	select {
	case code := <-p.done:
		if code != 0 {
			t.Errorf("listen exited %d:\n%s", code, p.out.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("listen did not stop:\n%s", p.out.String())
	}
}

type apiWorkflow struct {
	ComposeID string            `json:"compose_id"`
	State     string            `json:"state"`
	Stage     string            `json:"stage"`
	Note      string            `json:"note"`
	Data      map[string]string `json:"data"`
	Events    int               `json:"events"`
}

func (p *listenProcess) workflow(id string) (apiWorkflow, bool) {
	resp, err := http.Get("http://" + p.addr + "/api/v1/workflows/" + id)
	if err != nil {
		return apiWorkflow{}, false
	}
	defer resp.Body.Close()
	var w apiWorkflow
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&w) != nil {
		return apiWorkflow{}, false
	}
	return w, true
}

// waitFor polls cond until it holds or the deadline passes (with
// testenv.WaitFor); on timeout the error shows what the listeners logged.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool, procs ...*listenProcess) {
	t.Helper()
	testenv.WaitFor(t, d, what, func() error {
		if cond() {
			return nil
		}
		var said strings.Builder
		for i, p := range procs {
			fmt.Fprintf(&said, "\nlistener %d said:\n%s", i+1, p.out.String())
		}
		return errors.New("not yet" + said.String())
	})
}

// TestListenKilledAndRestarted runs the whole pipeline in-process on the
// embedded NATS server against the simulated Fedora: today's Rawhide is
// found by the poller, awaited until Koji finishes, scheduled, tested,
// checked and reported (mailed). The listener is stopped in the middle —
// while the compose waits for its openQA results — and started again on the
// same data directory: the compose finishes, and nothing was scheduled or
// mailed twice.
func TestListenKilledAndRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline")
	}
	data := t.TempDir()
	w, mail := mailWorld(t, data)
	// Yesterday's Rawhide was tested already. The listener watches Rawhide;
	// its poller finds every compose of the tree (the look-back is years, so
	// the test does not depend on the day it runs).
	if code, out, errOut := runCLI(t, nil, append([]string{"schedule", demoPrevRawhide}, w.flags()...)...); code != 0 {
		t.Fatalf("schedule: %s%s", out, errOut)
	}
	w.oq.Settle()
	w.mirror.SetStatus(demoRawhide, "FINISHED_INCOMPLETE")
	w.hub.Advance(2 * time.Hour) // Koji finished today's images

	args := append(w.flags(), "--koji", w.hubURL, "--watch", "rawhide", "--poll-interval", "100ms", "--poll-lookback", "87600h",
		"--complete-poll", "100ms", "--results-poll", "100ms", "--results-grace", "300ms", "--workers", "2", "--log-level", "debug", "--task-ack-wait", "2s",
		"--email", "--smtp", mail.Addr(), "--smtp-tls", "none", "--mail-from", "composeci@example.org", "--mail-to", "qa@example.org")

	first := startListen(t, args...)
	waitFor(t, "today's compose to be scheduled", 60*time.Second, func() bool {
		wf, ok := first.workflow(demoRawhide)
		return ok && wf.Stage == "await-results"
	}, first)
	posts := len(w.oq.Posts())
	first.stop(t) // the operator kills it mid-compose

	// openQA runs the jobs while no listener is up, and goes on running
	// what is posted after: the confirmation re-runs of new failures.
	w.oq.Settle()
	advance, stopAdvance := context.WithCancel(context.Background())
	defer stopAdvance()
	go w.oq.AutoAdvance(advance, 50*time.Millisecond)
	second := startListen(t, args...)
	waitFor(t, "today's compose to be done", 60*time.Second, func() bool {
		wf, ok := second.workflow(demoRawhide)
		return ok && wf.State == "done"
	}, first, second)
	wf, _ := second.workflow(demoRawhide)
	// Yesterday's first respin ended DOOMED: found by the poller too, it is
	// reported (the short report, mailed once) and its workflow is doomed.
	const doomed = "Fedora-Rawhide-20261122.n.0"
	waitFor(t, "the doomed compose to be reported", 60*time.Second, func() bool {
		d, ok := second.workflow(doomed)
		return ok && d.State == "doomed"
	}, first, second)
	// A person re-runs today's new failure through the API; this time it
	// passes. The workflow goes back to await-results, the report is
	// issued again, and — its classification changed — mailed again, as an
	// update. Asking again while the re-run is pending restarts nothing.
	w.oq.SetOutcome(demoRawhide, "KDE-live-iso", "x86_64", "desktop_terminal", "failed", "failed", "passed")
	rerun := func() (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+second.addr+"/api/v1/composes/"+demoRawhide+"/rerun",
			strings.NewReader(`{"scope": "test", "test": "desktop_terminal", "reason": "is it the font again?", "by": "alice"}`))
		req.Header.Set("Authorization", "Bearer "+demoToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := rerun(); code != 200 || !strings.Contains(body, `"rerun_job_id"`) {
		t.Fatalf("POST rerun: %d %s", code, body)
	}
	if code, body := rerun(); code != 200 || !strings.Contains(body, `"restarted": []`) {
		t.Errorf("POST rerun again: %d %s", code, body)
	}
	waitFor(t, "the updated report to be mailed", 60*time.Second, func() bool {
		for _, m := range mail.Messages() {
			if strings.HasPrefix(m.Subject(), demoRawhide+" ") && strings.HasSuffix(m.Subject(), "[updated]") {
				return true
			}
		}
		return false
	}, second)
	waitFor(t, "the workflow to be done again", 30*time.Second, func() bool {
		wf, ok := second.workflow(demoRawhide)
		return ok && wf.State == "done"
	}, second)
	second.stop(t)
	if b, err := os.ReadFile(filepath.Join(data, "reports", "rawhide", doomed, "report.txt")); err != nil || !bytes.Contains(b, []byte("Why it ended:")) {
		t.Errorf("the doomed compose's report: %v\n%s", err, b)
	}
	if n := mailsAbout(mail, doomed); n != 1 {
		t.Errorf("the doomed compose was mailed %d times, want 1", n)
	}

	if got := len(w.oq.Posts()); got != posts {
		t.Errorf("openQA got %d posts after the restart, want none (had %d)", got-posts, posts)
	}
	if n := mailsAbout(mail, demoRawhide); n != 2 {
		t.Errorf("%d mails for one report and its update, want 2", n)
	}
	for _, m := range mail.Messages() {
		if strings.HasPrefix(m.Subject(), demoRawhide+" ") && !strings.HasSuffix(m.Subject(), "[updated]") &&
			!strings.Contains(strings.Join(strings.Fields(m.Text()), " "), "confirmed: failed again when re-run") {
			t.Errorf("the first report does not say its new failure was confirmed:\n%s", m.Text())
		}
	}
	// The poller found the rest of the tree too (yesterday's DOOMED
	// respin is reported): no compose was mailed twice.
	perCompose := map[string]int{}
	for _, m := range mail.Messages() {
		if !strings.HasSuffix(m.Subject(), "[updated]") {
			perCompose[strings.Fields(m.Subject())[0]]++
		}
	}
	for id, n := range perCompose {
		if n > 1 {
			t.Errorf("%s mailed %d times", id, n)
		}
	}
	if wf.Data["problem"] != "true" || wf.Data["message_id"] == "" {
		t.Errorf("workflow data %v", wf.Data)
	}
	report := filepath.Join(data, "reports", "rawhide", demoRawhide, "report.json")
	b, err := os.ReadFile(report)
	if err != nil || !bytes.Contains(b, []byte(`"compose_id": "`+demoRawhide+`"`)) {
		t.Errorf("report not archived: %v", err)
	}
	// The new failure was re-run once by the confirm stage and failed
	// again; alice's re-run passed: the last version of the report has no
	// new failure, and both re-runs in its audit trail.
	var r struct {
		OpenQA struct {
			NewFailures []struct{} `json:"new_failures"`
		} `json:"openqa"`
		Reruns []struct {
			By     string `json:"by"`
			Scope  string `json:"scope"`
			Reason string `json:"reason"`
		} `json:"reruns"`
	}
	if err := json.Unmarshal(b, &r); err != nil || len(r.OpenQA.NewFailures) != 0 || len(r.Reruns) != 2 ||
		r.Reruns[0].Scope != "confirm" || r.Reruns[0].By != "composeci" || r.Reruns[1].By != "alice" || r.Reruns[1].Reason != "is it the font again?" {
		t.Errorf("the report's triage: %v %+v", err, r)
	}
	// The restarted listener's poller found the compose again: counted,
	// not started twice.
	if wf.Events < 1 {
		t.Errorf("events %d", wf.Events)
	}
}

// TestListenFromFedoraMessaging drives a compose by Fedora Messaging alone,
// through the real RabbitMQ: Pungi's STARTED message starts the workflow, a
// redelivered copy and the FINISHED message change nothing but the event
// count, and the compose is tested, checked and mailed once.
func TestListenFromFedoraMessaging(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline")
	}
	url := testenv.AMQPURL(t)
	data := t.TempDir()
	w, mail := mailWorld(t, data)
	exchange := fmt.Sprintf("composeci-test-%d", time.Now().UnixNano())
	bus, err := fakefedora.NewBus(url, exchange)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	ctx := context.Background()
	if err := bus.DeclareExchange(ctx); err != nil {
		t.Fatal(err)
	}
	w.oq.AutoAdvance(t.Context(), 20*time.Millisecond)

	p := startListen(t, append(w.flags(), "--koji", w.hubURL, "--watch", "rawhide", "--poll-interval", "-1s",
		"--amqp", url, "--amqp-exchange", exchange,
		"--complete-poll", "100ms", "--results-poll", "100ms", "--results-grace", "300ms", "--task-ack-wait", "2s", "--log-level", "debug",
		"--email", "--smtp", mail.Addr(), "--smtp-tls", "none", "--mail-from", "composeci@example.org", "--mail-to", "qa@example.org")...)
	defer p.stop(t)
	waitFor(t, "the AMQP consumer to connect", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + p.addr + "/healthz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == 200
	}, p)

	location := w.root + "/rawhide/" + demoRawhide + "/compose"
	id, err := bus.PublishComposeStatus(ctx, demoRawhide, "STARTED", location)
	if err != nil {
		t.Fatal(err)
	}
	// The broker redelivers (or a publisher repeats) the same message.
	if _, err := bus.Publish(ctx, fakefedora.BusTopicComposeStatus, fakefedora.ComposeStatusBody(demoRawhide, "STARTED", location), fakefedora.PublishOptions{MessageID: id}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the workflow to wait for the compose", 30*time.Second, func() bool {
		wf, ok := p.workflow(demoRawhide)
		return ok && wf.Stage == "await-complete"
	}, p)
	// Pungi finishes, Koji too; then Pungi's FINISHED message arrives.
	w.mirror.SetStatus(demoRawhide, "FINISHED_INCOMPLETE")
	w.hub.Advance(2 * time.Hour)
	if _, err := bus.PublishComposeStatus(ctx, demoRawhide, "FINISHED_INCOMPLETE", location); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the compose to be done", 60*time.Second, func() bool {
		wf, ok := p.workflow(demoRawhide)
		return ok && wf.State == "done"
	}, p)
	wf, _ := p.workflow(demoRawhide)
	if wf.Events < 2 {
		t.Errorf("workflow counted %d events, want the STARTED and FINISHED messages at least", wf.Events)
	}
	if n := len(mail.Messages()); n != 1 {
		t.Errorf("%d mails, want 1", n)
	}
}

// TestDurableQueueName: --amqp-durable without --amqp-queue uses one queue
// per deployment, the same at every start — a UUID, as Fedora's broker
// demands — never a fresh one that would be left behind.
func TestDurableQueueName(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, err := durableQueueName("/var/lib/composeci", "COMPOSECI")
	if err != nil || !uuid.MatchString(a) {
		t.Fatalf("durableQueueName = %q, %v", a, err)
	}
	for _, tc := range []struct {
		dir, prefix string
		same        bool
	}{
		{"/var/lib/composeci", "COMPOSECI", true},
		{"/var/lib/composeci/", "COMPOSECI", true},
		{"/var/lib/other", "COMPOSECI", false},
		{"/var/lib/composeci", "STAGING", false},
	} {
		b, err := durableQueueName(tc.dir, tc.prefix)
		if err != nil || (a == b) != tc.same {
			t.Errorf("durableQueueName(%q, %q) = %q (%v), same as the first: %v, want %v", tc.dir, tc.prefix, b, err, a == b, tc.same)
		}
	}
}

// TestNATSReplicasFlag: --nats-replicas is refused outside 1..5, and above
// 1 with the embedded server (one node keeps one copy), before anything
// starts; the config file sets it like the command line.
func TestNATSReplicasFlag(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "composeci.toml")
	if err := os.WriteFile(cfg, []byte("nats-replicas = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"zero", []string{"listen", "--nats-replicas", "0"}, "--nats-replicas 0: want 1 to 5"},
		{"six", []string{"worker", "--nats", "nats://127.0.0.1:1", "--nats-replicas", "6"}, "--nats-replicas 6: want 1 to 5"},
		{"embedded", []string{"listen", "--nats-replicas", "3"}, "--nats-replicas 3 needs a NATS cluster"},
		{"embedded, listening", []string{"listen", "--nats-listen", "127.0.0.1:0", "--nats-replicas", "2"}, "--nats-replicas 2 needs a NATS cluster"},
		{"embedded, from the config file", []string{"--config", cfg, "listen"}, "--nats-replicas 3 needs a NATS cluster"},
		{"serve", []string{"serve", "--nats", "nats://127.0.0.1:1", "--nats-replicas", "-1"}, "--nats-replicas -1: want 1 to 5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, nil, append(c.args, "--data", t.TempDir())...)
			if code != exitError || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d saying %q", code, errOut, exitError, c.want)
			}
		})
	}
}

// TestURLHasPassword: an amqps URL with a password of its own is PLAIN
// over TLS; Fedora's public broker URL (user "fedora", an empty password)
// keeps Fedora's certificates.
func TestURLHasPassword(t *testing.T) {
	for raw, want := range map[string]bool{
		"amqps://fedora:@rabbitmq.fedoraproject.org/%2Fpublic_pubsub": false,
		"amqps://user:s3cret@broker.example.org/vhost":                true,
		"amqp://guest:guest@127.0.0.1:5672/":                          true,
		"amqps://broker.example.org/":                                 false,
		"amqps://user@broker.example.org/":                            false,
		"::not a url":                                                 false,
	} {
		if got := urlHasPassword(raw); got != want {
			t.Errorf("urlHasPassword(%q) = %v, want %v", raw, got, want)
		}
	}
}

// TestWarnFileStoresLeftBehind: a deployment switched to NATS stores says
// at start which files of its earlier, file-kept stores it will not read;
// a fresh --data says nothing.
func TestWarnFileStoresLeftBehind(t *testing.T) {
	data := t.TempDir()
	var stderr bytes.Buffer
	a := &app{stderr: &stderr, log: slog.New(slog.DiscardHandler), g: globals{data: data}}
	warnFileStoresLeftBehind(a)
	if stderr.Len() != 0 {
		t.Errorf("a fresh --data warned: %s", stderr.String())
	}
	if err := os.MkdirAll(filepath.Join(data, "reports", "44"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "known-issues.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	warnFileStoresLeftBehind(a)
	if w := stderr.String(); !strings.Contains(w, "holds reports/ (1 entry) and known-issues.json kept in files by an earlier run") {
		t.Errorf("warning %q", w)
	}
}
