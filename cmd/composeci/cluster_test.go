package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/composeci/composeci/internal/testenv"
	"github.com/composeci/composeci/listener/workflow"
)

// natsNode is one nats-server process of a test cluster.
type natsNode struct {
	name            string
	args            []string
	client, monitor string // host:port
	bin             string
	owner           *testing.T // the test whose end stops the node

	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// natsCluster is three nats-server processes with JetStream, clustered on
// loopback, each with its own store.
type natsCluster struct {
	nodes []*natsNode
}

// startNATSCluster starts n clustered nats-server processes and waits
// until JetStream has a meta leader that every node knows.
func startNATSCluster(t *testing.T, n int) *natsCluster {
	t.Helper()
	bin := testenv.NATSServerBinary(t)
	c := &natsCluster{}
	routes := make([]string, n)
	addrs := distinctFreeAddrs(t, 3*n)
	for i := range n {
		c.nodes = append(c.nodes, &natsNode{name: fmt.Sprintf("n%d", i+1), client: addrs[3*i], monitor: addrs[3*i+1], bin: bin, owner: t})
		routes[i] = "nats://" + addrs[3*i+2]
	}
	for i, node := range c.nodes {
		host, port := splitAddr(t, node.client)
		_, mport := splitAddr(t, node.monitor)
		node.args = []string{"-a", host, "-p", port, "-m", mport, "-n", node.name, "-js", "-sd", t.TempDir(),
			"--cluster_name", "composeci-test", "--cluster", routes[i], "--routes", strings.Join(routes, ",")}
		node.start(t)
	}
	testenv.WaitFor(t, 30*time.Second, "the NATS cluster to elect a JetStream meta leader", func() error {
		for _, node := range c.nodes {
			if leader, err := node.metaLeader(); err != nil || leader == "" {
				return fmt.Errorf("%s: meta leader %q, %v\nit said:\n%s", node.name, leader, err, node.out.String())
			}
		}
		return nil
	})
	return c
}

// distinctFreeAddrs returns n free loopback addresses, all different:
// freeAddr called n times may return one port twice, once closed.
func distinctFreeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

func splitAddr(t *testing.T, addr string) (string, string) {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		t.Fatalf("address %q", addr)
	}
	return addr[:i], addr[i+1:]
}

// URLs is the cluster as --nats takes it: every node.
func (c *natsCluster) URLs() string {
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, "nats://"+n.client)
	}
	return strings.Join(urls, ",")
}

func (c *natsCluster) node(name string) *natsNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// start runs the node (again, on the same store after a kill) until the
// cluster's test ends.
func (n *natsNode) start(t *testing.T) {
	t.Helper()
	owner := n.owner
	n.out, n.done = &syncBuffer{}, make(chan struct{})
	n.cmd = exec.Command(n.bin, n.args...)
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd, done := n.cmd, n.done
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	owner.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
}

// kill ends the node with SIGKILL: no goodbye to its peers or clients.
func (n *natsNode) kill(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-n.done
}

// metaLeader asks the node's monitoring endpoint who leads JetStream's
// meta group.
func (n *natsNode) metaLeader() (string, error) {
	resp, err := http.Get("http://" + n.monitor + "/jsz")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var jsz struct {
		Meta *struct {
			Leader string `json:"leader"`
		} `json:"meta_cluster"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jsz); err != nil {
		return "", err
	}
	if jsz.Meta == nil {
		return "", errors.New("no meta_cluster in /jsz")
	}
	return jsz.Meta.Leader, nil
}

// clusterClient connects the test to every node, reconnecting for ever.
func clusterClient(t *testing.T, c *natsCluster) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// streamInfo reads a stream's info, again while the cluster fails over.
func streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	testenv.WaitFor(t, 30*time.Second, "stream "+name, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, name)
		if err == nil {
			info, err = st.Info(ctx)
		}
		return err
	})
	return info
}

// writeTimes records when writes succeeded, from any goroutine.
type writeTimes struct {
	mu sync.Mutex
	at []time.Time
}

func (w *writeTimes) add(at time.Time) {
	w.mu.Lock()
	w.at = append(w.at, at)
	w.mu.Unlock()
}

// longest returns the longest interval without a write from the last
// write at or before from to the last write seen, and where it began.
func (w *writeTimes) longest(from time.Time) (time.Duration, time.Time) {
	w.mu.Lock()
	at := slices.Clone(w.at)
	w.mu.Unlock()
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	var began time.Time
	for i := 1; i < len(at); i++ {
		if at[i].Before(from) {
			continue
		}
		if d := at[i].Sub(at[i-1]); d > gap {
			gap, began = d, at[i-1]
		}
	}
	return gap, began
}

func (w *writeTimes) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.at)
}

// around returns the last write before at and the first after it.
func (w *writeTimes) around(at time.Time) (before, after time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range w.at {
		if !t.After(at) && t.After(before) {
			before = t
		}
		if t.After(at) && (after.IsZero() || t.Before(after)) {
			after = t
		}
	}
	return before, after
}

// probeWrites writes to an R3 stream of its own, led by node leader, every
// 50 ms until ctx ends, recording each write the cluster confirmed: the
// cluster's own failover when that node goes, beside the pipeline's.
func probeWrites(ctx context.Context, t *testing.T, js jetstream.JetStream, stream, leader string) *writeTimes {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, "the probe stream led by "+leader, func() error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := js.CreateOrUpdateStream(cctx, jetstream.StreamConfig{Name: stream, Subjects: []string{stream + ".>"}, Replicas: 3, MaxMsgs: 100})
		if err != nil {
			return err
		}
		info, err := st.Info(cctx)
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader != leader {
			// Another node leads it: ask it to step down, until the
			// election falls on leader.
			_, err := js.Conn().RequestWithContext(cctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, nil)
			return fmt.Errorf("led by %v (stepped down: %v)", info.Cluster, err)
		}
		return nil
	})
	w := &writeTimes{}
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			if _, err := js.Publish(pctx, stream+".probe", []byte("x")); err == nil {
				w.add(time.Now())
			}
			cancel()
		}
	}()
	return w
}

// watchWorkflows reads the composes' workflow records every 50 ms until
// ctx ends and records the server's time of every revision it sees: each
// is a write of the pipeline (a stage's outcome, a lease taken or renewed,
// an event counted). Revisions between two reads are missed, which can
// only make a gap look longer.
func watchWorkflows(ctx context.Context, js jetstream.JetStream, prefix string, ids []string) *writeTimes {
	w := &writeTimes{}
	go func() {
		seen := map[uint64]bool{}
		var kv jetstream.KeyValue
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			if kv == nil {
				kv, _ = js.KeyValue(rctx, prefix+"_workflows")
			}
			for _, id := range ids {
				if kv == nil {
					break
				}
				if e, err := kv.Get(rctx, workflow.KeyOf(id)); err == nil && !seen[e.Revision()] {
					seen[e.Revision()] = true
					w.add(e.Created())
				}
			}
			cancel()
		}
	}()
	return w
}

// ledBy lists the deployment's streams and consumers node leads.
func ledBy(t *testing.T, js jetstream.JetStream, prefix, node string) []string {
	t.Helper()
	var led []string
	for _, s := range []struct{ stream, consumer string }{
		{prefix + "_EVENTS", ""}, {prefix + "_EVENTS", "dispatcher"}, {prefix + "_TASKS", ""}, {prefix + "_TASKS", "workers"},
		{prefix + "_RESULTS", ""}, {"KV_" + prefix + "_workflows", ""},
	} {
		info := streamInfo(t, js, s.stream)
		leader, name := "", s.stream
		if info.Cluster != nil {
			leader = info.Cluster.Leader
		}
		if s.consumer != "" {
			name += "/" + s.consumer
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			c, err := js.Consumer(ctx, s.stream, s.consumer)
			cancel()
			leader = ""
			if err == nil && c.CachedInfo().Cluster != nil {
				leader = c.CachedInfo().Cluster.Leader
			}
		}
		if leader == node {
			led = append(led, name)
		}
	}
	return led
}

// newLeaderAt polls a stream's info every 50 ms until ctx ends and returns
// a function telling when the stream was first seen led by another node
// than old (zero if not yet): its election, as the cluster reports it.
func newLeaderAt(ctx context.Context, js jetstream.JetStream, stream, old string) func() time.Time {
	return newLeaderOf(ctx, old, func(ctx context.Context) (*jetstream.ClusterInfo, error) {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return nil, err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return nil, err
		}
		return info.Cluster, nil
	})
}

// newConsumerLeaderAt is newLeaderAt for a stream's durable consumer.
func newConsumerLeaderAt(ctx context.Context, js jetstream.JetStream, stream, consumer, old string) func() time.Time {
	return newLeaderOf(ctx, old, func(ctx context.Context) (*jetstream.ClusterInfo, error) {
		c, err := js.Consumer(ctx, stream, consumer)
		if err != nil {
			return nil, err
		}
		return c.CachedInfo().Cluster, nil
	})
}

func newLeaderOf(ctx context.Context, old string, cluster func(context.Context) (*jetstream.ClusterInfo, error)) func() time.Time {
	var mu sync.Mutex
	var at time.Time
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			info, err := cluster(rctx)
			cancel()
			if err == nil && info != nil && info.Leader != "" && info.Leader != old {
				mu.Lock()
				at = time.Now()
				mu.Unlock()
				return
			}
		}
	}()
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return at
	}
}

// TestNATSClusterNodeKilled runs the pipeline on a 3-node NATS JetStream
// cluster on loopback (three nats-server processes) with every stream and
// bucket replicated three times (--nats-replicas 3): `listen --workers 0`
// and two `worker` processes, each given all three nodes. Mid-run the node
// leading the workflows bucket is killed with SIGKILL. Every compose is
// still reported, no openQA product is posted twice, each compose is
// mailed once, and the pipeline's longest pause across the kill — from its
// last write of a workflow record before the kill to its first after — is
// bounded, and logged with the cluster's own (a probe writing every 50 ms).
// The node is started again and must catch up with every stream. One
// round in CI; COMPOSECI_SOAK=1 runs six, killing each node in turn.
func TestNATSClusterNodeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	rounds := 1
	if os.Getenv("COMPOSECI_SOAK") != "" {
		rounds = 6
	}
	c := startNATSCluster(t, 3)
	var gaps []time.Duration
	for round := range rounds {
		t.Run(fmt.Sprintf("round %d", round+1), func(t *testing.T) {
			victim := ""
			if round > 0 {
				victim = c.nodes[round%len(c.nodes)].name
			}
			gaps = append(gaps, clusterRound(t, c, fmt.Sprintf("CL%d_%d", time.Now().UnixNano()%1e9, round), victim))
		})
		if t.Failed() {
			break
		}
	}
	if len(gaps) > 1 {
		t.Logf("pipeline pauses across the kills: %v (longest %v)", gaps, slices.Max(gaps))
	}
}

// failoverBound is how long the pipeline may stand still across the loss
// of a node: JetStream's elections take seconds, and this machine is
// shared; generous, so that it fails on a stall, not on a slow election.
const failoverBound = 30 * time.Second

// clusterRound takes the demo's two composes through the pipeline on the
// cluster, killing victim (the workflows bucket's leader if "") once both
// workflows exist and starting it again at the end. It returns the
// pipeline's pause across the kill.
func clusterRound(t *testing.T, c *natsCluster, prefix, victim string) time.Duration {
	js := clusterClient(t, c)
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	w := finishedWorld(t)
	w.mirror.SetStatus(demoBranched, "FINISHED")
	w.oq.AutoAdvance(t.Context(), 30*time.Millisecond)
	common := func(command string) []string {
		return []string{command, "--compose-root", w.root, "--koji", w.hubURL, "--data", t.TempDir(), "--openqa", w.oq.URL(),
			"--nats", c.URLs(), "--nats-prefix", prefix, "--nats-replicas", "3", "--watch", "rawhide,branched",
			"--openqa-key", demoOpenQAKey, "--openqa-secret", demoOpenQASec,
			"--complete-poll", "100ms", "--results-poll", "100ms", "--results-grace", "200ms", "--task-ack-wait", "3s",
			"--email", "--smtp", w.mail.Addr(), "--smtp-tls", "none", "--mail-from", "composeci@example.org", "--mail-to", "qa@example.org"}
	}
	listenAddr := freeAddr(t)
	listen := startProcess(t, append(common("listen"), "--workers", "0", "--poll-interval", "-1s", "--http", listenAddr,
		"--api-token-file", w.token)...)
	waitHealthy(t, listen, listenAddr)
	// The second worker is not told the count: it must keep what exists
	// (checked at the end), not shrink it to one copy.
	keep := slices.DeleteFunc(common("worker"), func(a string) bool { return a == "--nats-replicas" || a == "3" })
	workers := []*process{
		startProcess(t, append(common("worker"), "--workers", "2", "--http", "")...),
		startProcess(t, append(keep, "--workers", "2", "--http", "")...),
	}
	said := func() string {
		return fmt.Sprintf("listen said:\n%s\nworker 1 said:\n%s\nworker 2 said:\n%s", listen.out.String(), workers[0].out.String(), workers[1].out.String())
	}
	for _, s := range []string{prefix + "_EVENTS", prefix + "_TASKS", prefix + "_RESULTS", "KV_" + prefix + "_workflows"} {
		if info := streamInfo(t, js, s); info.Config.Replicas != 3 {
			t.Errorf("stream %s has %d replicas, want 3", s, info.Config.Replicas)
		}
	}

	t.Cleanup(func() {
		if t.Failed() || os.Getenv("COMPOSECI_TEST_LOG") != "" {
			t.Log(said())
		}
	})
	composes := []string{demoRawhide, demoBranched}
	progress := watchWorkflows(ctx, js, prefix, composes)
	for _, id := range composes {
		trigger(t, listenAddr, id)
	}
	// The kill comes once the pipeline is under way: both workflows
	// exist, and the records have been written a few times.
	testenv.WaitFor(t, 30*time.Second, "both workflows to be under way", func() error {
		for _, id := range composes {
			if _, ok := workflowOf(listenAddr, id); !ok {
				return fmt.Errorf("no workflow of %s yet\n%s", id, said())
			}
		}
		if n := progress.count(); n < 4 {
			return fmt.Errorf("%d writes seen", n)
		}
		return nil
	})
	if victim == "" {
		victim = streamInfo(t, js, "KV_"+prefix+"_workflows").Cluster.Leader
	}
	node := c.node(victim)
	if node == nil {
		t.Fatalf("no node %q", victim)
	}
	probe := probeWrites(ctx, t, js, prefix+"_PROBE", victim)
	testenv.WaitFor(t, 10*time.Second, "the probe to write", func() error {
		if probe.count() == 0 {
			return errors.New("no write yet")
		}
		return nil
	})
	meta, _ := node.metaLeader()
	bucketLeader := streamInfo(t, js, "KV_"+prefix+"_workflows").Cluster.Leader
	led := ledBy(t, js, prefix, victim)
	elected := newLeaderAt(ctx, js, "KV_"+prefix+"_workflows", victim)
	workersElected := newConsumerLeaderAt(ctx, js, prefix+"_TASKS", "workers", victim)
	node.kill(t)
	killedAt := time.Now()
	t.Logf("killed %s (JetStream meta leader: %s; it led %v) with SIGKILL", victim, meta, led)

	for _, id := range composes {
		testenv.WaitFor(t, 90*time.Second, id+" to be done", func() error {
			if wf, ok := workflowOf(listenAddr, id); !ok || wf.State != "done" {
				return fmt.Errorf("workflow %+v\n%s", wf, said())
			}
			return nil
		})
		checkReportServed(t, listenAddr, id)
		t.Logf("%s done %v after the kill", id, time.Since(killedAt).Round(time.Millisecond))
		if n := mailsAbout(w.mail, id); n != 1 {
			t.Errorf("%s mailed %d times, want once", id, n)
		}
	}
	checkEachProductPostedOnce(t, w.oq)

	// The watch reads every 50 ms, through a client that may itself have
	// been on the killed node: let it catch up with the last writes.
	testenv.WaitFor(t, 30*time.Second, "a workflow write after the kill to be seen", func() error {
		if _, after := progress.around(killedAt); after.IsZero() {
			return errors.New("not yet")
		}
		return nil
	})
	before, after := progress.around(killedAt)
	pause := after.Sub(before)
	if after.IsZero() || before.IsZero() {
		t.Fatalf("no workflow write seen on both sides of the kill (before %v, after %v)", before, after)
	}
	testenv.WaitFor(t, 30*time.Second, "the probe to write again after the kill", func() error {
		if _, pa := probe.around(killedAt); pa.IsZero() {
			return errors.New("not yet")
		}
		return nil
	})
	pb, pa := probe.around(killedAt)
	election := "it kept its leader"
	if bucketLeader == victim {
		testenv.WaitFor(t, 30*time.Second, "the workflows bucket's new leader", func() error {
			if elected().IsZero() {
				return errors.New("not seen yet")
			}
			return nil
		})
		election = fmt.Sprintf("its new leader was seen %v after the kill", elected().Sub(killedAt).Round(time.Millisecond))
	}
	if slices.Contains(led, prefix+"_TASKS/workers") {
		testenv.WaitFor(t, 30*time.Second, "the workers' consumer's new leader", func() error {
			if workersElected().IsZero() {
				return errors.New("not seen yet")
			}
			return nil
		})
		t.Logf("the workers' consumer, led by %s, had a new leader %v after the kill", victim, workersElected().Sub(killedAt).Round(time.Millisecond))
	}
	t.Logf("pipeline paused %v across the kill of %s (its first workflow write %v after the kill; the workflows bucket was led by %s, %s); "+
		"a probe stream led by %s took writes again %v after the kill (paused %v)",
		pause.Round(time.Millisecond), victim, after.Sub(killedAt).Round(time.Millisecond), bucketLeader, election,
		victim, pa.Sub(killedAt).Round(time.Millisecond), pa.Sub(pb).Round(time.Millisecond))
	if pause > failoverBound {
		t.Errorf("the pipeline stood still %v across the kill of a node, over %v", pause, failoverBound)
	}
	// Nor later, until both were done.
	if gap, began := progress.longest(killedAt); gap > failoverBound {
		t.Errorf("the pipeline stood still %v from %v after the kill, over %v", gap, began.Sub(killedAt), failoverBound)
	} else if gap > pause {
		t.Logf("a longer pause later: %v from %v after the kill", gap.Round(time.Millisecond), began.Sub(killedAt).Round(time.Millisecond))
	}

	// The node comes back on its store and catches up with every stream.
	node.start(t)
	testenv.WaitFor(t, 60*time.Second, victim+" to catch up", func() error {
		for _, s := range []string{prefix + "_EVENTS", prefix + "_TASKS", prefix + "_RESULTS", "KV_" + prefix + "_workflows",
			"KV_" + prefix + "_reportmeta", "OBJ_" + prefix + "_reports"} {
			info := streamInfo(t, js, s)
			if info.Cluster == nil {
				return fmt.Errorf("%s: no cluster info", s)
			}
			if info.Config.Replicas != 3 {
				return fmt.Errorf("stream %s has %d replicas, want 3", s, info.Config.Replicas)
			}
			found := info.Cluster.Leader == victim
			for _, p := range info.Cluster.Replicas {
				if p.Name == victim {
					found = true
					if !p.Current || p.Lag != 0 {
						return fmt.Errorf("%s on %s: current %v, lag %d", s, victim, p.Current, p.Lag)
					}
				}
			}
			if !found {
				return fmt.Errorf("%s: %s is not among its peers (leader %s, replicas %+v)", s, victim, info.Cluster.Leader, info.Cluster.Replicas)
			}
		}
		return nil
	})

	for _, p := range append(workers, listen) {
		p.stop(t)
	}
	return pause
}
