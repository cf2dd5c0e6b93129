package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/checks/checkstest"
	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/testenv"
	"github.com/composeci/composeci/listener/event"
	"github.com/composeci/composeci/listener/workflow"
	"github.com/composeci/composeci/reports"
	"github.com/composeci/composeci/web"
)

// startEngine runs a real workflow engine on an embedded NATS server whose
// stages all advance at once: composes submitted to it end quickly, one
// result each.
func startEngine(t *testing.T) *workflow.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runner := workflow.StageRunnerFunc(func(_ context.Context, stage workflow.Stage, w workflow.Workflow) (workflow.Outcome, error) {
		return workflow.Outcome{Advance: true, Data: map[string]string{"counts": `{"tests":3,"passed":2,"failed":1,"new_failures":1}`}}, nil
	})
	eng, err := workflow.New(ctx, workflow.Options{Bus: workflow.BusOptions{DataDir: t.TempDir()}, Stages: []workflow.Stage{"discover", "check"},
		Runner: runner, Workers: 2, Dispatch: true, MinRetryDelay: time.Millisecond, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range eng.Parts() {
		wg.Go(func() { _ = p.Run(runCtx) })
	}
	t.Cleanup(func() {
		stop()
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = eng.Close(ctx)
	})
	return eng
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", url, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}

type feedPage struct {
	Composes []struct {
		Cursor    string `json:"cursor"`
		ComposeID string `json:"compose_id"`
		Release   string `json:"release"`
		State     string `json:"state"`
		Summary   *struct {
			NewFailures int `json:"new_failures"`
		} `json:"summary"`
	} `json:"composes"`
	Cursor string `json:"cursor"`
	More   bool   `json:"more"`
}

// TestComposesFeedFollowedWithACursor follows GET /api/v1/composes with a
// cursor, a page of three at a time, while composes keep ending on a real
// engine: every result arrives once, none missed, none twice, in order.
func TestComposesFeedFollowedWithACursor(t *testing.T) {
	eng := startEngine(t)
	srv := httptest.NewServer(web.NewHandler(web.Options{Workflows: eng}))
	defer srv.Close()

	var ids []string
	for day := 1; day <= 14; day++ {
		ids = append(ids, fmt.Sprintf("Fedora-Rawhide-202611%02d.n.0", day), fmt.Sprintf("Fedora-45-202611%02d.n.0", day))
	}
	submitted := make(chan struct{})
	go func() {
		defer close(submitted)
		for i, id := range ids {
			if err := eng.Submit(context.Background(), event.Event{Kind: event.KindComposeStatus, ComposeID: id, Source: event.SourceCLI}); err != nil {
				t.Error(err)
				return
			}
			if i%5 == 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	var got []string
	cursor, lastSeq := "0", 0
	testenv.WaitFor(t, 30*time.Second, "every result through the feed", func() error {
		for {
			var page feedPage
			if code := getJSON(t, srv.URL+"/api/v1/composes?after="+cursor+"&limit=3", &page); code != 200 {
				t.Fatalf("HTTP %d", code)
			}
			for _, c := range page.Composes {
				var seq int
				fmt.Sscan(c.Cursor, &seq)
				if seq <= lastSeq {
					t.Errorf("result %s came at cursor %d after %d", c.ComposeID, seq, lastSeq)
				}
				lastSeq = seq
				got = append(got, c.ComposeID)
			}
			cursor = page.Cursor
			if !page.More {
				break
			}
		}
		if len(got) < len(ids) {
			return fmt.Errorf("%d of %d results", len(got), len(ids))
		}
		return nil
	})
	<-submitted
	sorted := slices.Clone(got)
	slices.Sort(sorted)
	want := slices.Clone(ids)
	slices.Sort(want)
	if !slices.Equal(sorted, want) {
		t.Errorf("the feed gave %v\nwant each of %v once", got, want)
	}

	// Without a cursor: the newest, newest first; a stream filter; bad input.
	var newest feedPage
	getJSON(t, srv.URL+"/api/v1/composes?limit=4&stream=45", &newest)
	if len(newest.Composes) != 4 || newest.Composes[0].ComposeID != got[len(got)-1] && newest.Composes[0].Release != "45" {
		t.Errorf("newest Fedora 45 results: %+v", newest.Composes)
	}
	for _, c := range newest.Composes {
		if c.Release != "45" || c.State != "done" || c.Summary == nil || c.Summary.NewFailures != 1 {
			t.Errorf("a filtered result: %+v", c)
		}
	}
	for _, q := range []string{"limit=0", "limit=x", "limit=9999", "after=-1", "after=abc", "stream=..%2Fetc", "stream=Rawhide!"} {
		var e struct{ Error string }
		if code := getJSON(t, srv.URL+"/api/v1/composes?"+q, &e); code != http.StatusBadRequest || e.Error == "" {
			t.Errorf("?%s: HTTP %d %q, want 400 with an error", q, code, e.Error)
		}
	}
}

func TestWritesNeedTheToken(t *testing.T) {
	m := &memWorkflows{wfs: map[string]workflow.Workflow{}}
	for _, tc := range []struct {
		name, token, header string
		code                int
	}{
		{"no token configured: writes refused", "", "Bearer anything", http.StatusForbidden},
		{"no header", "s3cret", "", http.StatusUnauthorized},
		{"wrong token", "s3cret", "Bearer s3cre", http.StatusUnauthorized},
		{"not a bearer token", "s3cret", "Basic czNjcmV0", http.StatusUnauthorized},
		{"the token", "s3cret", "Bearer s3cret", http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(web.NewHandler(web.Options{Workflows: m, APIToken: tc.token}))
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/workflows/Fedora-Rawhide-20261122.n.0", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || !json.Valid(b) {
				t.Errorf("HTTP %d %s, want %d with JSON", resp.StatusCode, b, tc.code)
			}
			if tc.code == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tc.token == "s3cret" && strings.Contains(string(b), "s3cret") {
				t.Error("the answer shows the token")
			}
		})
	}
	if len(m.submitted) != 1 {
		t.Errorf("%d events submitted, want only the authorised one", len(m.submitted))
	}
}

func TestDoneAnswersFromTheWorkflowOrLive(t *testing.T) {
	done := "Fedora-Rawhide-20261122.n.0"
	doomed := "Fedora-Rawhide-20261122.n.1"
	waiting := "Fedora-Rawhide-20261123.n.0"
	m := &memWorkflows{wfs: map[string]workflow.Workflow{
		done: {ComposeID: done, State: workflow.StateActive, Stage: "schedule", Data: map[string]string{"status": "FINISHED",
			"koji_tasks": `{"total":9,"closed":9}`},
			History: []workflow.Transition{{Note: "discover done"}, {Note: "await-complete done: all 9 Koji image tasks finished (9 closed, 0 failed, 0 canceled)"}}},
		doomed: {ComposeID: doomed, State: workflow.StateDoomed, Data: map[string]string{"status": "DOOMED",
			"verdict_reasons": "STATUS is DOOMED: the compose ended without a result\nKoji image tasks: 2 failed"}},
		waiting: {ComposeID: waiting, State: workflow.StateActive, Stage: "await-complete"},
	}}
	var asked []string
	verdict := func(_ context.Context, id string) (fedfind.Completeness, error) {
		asked = append(asked, id)
		if id == "Fedora-Rawhide-20261124.n.0" {
			return fedfind.Completeness{}, errors.New("koji down")
		}
		return fedfind.Completeness{ComposeID: id, Verdict: fedfind.VerdictRunning, Reasons: []string{"3 unfinished"}, KojiChecked: true, KojiRoundTrips: 1}, nil
	}
	srv := httptest.NewServer(web.NewHandler(web.Options{Workflows: m, Verdict: verdict}))
	defer srv.Close()
	type answer struct {
		ComposeID   string   `json:"compose_id"`
		Verdict     string   `json:"verdict"`
		Status      string   `json:"status"`
		Reasons     []string `json:"reasons"`
		KojiChecked bool     `json:"koji_checked"`
		Tasks       struct {
			Total  int `json:"total"`
			Closed int `json:"closed"`
		} `json:"tasks"`
		AnsweredFrom string `json:"answered_from"`
	}
	for _, tc := range []struct {
		id, verdict, from, reason string
		code                      int
	}{
		{done, "done", "workflow", "all 9 Koji image tasks finished", 200},
		{doomed, "doomed", "workflow", "2 failed", 200},
		{waiting, "running", "live", "3 unfinished", 200},
		{"Fedora-Rawhide-20261125.n.0", "running", "live", "3 unfinished", 200},
		{"Fedora-Rawhide-20261124.n.0", "", "", "", 500},
	} {
		var a answer
		code := getJSON(t, srv.URL+"/api/v1/composes/"+tc.id+"/done", &a)
		if code != tc.code || a.Verdict != tc.verdict || a.AnsweredFrom != tc.from || !strings.Contains(strings.Join(a.Reasons, "; "), tc.reason) {
			t.Errorf("%s: HTTP %d %+v", tc.id, code, a)
		}
		// From the workflow, the counts are those of the verdict it
		// recorded, not zeros beside a reason that names nine tasks.
		if tc.id == done && (!a.KojiChecked || a.Tasks.Total != 9 || a.Tasks.Closed != 9 || len(a.Reasons) != 2 || a.Reasons[0] != "STATUS is FINISHED") {
			t.Errorf("%s: koji_checked %v, tasks %+v, reasons %q; want the recorded 9 closed, STATUS first", tc.id, a.KojiChecked, a.Tasks, a.Reasons)
		}
	}
	if !slices.Equal(asked, []string{waiting, "Fedora-Rawhide-20261125.n.0", "Fedora-Rawhide-20261124.n.0"}) {
		t.Errorf("Koji was asked about %v: only composes without a final verdict should be", asked)
	}
	var e struct{ Error string }
	if code := getJSON(t, srv.URL+"/api/v1/composes/..%2Fx/done", &e); code != 400 {
		t.Errorf("a bad ID: HTTP %d", code)
	}
}

// dashboardWorld is a report archive holding the example compose's report
// (a test name and a URL made hostile) and its workflow.
func dashboardWorld(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	dir := t.TempDir()
	in := checkstest.Example()
	in.Jobs[4].Test = `desktop_terminal<script>alert("x")</script>`
	in.Jobs[0].URL = `javascript:alert(1)`
	r := reports.Build(checks.Run(in), reports.Meta{Status: "FINISHED_INCOMPLETE", GeneratedAt: time.Now()})
	// The triage of the report: a confirmed new failure, a flaky one, a
	// known issue, an expired one, the re-run trail.
	confirmed := true
	r.OpenQA.NewFailures[0].Confirmed, r.OpenQA.NewFailures[0].RerunJobID = &confirmed, 2001
	r.OpenQA.NewFailures[0].RerunURL = checkstest.OpenQABase + "/tests/2001"
	r.OpenQA.Flaky = []reports.Job{{Test: "base_services_start", Flavor: "Server-dvd-iso", Arch: "x86_64", JobID: 1010, Result: "passed", RerunJobID: 2002}}
	r.OpenQA.KnownFailures = append(r.OpenQA.KnownFailures, reports.Job{Test: "install_arm_image", Arch: "aarch64", JobID: 1011, Result: "failed",
		KnownIssue: &reports.KnownIssueRef{ID: 7, Reason: "firmware hangs", Bug: "https://bugzilla.redhat.com/show_bug.cgi?id=7"}})
	r.OpenQA.ExpiredKnownIssues = []reports.KnownIssueRef{{ID: 3, Reason: "old kernel bug", Expires: time.Now().Add(-time.Hour)}}
	r.Reruns = []reports.Rerun{{At: time.Now(), By: "alice", Scope: "job", JobID: 1001, RerunJobID: 2001, Test: "install_default", Reason: "the mirror was down"}}
	// The source packages (one with markup for a name), and what the new
	// failures list of them.
	evr := func(s string) fedfind.EVR {
		e, err := fedfind.ParseEVR(s)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	r.Packages = &reports.Packages{Old: checkstest.ExamplePrevious, New: checkstest.ExampleCompose, SourceChanges: fedfind.SourceChanges{
		Added:   []fedfind.PackageRef{{Name: "newpkg", NEVR: fedfind.NEVR{Name: "newpkg", EVR: evr("0.1-1.fc44")}}},
		Removed: []fedfind.PackageRef{},
		Upgraded: []fedfind.PackageUpdate{{Name: `<script>alert("pkg")</script>`, From: evr("1-1"), To: evr("2-1")},
			{Name: "gnome-terminal", From: evr("3.54.0-1.fc44"), To: evr("3.56.0-1.fc44")}},
		Downgraded: []fedfind.PackageUpdate{}, Unchanged: 1200}}
	for i := range r.OpenQA.NewFailures {
		r.OpenQA.NewFailures[i].UpgradedPackages, r.OpenQA.NewFailures[i].UpgradedTree = []reports.UpgradedPackage{}, "Server/aarch64"
		if r.OpenQA.NewFailures[i].Flavor == "Workstation-live-iso" {
			r.OpenQA.NewFailures[i].UpgradedPackages = []reports.UpgradedPackage{
				{Name: "gnome-terminal", From: evr("3.54.0-1.fc44"), To: evr("3.56.0-1.fc44"), Matched: "test"},
				{Name: `<script>alert("pkg")</script>`, From: evr("1-1"), To: evr("2-1")}}
			r.OpenQA.NewFailures[i].UpgradedTree, r.OpenQA.NewFailures[i].UpgradedMore = "Workstation/x86_64", 7
		}
	}
	archive := reports.Archive{Dir: dir}
	if _, err := archive.Write(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	// The previous compose's report too: two composes make a chart.
	prev := checks.Input{Compose: in.Previous.Compose, Images: in.Previous.Images, Jobs: in.Previous.Jobs, Expected: in.Expected}
	if _, err := archive.Write(context.Background(), reports.Build(checks.Run(prev), reports.Meta{Status: "FINISHED", GeneratedAt: time.Now(),
		PackagesNote: "no previous compose to compare with"})); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	id := checkstest.ExampleCompose
	m := &memWorkflows{lastEvent: now, wfs: map[string]workflow.Workflow{
		id: {ComposeID: id, State: workflow.StateDone, Stage: "report", CreatedAt: now.Add(-3 * time.Hour), UpdatedAt: now,
			Data: map[string]string{"report": "rawhide/" + id, "finished_at": now.Add(-2 * time.Hour).Format(time.RFC3339Nano),
				"reported_at": now.Format(time.RFC3339Nano), "status": "FINISHED_INCOMPLETE"},
			History: []workflow.Transition{
				{At: now.Add(-3 * time.Hour), Stage: "discover", State: "active", Note: "started by a compose.status event from amqp"},
				{At: now.Add(-2 * time.Hour), Stage: "schedule", State: "active", Note: "await-complete done: all 9 Koji image tasks finished"},
				{At: now, Stage: "report", State: "done", Note: "report mailed to 1 recipient"},
			}},
		"Fedora-Rawhide-20261123.n.0": {ComposeID: "Fedora-Rawhide-20261123.n.0", State: workflow.StateActive, Stage: "await-complete",
			Note: "running: Koji image tasks: 3 unfinished", CreatedAt: now, UpdatedAt: now},
	}}
	srv := httptest.NewServer(web.NewHandler(web.Options{Workflows: m, ReportsDir: dir, Streams: []string{"rawhide", "branched"},
		Overview: func(v, b string) string {
			return "https://openqa.example.org/tests/overview?version=" + v + "&build=" + b
		}}))
	t.Cleanup(srv.Close)
	return srv, id
}

func TestDashboardPages(t *testing.T) {
	srv, id := dashboardWorld(t)
	get := func(path string) (int, string, http.Header) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	for _, tc := range []struct {
		path  string
		code  int
		wants []string
	}{
		{"/", 200, []string{"Fedora Rawhide", `href="/streams/rawhide"`, "In flight (1)", `href="/composes/Fedora-Rawhide-20261123.n.0"`, "running: Koji image tasks: 3 unfinished"}},
		{"/streams/rawhide", 200, []string{"<svg", id, "2h 00m", `href="/reports/rawhide/` + id + `/report.html"`}},
		{"/composes/" + id, 200, []string{"Timeline", "New failures (", "desktop_terminal&lt;script&gt;", `href="` + checkstest.OpenQABase + `/tests/1005"`, "#1001",
			`href="https://openqa.example.org/tests/overview?version=Rawhide&amp;build=` + id + `"`, "Missing expected images (2)", "<tr><td>x86_64</td><td>kde-live-iso</td></tr>", `href="/composes/` + checkstest.ExamplePrevious + `"`,
			"confirmed: failed again when re-run", `<a href="` + checkstest.OpenQABase + `/tests/2001">#2001</a>`, "Flaky (1)", "base_services_start",
			"known issue #7: firmware hangs", `href="https://bugzilla.redhat.com/show_bug.cgi?id=7"`, "Expired known issues (1)", "old kernel bug",
			"Re-runs (1)", "alice", "the mirror was down",
			`Source packages against <span class="id">` + checkstest.ExamplePrevious + `</span>`, "<p>1 added, 0 removed, 2 upgraded, 0 downgraded, 1200 unchanged.</p>",
			`<tr><td>added</td><td class="id">newpkg</td><td class="id"></td><td class="id">0.1-1.fc44</td></tr>`,
			`<tr><td>upgraded</td><td class="id">gnome-terminal</td><td class="id">3.54.0-1.fc44</td><td class="id">3.56.0-1.fc44</td></tr>`,
			`&lt;script&gt;alert(&#34;pkg&#34;)&lt;/script&gt;`,
			`<div class="note upgraded">upgraded in Workstation/x86_64: gnome-terminal, &lt;script&gt;alert(&#34;pkg&#34;)&lt;/script&gt; and 7 more</div>`,
			`<div class="note upgraded">no package upgraded in Server/aarch64</div>`}},
		{"/composes/" + checkstest.ExamplePrevious, 200, []string{`<h2 id="packages">Source packages</h2>`, "<p>Not compared: no previous compose to compare with.</p>"}},
		{"/composes/Fedora-Rawhide-20261123.n.0", 200, []string{`http-equiv="refresh"`, "not done yet", "No report yet"}},
		{"/composes/Fedora-Rawhide-20200101.n.0", 404, nil},
		{"/composes/not-a-compose", 400, nil},
		{"/streams/Rawhide!", 400, nil},
		{"/streams/44", 404, nil},
		{"/assets/style.css", 200, []string{"--fg"}},
		{"/assets/../api.go", 404, nil},
	} {
		code, body, hdr := get(tc.path)
		if code != tc.code {
			t.Errorf("GET %s: HTTP %d, want %d", tc.path, code, tc.code)
			continue
		}
		for _, w := range tc.wants {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %q", tc.path, w)
			}
		}
		if strings.Contains(body, "<script") || strings.Contains(body, "javascript:") && strings.Contains(body, `href="javascript:`) {
			t.Errorf("GET %s carries a script or a javascript: link", tc.path)
		}
		if code == 200 && strings.HasPrefix(hdr.Get("Content-Type"), "text/html") && !strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("GET %s without a CSP", tc.path)
		}
	}
	var streams []struct {
		Release  string   `json:"release"`
		Watched  bool     `json:"watched"`
		InFlight []string `json:"in_flight"`
		Latest   struct {
			ComposeID string `json:"compose_id"`
		} `json:"latest"`
	}
	if code := getJSON(t, srv.URL+"/api/v1/streams", &streams); code != 200 || len(streams) != 1 || streams[0].Release != "rawhide" ||
		!streams[0].Watched || streams[0].Latest.ComposeID != "Fedora-Rawhide-20261123.n.0" || len(streams[0].InFlight) != 1 {
		t.Errorf("GET /api/v1/streams: %d %+v", code, streams)
	}
	var detail struct {
		Report struct {
			NewFailures []struct {
				Test string `json:"test"`
			} `json:"new_failures"`
		} `json:"report"`
		Links map[string]string `json:"links"`
	}
	if code := getJSON(t, srv.URL+"/api/v1/composes/"+id, &detail); code != 200 || len(detail.Report.NewFailures) == 0 || detail.Links["report_html"] == "" {
		t.Errorf("GET /api/v1/composes/%s: %d %+v", id, code, detail)
	}
}
