package main

import (
	"fmt"
	"sync"
	"time"
)

// outages tells, on stderr, when a service that a --wait polls stops
// answering and when it answers again: once each per outage, however many
// polls fail in between. Several composes polled at once share one.
type outages struct {
	mu   sync.Mutex
	note func(string) // prints a line of its own (through the progress display)
	how  string       // how the wait goes on, e.g. "every 2m0s until --timeout 8h0m0s"
	down map[string]*outage
}

type outage struct {
	since  time.Time
	failed int // polls that failed
}

func newOutages(note func(string), how string) *outages {
	return &outages{note: note, how: how, down: map[string]*outage{}}
}

// failed records a poll that service failed in a way that may pass; the
// first of an outage is told.
func (o *outages) failed(service string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d := o.down[service]; d != nil {
		d.failed++
		return
	}
	o.down[service] = &outage{since: time.Now(), failed: 1}
	o.note(fmt.Sprintf("composeci: %s is not answering (%v); still waiting: polling again %s", service, err, o.how))
}

// answered records that service answered a poll; the first answer after an
// outage is told.
func (o *outages) answered(service string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	d := o.down[service]
	if d == nil {
		return
	}
	delete(o.down, service)
	o.note(fmt.Sprintf("composeci: %s answers again, after %s (%s failed)", service,
		time.Since(d.since).Round(time.Second), plural(d.failed, "poll", "polls")))
}
