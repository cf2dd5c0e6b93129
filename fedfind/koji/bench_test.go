package koji_test

import (
	"context"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind/koji"
)

// BenchmarkNightlyImageTasks asks for the state of one nightly's 300 image
// tasks from a hub that takes 20 ms per HTTP request, four ways:
//
//   - naive: getTaskInfo per task, one HTTP request each (300 round trips;
//     about 6 s per op, so run with -benchtime=1x or 3x);
//   - batched getTaskInfo: the same calls in multicalls of 100 (3);
//   - batched listTasks: one listTasks per image method in one multicall (1);
//   - warm cache: the same ListTasks answered from the cache (0).
//
// roundtrips/op is the number that matters; ns/op follows from it.
func BenchmarkNightlyImageTasks(b *testing.B) {
	const n = 300
	h := newHub(b)
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	h.SetNow(day.Add(12 * time.Hour))
	ids := h.AddNightlyImageTasks("Fedora-Rawhide-20261122.n.0", "20261122.n.0", "Rawhide", n)
	h.SetLatency(20 * time.Millisecond)
	q := koji.TaskQuery{Methods: koji.ImageParentMethods(), TopLevel: true,
		CreatedAfter: day.Add(-24 * time.Hour), CreatedBefore: day.Add(48 * time.Hour)}
	ctx := context.Background()

	run := func(b *testing.B, c *koji.Client, op func() (int, error)) {
		b.Helper()
		start := c.Stats()
		b.ResetTimer()
		for b.Loop() {
			got, err := op()
			if err != nil {
				b.Fatal(err)
			}
			if got != n {
				b.Fatalf("got %d tasks, want %d", got, n)
			}
		}
		b.StopTimer()
		s := c.Stats()
		b.ReportMetric(float64(s.RoundTrips-start.RoundTrips)/float64(b.N), "roundtrips/op")
		b.ReportMetric(float64(s.Calls-start.Calls)/float64(b.N), "calls/op")
	}

	b.Run("naive-getTaskInfo-per-task", func(b *testing.B) {
		c := newClient(b, h.URL(), koji.Options{})
		run(b, c, func() (int, error) {
			for _, id := range ids {
				if _, err := c.GetTaskInfo(ctx, id); err != nil {
					return 0, err
				}
			}
			return len(ids), nil
		})
	})
	b.Run("batched-getTaskInfo-multicall", func(b *testing.B) {
		c := newClient(b, h.URL(), koji.Options{})
		run(b, c, func() (int, error) {
			m, err := c.GetTaskInfos(ctx, ids)
			return len(m), err
		})
	})
	b.Run("batched-listTasks", func(b *testing.B) {
		c := newClient(b, h.URL(), koji.Options{})
		fresh := q
		fresh.Cache = koji.CacheBypass
		run(b, c, func() (int, error) {
			ts, err := c.ListTasks(ctx, fresh)
			return len(ts), err
		})
	})
	b.Run("warm-cache-listTasks", func(b *testing.B) {
		c := newClient(b, h.URL(), koji.Options{})
		if _, err := c.ListTasks(ctx, q); err != nil {
			b.Fatal(err)
		}
		run(b, c, func() (int, error) {
			ts, err := c.ListTasks(ctx, q)
			return len(ts), err
		})
	})
}
