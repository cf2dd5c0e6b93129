package fedfind_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/httpclient"
)

func TestParseReleaseData(t *testing.T) {
	tests := []struct {
		name, in         string
		current, rawhide int
		err              string
	}{
		{"stable and branched", `{"fedora": {"stable": [42, 43], "branched": [44]}}`, 43, 45, ""},
		{"no branched release", `{"fedora": {"stable": [42, 43], "branched": []}}`, 43, 44, ""},
		{"branched absent or null", `{"fedora": {"stable": [43, 42], "branched": null}, "epel": {"stable": [9]}}`, 43, 44, ""},
		{"order does not matter", `{"fedora": {"branched": [44], "stable": [43, 41, 42]}}`, 43, 45, ""},
		{"empty", ``, 0, 0, "release.json"},
		{"an HTML page", `<html><body>Not Found</body></html>`, 0, 0, "release.json"},
		{"truncated", `{"fedora": {"stable": [42, 4`, 0, 0, "release.json"},
		{"no fedora", `{"stable": [42, 43]}`, 0, 0, `no "fedora" object`},
		{"no stable release", `{"fedora": {"stable": [], "branched": [44]}}`, 0, 0, "lists no release"},
		{"a string", `{"fedora": {"stable": ["43"], "branched": []}}`, 0, 0, "release.json"},
		{"a fraction", `{"fedora": {"stable": [43.5], "branched": []}}`, 0, 0, "release.json"},
		{"negative", `{"fedora": {"stable": [43], "branched": [-1]}}`, 0, 0, "not a release number"},
		{"two documents", `{"fedora": {"stable": [43]}} {}`, 0, 0, "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := fedfind.ParseReleaseData(strings.NewReader(tt.in), "release.json")
			if tt.err != "" {
				var me *fedfind.MetadataError
				if !errors.As(err, &me) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want a MetadataError with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Current() != tt.current || d.Rawhide() != tt.rawhide {
				t.Errorf("current %d, rawhide %d; want %d, %d", d.Current(), d.Rawhide(), tt.current, tt.rawhide)
			}
		})
	}
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// logCounter counts the records logged at each level.
type logCounter struct {
	mu     sync.Mutex
	counts map[slog.Level]int
	msgs   []string
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = map[slog.Level]int{}
	}
	l.counts[r.Level]++
	l.msgs = append(l.msgs, r.Level.String()+" "+r.Message)
	return nil
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }
func (l *logCounter) count(level slog.Level) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[level]
}

func newReleaseSource(t *testing.T, stable, branched []int) (*fakefedora.ReleaseData, *fedfind.ReleaseSource, *clock, *logCounter) {
	t.Helper()
	srv := fakefedora.NewReleaseData(stable, branched)
	u := srv.Start()
	t.Cleanup(srv.Close)
	clk := &clock{now: time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)}
	logs := &logCounter{}
	s, err := fedfind.NewReleaseSource(fedfind.ReleaseSourceOptions{URL: u, Now: clk.Now, Logger: slog.New(logs),
		HTTP: httpclient.New(httpclient.Options{RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond})})
	if err != nil {
		t.Fatal(err)
	}
	return srv, s, clk, logs
}

// TestReleaseSourceRefreshesDaily: the data is read once, served from memory
// for a day, then read again, so a long-running listener follows a
// branching or a release without a restart.
func TestReleaseSourceRefreshesDaily(t *testing.T) {
	srv, s, clk, _ := newReleaseSource(t, []int{42, 43}, []int{44})
	ctx := context.Background()
	check := func(what string, current, rawhide int, requests int64) {
		t.Helper()
		d, err := s.Get(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if d.Current() != current || d.Rawhide() != rawhide || srv.Requests() != requests {
			t.Errorf("%s: current %d, rawhide %d after %d requests; want %d, %d after %d", what, d.Current(), d.Rawhide(), srv.Requests(), current, rawhide, requests)
		}
	}
	check("first", 43, 45, 1)
	check("again", 43, 45, 1)
	srv.Set([]int{43, 44}, nil) // Fedora 44 is released
	clk.Advance(23 * time.Hour)
	check("within the day", 43, 45, 1)
	clk.Advance(time.Hour)
	check("a day later", 44, 45, 2)
	srv.Set([]int{43, 44}, []int{45}) // and 45 branches
	clk.Advance(24 * time.Hour)
	check("another day later", 44, 46, 3)
}

// TestReleaseSourceFallback: release data that cannot be read (404,
// garbage, a 500) is an error while nothing was read before, and what was
// read before once something was; either way the warning is logged once per
// run of failures, not per call, and the file is asked again only an hour
// later.
func TestReleaseSourceFallback(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		body   string
	}{
		{"404", http.StatusNotFound, "no such file"},
		{"garbage", http.StatusOK, "<html>Service temporarily unavailable</html>"},
		{"not release data", http.StatusOK, `{"fedora": {"stable": []}}`},
		{"500", http.StatusInternalServerError, "oops"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, s, clk, logs := newReleaseSource(t, []int{42, 43}, []int{44})
			ctx := context.Background()
			srv.SetBroken(tt.status, tt.body)
			for range 5 {
				if d, err := s.Get(ctx); err == nil {
					t.Fatalf("broken release data read as %+v", d)
				}
			}
			asked := srv.Requests()
			if logs.count(slog.LevelWarn) != 1 {
				t.Errorf("%d warnings for 5 calls, want 1: %v", logs.count(slog.LevelWarn), logs.msgs)
			}
			clk.Advance(time.Hour)
			if _, err := s.Get(ctx); err == nil || srv.Requests() == asked {
				t.Errorf("an hour later: %v, not asked again (%d requests)", err, srv.Requests())
			}
			if logs.count(slog.LevelWarn) != 1 {
				t.Errorf("a second failure in a row warned again: %v", logs.msgs)
			}

			// Mended: read at the next try; broken again a day later, the
			// data read before stands, with one new warning.
			srv.Set([]int{42, 43}, []int{44})
			clk.Advance(time.Hour)
			if d, err := s.Get(ctx); err != nil || d.Current() != 43 || d.Rawhide() != 45 {
				t.Fatalf("mended: %+v %v", d, err)
			}
			srv.SetBroken(tt.status, tt.body)
			clk.Advance(25 * time.Hour)
			for range 3 {
				if d, err := s.Get(ctx); err != nil || d.Current() != 43 || d.Rawhide() != 45 {
					t.Errorf("broken after a good read: %+v %v", d, err)
				}
			}
			if logs.count(slog.LevelWarn) != 2 {
				t.Errorf("%d warnings, want 2: %v", logs.count(slog.LevelWarn), logs.msgs)
			}
		})
	}
}

// TestReleaseSourceConcurrent: callers at once share one read.
func TestReleaseSourceConcurrent(t *testing.T) {
	srv, s, _, _ := newReleaseSource(t, []int{43}, []int{44})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if d, err := s.Get(context.Background()); err != nil || !slices.Equal(d.Branched, []int{44}) {
				t.Errorf("%+v %v", d, err)
			}
		})
	}
	wg.Wait()
	if srv.Requests() != 1 {
		t.Errorf("%d reads, want 1", srv.Requests())
	}
	// A caller that gives up is no failure of the data: no warning, and
	// the next caller reads it.
	_, fresh, _, logs := newReleaseSource(t, []int{43}, []int{44})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := fresh.Get(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled context: %v", err)
	}
	if d, err := fresh.Get(context.Background()); err != nil || d.Current() != 43 || logs.count(slog.LevelWarn) != 0 {
		t.Errorf("after a cancelled call: %+v %v %v", d, err, logs.msgs)
	}
}

func TestNewReleaseSourceRejects(t *testing.T) {
	for _, u := range []string{"ftp://example.org/release.json", "release.json", "http://"} {
		if _, err := fedfind.NewReleaseSource(fedfind.ReleaseSourceOptions{URL: u}); !errors.Is(err, fedfind.ErrInvalidInput) {
			t.Errorf("%q: %v", u, err)
		}
	}
	s, err := fedfind.NewReleaseSource(fedfind.ReleaseSourceOptions{})
	if err != nil || s.URL() != fedfind.DefaultReleaseDataURL {
		t.Errorf("default: %v %v", s, err)
	}
}
