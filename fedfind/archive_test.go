package fedfind_test

import (
	"context"
	"errors"
	"testing"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/fakefedora"
)

// archiveTree has Fedora 44 candidates, one of them garbage-collected, and
// a garbage-collected nightly.
func archiveTree(t *testing.T) (*fakefedora.Mirror, *fedfind.Client) {
	t.Helper()
	m, c := newMirror(t)
	for _, s := range []fakefedora.ComposeSpec{
		{ID: "Fedora-44-20260901.0", Status: "FINISHED", Label: "Beta-1.1", GarbageCollected: true},
		{ID: "Fedora-44-20260905.0", Status: "DOOMED"},
		{ID: "Fedora-44-20260910.0", Status: "FINISHED", Label: "Beta-1.2"},
		{ID: "Fedora-44-20261020.0", Status: "FINISHED_INCOMPLETE", Label: "RC-1.1"},
		{ID: "Fedora-Rawhide-20261101.n.0", Status: "FINISHED", GarbageCollected: true},
	} {
		m.MustAddCompose(s)
	}
	return m, c
}

func TestGarbageCollectedCompose(t *testing.T) {
	_, c := archiveTree(t)
	ctx := context.Background()
	cm, err := c.Resolve(ctx, "Fedora-Rawhide-20261101.n.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx, cm); !errors.Is(err, fedfind.ErrComposeNotFound) {
		t.Errorf("status of a collected compose: %v", err)
	}
	f, err := c.ImagesFile(ctx, cm)
	if err != nil || !f.Archived || len(f.Images) == 0 {
		t.Fatalf("images from the archive: %v (archived %v)", err, f != nil && f.Archived)
	}
	ci, err := c.ComposeInfo(ctx, cm)
	if err != nil || !ci.Archived || ci.Release.Version != "Rawhide" {
		t.Fatalf("composeinfo from the archive: %v", err)
	}
	if v, err := c.Completeness(ctx, cm, fedfind.CompletenessOptions{}); err != nil || v.Verdict != fedfind.VerdictDone {
		t.Errorf("a collected compose is done: %+v %v", v, err)
	}
	// A compose in the tree does not touch the archive.
	live, _ := c.Resolve(ctx, "Fedora-Rawhide-20261122.n.0")
	if f, err := c.ImagesFile(ctx, live); err != nil || f.Archived {
		t.Errorf("live compose: %v, archived %v", err, f.Archived)
	}
	// Neither in the tree nor archived: the tree's not-found.
	gone, _ := c.Resolve(ctx, "Fedora-Rawhide-20200101.n.0")
	if _, err := c.Images(ctx, gone); err == nil {
		t.Error("no error for a compose that never was")
	}
}

func TestSeriesAndLabels(t *testing.T) {
	_, c := archiveTree(t)
	ctx := context.Background()
	entries, err := c.Series(ctx, fedfind.StreamOf(fedfind.MustParseComposeID("Fedora-44-20260910.0")))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.ID.String()+" "+e.Label)
	}
	want := []string{"Fedora-44-20260901.0 Beta-1.1", "Fedora-44-20260905.0 ", "Fedora-44-20260910.0 Beta-1.2", "Fedora-44-20261010.1 Beta-1.2", "Fedora-44-20261020.0 RC-1.1"}
	if len(got) != len(want) {
		t.Fatalf("series %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("series[%d] = %q, want %q", i, got[i], want[i])
		}
	}
	for ref, id := range map[string]string{"44:RC-1.1": "Fedora-44-20261020.0", "44:Final-1.1": "Fedora-44-20261020.0", "44:Beta-1.1": "Fedora-44-20260901.0", "44:Beta-1.2": "Fedora-44-20261010.1" /* repeated: the newest */} {
		cm, err := c.Resolve(ctx, ref)
		if err != nil || cm.ID.String() != id {
			t.Errorf("Resolve(%q) = %v, %v; want %s", ref, cm, err, id)
		}
	}
	for ref, want := range map[string]error{"44:RC-9.9": fedfind.ErrComposeNotFound, "44:Gamma-1.0": fedfind.ErrInvalidInput, "12:Beta-1.1": fedfind.ErrComposeNotFound} {
		if _, err := c.Resolve(ctx, ref); !errors.Is(err, want) {
			t.Errorf("Resolve(%q): %v, want %v", ref, err, want)
		}
	}
}

func TestPreviousBySeries(t *testing.T) {
	m, c := archiveTree(t)
	m.SetListing(false)
	ctx := context.Background()
	for id, want := range map[string]string{
		"Fedora-44-20261020.0": "Fedora-44-20261010.1", // the newest earlier good one, weeks back
		"Fedora-44-20260910.0": "Fedora-44-20260901.0", // skips DOOMED; the previous is archived only
	} {
		cm, _ := c.Resolve(ctx, id)
		res, err := c.Previous(ctx, cm, fedfind.PreviousOptions{})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if res.Compose.ID.String() != want || res.Method != "series" {
			t.Errorf("%s: previous %s by %s, want %s by series", id, res.Compose.ID, res.Method, want)
		}
	}
	cm, _ := c.Resolve(ctx, "Fedora-44-20260901.0")
	if _, err := c.Previous(ctx, cm, fedfind.PreviousOptions{MaxDaysBack: 2}); !errors.Is(err, fedfind.ErrNoPrevious) {
		t.Errorf("first of the series: %v", err)
	}
}

// TestPreviousBySeriesWhenTheListingHasNone: with a listing that shows no
// earlier successful candidate (the earlier ones are garbage-collected or
// doomed), the series file and the archive still find it.
func TestPreviousBySeriesWhenTheListingHasNone(t *testing.T) {
	_, c := archiveTree(t) // listing on
	ctx := context.Background()
	cm, err := c.Resolve(ctx, "Fedora-44-20260910.0")
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Previous(ctx, cm, fedfind.PreviousOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Compose.ID.String() != "Fedora-44-20260901.0" || res.Method != "series" {
		t.Errorf("previous %s by %s, want Fedora-44-20260901.0 (archived) by series", res.Compose.ID, res.Method)
	}
	// A nightly with no earlier compose in its listing is not looked for
	// in a series file: nightlies have none.
	n, _ := c.Resolve(ctx, "Fedora-43-20260420.n.0")
	if _, err := c.Previous(ctx, n, fedfind.PreviousOptions{}); !errors.Is(err, fedfind.ErrNoPrevious) {
		t.Errorf("first nightly of its series: %v", err)
	}
}
