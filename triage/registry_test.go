package triage

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
)

func TestFileRegistry(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	r := FileRegistry{Dir: t.TempDir(), Now: func() time.Time { return now }}
	if l, err := r.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("an empty registry: %v %v", l, err)
	}
	a, err := r.Add(ctx, Entry{Test: "install_default", Arch: "aarch64", Reason: "firmware", Bug: "https://bugzilla.example/1"}, "alice")
	if err != nil || a.ID != 1 || a.CreatedBy != "alice" || !a.CreatedAt.Equal(now) {
		t.Fatalf("add: %+v %v", a, err)
	}
	b, err := r.Add(ctx, Entry{Test: "desktop_terminal", Reason: "font", Expires: now.Add(time.Hour)}, "bob")
	if err != nil || b.ID != 2 {
		t.Fatalf("add: %+v %v", b, err)
	}
	if _, err := r.Remove(ctx, 1, "carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Remove(ctx, 1, "carol"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing it again: %v", err)
	}
	// A new entry never reuses a removed id.
	c, err := r.Add(ctx, Entry{Test: "x", Reason: "y"}, "dave")
	if err != nil || c.ID != 3 {
		t.Errorf("add after remove: %+v %v", c, err)
	}
	l, _ := r.List(ctx)
	if len(l) != 2 || l[0].ID != 2 || l[1].ID != 3 {
		t.Errorf("list %+v", l)
	}
	h, _ := r.History(ctx)
	var trail []string
	for _, ch := range h {
		trail = append(trail, ch.By+" "+ch.Action+" "+ch.Entry.Test)
	}
	want := []string{"alice add install_default", "bob add desktop_terminal", "carol remove install_default", "dave add x"}
	if len(trail) != len(want) {
		t.Fatalf("history %v", trail)
	}
	for i := range want {
		if trail[i] != want[i] {
			t.Errorf("history %v, want %v", trail, want)
			break
		}
	}
	if !b.Expired(now.Add(time.Hour)) || b.Expired(now) {
		t.Error("expiry")
	}
}

func TestRegistryRefusesBadEntries(t *testing.T) {
	r := FileRegistry{Dir: t.TempDir()}
	for _, e := range []Entry{
		{Reason: "no test"},
		{Test: "install_default"},
		{Test: "install_default", Reason: "x", Bug: "javascript:alert(1)"},
		{Test: "install\x00default", Reason: "x"},
		{Test: "install_default", Reason: "line\nbreak"},
	} {
		if _, err := r.Add(context.Background(), e, "alice"); !errors.Is(err, fedfind.ErrInvalidInput) {
			t.Errorf("Add(%+v) = %v, want ErrInvalidInput", e, err)
		}
	}
}

// TestRegistryConcurrentAdds: processes adding at once each get an id of
// their own and nothing is lost (the lock serialises them).
func TestRegistryConcurrentAdds(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			r := FileRegistry{Dir: dir}
			if _, err := r.Add(context.Background(), Entry{Test: "t", Reason: "r"}, "p"+string(rune('a'+i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	l, _ := FileRegistry{Dir: dir}.List(context.Background())
	seen := map[int64]bool{}
	for _, e := range l {
		seen[e.ID] = true
	}
	if len(l) != 20 || len(seen) != 20 {
		t.Errorf("%d entries, %d distinct ids, want 20", len(l), len(seen))
	}
}
