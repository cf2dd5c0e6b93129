package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/internal/fakefedora"
)

// doneWorld serves a tree and a Koji hub on a manual clock.
func doneWorld(t *testing.T) (root, hubURL string, mirror *fakefedora.Mirror, hub *fakefedora.KojiHub) {
	t.Helper()
	mirror = fakefedora.NewMirror()
	root = mirror.Start()
	t.Cleanup(mirror.Close)
	hub = fakefedora.NewKojiHub(fakefedora.KojiHubOptions{})
	hub.SetNow(time.Date(2026, 11, 22, 3, 10, 0, 0, time.UTC))
	hubURL = hub.Start()
	t.Cleanup(hub.Close)
	return
}

func TestDoneCommand(t *testing.T) {
	root, hubURL, mirror, hub := doneWorld(t)
	mirror.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261122.n.0", Status: "FINISHED"})
	mirror.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-44-20261122.n.0", Status: "STARTED"})
	mirror.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261121.n.0", Status: "DOOMED"})
	hub.AddNightlyImageTasks("Fedora-Rawhide-20261122.n.0", "20261122.n.0", "Rawhide", 6)
	hub.AddNightlyImageTasks("Fedora-44-20261122.n.0", "20261122.n.0", "44", 3)
	flags := []string{"--compose-root", root, "--koji", hubURL}

	tests := []struct {
		name     string
		args     []string
		advance  time.Duration
		code     int
		contains []string
	}{
		{"running", []string{"done", "Fedora-Rawhide-20261122.n.0"}, 0, 1, []string{"Fedora-Rawhide-20261122.n.0: running", "6 unfinished", "(1 Koji round trip)\n"}},
		{"done", []string{"done", "Fedora-Rawhide-20261122.n.0"}, time.Hour, 0, []string{": done", "all 6 Koji image tasks finished"}},
		{"branched still running", []string{"done", "Fedora-44-20261122.n.0"}, 0, 1, []string{"Pungi is still running"}},
		{"doomed", []string{"done", "Fedora-Rawhide-20261121.n.0"}, 0, 3, []string{": doomed", "STATUS is DOOMED"}},
		{"several: worst wins", []string{"done", "Fedora-Rawhide-20261122.n.0", "Fedora-Rawhide-20261121.n.0"}, 0, 3, nil},
		{"several: not done beats doomed", []string{"done", "Fedora-Rawhide-20261121.n.0", "Fedora-44-20261122.n.0"}, 0, 1, nil},
		{"pending", []string{"done", "Fedora-Rawhide-20261123.n.0"}, 0, 1, []string{": pending"}},
		// A stream names its newest compose, finished or not: Branched's
		// is still running (its latest link names none yet), Rawhide's
		// newest is the one finished above, past yesterday's DOOMED one.
		{"a stream: its newest compose", []string{"done", "branched:44"}, 0, 1, []string{"Fedora-44-20261122.n.0: running", "Pungi is still running"}},
		{"rawhide", []string{"done", "rawhide"}, 0, 0, []string{"Fedora-Rawhide-20261122.n.0: done"}},
		{"bad id", []string{"done", "nonsense"}, 0, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub.Advance(tt.advance)
			code, out, errOut := runCLI(t, nil, append(tt.args, flags...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			for _, c := range tt.contains {
				if !strings.Contains(out, c) {
					t.Errorf("output lacks %q:\n%s", c, out)
				}
			}
		})
	}

	// --json for scripts.
	_, out, _ := runCLI(t, nil, append([]string{"done", "Fedora-Rawhide-20261122.n.0", "--json"}, flags...)...)
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, k := range []string{"verdict", "reasons", "koji_round_trips", "tasks"} {
		if _, ok := v[k]; !ok {
			t.Errorf("done --json lacks %q: %s", k, out)
		}
	}
	if v["verdict"] != "done" || v["tasks"].(map[string]any)["closed"].(float64) != 6 {
		t.Errorf("done --json = %s", out)
	}
	_, out, _ = runCLI(t, nil, append([]string{"done", "Fedora-Rawhide-20261122.n.0", "Fedora-44-20261122.n.0", "--json"}, flags...)...)
	var many []map[string]any
	if err := json.Unmarshal([]byte(out), &many); err != nil || len(many) != 2 {
		t.Errorf("two composes --json: %v %s", err, out)
	}
}

// TestDoneWait polls two composes at once: Branched finishes quickly,
// Rawhide's tasks take longer; neither blocks the other, and --timeout ends
// a wait that never ends.
func TestDoneWait(t *testing.T) {
	root, hubURL, mirror, hub := doneWorld(t)
	mirror.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261122.n.0", Status: "STARTED"})
	mirror.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-44-20261122.n.0", Status: "FINISHED"})
	hub.AddNightlyImageTasks("Fedora-Rawhide-20261122.n.0", "20261122.n.0", "Rawhide", 3)
	hub.AddNightlyImageTasks("Fedora-44-20261122.n.0", "20261122.n.0", "44", 3)
	stop := make(chan struct{})
	go func() { // the world moves on: ten simulated minutes every 20 ms
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				hub.Advance(10 * time.Minute)
				if i == 10 {
					mirror.SetStatus("Fedora-Rawhide-20261122.n.0", "FINISHED")
				}
			}
		}
	}()
	defer close(stop)
	flags := []string{"--compose-root", root, "--koji", hubURL, "--koji-cache-ttl", "-1s"}
	code, out, errOut := runCLI(t, nil, append([]string{"done", "Fedora-Rawhide-20261122.n.0", "Fedora-44-20261122.n.0", "--wait", "--interval", "10ms", "--timeout", "30s"}, flags...)...)
	if code != 0 || strings.Count(out, ": done") != 2 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	// Not a terminal: one progress line per change, on stderr.
	if !strings.Contains(errOut, "Fedora-44-20261122.n.0: done") || !strings.Contains(errOut, "Fedora-Rawhide-20261122.n.0: running") {
		t.Errorf("progress lines:\n%s", errOut)
	}

	mirror.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261123.n.0", Status: "STARTED"})
	code, out, _ = runCLI(t, nil, append([]string{"done", "Fedora-Rawhide-20261123.n.0", "--wait", "--interval", "10ms", "--timeout", "100ms"}, flags...)...)
	if code != 1 || !strings.Contains(out, "Gave up waiting after 100ms") {
		t.Errorf("timeout: exit %d\n%s", code, out)
	}
}

// TestDoneWaitRoundTrips: after a wait, each compose's round trips are
// those of all its polls, counted apart while the composes share one Koji
// client: together, every request the hub had.
func TestDoneWaitRoundTrips(t *testing.T) {
	root, hubURL, mirror, hub := doneWorld(t)
	mirror.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261122.n.0", Status: "STARTED"})
	mirror.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-44-20261121.n.0", Status: "FINISHED"})
	hub.AddNightlyImageTasks("Fedora-Rawhide-20261122.n.0", "20261122.n.0", "Rawhide", 3)
	hub.AddNightlyImageTasks("Fedora-44-20261121.n.0", "20261121.n.0", "44", 3)
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				hub.Advance(10 * time.Minute)
				if i == 10 {
					mirror.SetStatus("Fedora-Rawhide-20261122.n.0", "FINISHED")
				}
			}
		}
	}()
	defer close(stop)
	flags := []string{"--compose-root", root, "--koji", hubURL, "--koji-cache-ttl", "-1s"}
	code, out, errOut := runCLI(t, nil, append([]string{"done", "Fedora-Rawhide-20261122.n.0", "Fedora-44-20261121.n.0",
		"--wait", "--interval", "10ms", "--timeout", "30s", "--json"}, flags...)...)
	var verdicts []struct {
		ID      string `json:"compose_id"`
		Verdict string `json:"verdict"`
		Trips   int64  `json:"koji_round_trips"`
	}
	if err := json.Unmarshal([]byte(out), &verdicts); err != nil || code != 0 || len(verdicts) != 2 {
		t.Fatalf("exit %d, %v\n%s\n%s", code, err, out, errOut)
	}
	if sum := verdicts[0].Trips + verdicts[1].Trips; sum != hub.Requests() {
		t.Errorf("koji_round_trips %d + %d, want the %d requests the hub had", verdicts[0].Trips, verdicts[1].Trips, hub.Requests())
	}
	if verdicts[0].Trips < 2 {
		t.Errorf("%s was polled until done, yet koji_round_trips = %d", verdicts[0].ID, verdicts[0].Trips)
	}
}

// TestDoneWaitRidesOutOutages: a --wait survives Koji and the compose tree
// failing for a while (each failed poll is five failed requests: the first
// and four retries, asked again at once by Retry-After: 0), says so once
// per outage and once when they answer again; a failure that will not pass
// ends it at once.
func TestDoneWaitRidesOutOutages(t *testing.T) {
	const id = "Fedora-Rawhide-20261122.n.0"
	tests := []struct {
		name   string
		fail   func(mirror *fakefedora.Mirror, hub *fakefedora.KojiHub)
		code   int
		stderr []string // each exactly once
		polls  int      // at least this many Koji requests
	}{
		{"Koji answers 503 for two polls", func(_ *fakefedora.Mirror, hub *fakefedora.KojiHub) { hub.FailHTTP(10, 503) }, 0,
			[]string{"composeci: Koji is not answering (", "HTTP 503", "); still waiting: polling again every 10ms until --timeout 30s\n",
				"composeci: Koji answers again, after "}, 11},
		{"the compose tree answers 503 for two polls", func(mirror *fakefedora.Mirror, _ *fakefedora.KojiHub) { mirror.FailHTTP(10, 503) }, 0,
			[]string{"composeci: the compose tree is not answering (GET ", "HTTP 503", "composeci: the compose tree answers again, after ", "(2 polls failed)"}, 1},
		{"a Koji fault ends the wait", func(_ *fakefedora.Mirror, hub *fakefedora.KojiHub) {
			hub.FaultNext(1, fakefedora.KojiFaultGeneric, "Invalid method")
		}, 2, []string{"koji fault 1000: Invalid method"}, 1},
		{"a wrong Koji URL (404) ends the wait", func(_ *fakefedora.Mirror, hub *fakefedora.KojiHub) { hub.FailHTTP(1, 404) }, 2,
			[]string{"HTTP 404"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, hubURL, mirror, hub := doneWorld(t)
			mirror.MustAddCompose(fakefedora.ComposeSpec{ID: id, Status: "FINISHED"})
			hub.AddNightlyImageTasks(id, "20261122.n.0", "Rawhide", 3)
			hub.Advance(time.Hour)
			hub.SetRetryAfter("0")
			mirror.SetRetryAfter("0")
			tt.fail(mirror, hub)
			code, out, errOut := runCLI(t, nil, "done", id, "--wait", "--interval", "10ms", "--timeout", "30s",
				"--compose-root", root, "--koji", hubURL, "--koji-cache-ttl", "-1s")
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tt.code, out, errOut)
			}
			for _, w := range tt.stderr {
				if n := strings.Count(errOut, w); n != 1 {
					t.Errorf("stderr has %q %d times, want once:\n%s", w, n, errOut)
				}
			}
			if n := hub.Requests(); n < int64(tt.polls) {
				t.Errorf("the hub had %d requests, want at least %d", n, tt.polls)
			}
			if tt.code == 0 && !strings.Contains(out, id+": done") {
				t.Errorf("stdout:\n%s", out)
			}
		})
	}

	// An outage that outlasts the --timeout: no verdict, an error naming
	// the compose and the last failure.
	root, hubURL, mirror, hub := doneWorld(t)
	mirror.MustAddCompose(fakefedora.ComposeSpec{ID: id, Status: "FINISHED"})
	hub.SetRetryAfter("0")
	hub.FailHTTP(1000000, 503)
	code, out, errOut := runCLI(t, nil, "done", id, "--wait", "--interval", "10ms", "--timeout", "300ms",
		"--compose-root", root, "--koji", hubURL)
	if code != 2 || !strings.Contains(errOut, id+": no verdict before the wait ended") || !strings.Contains(errOut, "HTTP 503") ||
		strings.Count(errOut, "is not answering") != 1 {
		t.Errorf("an outage past the timeout: exit %d\n%s\n%s", code, out, errOut)
	}
}
