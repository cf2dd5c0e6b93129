package workflow

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestRetryStalled: a read that waits out its attempt's timeout is tried
// again with a longer one; any other outcome is returned at once; the
// caller's context ends it.
func TestRetryStalled(t *testing.T) {
	boom := errors.New("boom")
	for _, c := range []struct {
		name     string
		stalls   int   // attempts that wait until their context ends
		fail     error // what the first attempt that does not stall returns
		ctx      time.Duration
		want     error
		attempts int
	}{
		{name: "at once", attempts: 1},
		{name: "an error is not a stall", fail: boom, want: boom, attempts: 1},
		{name: "stalls once, then reads", stalls: 1, attempts: 2},
		{name: "stalls until the caller gives up", stalls: 100, ctx: 1500 * time.Millisecond, want: context.DeadlineExceeded, attempts: 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.Context()
			if c.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.ctx)
				defer cancel()
			}
			attempts := 0
			err := RetryStalled(ctx, func(ctx context.Context) error {
				attempts++
				if attempts <= c.stalls {
					<-ctx.Done()
					return ctx.Err()
				}
				return c.fail
			})
			if !errors.Is(err, c.want) || attempts != c.attempts {
				t.Errorf("err %v after %d attempts; want %v after %d", err, attempts, c.want, c.attempts)
			}
		})
	}
}

// TestCreateRace tells a stream made by another process a moment earlier
// from other refusals.
func TestCreateRace(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&jetstream.APIError{Code: 400, ErrorCode: jsSubjectsOverlap}, true},
		{&jetstream.APIError{Code: 400, ErrorCode: jsStreamNameExists}, true},
		{&jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeBadRequest}, false},
		{errors.New("subjects overlap"), false},
		{nil, false},
	} {
		if got := CreateRace(c.err); got != c.want {
			t.Errorf("CreateRace(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestReplicasChecked: more than one replica needs a cluster (an external
// URL), and JetStream keeps at most five.
func TestReplicasChecked(t *testing.T) {
	for _, c := range []struct {
		name     string
		url      string
		replicas int
		want     string
	}{
		{"embedded, one copy", "", 1, ""},
		{"embedded, keep", "", 0, ""},
		{"embedded, three", "", 3, "need a NATS cluster"},
		{"cluster, three", "nats://a,nats://b,nats://c", 3, ""},
		{"cluster, six", "nats://a", 6, "want 1 to 5"},
		{"negative", "nats://a", -1, "want 1 to 5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := Options{Bus: BusOptions{URL: c.url}, Stages: Stages(), Replicas: c.replicas}
			o.setDefaults()
			err := o.check()
			if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Errorf("check: %v; want %q", err, c.want)
			}
		})
	}
}
