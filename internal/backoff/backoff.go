// Package backoff computes the waits between retries: exponential from a
// base, capped, and optionally jittered. It is the one place composeci
// spaces retries — the AMQP reconnects, the workflow engine's stage errors
// and redeliveries, the supervisor's restarts of a failed part.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy spaces retries: the n-th retry (from 0) waits Base·2ⁿ, at most
// Max. With Jitter each wait is drawn uniformly from [d/2, d], so that many
// clients retrying after one outage do not come back in step.
type Policy struct {
	Base, Max time.Duration
	Jitter    bool
}

// Delay returns the wait before retry n (0 for the first retry). A
// non-positive Base waits nothing; a Max below Base is read as Base.
func (p Policy) Delay(n int) time.Duration {
	if p.Base <= 0 {
		return 0
	}
	limit := max(p.Max, p.Base)
	d := p.Base
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	if !p.Jitter || d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// Sleep waits for d unless ctx ends first; it reports whether the whole
// wait passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
