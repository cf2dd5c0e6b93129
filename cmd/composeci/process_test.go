package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/testenv"
	"github.com/composeci/composeci/reports"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// runAsMain makes the test binary composeci itself when set: the tests
// below start it as real processes, to signal, kill and run two at once.
const runAsMain = "COMPOSECI_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runAsMain) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// process is composeci running as a process of its own.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	code int
}

func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(os.Args[0], args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), runAsMain+"=1")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// stop sends SIGTERM and fails the test unless the process exits 0
// within 30 s.
func (p *process) stop(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit %d on SIGTERM:\n%s", code, p.out.String())
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *process) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		t.Fatalf("the process did not exit within %s; it said:\n%s", d, p.out.String())
		return -1
	}
}

func (p *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// waitHealthy waits until the process serves /healthz on addr with 200.
func waitHealthy(t *testing.T, p *process, addr string) {
	t.Helper()
	testenv.WaitFor(t, 60*time.Second, "listen to serve /healthz", func() error {
		select {
		case <-p.done:
			t.Fatalf("listen exited %d:\n%s", p.code, p.out.String())
		default:
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return fmt.Errorf("%w\nit said:\n%s", err, p.out.String())
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d: %s\nit said:\n%s", resp.StatusCode, b, p.out.String())
		}
		return nil
	})
}

// trigger asks a listener to take a compose, as a person or script would,
// with the demo's API token.
func trigger(t *testing.T, addr, id string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/workflows/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+demoToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST workflow: HTTP %d", resp.StatusCode)
	}
}

func workflowOf(addr, id string) (apiWorkflow, bool) {
	return (&listenProcess{addr: addr}).workflow(id)
}

// finishedWorld is the demo's world with today's Rawhide finished in Pungi
// and Koji.
func finishedWorld(t *testing.T) *demoWorld {
	t.Helper()
	w, _ := mailWorld(t, t.TempDir())
	w.mirror.SetStatus(demoRawhide, "FINISHED_INCOMPLETE")
	w.hub.Advance(2 * time.Hour)
	return w
}

// TestSecondListenRefusedWhileFirstServes starts two `composeci listen`
// processes on one data directory: the second exits 2 at once with one
// line naming the directory and the first process; the first serves on,
// takes a compose through the pipeline, stops on SIGTERM with exit 0, and a
// listener started again finds its store intact.
func TestSecondListenRefusedWhileFirstServes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	w := finishedWorld(t)
	addr := freeAddr(t)
	args := append(w.flags(), "listen", "--no-openqa", "--watch", "rawhide", "--poll-interval", "-1s", "--complete-poll", "100ms")
	first := startProcess(t, append(args, "--http", addr)...)
	waitHealthy(t, first, addr)

	second := startProcess(t, append(args, "--http", freeAddr(t))...)
	if code := second.wait(t, 20*time.Second); code != 2 {
		t.Fatalf("second listen exited %d, want 2:\n%s", code, second.out.String())
	}
	said := strings.TrimSpace(second.out.String())
	want := fmt.Sprintf("composeci: data directory %s is in use by composeci listen, pid %d on host", w.dir, first.cmd.Process.Pid)
	if strings.Count(said, "\n") != 0 || !strings.HasPrefix(said, want) {
		t.Errorf("second listen said %q\nwant one line starting %q", said, want)
	}

	trigger(t, addr, demoRawhide)
	testenv.WaitFor(t, 60*time.Second, "the compose to be done", func() error {
		if wf, ok := workflowOf(addr, demoRawhide); !ok || wf.State != "done" {
			return fmt.Errorf("workflow %+v", wf)
		}
		return nil
	})
	first.signal(t, syscall.SIGTERM)
	if code := first.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("listen exited %d on SIGTERM:\n%s", code, first.out.String())
	}

	third := startProcess(t, append(args, "--http", addr)...)
	waitHealthy(t, third, addr)
	if wf, ok := workflowOf(addr, demoRawhide); !ok || wf.State != "done" {
		t.Errorf("after a restart the workflow is %+v", wf)
	}
	third.signal(t, syscall.SIGTERM)
	third.wait(t, 30*time.Second)
}

// TestListenExitsWhenAPartKeepsFailing: a Fedora Messaging consumer that
// cannot bind its queue (no such exchange) is restarted, fails again, and
// past --max-restarts ends the process with exit 3, saying which part.
func TestListenExitsWhenAPartKeepsFailing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	url := testenv.AMQPURL(t)
	w := finishedWorld(t)
	p := startProcess(t, append(w.flags(), "listen", "--no-openqa", "--poll-interval", "-1s", "--http", freeAddr(t),
		"--amqp", url, "--amqp-exchange", "composeci-no-such-exchange-"+strconv.FormatInt(time.Now().UnixNano(), 10),
		"--max-restarts", "2", "--restart-backoff", "50ms")...)
	if code := p.wait(t, 60*time.Second); code != 3 {
		t.Fatalf("listen exited %d, want 3:\n%s", code, p.out.String())
	}
	if out := p.out.String(); !strings.Contains(out, "amqp consumer failed 3 times in a row") || !strings.Contains(out, "NOT_FOUND") {
		t.Errorf("listen did not say which part failed and why:\n%s", out)
	}
}

// TestListenSIGTERMMidStage sends SIGTERM while the schedule stage waits on
// openQA: the process hands the stage back and exits 0 within
// --shutdown-timeout; started again, it schedules the compose, and no
// product is posted twice.
func TestListenSIGTERMMidStage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	w := finishedWorld(t)
	w.oq.InjectFault(fakefedora.OpenQAFault{Method: "POST", Path: "/api/v1/isos", Hang: time.Minute, Times: 1})
	addr := freeAddr(t)
	args := append(w.flags(), "listen", "--http", addr, "--watch", "rawhide", "--poll-interval", "-1s", "--workers", "1",
		"--complete-poll", "100ms", "--results-poll", "100ms", "--results-grace", "200ms", "--shutdown-timeout", "10s", "--log-level", "info")
	first := startProcess(t, args...)
	waitHealthy(t, first, addr)
	trigger(t, addr, demoRawhide)
	testenv.WaitFor(t, 60*time.Second, "the schedule stage to wait on openQA", func() error {
		if n := w.oq.Requests("POST", "/api/v1/isos"); n < 1 {
			return fmt.Errorf("%d POSTs", n)
		}
		return nil
	})
	began := time.Now()
	first.signal(t, syscall.SIGTERM)
	code := first.wait(t, 30*time.Second)
	took := time.Since(began)
	if code != 0 || took > 10*time.Second {
		t.Fatalf("listen exited %d after %s on SIGTERM, want 0 within --shutdown-timeout 10s:\n%s", code, took, first.out.String())
	}
	if !strings.Contains(first.out.String(), "task handed back") {
		t.Errorf("the running stage was not handed back:\n%s", first.out.String())
	}

	second := startProcess(t, args...)
	waitHealthy(t, second, addr)
	w.oq.AutoAdvance(t.Context(), 20*time.Millisecond)
	testenv.WaitFor(t, 60*time.Second, "the compose to be done", func() error {
		if wf, ok := workflowOf(addr, demoRawhide); !ok || wf.State != "done" {
			return fmt.Errorf("workflow %+v\nfirst listen said:\n%s\nsecond listen said:\n%s", wf, first.out.String(), second.out.String())
		}
		return nil
	})
	second.signal(t, syscall.SIGTERM)
	second.wait(t, 30*time.Second)
	checkEachProductPostedOnce(t, w.oq)
}

// TestServeReadsAPipelineFromNATS runs `composeci listen` on the external
// NATS and `composeci serve` beside it, as on a second host: the compose
// the listener reports shows on serve's API and dashboard; serve, without a
// token, refuses writes; and its metrics answer.
// TestListenKilledMidStageResumesInSeconds: a listen killed with SIGKILL
// while a stage runs (schedule, waiting on openQA) and started again goes
// on within seconds — not after --task-ack-wait (two minutes here): with the
// embedded server the restarted process takes back at once what its dead
// predecessor held, task and stage lease alike. Nothing is posted twice.
func TestListenKilledMidStageResumesInSeconds(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	w := finishedWorld(t)
	w.oq.InjectFault(fakefedora.OpenQAFault{Method: "POST", Path: "/api/v1/isos", Hang: time.Minute, Times: 1})
	addr := freeAddr(t)
	args := append(w.flags(), "listen", "--http", addr, "--watch", "rawhide", "--poll-interval", "-1s", "--workers", "1",
		"--complete-poll", "100ms", "--results-poll", "100ms", "--results-grace", "200ms", "--task-ack-wait", "2m", "--log-level", "info")
	first := startProcess(t, args...)
	waitHealthy(t, first, addr)
	trigger(t, addr, demoRawhide)
	testenv.WaitFor(t, 60*time.Second, "the schedule stage to wait on openQA", func() error {
		if n := w.oq.Requests("POST", "/api/v1/isos"); n < 1 {
			return fmt.Errorf("%d POSTs", n)
		}
		return nil
	})
	first.signal(t, syscall.SIGKILL)
	first.wait(t, 10*time.Second)

	restarted := time.Now()
	second := startProcess(t, args...)
	waitHealthy(t, second, addr)
	w.oq.AutoAdvance(t.Context(), 20*time.Millisecond)
	testenv.WaitFor(t, 60*time.Second, "the compose to get past schedule", func() error {
		if wf, ok := workflowOf(addr, demoRawhide); !ok || wf.Stage == "schedule" || wf.Stage == "await-complete" || wf.Stage == "discover" {
			return fmt.Errorf("workflow %+v\nsecond listen said:\n%s", wf, second.out.String())
		}
		return nil
	})
	took := time.Since(restarted)
	if took > 10*time.Second {
		t.Errorf("the killed stage resumed %s after the restart, want within 10 s (--task-ack-wait is 2m):\n%s", took, second.out.String())
	}
	t.Logf("the killed stage resumed %s after the process was started again", took.Round(time.Millisecond))
	testenv.WaitFor(t, 60*time.Second, "the compose to be done", func() error {
		if wf, ok := workflowOf(addr, demoRawhide); !ok || wf.State != "done" {
			return fmt.Errorf("workflow %+v", wf)
		}
		return nil
	})
	second.signal(t, syscall.SIGTERM)
	second.wait(t, 30*time.Second)
	checkEachProductPostedOnce(t, w.oq)
}

func TestServeReadsAPipelineFromNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	url := testenv.NATSURL(t)
	prefix := fmt.Sprintf("S%d", time.Now().UnixNano()%1e12)
	t.Cleanup(func() { deleteNATSPrefix(t, url, prefix) })
	w := finishedWorld(t)
	listenAddr, serveAddr := freeAddr(t), freeAddr(t)
	listen := startProcess(t, append(w.flags(), "listen", "--no-openqa", "--watch", "rawhide", "--poll-interval", "-1s", "--complete-poll", "100ms",
		"--nats", url, "--nats-prefix", prefix, "--http", listenAddr)...)
	waitHealthy(t, listen, listenAddr)
	serve := startProcess(t, "serve", "--compose-root", w.root, "--koji", w.hubURL, "--data", w.dir,
		"--nats", url, "--nats-prefix", prefix, "--http", serveAddr)
	waitHealthy(t, serve, serveAddr)

	trigger(t, listenAddr, demoRawhide)
	testenv.WaitFor(t, 60*time.Second, "the compose's result on serve", func() error {
		resp, err := http.Get("http://" + serveAddr + "/api/v1/composes?stream=rawhide")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var page struct {
			Composes []struct {
				ComposeID string `json:"compose_id"`
				State     string `json:"state"`
			} `json:"composes"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
			return err
		}
		if len(page.Composes) != 1 || page.Composes[0].ComposeID != demoRawhide || page.Composes[0].State != "done" {
			return fmt.Errorf("serve shows %+v", page.Composes)
		}
		return nil
	})
	for path, want := range map[string]string{
		"/composes/" + demoRawhide:                  "New failures",
		"/api/v1/composes/" + demoRawhide + "/done": `"answered_from": "workflow"`,
		"/metrics": `composeci_workflows{state="done"} 1`,
	} {
		resp, err := http.Get("http://" + serveAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("serve GET %s: HTTP %d, lacks %q", path, resp.StatusCode, want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+serveAddr+"/api/v1/workflows/"+demoBranched, nil)
	req.Header.Set("Authorization", "Bearer "+demoToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a write to serve without a token file: %v %v", resp.StatusCode, err)
	}
	for _, p := range []*process{serve, listen} {
		p.stop(t)
	}
}

// TestHostsShareNothingButNATS runs the pipeline as on four hosts that
// share nothing but an external NATS: a listen that runs no stage, two
// workers and a serve, each with a data directory of its own. Every stage
// may run on either worker — the report stage finds the report the other
// one archived — and a worker killed with SIGKILL mid-run loses nothing:
// both composes are reported, mailed once each, no openQA product posted
// twice, and serve shows the reports.
func TestHostsShareNothingButNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	url := testenv.NATSURL(t)
	prefix := fmt.Sprintf("H%d", time.Now().UnixNano()%1e12)
	t.Cleanup(func() { deleteNATSPrefix(t, url, prefix) })
	w := finishedWorld(t)
	w.mirror.SetStatus(demoBranched, "FINISHED")
	w.oq.AutoAdvance(t.Context(), 30*time.Millisecond)
	common := func(command, dir string) []string {
		args := []string{command, "--compose-root", w.root, "--koji", w.hubURL, "--data", dir, "--openqa", w.oq.URL(),
			"--nats", url, "--nats-prefix", prefix, "--watch", "rawhide,branched"}
		if command != "serve" {
			args = append(args, "--openqa-key", demoOpenQAKey, "--openqa-secret", demoOpenQASec)
		}
		return args
	}
	stageFlags := []string{"--complete-poll", "100ms", "--results-poll", "100ms", "--results-grace", "200ms", "--task-ack-wait", "3s",
		"--email", "--smtp", w.mail.Addr(), "--smtp-tls", "none", "--mail-from", "composeci@example.org", "--mail-to", "qa@example.org"}
	listenAddr, serveAddr := freeAddr(t), freeAddr(t)
	listen := startProcess(t, append(append(common("listen", t.TempDir()), "--workers", "0", "--poll-interval", "-1s", "--http", listenAddr,
		"--api-token-file", w.token), stageFlags...)...)
	waitHealthy(t, listen, listenAddr)
	workers := []*process{
		startProcess(t, append(append(common("worker", t.TempDir()), "--workers", "2", "--http", ""), stageFlags...)...),
		startProcess(t, append(append(common("worker", t.TempDir()), "--workers", "2", "--http", ""), stageFlags...)...),
	}
	serve := startProcess(t, append(common("serve", t.TempDir()), "--http", serveAddr)...)
	waitHealthy(t, serve, serveAddr)

	trigger(t, listenAddr, demoRawhide)
	trigger(t, listenAddr, demoBranched)
	// One worker dies once stages have run on it.
	testenv.WaitFor(t, 60*time.Second, "openQA to be asked", func() error {
		if len(w.oq.Posts()) == 0 {
			return errors.New("no post yet")
		}
		return nil
	})
	workers[0].signal(t, syscall.SIGKILL)
	workers[0].wait(t, 10*time.Second)

	for _, id := range []string{demoRawhide, demoBranched} {
		testenv.WaitFor(t, 90*time.Second, id+" to be done", func() error {
			if wf, ok := workflowOf(listenAddr, id); !ok || wf.State != "done" {
				return fmt.Errorf("workflow %+v\nworker 2 said:\n%s", wf, workers[1].out.String())
			}
			return nil
		})
		checkReportServed(t, serveAddr, id)
		if n := mailsAbout(w.mail, id); n != 1 {
			t.Errorf("%s mailed %d times, want once", id, n)
		}
	}
	checkEachProductPostedOnce(t, w.oq)
	for _, p := range []*process{serve, workers[1], listen} {
		p.stop(t)
	}
}

// TestKillMatrix kills composeci with SIGKILL over and over — at each
// stage boundary of a compose, and at random moments — and starts the
// killed process again on the same data directory each time, while two
// composes go through the pipeline (scheduled, tested, their new failures
// confirmed by re-runs, checked, mailed). It runs two deployments: one
// listen on its embedded NATS, and, as on three hosts, a listen that runs
// no stage and two workers on an external NATS, any of which is killed.
// In the end every compose is reported, no openQA product was posted
// twice, and each compose's report went out under one Message-ID: a second
// copy could only come from a kill in the window between the SMTP server's
// acceptance and the ledger's write, and it would carry the same
// Message-ID. 10 kills of each deployment in CI; COMPOSECI_SOAK=1 makes it
// 100 of each.
func TestKillMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	kills := 10
	if os.Getenv("COMPOSECI_SOAK") != "" {
		kills = 100
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for _, hosts := range []bool{false, true} {
		name := "embedded listen"
		if hosts {
			name = "listen and two workers on an external NATS"
		}
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			stagesSeen, victims := map[string]bool{}, map[string]int{}
			for total, round := 0, 1; total < kills; round++ {
				t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
					total += killRound(t, rng, stagesSeen, victims, hosts)
				})
				if t.Failed() {
					break
				}
			}
			t.Logf("killed %v; stage boundaries hit: %v", victims, slices.Sorted(maps.Keys(stagesSeen)))
		})
	}
}

// killRound runs two composes through composeci processes, one killed at
// a time until the composes are done, checks what the world received, and
// returns the number of kills. With hosts, the processes are a listen with
// --workers 0 and two workers on the external NATS, each with a data
// directory of its own; without, one listen on its embedded NATS.
func killRound(t *testing.T, rng *rand.Rand, stagesSeen map[string]bool, victims map[string]int, hosts bool) int {
	w := finishedWorld(t)
	w.mirror.SetStatus(demoBranched, "FINISHED")
	w.oq.AutoAdvance(t.Context(), 30*time.Millisecond)
	addr := freeAddr(t)
	stageFlags := []string{"--complete-poll", "100ms", "--results-poll", "100ms", "--results-grace", "200ms",
		"--email", "--smtp-tls", "none", "--mail-to", "qa@example.org", "--log-level", "info"}
	type role struct {
		name string
		args []string
		p    *process
	}
	var roles []*role
	if !hosts {
		roles = append(roles, &role{name: "listen", args: append(append(w.flags(), "listen", "--http", addr, "--watch", "rawhide,branched",
			"--poll-interval", "-1s", "--workers", "2", "--task-ack-wait", "5s"), stageFlags...)})
	} else {
		url := testenv.NATSURL(t)
		prefix := fmt.Sprintf("K%d", time.Now().UnixNano()%1e12)
		t.Cleanup(func() { deleteNATSPrefix(t, url, prefix) })
		nats := []string{"--nats", url, "--nats-prefix", prefix, "--task-ack-wait", "3s", "--watch", "rawhide,branched"}
		roles = append(roles, &role{name: "listen", args: append(append(append(w.flags(), "listen", "--data", t.TempDir(), "--http", addr,
			"--poll-interval", "-1s", "--workers", "0"), nats...), stageFlags...)})
		for _, name := range []string{"worker 1", "worker 2"} {
			roles = append(roles, &role{name: name, args: append(append(append(w.flags(), "worker", "--data", t.TempDir(), "--http", "",
				"--workers", "2"), nats...), stageFlags...)})
		}
	}
	composes := []string{demoRawhide, demoBranched}
	done := func() bool {
		for _, id := range composes {
			if wf, ok := workflowOf(addr, id); !ok || (wf.State != "done" && wf.State != "failed") {
				return false
			}
		}
		return true
	}
	kills := 0
	for i := 0; ; i++ {
		for _, r := range roles {
			if r.p == nil {
				r.p = startProcess(t, r.args...)
			}
		}
		waitHealthy(t, roles[0].p, addr)
		if i == 0 {
			for _, id := range composes {
				trigger(t, addr, id)
			}
		}
		if done() {
			for _, id := range composes {
				if wf, _ := workflowOf(addr, id); wf.State != "done" {
					t.Errorf("%s ended %s: %s", id, wf.State, wf.Note)
				}
			}
			for _, r := range slices.Backward(roles) {
				r.p.signal(t, syscall.SIGTERM)
				r.p.wait(t, 30*time.Second)
			}
			break
		}
		// Half the kills come when a compose reaches a stage not killed at
		// yet; the others after a random moment.
		deadline := time.Now().Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
		boundary := i%2 == 0
		for time.Now().Before(deadline) || boundary {
			if boundary {
				hit := false
				for _, id := range composes {
					if wf, ok := workflowOf(addr, id); ok && wf.State == "active" && !stagesSeen[wf.Stage] {
						stagesSeen[wf.Stage], hit = true, true
					}
				}
				if hit || time.Now().After(deadline.Add(3*time.Second)) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		victim := roles[rng.IntN(len(roles))]
		victim.p.signal(t, syscall.SIGKILL)
		victim.p.wait(t, 10*time.Second)
		victim.p = nil
		victims[victim.name]++
		kills++
	}
	checkEachProductPostedOnce(t, w.oq)
	for _, id := range composes {
		ids := map[string]int{}
		for _, m := range w.mail.Messages() {
			if strings.HasPrefix(m.Subject(), id+" ") && !strings.HasSuffix(m.Subject(), "[updated]") {
				ids[m.Header("Message-ID")]++
			}
		}
		if len(ids) != 1 {
			t.Errorf("%s was mailed under %d Message-IDs (%v), want one", id, len(ids), ids)
		}
		for mid, n := range ids {
			if n > 1 {
				t.Logf("%s: %d copies of %s (a kill between the server's acceptance and the ledger)", id, n, mid)
			}
		}
	}
	return kills
}

// checkEachProductPostedOnce fails the test if openQA was asked for no
// product, or for one (build, flavor, arch) more than once.
func checkEachProductPostedOnce(t *testing.T, oq *fakefedora.OpenQA) {
	t.Helper()
	posted := map[string]int{}
	for _, p := range oq.Posts() {
		posted[p.Params["BUILD"]+"/"+p.Params["FLAVOR"]+"/"+p.Params["ARCH"]]++
	}
	if len(posted) == 0 {
		t.Error("openQA was asked for no product")
	}
	for product, n := range posted {
		if n > 1 {
			t.Errorf("openQA product %s posted %d times", product, n)
		}
	}
}

// checkReportServed fails the test unless the process on addr serves the
// compose's text report.
func checkReportServed(t *testing.T, addr, id string) {
	t.Helper()
	rel, _ := reports.ReleaseOf(id)
	resp, err := http.Get("http://" + addr + "/reports/" + rel + "/" + id + "/report.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), id+" compose check report") {
		t.Errorf("GET /reports/ of %s from %s: HTTP %d\n%s", id, addr, resp.StatusCode, b)
	}
}

// deleteNATSPrefix removes a test deployment's streams from a NATS server.
func deleteNATSPrefix(t *testing.T, url, prefix string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Errorf("cleaning up %s: %v", prefix, err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range []string{prefix + "_EVENTS", prefix + "_TASKS", prefix + "_RESULTS", "KV_" + prefix + "_workflows",
		"KV_" + prefix + "_known", "KV_" + prefix + "_reruns", "KV_" + prefix + "_reportmeta", "OBJ_" + prefix + "_reports"} {
		if err := js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("cleaning up stream %s: %v", s, err)
		}
	}
}
