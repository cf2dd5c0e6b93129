package browsertest

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:4321/", true},
		{"https://127.0.0.1:4321/report.html", true},
		{"http://[::1]:80/", true},
		{"file:///tmp/x/report.html", true},
		{"file://localhost/tmp/report.html", true},
		{"http://localhost:8080/", false}, // a name: httptest serves on 127.0.0.1
		{"https://example.org/", false},
		{"http://10.0.0.1/", false},
		{"file://example.org/etc/passwd", false},
		{"javascript:alert(1)", false},
		{"data:text/html,<p>x", false},
		{"about:blank", false},
	} {
		if err := CheckURL(tc.url); (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}

const testPage = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>browsertest page</title>
<style>.gone { display: none } .ghost { visibility: hidden }</style></head>
<body>
<h1>Heading</h1>
<h2>First</h2><p>one</p>
<h2 class="gone">Hidden</h2>
<h2>Second</h2><p class="ghost">invisible</p>
<a href="https://example.org/job/1">job 1</a> <a href="/local">local</a>
<div class="gone"><span id="inner">inside a hidden block</span></div>
<script>window.ok = 1;</script>
</body></html>`

// TestPage checks each helper against a page whose answers are known.
func TestPage(t *testing.T) {
	u := Serve(t, []byte(testPage))
	p := New(t)
	p.Open(u)
	if got := p.Title(); got != "browsertest page" {
		t.Errorf("Title = %q", got)
	}
	if got, want := p.Texts("h2"), []string{"First", "Hidden", "Second"}; !slices.Equal(got, want) {
		t.Errorf("Texts(h2) = %q, want %q", got, want)
	}
	if got := p.Count("a"); got != 2 {
		t.Errorf("Count(a) = %d", got)
	}
	if got, want := p.Attrs("a", "href"), []string{"https://example.org/job/1", "/local"}; !slices.Equal(got, want) {
		t.Errorf("Attrs(a, href) = %q, want %q", got, want)
	}
	els := p.Elements("h2")
	if len(els) != 3 || !els[0].Visible || els[1].Visible || !els[2].Visible || els[0].Top >= els[2].Top {
		t.Errorf("Elements(h2) = %+v: want visible, hidden, visible, top to bottom", els)
	}
	if el := p.Elements("#inner"); len(el) != 1 || el[0].Visible {
		t.Errorf("Elements(#inner) = %+v: want one, hidden by its parent", el)
	}
	if el := p.Elements("p.ghost"); len(el) != 1 || el[0].Visible {
		t.Errorf("Elements(p.ghost) = %+v: want one, not visible", el)
	}
	if text := p.Text(); !strings.Contains(text, "Second") || strings.Contains(text, "inside a hidden block") {
		t.Errorf("Text = %q: want the visible text only", text)
	}
	if !p.Defined("ok") {
		t.Error("Defined(ok) = false; the page's script sets it")
	}
	if p.Defined("pwned") {
		t.Error("Defined(pwned) = true")
	}
	if got := Eval[int](p, `1 + 2`); got != 3 {
		t.Errorf("Eval(1 + 2) = %d", got)
	}
	if r := p.Requests(); len(r) != 1 || r[0] != u {
		t.Errorf("Requests = %q, want %s first", r, u)
	}
	if e := p.Exceptions(); len(e) != 0 {
		t.Errorf("Exceptions = %q", e)
	}

	path := p.Screenshot("page")
	png, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("%s is not a PNG", path)
	}
}

// TestFileURL opens a page from a temporary file, and sees what a page's
// script does that a test must catch: dialogs and uncaught exceptions. The
// dialog must not stall the page.
func TestFileURL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "page.html")
	html := `<!DOCTYPE html><title>file page</title><p>from a file</p>
<script>alert("hello"); throw new Error("boom");</script>`
	if err := os.WriteFile(path, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
	p := New(t)
	p.Open("file://" + path)
	if got := p.Title(); got != "file page" {
		t.Errorf("Title = %q", got)
	}
	if d := p.Dialogs(); len(d) != 1 || d[0] != "alert: hello" {
		t.Errorf("Dialogs = %q", d)
	}
	if e := p.Exceptions(); len(e) != 1 || !strings.Contains(e[0], "boom") {
		t.Errorf("Exceptions = %q", e)
	}
}

// TestIsolation checks that two pages share no state: each test's tab has a
// browser context of its own.
func TestIsolation(t *testing.T) {
	u := Serve(t, []byte(`<!DOCTYPE html><title>storage</title>`))
	a := New(t)
	a.Open(u)
	Eval[any](a, `localStorage.setItem("k", "v"), null`)
	b := New(t)
	b.Open(u)
	if got := Eval[*string](b, `localStorage.getItem("k")`); got != nil {
		t.Errorf("a second page sees the first one's storage: %q", *got)
	}
}
