// Package triagetest is the contract every backend of the triage stores
// passes — the files under a data directory and the JetStream buckets
// alike: one suite, run against each.
package triagetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/reports"
	"github.com/composeci/composeci/triage"
)

// Registry checks a Registry that starts empty: ids, removal, history,
// validation, and concurrent adds that lose nothing.
func Registry(t *testing.T, r triage.Registry) {
	ctx := context.Background()
	if l, err := r.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("an empty registry: %v %v", l, err)
	}
	a, err := r.Add(ctx, triage.Entry{Test: "install_default", Arch: "aarch64", Reason: "firmware", Bug: "https://bugzilla.example/1"}, "alice")
	if err != nil || a.ID != 1 || a.CreatedBy != "alice" || a.CreatedAt.IsZero() {
		t.Fatalf("add: %+v %v", a, err)
	}
	b, err := r.Add(ctx, triage.Entry{Test: "desktop_terminal", Reason: "font", Expires: time.Now().Add(time.Hour)}, "bob")
	if err != nil || b.ID != 2 {
		t.Fatalf("add: %+v %v", b, err)
	}
	if _, err := r.Remove(ctx, 1, "carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Remove(ctx, 1, "carol"); !errors.Is(err, triage.ErrNotFound) {
		t.Errorf("removing it again: %v", err)
	}
	if c, err := r.Add(ctx, triage.Entry{Test: "x", Reason: "y"}, "dave"); err != nil || c.ID != 3 {
		t.Errorf("an id is never reused: %+v %v", c, err)
	}
	h, err := r.History(ctx)
	if err != nil || len(h) != 4 || h[2].Action != "remove" || h[2].By != "carol" || h[2].Entry.Test != "install_default" {
		t.Errorf("history %+v %v", h, err)
	}
	if _, err := r.Add(ctx, triage.Entry{Test: "t", Reason: "r", Bug: "javascript:alert(1)"}, "eve"); !errors.Is(err, fedfind.ErrInvalidInput) {
		t.Errorf("a bad entry: %v", err)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := r.Add(ctx, triage.Entry{Test: "t", Reason: "r"}, "p"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	l, _ := r.List(ctx)
	ids := map[int64]bool{}
	for _, e := range l {
		ids[e.ID] = true
	}
	if len(l) != 12 || len(ids) != 12 {
		t.Errorf("after concurrent adds: %d entries, %d ids, want 12", len(l), len(ids))
	}
}

// Ledger checks a Ledger that starts empty: intents completed once,
// entries kept by time, compose IDs validated, composes apart.
func Ledger(t *testing.T, l triage.Ledger) {
	ctx := context.Background()
	const id = "Fedora-Rawhide-20261122.n.0"
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	if e, err := l.Reruns(ctx, id); err != nil || len(e) != 0 {
		t.Fatalf("an empty ledger: %v %v", e, err)
	}
	intent := reports.Rerun{At: at, By: "composeci", Scope: triage.ScopeConfirm, JobID: 10, Test: "install"}
	if err := l.Record(ctx, id, intent); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(ctx, id, reports.Rerun{At: at.Add(-time.Minute), By: "alice", Scope: triage.ScopeJob, JobID: 5, RerunJobID: 7}); err != nil {
		t.Fatal(err)
	}
	done := intent
	done.RerunJobID = 20
	if err := l.Record(ctx, id, done); err != nil {
		t.Fatal(err)
	}
	later := done
	later.RerunJobID = 30 // a completed entry keeps its re-run
	if err := l.Record(ctx, id, later); err != nil {
		t.Fatal(err)
	}
	e, err := l.Reruns(ctx, id)
	if err != nil || len(e) != 2 || e[0].JobID != 5 || e[1].RerunJobID != 20 {
		t.Errorf("entries %+v %v", e, err)
	}
	if d := triage.Done(e); d[10] != 20 || d[5] != 7 {
		t.Errorf("Done = %v", d)
	}
	if other, _ := l.Reruns(ctx, "Fedora-44-20261122.n.0"); len(other) != 0 {
		t.Errorf("another compose has %v", other)
	}
	if err := l.Record(ctx, "../../etc/passwd", intent); !errors.Is(err, fedfind.ErrInvalidInput) {
		t.Errorf("a hostile compose ID: %v", err)
	}
}
