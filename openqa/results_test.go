package openqa_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/openqa"
)

func scheduleRawhide(t *testing.T, c *openqa.Client) {
	t.Helper()
	mustSchedule(t, c, rawhideCompose())
}

func TestJobsPagesThroughEverything(t *testing.T) {
	tests := []struct {
		name      string
		pageSize  int
		wantPages int
	}{
		{"pages of 4 over 21 jobs", 4, 6},
		{"pages of 7 divide 21 exactly", 7, 3},
		{"one page", 1000, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t, fakefedora.OpenQAOptions{})
			c := newClient(t, srv, func(o *openqa.Options) { o.PageSize = tt.pageSize })
			scheduleRawhide(t, c)
			before := srv.Requests("GET", "/api/v1/jobs")
			jobs, err := c.BuildJobs(context.Background(), rawhideID)
			if err != nil {
				t.Fatal(err)
			}
			if got := srv.Requests("GET", "/api/v1/jobs") - before; got != tt.wantPages {
				t.Errorf("%d requests, want %d", got, tt.wantPages)
			}
			if len(jobs) != 21 {
				t.Fatalf("%d jobs, want 21", len(jobs))
			}
			for i, j := range jobs {
				if j.ID != int64(i+1) {
					t.Fatalf("jobs[%d].ID = %d: want every job once, by id (pages are sorted as strings)", i, j.ID)
				}
				if j.URL != srv.URL()+"/tests/"+strconv.FormatInt(j.ID, 10) {
					t.Errorf("URL %s", j.URL)
				}
			}
		})
	}
}

// TestJobsWithoutLinkHeaders covers servers that page but send no Link
// header: the client keeps asking while pages come back full.
func TestJobsWithoutLinkHeaders(t *testing.T) {
	total := 25
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		var jobs []map[string]any
		for id := total - offset; id > 0 && id > total-offset-limit; id-- {
			jobs = append(jobs, map[string]any{"id": id, "state": "done", "result": "passed", "settings": map[string]string{"BUILD": "b"}})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"jobs": jobs})
	}))
	defer srv.Close()
	c, err := openqa.New(openqa.Options{BaseURL: srv.URL, PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := c.BuildJobs(context.Background(), "b")
	if err != nil || len(jobs) != total {
		t.Fatalf("%d jobs, %v", len(jobs), err)
	}
}

func TestResultsFollowClones(t *testing.T) {
	ctx := context.Background()
	srv := newFake(t, fakefedora.OpenQAOptions{})
	c := newClient(t, srv, func(o *openqa.Options) { o.PageSize = 5 })
	scheduleRawhide(t, c)
	// The rule set last wins: general rules first.
	srv.SetOutcome(rawhideID, "", "", "desktop_terminal", "softfailed")
	srv.SetOutcome(rawhideID, "Server-dvd-iso", "x86_64", "install_default_upload", "incomplete", "passed")
	srv.SetOutcome(rawhideID, "KDE-live-iso", "", "desktop_terminal", "incomplete", "incomplete", "failed")
	srv.SetOutcome(rawhideID, "universal", "", "install_asian_language", "failed", "passed")
	srv.Settle()
	// A person restarts the failed universal job.
	var failed int64
	for _, j := range srv.Jobs() {
		if j.Test == "install_asian_language" {
			failed = j.ID
		}
	}
	clone, err := srv.Restart(failed)
	if err != nil {
		t.Fatal(err)
	}
	srv.Settle()

	r, err := c.Results(ctx, rawhideID)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Jobs) != 21 || r.Superseded != 4 {
		t.Errorf("%d current jobs, %d superseded; want 21 and 4 (1 + 2 auto-clones, 1 restart)", len(r.Jobs), r.Superseded)
	}
	got := map[string]openqa.Job{}
	for _, j := range r.Jobs {
		if j.CloneID != 0 {
			t.Errorf("job %d has clone %d: not followed", j.ID, j.CloneID)
		}
		got[j.Flavor()+" "+j.Test] = j
	}
	for _, tt := range []struct {
		key, result string
		clone       bool
	}{
		{"Server-dvd-iso install_default_upload", "passed", true},
		{"KDE-live-iso desktop_terminal", "failed", true},
		{"Workstation-live-iso desktop_terminal", "softfailed", false},
		{"universal install_asian_language", "passed", true},
	} {
		if j := got[tt.key]; j.Result != tt.result || (j.OriginID != 0) != tt.clone {
			t.Errorf("%s: result %s origin %d, want %s (a clone: %v)", tt.key, j.Result, j.OriginID, tt.result, tt.clone)
		}
	}
	if got["universal install_asian_language"].ID != clone {
		t.Errorf("restart clone %d not chosen", clone)
	}
	want := openqa.Summary{Total: 21, ByResult: map[string]int{"passed": 19, "softfailed": 1, "failed": 1}, OK: 20, NotOK: 1, AllFinal: true}
	if fmt.Sprint(r.Summary) != fmt.Sprint(want) {
		t.Errorf("summary %+v, want %+v", r.Summary, want)
	}
	if r.Version != "Rawhide" || r.OverviewURL != srv.URL()+"/tests/overview?distri=fedora&version=Rawhide&build="+rawhideID {
		t.Errorf("version %q overview %q", r.Version, r.OverviewURL)
	}
}

func TestResultsAfterForcedRepostShowTheNewSet(t *testing.T) {
	srv := newFake(t, fakefedora.OpenQAOptions{})
	c := newClient(t, srv, nil)
	scheduleRawhide(t, c)
	srv.Advance() // first set running
	if _, err := c.Schedule(context.Background(), rawhideCompose(), openqa.ScheduleOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	r, err := c.Results(context.Background(), rawhideID)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Jobs) != 21 || r.Summary.Pending != 21 || r.Superseded != 21 {
		t.Errorf("%d jobs, %d pending, %d superseded", len(r.Jobs), r.Summary.Pending, r.Superseded)
	}
	for _, j := range r.Jobs {
		if j.ID <= 21 {
			t.Errorf("job %d of the obsoleted set reported", j.ID)
		}
	}
}

// TestResultsFetchAClonePagingMissed restarts a job while the pages are
// read, so its clone is in no page; Results must fetch it.
func TestResultsFetchAClonePagingMissed(t *testing.T) {
	srv := newFake(t, fakefedora.OpenQAOptions{})
	setup := newClient(t, srv, nil)
	scheduleRawhide(t, setup)
	srv.Settle()
	target, _ := url.Parse(srv.URL())
	var pages atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxy.ServeHTTP(w, r)
		if r.URL.Path == "/api/v1/jobs" && pages.Add(1) == 1 {
			// Job 1 is on the last page of newest-first paging; restart
			// it after the first page, twice, so the chain is 1 → 22 → 23.
			c1, _ := srv.Restart(1)
			srv.Settle()
			if _, err := srv.Restart(c1); err != nil {
				t.Error(err)
			}
			srv.Settle()
		}
	}))
	defer front.Close()
	c, err := openqa.New(openqa.Options{BaseURL: front.URL, PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Results(context.Background(), rawhideID)
	if err != nil {
		t.Fatal(err)
	}
	ids := []int64{}
	for _, j := range r.Jobs {
		ids = append(ids, j.ID)
	}
	if slices.Contains(ids, 1) || !slices.Contains(ids, 23) || len(ids) != 21 {
		t.Errorf("current jobs %v: want job 1 followed to 23", ids)
	}
	if srv.Requests("GET", "/api/v1/jobs/22") != 1 {
		t.Errorf("the missing clone was not fetched with follow")
	}
}

func TestWaitOutlastsTheAutoCloneRace(t *testing.T) {
	srv := newFake(t, fakefedora.OpenQAOptions{DelayedAutoClone: true})
	c := newClient(t, srv, nil)
	scheduleRawhide(t, c)
	srv.SetOutcome("", "", "", "cloud_autocloud", "incomplete", "passed")
	polls := 0
	sawFalseFinish := false
	r, err := c.Wait(context.Background(), rawhideID, openqa.WaitOptions{
		Interval: time.Millisecond,
		Grace:    50 * time.Millisecond,
		Progress: func(r *openqa.Results) {
			polls++
			if r.Summary.AllFinal {
				// The build looks done: the clone is due but not there yet.
				sawFalseFinish = true
			}
			srv.Advance()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sawFalseFinish {
		t.Error("the test did not reproduce a build that looks finished before its auto-clone appears")
	}
	for _, j := range r.Jobs {
		if j.Test == "cloud_autocloud" && (j.Result != "passed" || j.OriginID == 0) {
			t.Errorf("Wait returned the incomplete run: %+v", j)
		}
	}
	if !r.Summary.AllFinal || r.Summary.NotOK != 0 {
		t.Errorf("summary %+v after %d polls", r.Summary, polls)
	}
}

func TestWaitStopsWithTheContext(t *testing.T) {
	srv := newFake(t, fakefedora.OpenQAOptions{})
	c := newClient(t, srv, nil)
	scheduleRawhide(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r, err := c.Wait(ctx, rawhideID, openqa.WaitOptions{Interval: 5 * time.Millisecond})
	if err == nil || r == nil || r.Summary.Pending != 21 {
		t.Fatalf("err %v, results %v", err, r)
	}
}

// TestWaitRidesOutAnOutage: with Retrying, failures that may pass (5xx, no
// answer) are waited out; an answer that is final (400) still ends Wait.
func TestWaitRidesOutAnOutage(t *testing.T) {
	tests := []struct {
		name     string
		fault    fakefedora.OpenQAFault
		retrying bool
		wantErr  bool
		retries  int // calls of Retrying
	}{
		// The client tries each poll 4 times (newClient): 8 503s fail two polls.
		{"503s are waited out", fakefedora.OpenQAFault{Method: "GET", Path: "/api/v1/jobs", Status: 503, Times: 8}, true, false, 2},
		{"without Retrying a 503 ends the wait", fakefedora.OpenQAFault{Method: "GET", Path: "/api/v1/jobs", Status: 503, Times: 8}, false, true, 0},
		{"a hung openQA is waited out", fakefedora.OpenQAFault{Method: "GET", Path: "/api/v1/jobs", Hang: time.Second, Status: 200, Times: 4}, true, false, 1},
		{"a 400 ends the wait at once", fakefedora.OpenQAFault{Method: "GET", Path: "/api/v1/jobs", Status: 400}, true, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t, fakefedora.OpenQAOptions{})
			c := newClient(t, srv, func(o *openqa.Options) { o.HTTP.Timeout = 100 * time.Millisecond })
			scheduleRawhide(t, c)
			srv.Settle()
			srv.InjectFault(tt.fault)
			retries := 0
			opts := openqa.WaitOptions{Interval: time.Millisecond, Grace: -1}
			if tt.retrying {
				opts.Retrying = func(err error) {
					if !openqa.IsTemporary(err) {
						t.Errorf("Retrying(%v): not a temporary error", err)
					}
					retries++
				}
			}
			r, err := c.Wait(context.Background(), rawhideID, opts)
			if (err != nil) != tt.wantErr || retries != tt.retries {
				t.Fatalf("err %v after %d retries; want error %v after %d", err, retries, tt.wantErr, tt.retries)
			}
			if err == nil && (r == nil || !r.Summary.AllFinal) {
				t.Errorf("results %+v", r)
			}
		})
	}
}

func TestLatestAndSummarize(t *testing.T) {
	job := func(id, clone int64, test, state, result string) openqa.Job {
		return openqa.Job{ID: id, CloneID: clone, Test: test, State: state, Result: result,
			Settings: map[string]string{"FLAVOR": "Server-dvd-iso", "ARCH": "x86_64", "MACHINE": "64bit", "DISTRI": "fedora", "VERSION": "Rawhide"}}
	}
	tests := []struct {
		name       string
		jobs       []openqa.Job
		wantIDs    []int64
		superseded int
		summary    openqa.Summary
	}{
		{name: "nothing", summary: openqa.Summary{ByResult: map[string]int{}}},
		{
			name:    "a clone chain ends at its last clone, whatever the listing order",
			jobs:    []openqa.Job{job(3, 0, "a", "running", "none"), job(1, 2, "a", "done", "incomplete"), job(2, 3, "a", "done", "incomplete")},
			wantIDs: []int64{3}, superseded: 2,
			summary: openqa.Summary{Total: 1, Pending: 1, ByResult: map[string]int{}},
		},
		{
			name:    "a newer run of a scenario replaces an obsoleted one",
			jobs:    []openqa.Job{job(1, 0, "a", "cancelled", "obsoleted"), job(5, 0, "a", "done", "failed"), job(2, 0, "b", "done", "softfailed")},
			wantIDs: []int64{5, 2}, superseded: 1,
			summary: openqa.Summary{Total: 2, ByResult: map[string]int{"failed": 1, "softfailed": 1}, OK: 1, NotOK: 1, AllFinal: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, sup := openqa.Latest(tt.jobs)
			var ids []int64
			for _, j := range got {
				ids = append(ids, j.ID)
			}
			if !slices.Equal(ids, tt.wantIDs) || sup != tt.superseded {
				t.Errorf("Latest = %v, %d; want %v, %d", ids, sup, tt.wantIDs, tt.superseded)
			}
			if s := openqa.Summarize(got); fmt.Sprint(s) != fmt.Sprint(tt.summary) {
				t.Errorf("Summarize = %+v, want %+v", s, tt.summary)
			}
		})
	}
}
