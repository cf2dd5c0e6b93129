package listener

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func quietSupervisor(maxFailures int) *supervisor {
	return newSupervisor(slog.New(slog.DiscardHandler), time.Millisecond, maxFailures)
}

func TestSupervisorRestartsAPartThatStops(t *testing.T) {
	s := quietSupervisor(5)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var runs atomic.Int32
	s.start(ctx, []part{{name: "flaky", run: func(ctx context.Context) error {
		if runs.Add(1) <= 3 {
			return errors.New("connection closed")
		}
		<-ctx.Done()
		return nil
	}}})
	deadline := time.Now().Add(5 * time.Second)
	for runs.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("part run %d times, want 4", runs.Load())
		}
		time.Sleep(time.Millisecond)
	}
	st := s.States()[0]
	if !st.Up || st.Restarts != 3 || st.Failures != 3 || st.LastError != "connection closed" {
		t.Errorf("state %+v", st)
	}
	if err := s.check("flaky"); err != nil {
		t.Errorf("a part that runs again is healthy: %v", err)
	}
	cancel()
	if err := s.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.failed() != nil {
		t.Errorf("supervision failed: %v", s.failed())
	}
}

func TestSupervisorGivesUpPastTheBudget(t *testing.T) {
	s := quietSupervisor(2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var runs atomic.Int32
	s.start(ctx, []part{
		{name: "broken", run: func(context.Context) error { runs.Add(1); return errors.New("ACCESS_REFUSED") }},
		{name: "fine", run: func(ctx context.Context) error { <-ctx.Done(); return nil }},
	})
	select {
	case <-s.fatal:
	case <-time.After(5 * time.Second):
		t.Fatal("supervision never gave up")
	}
	err := s.failed()
	if !errors.Is(err, ErrPartFailed) || !strings.Contains(err.Error(), "broken failed 3 times in a row") || !strings.Contains(err.Error(), "ACCESS_REFUSED") {
		t.Errorf("error %v", err)
	}
	if runs.Load() != 3 {
		t.Errorf("the broken part ran %d times, want 3 (two restarts)", runs.Load())
	}
	if err := s.check("broken"); err == nil || !strings.Contains(err.Error(), "broken is down") {
		t.Errorf("check of the broken part: %v", err)
	}
	cancel()
	if err := s.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSupervisorSaysOneFailure: a part down after its first failure is
// "1 failure", one given up on at its first, failed "once".
func TestSupervisorSaysOneFailure(t *testing.T) {
	s := newSupervisor(slog.New(slog.DiscardHandler), time.Hour, 5) // no restart within the test
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.start(ctx, []part{{name: "once", run: func(context.Context) error { return errors.New("connection closed") }}})
	deadline := time.Now().Add(5 * time.Second)
	for s.check("once") == nil {
		if time.Now().After(deadline) {
			t.Fatal("the part never went down")
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.check("once"); !strings.Contains(err.Error(), "once is down (1 failure, restarting): connection closed") {
		t.Errorf("check: %v", err)
	}
	cancel()
	if err := s.wait(context.Background()); err != nil {
		t.Fatal(err)
	}

	s = quietSupervisor(0)
	s.start(context.Background(), []part{{name: "refused", run: func(context.Context) error { return errors.New("ACCESS_REFUSED") }}})
	<-s.fatal
	if err := s.failed(); !strings.Contains(err.Error(), "refused failed once; last: ACCESS_REFUSED") {
		t.Errorf("error %v", err)
	}
}

func TestSupervisorCountsAPanicAndAnEarlyReturn(t *testing.T) {
	s := quietSupervisor(1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.start(ctx, []part{
		{name: "panics", run: func(context.Context) error { panic("boom") }},
		{name: "quits", run: func(context.Context) error { return nil }},
	})
	<-s.fatal
	cancel()
	_ = s.wait(context.Background())
	for _, st := range s.States() {
		if st.Failures < 1 {
			t.Errorf("%s: %+v", st.Name, st)
		}
		switch st.Name {
		case "panics":
			if !strings.Contains(st.LastError, "panic: boom") {
				t.Errorf("panic recorded as %q", st.LastError)
			}
		case "quits":
			if !strings.Contains(st.LastError, "stopped by itself") {
				t.Errorf("early return recorded as %q", st.LastError)
			}
		}
	}
}

func TestSupervisorWaitGivesUpWithItsContext(t *testing.T) {
	s := quietSupervisor(1)
	ctx, cancel := context.WithCancel(context.Background())
	stuck := make(chan struct{})
	defer close(stuck)
	s.start(ctx, []part{{name: "deaf", run: func(context.Context) error { <-stuck; return nil }}})
	cancel()
	wctx, wcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer wcancel()
	if err := s.wait(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait = %v, want the deadline", err)
	}
}
