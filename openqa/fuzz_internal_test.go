package openqa

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzNextPage reads arbitrary Link headers of a jobs page, as a server or
// a proxy in front of it may send them: whatever they say, the next page is
// asked of the configured server (same scheme and host, no credentials in
// the URL), so a signed request never goes elsewhere; a rel="next" found is
// one the header holds between angle brackets, whatever the case of "next".
func FuzzNextPage(f *testing.F) {
	const cur = "https://openqa.example/api/v1/jobs?build=Fedora-Rawhide-20261122.n.0&limit=2&offset=0"
	for _, s := range []struct {
		link string
		n    int
	}{
		{`<https://openqa.example/api/v1/jobs?build=Fedora-Rawhide-20261122.n.0&limit=2&offset=2>; rel="next"`, 2},
		{`<https://openqa.example/api/v1/jobs?offset=0>; rel="prev", <https://openqa.example/api/v1/jobs?offset=4>; rel="next"`, 2},
		{`<https://proxy.internal:8443/api/v1/jobs?offset=2>; rel=next; title="x"`, 2},
		{`</api/v1/jobs?offset=2>; rel="first next"`, 1},
		{`<api/v1/jobs?offset=2>; rel="next"`, 2},
		{`<x:.evil.example/api>; rel="next"`, 2},
		{`<//evil.example/api/v1/jobs>; rel="next"`, 2},
		{`<https://u:p@openqa.example/api/v1/jobs>; rel="NEXT"`, 2},
		{`<%zz>; rel="next"`, 2},
		{"", 2},
		{"", 1},
		{"", 0},
	} {
		f.Add(s.link, s.n)
	}
	c, err := New(Options{BaseURL: "https://openqa.example", PageSize: 2})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, link string, n int) {
		hdr := http.Header{}
		if link != "" {
			hdr.Set("Link", link)
			if rel := linkRel(link, "next"); rel != "" {
				if !strings.Contains(link, "<"+rel+">") {
					t.Fatalf("Link %q: rel=next %q is not in it", link, rel)
				}
				if linkRel(link, "NeXt") != rel {
					t.Fatalf("Link %q: relation names are not case-insensitive", link)
				}
			}
		}
		next, err := c.nextPage(hdr, cur, n)
		if err != nil || next == "" {
			return
		}
		u, err := url.Parse(next)
		if err != nil {
			t.Fatalf("Link %q: next page %q is not a URL: %v", link, next, err)
		}
		if u.Scheme != c.base.Scheme || u.Host != c.base.Host || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
			t.Fatalf("Link %q: next page %q is not on %s", link, next, c.base)
		}
		if link == "" && (n < 2 || u.Query().Get("offset") != strconv.Itoa(n)) {
			t.Fatalf("%d jobs on a page of 2: next page %q", n, next)
		}
	})
}
