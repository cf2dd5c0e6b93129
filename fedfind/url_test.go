package fedfind_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/httpclient"
)

// TestResolveURLInsideTree: any URL inside a compose's tree names that
// compose, cut at its directory without a request; a latest-* link names
// the compose it points at, read from its COMPOSE_ID (one request) or, in a
// tree without one, from its composeinfo.json.
func TestResolveURLInsideTree(t *testing.T) {
	m, c := newMirror(t)
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Cloud-44-20261122.0", Status: "FINISHED", NoComposeIDFile: true})
	ctx := context.Background()
	root := c.Root()
	const rawhide = "Fedora-Rawhide-20261122.n.0"
	iso := "/compose/Everything/x86_64/iso/Fedora-Everything-netinst-x86_64-Rawhide-20261122.n.0.iso"
	tests := []struct {
		name, ref, id, dir string
		kind               fedfind.StreamKind
		requests           int64
	}{
		{"compose directory", root + "/rawhide/" + rawhide, rawhide, root + "/rawhide/" + rawhide, fedfind.StreamRawhide, 0},
		{"published tree", root + "/rawhide/" + rawhide + "/compose/", rawhide, root + "/rawhide/" + rawhide, fedfind.StreamRawhide, 0},
		{"metadata directory", root + "/rawhide/" + rawhide + "/compose/metadata/", rawhide, root + "/rawhide/" + rawhide, fedfind.StreamRawhide, 0},
		{"an image", root + "/rawhide/" + rawhide + iso, rawhide, root + "/rawhide/" + rawhide, fedfind.StreamRawhide, 0},
		{"STATUS", root + "/rawhide/" + rawhide + "/STATUS", rawhide, root + "/rawhide/" + rawhide, fedfind.StreamRawhide, 0},
		{"a log", root + "/rawhide/" + rawhide + "/logs/global/pungi.global.log", rawhide, root + "/rawhide/" + rawhide, fedfind.StreamRawhide, 0},
		{"an image under Fedora's tree", "https://kojipkgs.fedoraproject.org/compose/rawhide/" + rawhide + iso, rawhide,
			"https://kojipkgs.fedoraproject.org/compose/rawhide/" + rawhide, fedfind.StreamRawhide, 0},
		{"the latest link", root + "/rawhide/latest-Fedora-Rawhide", rawhide, root + "/rawhide/" + rawhide, fedfind.StreamRawhide, 1},
		{"the latest link's tree", root + "/rawhide/latest-Fedora-Rawhide/compose/", rawhide, root + "/rawhide/" + rawhide, fedfind.StreamRawhide, 1},
		{"an image through the latest link", root + "/rawhide/latest-Fedora-Rawhide" + iso, rawhide, root + "/rawhide/" + rawhide, fedfind.StreamRawhide, 1},
		{"Branched's latest link", root + "/branched/latest-Fedora-44/compose/metadata/", "Fedora-44-20261122.n.0",
			root + "/branched/Fedora-44-20261122.n.0", fedfind.StreamBranched, 1},
		{"updates' latest link", root + "/updates/latest-Fedora-43/", "Fedora-43-updates-20261122.0",
			root + "/updates/Fedora-43-updates-20261122.0", fedfind.StreamUpdates, 1},
		{"a latest link without COMPOSE_ID: composeinfo.json", root + "/cloud/latest-Fedora-Cloud-44/compose/", "Fedora-Cloud-44-20261122.0",
			root + "/cloud/Fedora-Cloud-44-20261122.0", fedfind.StreamCloud, 2},
		{"the metadata archive", root + "/metadata-archive/2026/Fedora-Rawhide-20261119.n.0/images.json", "Fedora-Rawhide-20261119.n.0",
			root + "/rawhide/Fedora-Rawhide-20261119.n.0", fedfind.StreamRawhide, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := m.Requests()
			cm, err := c.Resolve(ctx, tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			if cm.ID.String() != tt.id || cm.Dir != tt.dir || cm.Location != tt.dir+"/compose" || cm.Stream.Kind != tt.kind {
				t.Errorf("got %s in %s (%s), stream %s; want %s in %s, stream %s", cm.ID, cm.Dir, cm.Location, cm.Stream.Kind, tt.id, tt.dir, tt.kind)
			}
			if n := m.Requests() - before; n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
		})
	}
	// What a compose found through its latest link reads is that compose's.
	cm, err := c.Resolve(ctx, root+"/rawhide/latest-Fedora-Rawhide/compose/")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status(ctx, cm); err != nil || st != fedfind.StatusFinished {
		t.Errorf("status through the latest link: %q %v", st, err)
	}
	if images, err := c.Images(ctx, cm); err != nil || len(images) == 0 || !strings.HasPrefix(images[0].URL, root+"/rawhide/"+rawhide+"/compose/") {
		t.Errorf("images through the latest link: %v", err)
	}
}

func TestResolveURLRejects(t *testing.T) {
	m, c := newMirror(t)
	ctx := context.Background()
	root := c.Root()
	const rawhide = "Fedora-Rawhide-20261122.n.0"
	for _, tt := range []struct {
		ref  string
		want error
	}{
		{root + "/rawhide/", fedfind.ErrInvalidInput},
		{root, fedfind.ErrInvalidInput},
		{root + "/rawhide/" + rawhide + "x/compose/", fedfind.ErrInvalidInput},
		{root + "/rawhide/Fedora-Rawhide-20261122.n.0.iso", fedfind.ErrInvalidInput},
		{root + "/rawhide/latest-Fedora-Rawhide/../../../etc/" + rawhide, fedfind.ErrInvalidInput},
		{root + "/rawhide/%2E%2E/" + rawhide + "/compose", fedfind.ErrInvalidInput},
		{root + "/rawhide/x%2F..%2F..%2F/" + rawhide + "/compose", fedfind.ErrInvalidInput},
		{root + "/rawhide//" + rawhide, fedfind.ErrInvalidInput},
		{root + "/rawhide/" + rawhide + "/compose?", fedfind.ErrInvalidInput},
		{root + "/rawhide/latest-Fedora-Rawhide#x", fedfind.ErrInvalidInput},
		{root + "/rawhide/latest-", fedfind.ErrInvalidInput},
		{root + "/rawhide/latest-..Fedora", fedfind.ErrInvalidInput},
		{"https://evil.example/compose/rawhide/latest-Fedora-Rawhide", fedfind.ErrInvalidInput},
		{"https://kojipkgs.fedoraproject.org.evil.example/compose/rawhide/" + rawhide, fedfind.ErrInvalidInput},
		{"https://kojipkgs.fedoraproject.org/composer/rawhide/" + rawhide, fedfind.ErrInvalidInput},
		{"https://user@kojipkgs.fedoraproject.org/compose/rawhide/" + rawhide, fedfind.ErrInvalidInput},
		{root + "/eln/latest-Fedora-eln", fedfind.ErrComposeNotFound}, // no ELN compose finished
	} {
		before := m.Requests()
		if cm, err := c.Resolve(ctx, tt.ref); !errors.Is(err, tt.want) {
			t.Errorf("Resolve(%q) = %+v, %v; want %v", tt.ref, cm, err, tt.want)
		}
		if tt.want == fedfind.ErrInvalidInput && m.Requests() != before {
			t.Errorf("Resolve(%q) made a request", tt.ref)
		}
	}
}

// TestLatestLinkUntrusted: what a latest link's COMPOSE_ID says is checked
// like any input, and a redirect out of the trusted trees is never followed.
func TestLatestLinkUntrusted(t *testing.T) {
	var evilHits atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evilHits.Add(1)
		w.Write([]byte("Fedora-Rawhide-20261122.n.0"))
	}))
	defer evil.Close()
	tree := map[string]string{
		"/compose/rawhide/latest-Fedora-Rawhide/COMPOSE_ID": "Fedora-44-20261122.n.0",
		"/compose/branched/latest-Fedora-44/COMPOSE_ID":     "../../etc/passwd-20261122.n.0",
		"/compose/eln/latest-Fedora-eln/COMPOSE_ID":         "<html>Moved</html>",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/compose/cloud/latest-Fedora-Cloud-44/COMPOSE_ID" {
			http.Redirect(w, r, evil.URL+"/COMPOSE_ID", http.StatusFound)
			return
		}
		if b, ok := tree[r.URL.Path]; ok {
			w.Write([]byte(b))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	c, err := fedfind.NewClient(fedfind.ClientOptions{Root: srv.URL + "/compose",
		HTTP: httpclient.New(httpclient.Options{RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond})})
	if err != nil {
		t.Fatal(err)
	}
	var me *fedfind.MetadataError
	for _, tt := range []struct {
		link string
		want func(error) bool
	}{
		{"rawhide/latest-Fedora-Rawhide", func(err error) bool { return errors.Is(err, fedfind.ErrMismatch) }},
		{"branched/latest-Fedora-44", func(err error) bool { return errors.As(err, &me) && errors.Is(err, fedfind.ErrInvalidInput) }},
		{"eln/latest-Fedora-eln", func(err error) bool { return errors.As(err, &me) }},
		{"cloud/latest-Fedora-Cloud-44", func(err error) bool { return errors.Is(err, fedfind.ErrUntrustedRedirect) }},
	} {
		if cm, err := c.Resolve(context.Background(), c.Root()+"/"+tt.link+"/compose/"); !tt.want(err) {
			t.Errorf("%s: %+v, %v", tt.link, cm, err)
		}
	}
	if evilHits.Load() != 0 {
		t.Errorf("a redirect out of the trusted trees was followed")
	}
}

// notFound answers every request 404 at once, without a network.
type notFound struct{ n atomic.Int32 }

func (t *notFound) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return &http.Response{StatusCode: http.StatusNotFound, Body: http.NoBody, Request: r, Header: http.Header{}}, nil
}

// FuzzResolveURL: whatever URL is given, a compose it resolves to lies in
// a trusted tree, under a directory named by its ID, with no dot segment.
func FuzzResolveURL(f *testing.F) {
	for _, s := range []string{
		"https://kojipkgs.fedoraproject.org/compose/rawhide/Fedora-Rawhide-20261122.n.0/compose/",
		"http://mirror.example/compose/rawhide/latest-Fedora-Rawhide/compose/metadata/",
		"http://mirror.example/compose/rawhide/%2E%2E/Fedora-Rawhide-20261122.n.0",
		"https://dl.fedoraproject.org/pub/alt/x/Fedora-44-20261010.1/compose/Server/x86_64/iso/a.iso",
		"http://mirror.example/compose/metadata-archive/2026/Fedora-44-20261122.n.0/images.json",
	} {
		f.Add(s)
	}
	tr := &notFound{}
	c, err := fedfind.NewClient(fedfind.ClientOptions{Root: "http://mirror.example/compose",
		HTTP: httpclient.New(httpclient.Options{Transport: tr, RetryMax: -1})})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		if !strings.Contains(ref, "://") {
			return
		}
		cm, err := c.FromURL(context.Background(), ref)
		if err != nil {
			return
		}
		trusted := strings.HasPrefix(cm.Dir, c.Root()+"/")
		for _, p := range fedfind.FedoraPrefixes {
			trusted = trusted || strings.HasPrefix(cm.Dir, "http://"+p+"/") || strings.HasPrefix(cm.Dir, "https://"+p+"/")
		}
		// The directory is a URL: its last segment may be escaped
		// ("Fedora%2B-…" names the compose Fedora+-…), and it names the
		// compose in any form the parser reads as the same ID (productmd's
		// ".nightly" for ".n", a respin "00" for "0").
		last, uerr := url.PathUnescape(path.Base(cm.Dir))
		named, perr := fedfind.ParseComposeID(last)
		if !trusted || uerr != nil || perr != nil || named != cm.ID || strings.Contains(cm.Dir+"/", "/../") ||
			strings.Contains(cm.Dir+"/", "/./") || cm.Location != cm.Dir+"/compose" {
			t.Fatalf("%q resolved to %s in %s", ref, cm.ID, cm.Dir)
		}
	})
}
