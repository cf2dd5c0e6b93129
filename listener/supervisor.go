package listener

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/composeci/composeci/internal/backoff"
)

// ErrPartFailed is wrapped by the error a Listener ends with when one of its
// parts kept failing past its restart budget: the process should exit
// non-zero, so that systemd or Kubernetes starts it afresh.
var ErrPartFailed = errors.New("a part of the listener kept failing")

// part is one long-running loop of the service: the AMQP consumer, the
// poller, the dispatcher, a worker, the HTTP server. Its run returns nil
// when ctx ends; returning before that (with or without an error) is a
// failure.
type part struct {
	name string
	run  func(ctx context.Context) error
}

// PartState is what the supervisor knows of one part, for /healthz.
type PartState struct {
	Name string `json:"name"`
	// Up is false while the part waits to be restarted.
	Up bool `json:"up"`
	// Restarts counts the part's restarts since the start.
	Restarts int `json:"restarts"`
	// Failures counts its failures in a row (reset once it ran healthily
	// for a while).
	Failures  int       `json:"failures"`
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"since"`
}

// supervisor runs parts and restarts each that stops, with capped,
// jittered backoff. A part that fails more than maxFailures times in a row
// (each run shorter than healthyAfter) ends the supervision: fatal is
// closed and err says which part and why.
type supervisor struct {
	log          *slog.Logger
	backoff      backoff.Policy
	maxFailures  int
	healthyAfter time.Duration

	mu     sync.Mutex
	states map[string]*PartState
	order  []string
	err    error
	fatal  chan struct{} // closed on the first part past its budget
	once   sync.Once
	wg     sync.WaitGroup
}

func newSupervisor(log *slog.Logger, restartBackoff time.Duration, maxFailures int) *supervisor {
	return &supervisor{
		log:          log,
		backoff:      backoff.Policy{Base: restartBackoff, Max: 64 * restartBackoff, Jitter: true},
		maxFailures:  maxFailures,
		healthyAfter: max(time.Minute, 16*restartBackoff),
		states:       map[string]*PartState{},
		fatal:        make(chan struct{}),
	}
}

// start runs each part in a goroutine of its own until ctx ends.
func (s *supervisor) start(ctx context.Context, parts []part) {
	s.mu.Lock()
	for _, p := range parts {
		s.states[p.name] = &PartState{Name: p.name, Up: true, Since: time.Now()}
		s.order = append(s.order, p.name)
	}
	s.mu.Unlock()
	for _, p := range parts {
		s.wg.Go(func() { s.keep(ctx, p) })
	}
}

// wait waits for every part to return, or for ctx to end.
func (s *supervisor) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the listener's parts to stop: %w", ctx.Err())
	}
}

// keep runs p, again and again, until ctx ends or p exhausts its budget.
func (s *supervisor) keep(ctx context.Context, p part) {
	failures := 0
	for {
		started := time.Now()
		err := runGuarded(ctx, p)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("stopped by itself")
		}
		if time.Since(started) >= s.healthyAfter {
			failures = 0
		}
		failures++
		s.update(p.name, func(st *PartState) {
			st.Up, st.Failures, st.LastError, st.Since = false, failures, err.Error(), time.Now()
		})
		if failures > s.maxFailures {
			s.log.Error("listener part failed too often; stopping", "part", p.name, "failures", failures, "err", err)
			s.once.Do(func() {
				s.mu.Lock()
				s.err = fmt.Errorf("%w: %s failed %s; last: %w", ErrPartFailed, p.name, timesInARow(failures), err)
				s.mu.Unlock()
				close(s.fatal)
			})
			return
		}
		delay := s.backoff.Delay(failures - 1)
		s.log.Warn("listener part stopped; restarting it", "part", p.name, "err", err, "in", delay.Round(time.Millisecond), "failures", failures)
		if !backoff.Sleep(ctx, delay) {
			return
		}
		s.update(p.name, func(st *PartState) { st.Up, st.Since = true, time.Now(); st.Restarts++ })
	}
}

// runGuarded runs p, turning a panic into an error.
func runGuarded(ctx context.Context, p part) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
		}
	}()
	return p.run(ctx)
}

func (s *supervisor) update(name string, f func(*PartState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.states[name]; ok {
		f(st)
	}
}

// failed returns the error supervision ended with, nil while it goes on.
func (s *supervisor) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// States returns every part's state, in the order they were started.
func (s *supervisor) States() []PartState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PartState, 0, len(s.order))
	for _, n := range s.order {
		out = append(out, *s.states[n])
	}
	return out
}

// check says whether the named part runs: an error naming what stopped it
// while it waits to be restarted.
func (s *supervisor) check(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[name]
	if !ok || st.Up {
		return nil
	}
	failures := fmt.Sprintf("%d failures in a row", st.Failures)
	if st.Failures == 1 {
		failures = "1 failure"
	}
	return fmt.Errorf("%s is down (%s, restarting): %s", name, failures, st.LastError)
}

// timesInARow is "once" or "3 times in a row".
func timesInARow(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times in a row", n)
}
