package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		n    int
		want time.Duration
	}{
		{"first retry waits the base", Policy{Base: time.Second, Max: time.Minute}, 0, time.Second},
		{"doubles per retry", Policy{Base: time.Second, Max: time.Minute}, 3, 8 * time.Second},
		{"capped at max", Policy{Base: time.Second, Max: time.Minute}, 10, time.Minute},
		{"huge n does not overflow", Policy{Base: time.Second, Max: time.Minute}, 1 << 20, time.Minute},
		{"max below base is the base", Policy{Base: time.Second, Max: time.Millisecond}, 4, time.Second},
		{"no base, no wait", Policy{}, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Delay(tt.n); got != tt.want {
				t.Errorf("Delay(%d) = %s, want %s", tt.n, got, tt.want)
			}
		})
	}
}

func TestJitterStaysInHalfToWhole(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: time.Second, Jitter: true}
	seen := map[time.Duration]bool{}
	for n := range 6 {
		full := Policy{Base: p.Base, Max: p.Max}.Delay(n)
		for range 200 {
			d := p.Delay(n)
			if d < full/2 || d > full {
				t.Fatalf("Delay(%d) = %s, outside [%s, %s]", n, d, full/2, full)
			}
			seen[d] = true
		}
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct waits in 1200 draws: not jittered", len(seen))
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("a short sleep did not pass")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("a sleep passed though its context had ended")
	}
	if Sleep(ctx, 0) {
		t.Error("a zero sleep on an ended context reported success")
	}
}
