package fakefedora

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Gate holds the requests of the fake servers it is attached to (SetGate)
// until the test releases them, so that a test can see which requests a
// client has in flight together without timing anything: the requests
// waiting at the gate when the client can do nothing more are one wave of
// concurrent requests, and the number of waves is the number of round
// trips on the client's critical path.
type Gate struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever a request arrives
	held    []string      // descriptions of the requests waiting
	release chan struct{} // closed to let the waiting requests through
	open    bool          // every request passes
	waves   [][]string
}

// NewGate returns a closed gate: every request waits for Release.
func NewGate() *Gate {
	return &Gate{changed: make(chan struct{}), release: make(chan struct{})}
}

// hold makes a request described by what wait for the release of the wave
// it joined. It reports false when the client gave up first.
func (g *Gate) hold(r *http.Request, what string) bool {
	g.mu.Lock()
	if g.open {
		g.mu.Unlock()
		return true
	}
	g.held = append(g.held, what)
	release := g.release
	close(g.changed)
	g.changed = make(chan struct{})
	g.mu.Unlock()
	select {
	case <-release:
		return true
	case <-r.Context().Done():
		return false
	}
}

// Wait blocks until at least n requests are waiting at the gate and
// returns what they are, sorted ("mirror GET /compose/...", "openqa GET
// /api/v1/jobs?..."). It fails when ctx ends first, naming the requests
// that did arrive: a client that sends one request at a time never gets n
// of them to the gate.
func (g *Gate) Wait(ctx context.Context, n int) ([]string, error) {
	for {
		g.mu.Lock()
		held, changed := slices.Clone(g.held), g.changed
		g.mu.Unlock()
		slices.Sort(held)
		if len(held) >= n {
			return held, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return held, fmt.Errorf("%d requests at the gate, want %d: %v: %w", len(held), n, held, ctx.Err())
		}
	}
}

// Release lets the waiting requests through, as one wave; later requests
// wait for the next Release.
func (g *Gate) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.held) > 0 {
		held := slices.Clone(g.held)
		slices.Sort(held)
		g.waves = append(g.waves, held)
	}
	g.held = nil
	close(g.release)
	g.release = make(chan struct{})
}

// Open lets every request through, now and from now on: for a test's
// cleanup, so that nothing stays blocked.
func (g *Gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = true
	close(g.release)
	g.release = make(chan struct{})
}

// Waves returns the waves released so far, each sorted.
func (g *Gate) Waves() [][]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.waves)
}

// delay is the simulated distance of a fake server: a fixed latency per
// request, a gate, or both. It is safe for concurrent use.
type delay struct {
	mu      sync.Mutex
	latency time.Duration
	gate    *Gate
}

func (d *delay) set(latency time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.latency = latency
}

func (d *delay) setGate(g *Gate) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gate = g
}

// wait delays a request named by server before it is answered. It reports
// false when the client gave up meanwhile; nothing should be answered then.
func (d *delay) wait(r *http.Request, server string) bool {
	d.mu.Lock()
	latency, gate := d.latency, d.gate
	d.mu.Unlock()
	if gate != nil && !gate.hold(r, server+" "+r.Method+" "+r.URL.RequestURI()) {
		return false
	}
	if latency <= 0 {
		return true
	}
	t := time.NewTimer(latency)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
