package poller_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/listener/event"
	"github.com/composeci/composeci/listener/poller"
)

type recordingSink struct {
	mu     sync.Mutex
	events []event.Event
	fail   error
}

func (s *recordingSink) Submit(_ context.Context, e event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if err := e.Validate(); err != nil {
		return err
	}
	s.events = append(s.events, e)
	return nil
}

func (s *recordingSink) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.events {
		out = append(out, e.ComposeID)
	}
	slices.Sort(out)
	return out
}

func TestPoller(t *testing.T) {
	m := fakefedora.NewMirror()
	for _, s := range []fakefedora.ComposeSpec{
		{ID: "Fedora-Rawhide-20261101.n.0", Status: "FINISHED"}, // too old
		{ID: "Fedora-Rawhide-20261122.n.0", Status: "FINISHED"},
		{ID: "Fedora-Rawhide-20261123.n.0", Status: "STARTED"}, // running: found by the listing
		{ID: "Fedora-44-20261123.n.0", Status: "FINISHED"},
		{ID: "Fedora-43-20261123.n.0", Status: "FINISHED"}, // another Branched release
	} {
		m.MustAddCompose(s)
	}
	root := m.Start()
	defer m.Close()
	ff, _ := fedfind.NewClient(fedfind.ClientOptions{Root: root})
	sink := &recordingSink{}
	p := &poller.Poller{Fedfind: ff, Sink: sink, Now: func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) },
		Streams: []fedfind.StreamSpec{{Kind: fedfind.StreamRawhide}, {Kind: fedfind.StreamBranched, Version: "44"}}}
	ctx := context.Background()
	n, err := p.Poll(ctx)
	want := []string{"Fedora-44-20261123.n.0", "Fedora-Rawhide-20261122.n.0", "Fedora-Rawhide-20261123.n.0"}
	if err != nil || n != 3 || !slices.Equal(sink.ids(), want) {
		t.Fatalf("first round: %d, %v, %v", n, err, sink.ids())
	}
	for _, e := range sink.events {
		if e.Source != event.SourcePoll || e.MessageID != "poll:"+e.ComposeID || e.Kind != event.KindComposeStatus {
			t.Errorf("event %+v", e)
		}
	}
	// A second round submits only what is new.
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261123.n.1", Status: "STARTED"})
	if n, err := p.Poll(ctx); err != nil || n != 1 {
		t.Errorf("second round: %d, %v", n, err)
	}
	// Without a listing, the latest link (finished composes only).
	m.SetListing(false)
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-44-20261124.n.0", Status: "FINISHED"})
	if n, err := p.Poll(ctx); err != nil || n != 1 || sink.ids()[len(sink.ids())-1] != "Fedora-Rawhide-20261123.n.1" {
		t.Errorf("latest-link round: %d, %v, %v", n, err, sink.ids())
	}
	// A failing sink is reported and the compose tried again next round.
	sink.fail = errors.New("bus down")
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-44-20261125.n.0", Status: "FINISHED"})
	if _, err := p.Poll(ctx); err == nil {
		t.Error("a failing sink went unreported")
	}
	sink.fail = nil
	if n, err := p.Poll(ctx); err != nil || n != 1 {
		t.Errorf("after the sink recovered: %d, %v", n, err)
	}
}

// TestPollerWithoutBranched: a tree with no branched directory (between
// a release and the next branch point) is no failure of a poll round
// watching "branched": there is simply no Branched compose.
func TestPollerWithoutBranched(t *testing.T) {
	m := fakefedora.NewMirror()
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261122.n.0", Status: "FINISHED"})
	root := m.Start()
	defer m.Close()
	ff, _ := fedfind.NewClient(fedfind.ClientOptions{Root: root})
	sink := &recordingSink{}
	p := &poller.Poller{Fedfind: ff, Sink: sink, Now: func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) },
		Streams: []fedfind.StreamSpec{{Kind: fedfind.StreamRawhide}, {Kind: fedfind.StreamBranched}}}
	if _, err := p.Poll(context.Background()); err != nil {
		t.Error(err)
	}
	if got := sink.ids(); !slices.Equal(got, []string{"Fedora-Rawhide-20261122.n.0"}) {
		t.Errorf("found %v", got)
	}
	if _, err := ff.Resolve(context.Background(), "branched"); !errors.Is(err, fedfind.ErrComposeNotFound) {
		t.Errorf("Resolve(branched) without a branched directory: %v, want ErrComposeNotFound", err)
	}
}
