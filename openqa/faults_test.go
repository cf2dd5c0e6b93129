package openqa_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/openqa"
)

// TestRestartUnderFaults: a restart whose POST failed is checked before
// it is sent again. A POST openQA refused before acting (503, 502) is
// sent again and clones the job once; one that acted and lost its answer
// (a 502 after the clone, a timeout, a body cut short) is found done by
// reading the job and never sent again; one that keeps failing gives up
// after PostAttempts.
func TestRestartUnderFaults(t *testing.T) {
	tests := []struct {
		name      string
		fault     fakefedora.OpenQAFault
		random    fakefedora.FaultKind // instead of fault
		wantPosts int
		wantErr   bool
	}{
		{name: "503 before acting", fault: fakefedora.OpenQAFault{Status: http.StatusServiceUnavailable, RetryAfter: "0"}, wantPosts: 2},
		{name: "502 before acting", fault: fakefedora.OpenQAFault{Status: http.StatusBadGateway}, wantPosts: 2},
		{name: "502 after the clone", fault: fakefedora.OpenQAFault{Status: http.StatusBadGateway, AfterEffect: true}, wantPosts: 1},
		{name: "timeout after the clone", random: fakefedora.FaultTimeout, wantPosts: 1},
		{name: "body cut short after the clone", random: fakefedora.FaultTruncated, wantPosts: 1},
		{name: "503 every time", fault: fakefedora.OpenQAFault{Status: http.StatusServiceUnavailable, Times: 10}, wantPosts: 3, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t, fakefedora.OpenQAOptions{})
			c := newClient(t, srv, func(o *openqa.Options) { o.PostTimeout = 300 * time.Millisecond })
			ctx := context.Background()
			if _, err := c.Schedule(ctx, rawhideCompose(), openqa.ScheduleOptions{}); err != nil {
				t.Fatal(err)
			}
			srv.Settle()
			job := srv.Jobs()[0].ID
			path := "/api/v1/jobs/" + strconv.FormatInt(job, 10) + "/restart"
			if tt.random != "" {
				srv.SetRandomFaults(fakefedora.RandomFaultOptions{P: 1, Kinds: []fakefedora.FaultKind{tt.random}, Hold: 5 * time.Second})
				// Only the POST: the reads of the job get through.
				srv.InjectFault(fakefedora.OpenQAFault{Method: "GET", Path: "/api/v1/jobs/", Hang: time.Nanosecond, Times: 100})
			} else {
				tt.fault.Method, tt.fault.Path = "POST", path
				srv.InjectFault(tt.fault)
			}
			clone, _, err := c.Restart(ctx, job)
			if (err != nil) != tt.wantErr {
				t.Fatalf("restart: clone %d, error %v; want an error: %v", clone, err, tt.wantErr)
			}
			if !tt.wantErr {
				if j, _ := srv.Job(job); clone == 0 || j.CloneID != clone {
					t.Errorf("restart returned %d, the job's clone is %d", clone, j.CloneID)
				}
			}
			if n := srv.Requests("POST", path); n != tt.wantPosts {
				t.Errorf("the restart was posted %d times, want %d", n, tt.wantPosts)
			}
			if n := srv.RestartsOfClonedJobs(); n != 0 {
				t.Errorf("%d restarts of a job that had a clone", n)
			}
		})
	}
}

// TestSchedulePostHonoursRetryAfter: a scheduling POST answered 429 with
// Retry-After waits that long (not less) before the check and the next
// POST, and schedules the product once.
func TestSchedulePostHonoursRetryAfter(t *testing.T) {
	srv := newFake(t, fakefedora.OpenQAOptions{})
	c := newClient(t, srv, nil) // RecheckDelay: none
	srv.InjectFault(fakefedora.OpenQAFault{Method: "POST", Path: "/api/v1/isos", Status: http.StatusTooManyRequests, RetryAfter: "1"})
	start := time.Now()
	got, err := c.Schedule(context.Background(), rawhideCompose(), openqa.ScheduleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("scheduled in %s: the Retry-After of 1s was not waited for", d)
	}
	if got[0].Attempts != 2 {
		t.Errorf("first product posted %d times, want 2", got[0].Attempts)
	}
	for product, n := range srv.JobSetsCreated() {
		if n != 1 {
			t.Errorf("%s: %d job sets", product, n)
		}
	}
}
