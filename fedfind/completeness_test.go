package fedfind_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/fedfind/koji"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/httpclient"
)

// kojiWorld is a simulated tree plus a Koji hub whose clock the test moves.
type kojiWorld struct {
	mirror *fakefedora.Mirror
	hub    *fakefedora.KojiHub
	ff     *fedfind.Client
	kc     *koji.Client
}

var day = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

func newKojiWorld(t *testing.T) *kojiWorld {
	t.Helper()
	return newKojiWorldAt(t, func() time.Time { return day.Add(72 * time.Hour) })
}

// newKojiWorldAt is newKojiWorld with the Koji client on clock now.
func newKojiWorldAt(t *testing.T, now func() time.Time) *kojiWorld {
	t.Helper()
	w := &kojiWorld{mirror: fakefedora.NewMirror(), hub: fakefedora.NewKojiHub(fakefedora.KojiHubOptions{})}
	// Nightly tasks are created a minute apart from 03:00; by 03:10 ten exist.
	w.hub.SetNow(day.Add(3*time.Hour + 10*time.Minute))
	root := w.mirror.Start()
	t.Cleanup(w.mirror.Close)
	hubURL := w.hub.Start()
	t.Cleanup(w.hub.Close)
	var err error
	if w.ff, err = fedfind.NewClient(fedfind.ClientOptions{Root: root}); err != nil {
		t.Fatal(err)
	}
	fast := httpclient.New(httpclient.Options{RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond})
	// By default the client's clock stands three days after the compose,
	// so a creation window that ended is known to be closed.
	if w.kc, err = koji.New(koji.Options{URL: hubURL, HTTP: fast, Now: now}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *kojiWorld) verdict(t *testing.T, id string, opts fedfind.CompletenessOptions) fedfind.Completeness {
	t.Helper()
	cm, err := w.ff.Resolve(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Koji == nil {
		opts.Koji = w.kc
	}
	c, err := w.ff.Completeness(context.Background(), cm, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCompletenessVerdicts(t *testing.T) {
	const rawhide, branched = "Fedora-Rawhide-20261122.n.0", "Fedora-44-20261122.n.0"
	tests := []struct {
		name     string
		status   string // "" : compose directory without STATUS; "-": no compose at all
		schedule []fakefedora.KojiStateChange
		tasks    int
		advance  time.Duration
		verdict  fedfind.Verdict
		reason   string
		open     int
		koji     bool
	}{
		{"not in the tree", "-", nil, 0, 0, fedfind.VerdictPending, "no STATUS", 0, false},
		{"no STATUS yet", "", nil, 0, 0, fedfind.VerdictPending, "no STATUS", 0, false},
		{"started, tasks open", "STARTED", nil, 6, 0, fedfind.VerdictRunning, "Pungi is still running", 6, true},
		{"finished, tasks still open", "FINISHED", nil, 6, 0, fedfind.VerdictRunning, "6 unfinished (0 free, 6 open, 0 assigned)", 6, true},
		{"finished, tasks still free", "FINISHED", fakefedora.KojiRunSchedule(time.Hour, time.Hour, fakefedora.KojiClosed), 3, 0, fedfind.VerdictRunning, "3 unfinished (3 free", 0, true},
		{"finished, no task in Koji", "FINISHED", nil, 0, 0, fedfind.VerdictRunning, "no image task with release 20261122.n.0 and version Rawhide", 0, true},
		{"finished, all closed", "FINISHED", nil, 6, time.Hour, fedfind.VerdictDone, "all 6 Koji image tasks finished (6 closed", 0, true},
		{"incomplete, some failed", "FINISHED_INCOMPLETE", fakefedora.KojiRunSchedule(time.Minute, time.Minute, fakefedora.KojiFailed), 4, time.Hour, fedfind.VerdictDone, "0 closed, 4 failed", 0, true},
		{"started, tasks all closed", "STARTED", nil, 6, time.Hour, fedfind.VerdictRunning, "Pungi is not done", 0, true},
		{"doomed: Koji asked for the evidence", "DOOMED", fakefedora.KojiRunSchedule(time.Minute, time.Minute, fakefedora.KojiFailed), 6, time.Hour, fedfind.VerdictDoomed,
			"STATUS is DOOMED: the compose ended without a result; Koji image tasks: 0 closed, 6 failed, 0 canceled, 0 unfinished (failed tasks: ", 0, true},
		{"terminated, tasks still open", "TERMINATED", nil, 6, 0, fedfind.VerdictDoomed, "STATUS is TERMINATED: the compose ended without a result; Koji image tasks: 0 closed, 0 failed, 0 canceled, 6 unfinished", 6, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newKojiWorld(t)
			if tt.status != "-" {
				w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: rawhide, Status: tt.status})
			}
			if tt.tasks > 0 {
				w.hub.AddNightlyImageTasks(rawhide, "20261122.n.0", "Rawhide", tt.tasks, tt.schedule...)
			}
			// Branched of the same day shares the release string, and its
			// tasks never finish: they must not count for Rawhide.
			w.hub.AddNightlyImageTasks(branched, "20261122.n.0", "44", 2, fakefedora.KojiStateChange{State: fakefedora.KojiOpen})
			w.hub.Advance(tt.advance)
			c := w.verdict(t, rawhide, fedfind.CompletenessOptions{})
			if c.Verdict != tt.verdict || c.Tasks.Open != tt.open || c.KojiChecked != tt.koji {
				t.Errorf("verdict %s open %d koji %v, want %s %d %v; reasons %q", c.Verdict, c.Tasks.Open, c.KojiChecked, tt.verdict, tt.open, tt.koji, c.Reasons)
			}
			if !strings.Contains(strings.Join(c.Reasons, "; "), tt.reason) {
				t.Errorf("reasons %q lack %q", c.Reasons, tt.reason)
			}
			if tt.koji && c.KojiRoundTrips != 1 {
				t.Errorf("a cold verdict cost %d Koji round trips, want 1", c.KojiRoundTrips)
			}
			if !tt.koji && w.hub.Requests() != 0 {
				t.Errorf("Koji was asked %d times for a verdict that needs no Koji", w.hub.Requests())
			}
		})
	}
}

func TestCompletenessBranchedAndRawhideApart(t *testing.T) {
	w := newKojiWorld(t)
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261122.n.0", Status: "FINISHED"})
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-44-20261122.n.0", Status: "FINISHED"})
	w.hub.AddNightlyImageTasks("Fedora-Rawhide-20261122.n.0", "20261122.n.0", "Rawhide", 6)
	w.hub.AddNightlyImageTasks("Fedora-44-20261122.n.0", "20261122.n.0", "44", 4, fakefedora.KojiRunSchedule(time.Minute, 5*time.Hour, fakefedora.KojiClosed)...)
	w.hub.Advance(2 * time.Hour)
	r := w.verdict(t, "Fedora-Rawhide-20261122.n.0", fedfind.CompletenessOptions{})
	b := w.verdict(t, "Fedora-44-20261122.n.0", fedfind.CompletenessOptions{})
	if r.Verdict != fedfind.VerdictDone || r.Tasks.Total != 6 || b.Verdict != fedfind.VerdictRunning || b.Tasks.Open != 4 {
		t.Errorf("rawhide %s %+v; branched %s %+v", r.Verdict, r.Tasks, b.Verdict, b.Tasks)
	}
	// Each cold verdict is one round trip; Branched's tasks are still open,
	// so the cached answer Rawhide's verdict left cannot stand for them.
	if r.KojiRoundTrips != 1 || b.KojiRoundTrips != 1 {
		t.Errorf("verdicts cost %d and %d round trips, want 1 each", r.KojiRoundTrips, b.KojiRoundTrips)
	}
}

func TestCompletenessUpdatesByStatusAlone(t *testing.T) {
	w := newKojiWorld(t)
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-43-updates-20261122.0", Status: "FINISHED", Images: []fakefedora.ImageSpec{}})
	c := w.verdict(t, "Fedora-43-updates-20261122.0", fedfind.CompletenessOptions{})
	if c.Verdict != fedfind.VerdictDone || c.KojiChecked || w.hub.Requests() != 0 {
		t.Errorf("%+v, %d Koji requests", c, w.hub.Requests())
	}
}

func TestCompletenessCache(t *testing.T) {
	w := newKojiWorld(t)
	id := "Fedora-Rawhide-20261122.n.0"
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: id, Status: "FINISHED"})
	w.hub.AddNightlyImageTasks(id, "20261122.n.0", "Rawhide", 9)
	w.hub.Advance(5 * time.Minute)
	if c := w.verdict(t, id, fedfind.CompletenessOptions{}); c.Verdict != fedfind.VerdictRunning || c.KojiRoundTrips != 1 {
		t.Fatalf("first: %s, %d round trips", c.Verdict, c.KojiRoundTrips)
	} else {
		t.Logf("cold verdict, tasks open: %s, %d Koji round trip", c.Verdict, c.KojiRoundTrips)
	}
	// Tasks were open: a cached answer must not hide that they finished.
	w.hub.Advance(time.Hour)
	c := w.verdict(t, id, fedfind.CompletenessOptions{})
	if c.Verdict != fedfind.VerdictDone || c.KojiRoundTrips != 1 {
		t.Fatalf("after the tasks finished: %s, %d round trips", c.Verdict, c.KojiRoundTrips)
	}
	t.Logf("again once the tasks finished: %s, %d Koji round trip", c.Verdict, c.KojiRoundTrips)
	// Now every task is finished: the same question, and a narrower one
	// (fewer methods, one owner), cost no round trip.
	rules := fedfind.DefaultCompletenessRules()
	rules.Methods = []string{"kiwiBuild", "livemedia"}
	owner, err := w.kc.GetUser(context.Background(), fakefedora.KojiNightlyOwner)
	if err != nil {
		t.Fatal(err)
	}
	before := w.hub.Requests()
	for _, opts := range []fedfind.CompletenessOptions{{}, {Rules: rules}, {Rules: rules, OwnerID: owner.ID}} {
		c := w.verdict(t, id, opts)
		if c.Verdict != fedfind.VerdictDone || c.KojiRoundTrips != 0 {
			t.Errorf("cached verdict %+v: %s, %d round trips", opts.Rules.Methods, c.Verdict, c.KojiRoundTrips)
		}
		t.Logf("cached verdict (methods %v, owner %d): %s, %d Koji round trips", opts.Rules.Methods, opts.OwnerID, c.Verdict, c.KojiRoundTrips)
	}
	if w.hub.Requests() != before {
		t.Errorf("the hub saw %d more requests", w.hub.Requests()-before)
	}
}

func TestCompletenessRulesFile(t *testing.T) {
	r := fedfind.DefaultCompletenessRules()
	if !r.NeedsKoji(fedfind.StreamRawhide) || r.NeedsKoji(fedfind.StreamUpdates) || len(r.Methods) != 5 || r.WindowAfter.Hours() != 48 {
		t.Errorf("defaults %+v", r)
	}
	for _, doc := range []string{
		`methods = []`,
		"methods = [\"image\"]\nwindow-after = \"0s\"",
		"methods = [\"image\"]\nwindow-after = \"1h\"\n[streams]\nnosuch = { koji = true }",
		"methods = [\"image\"]\nwindow-after = \"1h\"\nbogus = 1",
		"methods = [\"image\"]\nwindow-after = \"soon\"",
	} {
		if _, err := fedfind.ParseCompletenessRules(strings.NewReader(doc), "c.toml"); err == nil {
			t.Errorf("accepted %q", doc)
		}
	}
}

// TestCompletenessCacheWindowOpen is the production case: the verdicts come
// on the compose's own day, while the creation window is open. Until STATUS
// is final every verdict asks Koji; after it, an answer fetched since whose
// tasks all finished answers repeated and narrower questions.
func TestCompletenessCacheWindowOpen(t *testing.T) {
	var w *kojiWorld
	w = newKojiWorldAt(t, func() time.Time { return w.hub.Now() })
	id := "Fedora-Rawhide-20261122.n.0"
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: id, Status: "STARTED"})
	ids := w.hub.AddNightlyImageTasks(id, "20261122.n.0", "Rawhide", 3, fakefedora.KojiRunSchedule(0, time.Second, fakefedora.KojiClosed)...)
	w.hub.SetNow(day.Add(3*time.Hour + 90*time.Second)) // two tasks exist, both closed
	w.hub.SetTaskSchedule(ids[2], fakefedora.KojiRunSchedule(0, 2*time.Hour, fakefedora.KojiClosed)...)
	if c := w.verdict(t, id, fedfind.CompletenessOptions{}); c.Verdict != fedfind.VerdictRunning || c.Tasks.Total != 2 || c.KojiRoundTrips != 1 {
		t.Fatalf("while Pungi runs: %s %+v, %d round trips", c.Verdict, c.Tasks, c.KojiRoundTrips)
	}
	// The third task was created after that answer and is still open when
	// STATUS turns final: the cached answer (two closed tasks) must not
	// make the compose look done.
	w.hub.Advance(10 * time.Minute)
	w.mirror.SetStatus(id, "FINISHED")
	if c := w.verdict(t, id, fedfind.CompletenessOptions{}); c.Verdict != fedfind.VerdictRunning || c.Tasks.Open != 1 || c.KojiRoundTrips != 1 {
		t.Fatalf("STATUS final, a task open: %s %+v, %d round trips", c.Verdict, c.Tasks, c.KojiRoundTrips)
	}
	w.hub.Advance(3 * time.Hour)
	if c := w.verdict(t, id, fedfind.CompletenessOptions{}); c.Verdict != fedfind.VerdictDone || c.KojiRoundTrips != 1 {
		t.Fatalf("all finished: %s, %d round trips", c.Verdict, c.KojiRoundTrips)
	}
	rules := fedfind.DefaultCompletenessRules()
	rules.Methods = []string{"kiwiBuild", "osbuildImage"}
	for _, opts := range []fedfind.CompletenessOptions{{}, {Rules: rules}} {
		if c := w.verdict(t, id, opts); c.Verdict != fedfind.VerdictDone || c.KojiRoundTrips != 0 {
			t.Errorf("again (methods %v): %s, %d round trips, want 0", opts.Rules.Methods, c.Verdict, c.KojiRoundTrips)
		}
	}
}

// TestCompletenessCandidate: a labelled production compose's image tasks
// carry the label's version as release ("1.2") and "<version>_<milestone>"
// as version; the label comes from composeinfo.json.
func TestCompletenessCandidate(t *testing.T) {
	w := newKojiWorld(t)
	id := "Fedora-44-20261122.0"
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: id, Status: "FINISHED", Label: "Beta-1.2"})
	w.hub.AddNightlyImageTasks(id, "1.2", "44_Beta", 4)
	w.hub.AddNightlyImageTasks("Fedora-44-20261122.n.0", "20261122.n.0", "44", 2, fakefedora.KojiStateChange{State: fakefedora.KojiOpen})
	w.hub.Advance(time.Hour)
	c := w.verdict(t, id, fedfind.CompletenessOptions{})
	if c.Verdict != fedfind.VerdictDone || c.Tasks.Total != 4 {
		t.Errorf("candidate: %s %+v %q", c.Verdict, c.Tasks, c.Reasons)
	}
	// An RC keeps the plain version.
	id = "Fedora-44-20261122.1"
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: id, Status: "FINISHED", Label: "RC-1.3"})
	w.hub.AddNightlyImageTasks(id, "1.3", "44", 2)
	w.hub.Advance(time.Hour)
	if c := w.verdict(t, id, fedfind.CompletenessOptions{}); c.Verdict != fedfind.VerdictDone || c.Tasks.Total != 2 {
		t.Errorf("RC: %s %+v %q", c.Verdict, c.Tasks, c.Reasons)
	}
}

// TestCompletenessDoomedWithoutKoji: a doomed compose is doomed whether or
// not Koji answers; an unreachable hub only costs the evidence.
func TestCompletenessDoomedWithoutKoji(t *testing.T) {
	w := newKojiWorld(t)
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261122.n.0", Status: "DOOMED"})
	w.hub.Close()
	c := w.verdict(t, "Fedora-Rawhide-20261122.n.0", fedfind.CompletenessOptions{})
	if c.Verdict != fedfind.VerdictDoomed || c.KojiChecked {
		t.Errorf("verdict %s, Koji checked %v; want doomed without Koji", c.Verdict, c.KojiChecked)
	}
	if got := strings.Join(c.Reasons, "; "); !strings.Contains(got, "Koji could not be asked") {
		t.Errorf("reasons %q do not say Koji was unreachable", got)
	}
}

// TestDefaultsAreCopies: the embedded completeness rules and expected
// images are parsed once, on first use, and every caller gets a copy of
// its own, which it may change without changing what the next caller gets.
func TestDefaultsAreCopies(t *testing.T) {
	tests := []struct {
		name   string
		get    func() any
		change func()
	}{
		{"completeness rules", func() any { return fedfind.DefaultCompletenessRules() }, func() {
			r := fedfind.DefaultCompletenessRules()
			r.Methods[0] = "changed"
			r.Streams[fedfind.StreamRawhide] = r.Streams[fedfind.StreamELN]
			r.Streams["changed"] = r.Streams[fedfind.StreamRawhide]
		}},
		{"expected images", func() any { return fedfind.DefaultExpectedImages() }, func() {
			e := fedfind.DefaultExpectedImages()
			e[fedfind.StreamRawhide][0].Arch = "changed"
			e[fedfind.StreamBranched] = nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, err := json.Marshal(tc.get())
			if err != nil {
				t.Fatal(err)
			}
			tc.change()
			after, err := json.Marshal(tc.get())
			if err != nil {
				t.Fatal(err)
			}
			if string(after) != string(before) {
				t.Errorf("changing a copy changed the defaults:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}
