package fedfind_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/httpclient"
)

// newMirror starts a simulated compose tree with a few weeks of Rawhide and
// Branched nightlies and returns it with a client for it.
func newMirror(t testing.TB) (*fakefedora.Mirror, *fedfind.Client) {
	t.Helper()
	m := fakefedora.NewMirror()
	for _, s := range []fakefedora.ComposeSpec{
		{ID: "Fedora-Rawhide-20261119.n.0", Status: "FINISHED"},
		{ID: "Fedora-Rawhide-20261120.n.0", Status: "DOOMED"},
		{ID: "Fedora-Rawhide-20261120.n.1", Status: "FINISHED_INCOMPLETE"},
		{ID: "Fedora-Rawhide-20261121.n.0", Status: "TERMINATED"},
		{ID: "Fedora-Rawhide-20261122.n.0", Status: "FINISHED"},
		{ID: "Fedora-Rawhide-20261123.n.0", Status: "STARTED"},
		{ID: "Fedora-44-20261121.n.0", Status: "FINISHED"},
		{ID: "Fedora-44-20261122.n.0", Status: "FINISHED_INCOMPLETE"},
		{ID: "Fedora-43-20260420.n.0", Status: "FINISHED"},
		{ID: "Fedora-44-20261010.1", Status: "FINISHED", Label: "Beta-1.2"},
		{ID: "Fedora-43-updates-20261122.0", Status: "FINISHED", Images: []fakefedora.ImageSpec{}},
	} {
		m.MustAddCompose(s)
	}
	root := m.Start()
	t.Cleanup(m.Close)
	c, err := fedfind.NewClient(fedfind.ClientOptions{Root: root, HTTP: httpclient.New(httpclient.Options{RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond})})
	if err != nil {
		t.Fatal(err)
	}
	return m, c
}

func TestResolve(t *testing.T) {
	_, c := newMirror(t)
	ctx := context.Background()
	root := c.Root()
	tests := []struct {
		ref, id, kind, version string
	}{
		{"Fedora-Rawhide-20261122.n.0", "Fedora-Rawhide-20261122.n.0", "rawhide", "Rawhide"},
		{"Fedora-44-20261122.n.0", "Fedora-44-20261122.n.0", "branched", "44"},
		{"Fedora-44-20261010.1", "Fedora-44-20261010.1", "production", "44"},
		{"Fedora-43-updates-testing-20261122.0", "Fedora-43-updates-testing-20261122.0", "updates-testing", "43"},
		{"Fedora-Cloud-44-20261122.0", "Fedora-Cloud-44-20261122.0", "cloud", "44"},
		{"rawhide", "Fedora-Rawhide-20261122.n.0", "rawhide", "Rawhide"},
		{"branched", "Fedora-44-20261122.n.0", "branched", "44"},
		{"branched:43", "Fedora-43-20260420.n.0", "branched", "43"},
		{"updates:43", "Fedora-43-updates-20261122.0", "updates", "43"},
		{root + "/rawhide/Fedora-Rawhide-20261122.n.0/compose", "Fedora-Rawhide-20261122.n.0", "rawhide", "Rawhide"},
		{root + "/rawhide/Fedora-Rawhide-20261122.n.0/", "Fedora-Rawhide-20261122.n.0", "rawhide", "Rawhide"},
		{"https://kojipkgs.fedoraproject.org/compose/branched/Fedora-44-20261122.n.0/compose", "Fedora-44-20261122.n.0", "branched", "44"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			cm, err := c.Resolve(ctx, tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			if cm.ID.String() != tt.id || string(cm.Stream.Kind) != tt.kind || cm.Stream.Version != tt.version {
				t.Errorf("got %s %+v", cm.ID, cm.Stream)
			}
			if !strings.HasSuffix(cm.Location, "/"+tt.id+"/compose") || cm.Location != cm.Dir+"/compose" {
				t.Errorf("location %q dir %q", cm.Location, cm.Dir)
			}
		})
	}
}

func TestResolveRejects(t *testing.T) {
	_, c := newMirror(t)
	ctx := context.Background()
	for _, tt := range []struct {
		ref  string
		want error
	}{
		{"Fedora-Rawhide-2026112.n.0", fedfind.ErrInvalidInput},
		{"../../etc/passwd", fedfind.ErrInvalidInput},
		{"https://evil.example/compose/rawhide/Fedora-Rawhide-20261122.n.0/compose", fedfind.ErrInvalidInput},
		{c.Root() + "/rawhide/../../etc/Fedora-Rawhide-20261122.n.0/compose", fedfind.ErrInvalidInput},
		{c.Root() + "/rawhide/Fedora-Rawhide-20261122.n.0/compose?x=1", fedfind.ErrInvalidInput},
		{c.Root() + "/rawhide/notacompose/compose", fedfind.ErrInvalidInput},
		{"ftp://kojipkgs.fedoraproject.org/compose/x", fedfind.ErrInvalidInput},
		{"DP-1.0-20161013.t.4", fedfind.ErrInvalidInput}, // no known place: needs a URL
		{"branched:abc", fedfind.ErrInvalidInput},
		{"rawhide:44", fedfind.ErrInvalidInput},
		{"cloud", fedfind.ErrInvalidInput},
		{"eln", fedfind.ErrComposeNotFound}, // no ELN compose finished
		{"branched:42", fedfind.ErrComposeNotFound},
	} {
		if cm, err := c.Resolve(ctx, tt.ref); !errors.Is(err, tt.want) {
			t.Errorf("Resolve(%q) = %+v, %v; want %v", tt.ref, cm, err, tt.want)
		}
	}
}

func TestStatusImagesComposeInfo(t *testing.T) {
	m, c := newMirror(t)
	ctx := context.Background()
	cm, err := c.Resolve(ctx, "Fedora-Rawhide-20261122.n.0")
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx, cm)
	if err != nil || st != fedfind.StatusFinished {
		t.Fatalf("status %q %v", st, err)
	}
	images, err := c.Images(ctx, cm)
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != len(fakefedora.StandardImages(cm.ID.String())) {
		t.Errorf("%d images", len(images))
	}
	for _, im := range images {
		if !strings.HasPrefix(im.URL, cm.Location+"/") || im.Identity == "" || im.Variant == "" {
			t.Errorf("image %+v", im)
		}
	}
	ci, err := c.ComposeInfo(ctx, cm)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Release.Version != "Rawhide" || !ci.HasVariant("Everything") {
		t.Errorf("composeinfo %+v", ci.Release)
	}
	var n int
	if _, err := c.StreamRPMs(ctx, cm, func(fedfind.RPM) error { n++; return nil }); err != nil || n != 20 {
		t.Errorf("rpms: %d, %v", n, err)
	}

	// A compose that does not exist, and one still running (no images.json yet).
	missing, _ := c.Resolve(ctx, "Fedora-Rawhide-20261001.n.0")
	if _, err := c.Status(ctx, missing); !errors.Is(err, fedfind.ErrComposeNotFound) {
		t.Errorf("missing compose status: %v", err)
	}
	running, _ := c.Resolve(ctx, "Fedora-Rawhide-20261123.n.0")
	_, err = c.Images(ctx, running)
	if !errors.Is(err, httpclient.ErrNotFound) {
		t.Errorf("running compose images: %v", err)
	}
	if m.RequestsOf("images.json") != 2 {
		t.Errorf("images.json requests %d: a 404 must not be retried", m.RequestsOf("images.json"))
	}
}

// TestImagesSayWhyThereAreNone: without an images.json the error says what
// is true of the compose: not started, still running, ended without
// images, or finished with the file missing.
func TestImagesSayWhyThereAreNone(t *testing.T) {
	m := fakefedora.NewMirror()
	tests := []struct {
		id, status string
		noImages   bool
		want       string
	}{
		{"Fedora-Rawhide-20261120.n.0", "STARTED", false, "Fedora-Rawhide-20261120.n.0 has no images.json yet (STATUS STARTED): Pungi writes it when the compose ends"},
		{"Fedora-Rawhide-20261121.n.0", "DOOMED", false, "Fedora-Rawhide-20261121.n.0 ended DOOMED without images (it has no images.json)"},
		{"Fedora-Rawhide-20261121.n.1", "TERMINATED", false, "Fedora-Rawhide-20261121.n.1 ended TERMINATED without images"},
		{"Fedora-Rawhide-20261122.n.0", "FINISHED", true, "Fedora-Rawhide-20261122.n.0 finished (STATUS FINISHED), but its images.json is missing from the tree and the metadata archive"},
		{"Fedora-Rawhide-20261122.n.1", "", false, "compose not found: Fedora-Rawhide-20261122.n.1 is not in"},
	}
	for _, tt := range tests {
		m.MustAddCompose(fakefedora.ComposeSpec{ID: tt.id, Status: tt.status, NoImages: tt.noImages})
	}
	root := m.Start()
	defer m.Close()
	c, _ := fedfind.NewClient(fedfind.ClientOptions{Root: root})
	for _, tt := range tests {
		cm, err := c.Resolve(context.Background(), tt.id)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Images(context.Background(), cm)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, httpclient.ErrNotFound) {
			t.Errorf("%s (%s): %v, want %q matching httpclient.ErrNotFound", tt.id, tt.status, err, tt.want)
		}
		if strings.Contains(err.Error(), "yet") != (tt.status == "STARTED") {
			t.Errorf("%s (%s) says %q", tt.id, tt.status, err)
		}
	}
}

// TestMetadataMismatch: a tree whose metadata names another compose is an
// error, not silently another compose's images.
func TestMetadataMismatch(t *testing.T) {
	m := fakefedora.NewMirror()
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261122.n.0", Status: "FINISHED"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = strings.Replace(r.URL.Path, "20261121.n.0", "20261122.n.0", 1)
		m.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c, _ := fedfind.NewClient(fedfind.ClientOptions{Root: srv.URL + "/compose"})
	cm, _ := c.Resolve(context.Background(), "Fedora-Rawhide-20261121.n.0")
	if _, err := c.Images(context.Background(), cm); !errors.Is(err, fedfind.ErrMismatch) {
		t.Errorf("images: %v", err)
	}
	if _, err := c.ComposeInfo(context.Background(), cm); !errors.Is(err, fedfind.ErrMismatch) {
		t.Errorf("composeinfo: %v", err)
	}
}

func TestRetriesOn5xx(t *testing.T) {
	m := fakefedora.NewMirror()
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261122.n.0", Status: "FINISHED"})
	var fails atomic.Int32
	fails.Store(2)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if fails.Add(-1) >= 0 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		m.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c, _ := fedfind.NewClient(fedfind.ClientOptions{Root: srv.URL + "/compose", HTTP: httpclient.New(httpclient.Options{RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond})})
	cm, _ := c.Resolve(context.Background(), "Fedora-Rawhide-20261122.n.0")
	st, err := c.Status(context.Background(), cm)
	if err != nil || st != fedfind.StatusFinished || hits.Load() != 3 {
		t.Errorf("status %q %v after %d requests (want 3)", st, err, hits.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Status(ctx, cm); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestPrevious(t *testing.T) {
	tests := []struct {
		id, want string
		listing  bool
		maxReq   int64
	}{
		// From the listing: one listing plus a STATUS read per candidate.
		{"Fedora-Rawhide-20261122.n.0", "Fedora-Rawhide-20261120.n.1", true, 3},  // skips TERMINATED .21
		{"Fedora-Rawhide-20261123.n.0", "Fedora-Rawhide-20261122.n.0", true, 2},  // running compose: previous is yesterday's
		{"Fedora-Rawhide-20261120.n.1", "Fedora-Rawhide-20261119.n.0", true, 3},  // skips DOOMED .n.0 of the same day
		{"Fedora-44-20261122.n.0", "Fedora-44-20261121.n.0", true, 2},            // Branched
		{"Fedora-Rawhide-20261122.n.0", "Fedora-Rawhide-20261120.n.1", false, 6}, // probing: STATUS GETs only
		{"Fedora-Rawhide-20261120.n.1", "Fedora-Rawhide-20261119.n.0", false, 4},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/listing=%v", tt.id, tt.listing), func(t *testing.T) {
			m, c := newMirror(t)
			m.SetListing(tt.listing)
			cm, _ := c.Resolve(context.Background(), tt.id)
			res, err := c.Previous(context.Background(), cm, fedfind.PreviousOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Compose.ID.String() != tt.want || !res.Status.Success() {
				t.Errorf("previous = %s (%s)", res.Compose.ID, res.Status)
			}
			if res.Requests > tt.maxReq || res.Requests != m.Requests() {
				t.Errorf("took %d requests (mirror saw %d), want at most %d", res.Requests, m.Requests(), tt.maxReq)
			}
		})
	}
	_, c := newMirror(t)
	cm, _ := c.Resolve(context.Background(), "Fedora-Rawhide-20261119.n.0")
	if _, err := c.Previous(context.Background(), cm, fedfind.PreviousOptions{MaxDaysBack: 3}); !errors.Is(err, fedfind.ErrNoPrevious) {
		t.Errorf("first compose: %v", err)
	}
}

// fedfindPrevious models fedfind 6.x's previous_release for nightlies and
// counts the requests it makes: step the respin down, from respin 0 to the
// previous day's respin 5; each try GETs the compose directory and, if it
// exists, its STATUS; the first FINISHED or FINISHED_INCOMPLETE compose wins;
// at most 30 tries.
func fedfindPrevious(statuses map[string]string, id fedfind.ComposeID) (string, int) {
	requests := 0
	date, respin := id.Time(), id.Respin
	for try := 0; try < 30; try++ {
		if respin == 0 {
			date, respin = date.AddDate(0, 0, -1), 5
		} else {
			respin--
		}
		cid := fmt.Sprintf("%s-%s.n.%d", id.Prefix, date.Format("20060102"), respin)
		requests++ // exists: GET <cid>/compose
		st, ok := statuses[cid]
		if !ok {
			continue
		}
		requests++ // GET STATUS
		if st == "FINISHED" || st == "FINISHED_INCOMPLETE" {
			return cid, requests
		}
	}
	return "", requests
}

// TestPreviousBeatsFedfind measures both algorithms on the same tree. The
// figures are logged for the issue note.
func TestPreviousBeatsFedfind(t *testing.T) {
	m, c := newMirror(t)
	statuses := map[string]string{
		"Fedora-Rawhide-20261119.n.0": "FINISHED", "Fedora-Rawhide-20261120.n.0": "DOOMED",
		"Fedora-Rawhide-20261120.n.1": "FINISHED_INCOMPLETE", "Fedora-Rawhide-20261121.n.0": "TERMINATED",
		"Fedora-Rawhide-20261122.n.0": "FINISHED", "Fedora-Rawhide-20261123.n.0": "STARTED",
	}
	for _, listing := range []bool{true, false} {
		m.SetListing(listing)
		for _, id := range []string{"Fedora-Rawhide-20261122.n.0", "Fedora-Rawhide-20261123.n.0"} {
			cm, _ := c.Resolve(context.Background(), id)
			res, err := c.Previous(context.Background(), cm, fedfind.PreviousOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want, theirs := fedfindPrevious(statuses, cm.ID)
			if want != res.Compose.ID.String() {
				t.Errorf("%s: fedfind finds %s, composeci %s", id, want, res.Compose.ID)
			}
			if res.Requests >= int64(theirs) {
				t.Errorf("%s listing=%v: composeci %d requests, fedfind %d", id, listing, res.Requests, theirs)
			}
			t.Logf("%s listing=%v: composeci %d requests (%s), fedfind %d", id, listing, res.Requests, res.Method, theirs)
		}
	}
}

func httpGet(u string) (*http.Response, error) { return http.Get(u) }

// TestLatestUpdatesShareALink: Pungi names the latest link
// latest-<short>-<version> whatever the release type, so updates and
// updates-testing composes of a release move one link; the stream whose
// compose it does not name is found in the directory's listing.
func TestLatestUpdatesShareALink(t *testing.T) {
	m := fakefedora.NewMirror()
	for _, s := range []fakefedora.ComposeSpec{
		{ID: "Fedora-43-updates-20261121.0", Status: "FINISHED", Images: []fakefedora.ImageSpec{}},
		{ID: "Fedora-43-updates-20261122.0", Status: "DOOMED", Images: []fakefedora.ImageSpec{}},
		{ID: "Fedora-43-updates-testing-20261122.0", Status: "FINISHED", Images: []fakefedora.ImageSpec{}},
		{ID: "Fedora-43-updates-testing-20261123.0", Status: "STARTED", Images: []fakefedora.ImageSpec{}},
	} {
		m.MustAddCompose(s)
	}
	root := m.Start()
	t.Cleanup(m.Close)
	c, err := fedfind.NewClient(fedfind.ClientOptions{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for ref, want := range map[string]string{
		"updates-testing:43": "Fedora-43-updates-testing-20261122.0", // the link names it
		"updates:43":         "Fedora-43-updates-20261121.0",         // from the listing, past the DOOMED one
	} {
		cm, err := c.Resolve(ctx, ref)
		if err != nil || cm.ID.String() != want {
			t.Errorf("Resolve(%q) = %v, %v; want %s", ref, cm, err, want)
		}
	}
	// Without a listing the link's mismatch is an error that says so.
	m.SetListing(false)
	_, err = c.Resolve(ctx, "updates:43")
	if !errors.Is(err, fedfind.ErrMismatch) || !strings.Contains(err.Error(), "latest-Fedora-43 points at Fedora-43-updates-testing-20261122.0") {
		t.Errorf("Resolve(updates:43) without a listing: %v", err)
	}
}

// TestListComposesLinkForms reads listings whose links are relative,
// absolute in path or full URLs, as servers other than Apache write them,
// and keeps only the entries of the listed directory.
func TestListComposesLinkForms(t *testing.T) {
	var base string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/compose/rawhide/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `<html><body>
<a href="?C=M;O=D">Last modified</a>
<a href="../">Parent Directory</a>
<a href="/compose/">Parent, absolute</a>
<a href="Fedora-Rawhide-20261120.n.0/">Fedora-Rawhide-20261120.n.0/</a>
<a href="./Fedora-Rawhide-20261120.n.1/">Fedora-Rawhide-20261120.n.1/</a>
<a href="/compose/rawhide/Fedora-Rawhide-20261121.n.0/">Fedora-Rawhide-20261121.n.0/</a>
<a href="%s/compose/rawhide/Fedora-Rawhide-20261122.n.0/">Fedora-Rawhide-20261122.n.0/</a>
<a href="https://elsewhere.example/compose/rawhide/Fedora-Rawhide-20261123.n.0/">elsewhere</a>
<a href="/compose/branched/Fedora-44-20261122.n.0/">another directory</a>
<a href="/compose/rawhide/Fedora-Rawhide-20261119.n.0/compose/">too deep</a>
<a href="latest-Fedora-Rawhide">latest-Fedora-Rawhide</a>
</body></html>`, base)
	}))
	t.Cleanup(srv.Close)
	base = srv.URL
	c, err := fedfind.NewClient(fedfind.ClientOptions{Root: srv.URL + "/compose"})
	if err != nil {
		t.Fatal(err)
	}
	cm, err := c.Locate(mustID(t, "Fedora-Rawhide-20261122.n.0"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := c.ListComposes(context.Background(), cm.Stream)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, id := range ids {
		got = append(got, id.String())
	}
	want := []string{"Fedora-Rawhide-20261122.n.0", "Fedora-Rawhide-20261121.n.0", "Fedora-Rawhide-20261120.n.1", "Fedora-Rawhide-20261120.n.0"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("listing read as %q, want %q", got, want)
	}
}

func mustID(t *testing.T, s string) fedfind.ComposeID {
	t.Helper()
	id, err := fedfind.ParseComposeID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestNewest: a stream's newest compose, finished or not, from the
// listing; without one, the latest link's (the newest finished).
func TestNewest(t *testing.T) {
	m, c := newMirror(t)
	ctx := context.Background()
	for _, listing := range []bool{true, false} {
		m.SetListing(listing)
		want := map[bool]string{true: "Fedora-Rawhide-20261123.n.0", false: "Fedora-Rawhide-20261122.n.0"}[listing]
		cm, err := c.ResolveNewest(ctx, "rawhide")
		if err != nil || cm.ID.String() != want {
			t.Errorf("listing %v: newest rawhide %v, %v; want %s", listing, cm, err, want)
		}
		// An ID is itself, and Resolve keeps to the newest finished.
		if cm, err := c.ResolveNewest(ctx, "Fedora-Rawhide-20261120.n.0"); err != nil || cm.ID.String() != "Fedora-Rawhide-20261120.n.0" {
			t.Errorf("an ID: %v, %v", cm, err)
		}
		if cm, err := c.Resolve(ctx, "rawhide"); err != nil || cm.ID.String() != "Fedora-Rawhide-20261122.n.0" {
			t.Errorf("Resolve(rawhide) = %v, %v", cm, err)
		}
	}
}
