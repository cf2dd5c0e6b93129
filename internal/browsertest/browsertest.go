// Package browsertest loads HTML pages in a real headless Chromium for tests,
// the way a reader's browser would: pages composeci renders (the compose check
// report, the dashboard) are checked in a browser, not only as strings.
//
// It drives Debian's chromium (/usr/bin/chromium, or the executable the
// CHROMIUM environment variable names) with github.com/chromedp/chromedp. It
// never downloads a browser: `make browser` installs Debian's package, and
// `make test` runs it first. When chromium is missing a test that asks for a
// page fails with a message saying so; with COMPOSECI_SKIP_BROWSER=1 in the
// environment it is skipped instead (for machines that cannot install it).
//
// A package whose tests use a browser starts it once for all its tests with
//
//	func TestMain(m *testing.M) { browsertest.Main(m) }
//
// Each test then gets a Page with New: a tab in a browser context of its own
// (no cookies or storage shared between tests). Without that TestMain every
// New starts and stops a browser of its own, which is correct but slower.
// Either way the browser runs headless with a fresh profile
// (--user-data-dir: a temporary directory Main removes, or t.TempDir()).
//
// Page.Screenshot writes a PNG of the whole page for a human to look at; with
// COMPOSECI_SCREENSHOT_DIR=dir the PNGs are also copied to dir, e.g.
//
//	COMPOSECI_SCREENSHOT_DIR=/tmp/shots go test ./reports -run Browser
//
// Pages may only be opened from 127.0.0.1 (an httptest server, see Serve) or
// from file:// URLs, and the browser resolves no host name, so a page under
// test can reach nothing outside the machine. Every browser action is bounded
// by Page.Timeout.
//
// Only tests import this package.
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The environment variables this package reads.
const (
	// EnvChromium names the chromium executable, instead of DefaultChromium.
	EnvChromium = "CHROMIUM"
	// EnvSkip set to 1 skips the tests that need a browser instead of
	// failing them when chromium is missing (or present).
	EnvSkip = "COMPOSECI_SKIP_BROWSER"
	// EnvScreenshotDir names a directory Screenshot copies its PNGs to, for a
	// human (or a CI artifact upload) to look at.
	EnvScreenshotDir = "COMPOSECI_SCREENSHOT_DIR"
)

// DefaultChromium is where Debian's chromium package installs the browser.
const DefaultChromium = "/usr/bin/chromium"

// Timeouts. Generous, for the race detector on a loaded 2-core machine; a
// healthy run is far below them.
const (
	// StartTimeout bounds the start of a browser.
	StartTimeout = 45 * time.Second
	// ActionTimeout is the default Page.Timeout.
	ActionTimeout = 20 * time.Second
)

// Viewport is the size of a page's window, in CSS pixels: a laptop screen.
const (
	ViewportWidth  = 1280
	ViewportHeight = 900
)

// ExecPath returns the chromium executable the tests use.
func ExecPath() string {
	if p := os.Getenv(EnvChromium); p != "" {
		return p
	}
	return DefaultChromium
}

// Skipped reports whether COMPOSECI_SKIP_BROWSER=1 asks to skip browser tests.
func Skipped() bool { return os.Getenv(EnvSkip) == "1" }

// browser is one running chromium.
type browser struct {
	ctx    context.Context // a chromedp context that has run: tabs derive from it
	cancel context.CancelFunc
	stop   context.CancelFunc // the allocator's
}

// shared is the browser of a package whose TestMain is Main.
var shared struct {
	sync.Mutex
	enabled bool // Main is running the tests
	once    sync.Once
	b       *browser
	dir     string
	err     error
}

// Main runs the package's tests with one browser shared by all of them,
// started by the first New and stopped when the tests end. Call it from
// TestMain (and return; the test binary exits with the tests' status).
func Main(m *testing.M) {
	shared.Lock()
	shared.enabled = true
	shared.Unlock()
	m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.b != nil {
		shared.b.close()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
}

// start starts chromium (the executable bin) with a fresh profile in
// dataDir.
func start(bin, dataDir string) (*browser, error) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// No name resolves: a page under test reaches nothing but
		// 127.0.0.1.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(dataDir),
		chromedp.WindowSize(ViewportWidth, ViewportHeight),
	)
	actx, stop := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancel := chromedp.NewContext(actx)
	b := &browser{ctx: bctx, cancel: cancel, stop: stop}
	if err := first(bctx, StartTimeout); err != nil {
		b.close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	return b, nil
}

// first makes the first Run on a chromedp context, which starts its browser
// or opens its tab. That Run ties the browser or tab to its context, so it
// must not carry a timeout of its own (the tab would stop with it): the wait
// is bounded from outside instead, and ctx is the caller's to cancel.
func first(ctx context.Context, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(ctx) }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("no answer in %v", timeout)
	}
}

// close stops the browser gracefully, or kills it after a few seconds.
func (b *browser) close() {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	_ = chromedp.Cancel(ctx) // stopping anyway: nothing to do with an error
	cancel()
	b.cancel()
	b.stop()
}

// browserFor returns the browser t's pages open in: the shared one under
// Main, else one of t's own, stopped when t ends.
func browserFor(t testing.TB) *browser {
	t.Helper()
	if Skipped() {
		t.Skipf("%s=1: skipping a test that needs a real browser", EnvSkip)
	}
	bin := ExecPath()
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("browsertest: no chromium executable at %s: run `make browser` to install Debian's chromium "+
			"(or set %s to a chromium executable, or %s=1 to skip the browser tests)", bin, EnvChromium, EnvSkip)
	}
	shared.Lock()
	enabled := shared.enabled
	shared.Unlock()
	if !enabled {
		b, err := start(bin, t.TempDir())
		if err != nil {
			t.Fatalf("browsertest: %v", err)
		}
		t.Cleanup(b.close)
		return b
	}
	shared.once.Do(func() {
		// A fresh profile, removed by Main when the tests end.
		dir, err := os.MkdirTemp("", "composeci-chromium-")
		var b *browser
		if err == nil {
			b, err = start(bin, dir)
		}
		shared.Lock()
		shared.b, shared.dir, shared.err = b, dir, err
		shared.Unlock()
	})
	shared.Lock()
	defer shared.Unlock()
	if shared.err != nil {
		t.Fatalf("browsertest: %v", shared.err)
	}
	return shared.b
}

// Page is one browser tab of a test, in a browser context of its own. Its
// methods fail the test on any error. A Page is not safe for concurrent use.
type Page struct {
	t   testing.TB
	ctx context.Context
	// Timeout bounds each action; ActionTimeout by default.
	Timeout time.Duration

	mu         sync.Mutex
	requests   []string
	exceptions []string
	dialogs    []string
}

// New opens a blank tab for t, closed when t ends. It fails t when chromium
// is missing (skips it with COMPOSECI_SKIP_BROWSER=1).
func New(t testing.TB) *Page {
	t.Helper()
	b := browserFor(t)
	p := &Page{t: t, Timeout: ActionTimeout}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(p.listen))
	p.ctx = ctx
	t.Cleanup(cancel)
	if err := first(ctx, p.Timeout); err != nil {
		t.Fatalf("browsertest: opening a tab: %v", err)
	}
	p.do("sizing the tab", chromedp.EmulateViewport(ViewportWidth, ViewportHeight))
	return p
}

// listen records what a page does that a test may want to assert on. It
// runs on chromedp's reading goroutine: it must not block or call the
// browser itself.
func (p *Page) listen(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if ev.Request != nil && !browserOwn(ev.Request.URL, ev.DocumentURL) {
			p.requests = append(p.requests, ev.Request.URL)
		}
	case *runtime.EventExceptionThrown:
		if d := ev.ExceptionDetails; d != nil {
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			p.exceptions = append(p.exceptions, msg)
		}
	case *page.EventJavascriptDialogOpening:
		p.dialogs = append(p.dialogs, string(ev.Type)+": "+ev.Message)
		// An open dialog stalls the page: dismiss it, from elsewhere.
		go func() {
			ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
			defer cancel()
			_, _ = chromedp.Run(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				_, err := cdp.Call(ctx, t, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
				return err
			})) // best effort: a stalled page fails the next action anyway
		}()
	}
}

// do runs actions with the page's timeout, failing the test on error.
func (p *Page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, p.Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browsertest: %s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression into T with the page's timeout.
func eval[T any](p *Page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, p.Timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("browsertest: evaluating %s: %v", expr, err)
	}
	return v
}

// CheckURL returns an error unless u is one a test may open: http(s) on
// 127.0.0.1 or [::1] (an httptest server), or a file:// URL.
func CheckURL(u string) error {
	pu, err := url.Parse(u)
	if err != nil {
		return err
	}
	switch pu.Scheme {
	case "file":
		if pu.Host != "" && pu.Host != "localhost" {
			return fmt.Errorf("%s: a file URL of another host", u)
		}
		return nil
	case "http", "https":
		if ip := net.ParseIP(pu.Hostname()); ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("%s: tests open pages from 127.0.0.1 only (an httptest server)", u)
	}
	return fmt.Errorf("%s: tests open http://127.0.0.1 and file:// URLs only", u)
}

// Open loads u and waits for its load event. u must pass CheckURL.
func (p *Page) Open(u string) {
	p.t.Helper()
	if err := CheckURL(u); err != nil {
		p.t.Fatalf("browsertest: %v", err)
	}
	p.do("opening "+u, chromedp.Navigate(u))
}

// Serve serves body as text/html from an httptest server on 127.0.0.1, closed
// when t ends, and returns its URL.
func Serve(t testing.TB, body []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(body) // an error is the browser hanging up
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// Title returns document.title.
func (p *Page) Title() string {
	p.t.Helper()
	return eval[string](p, `document.title`)
}

// Text returns the rendered text of the whole page (document.body.innerText):
// what a reader sees, markup resolved.
func (p *Page) Text() string {
	p.t.Helper()
	return eval[string](p, `document.body ? document.body.innerText : ""`)
}

// Texts returns the rendered text (innerText) of every element matching the
// CSS selector sel, in document order.
func (p *Page) Texts(sel string) []string {
	p.t.Helper()
	return eval[[]string](p, `Array.from(document.querySelectorAll(`+jsString(sel)+`), e => e.innerText)`)
}

// Count returns how many elements match the CSS selector sel.
func (p *Page) Count(sel string) int {
	p.t.Helper()
	return eval[int](p, `document.querySelectorAll(`+jsString(sel)+`).length`)
}

// Attrs returns attribute name of every element matching sel, as written in
// the document ("" where absent).
func (p *Page) Attrs(sel, name string) []string {
	p.t.Helper()
	return eval[[]string](p, `Array.from(document.querySelectorAll(`+jsString(sel)+`), e => e.getAttribute(`+jsString(name)+`) ?? "")`)
}

// Element is where an element is drawn.
type Element struct {
	Tag  string `json:"tag"`
	Text string `json:"text"`
	// Visible is true when the element takes room on the page and is not
	// hidden by CSS (display, visibility, opacity).
	Visible bool `json:"visible"`
	// Top and Left are page coordinates in CSS pixels, Width and Height the
	// element's box.
	Top    float64 `json:"top"`
	Left   float64 `json:"left"`
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
}

// Elements returns every element matching sel with its box, in document
// order.
func (p *Page) Elements(sel string) []Element {
	p.t.Helper()
	return eval[[]Element](p, `Array.from(document.querySelectorAll(`+jsString(sel)+`), e => {
		const r = e.getBoundingClientRect(), s = getComputedStyle(e);
		let visible = r.width > 0 && r.height > 0 && s.visibility !== "hidden" && parseFloat(s.opacity) > 0;
		for (let a = e; visible && a; a = a.parentElement) {
			if (getComputedStyle(a).display === "none") visible = false;
		}
		return {tag: e.tagName.toLowerCase(), text: e.innerText, visible,
			top: r.top + window.scrollY, left: r.left + window.scrollX, width: r.width, height: r.height};
	})`)
}

// Defined reports whether the global variable name is set (not undefined) in
// the page: the canary of an XSS test, whose payloads set such a variable.
func (p *Page) Defined(name string) bool {
	p.t.Helper()
	return eval[bool](p, `typeof window[`+jsString(name)+`] !== "undefined"`)
}

// Eval evaluates a JavaScript expression in the page and decodes its JSON
// value into T.
func Eval[T any](p *Page, expr string) T {
	p.t.Helper()
	return eval[T](p, expr)
}

// browserOwn reports whether a request is one chromium makes for its own
// sake whatever the page holds: the /favicon.ico of the document's origin
// (fetched at a moment of its choosing, so not even reliably).
func browserOwn(req, doc string) bool {
	r, err1 := url.Parse(req)
	d, err2 := url.Parse(doc)
	return err1 == nil && err2 == nil && r.Path == "/favicon.ico" && r.RawQuery == "" &&
		r.Scheme == d.Scheme && r.Host == d.Host
}

// Requests returns the URL of every request the page made so far, the
// document's first. Chromium's own request for /favicon.ico is left out.
func (p *Page) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// Exceptions returns the uncaught JavaScript exceptions of the page so far.
func (p *Page) Exceptions() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.exceptions...)
}

// Dialogs returns the JavaScript dialogs (alert, confirm, prompt) the page
// opened so far, as "type: message"; they are dismissed.
func (p *Page) Dialogs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.dialogs...)
}

// SetViewport sizes the tab's window in CSS pixels (390 wide is a phone).
func (p *Page) SetViewport(width, height int) {
	p.t.Helper()
	p.do(fmt.Sprintf("sizing the tab to %dx%d", width, height), chromedp.EmulateViewport(int64(width), int64(height)))
}

// Screenshot takes a PNG of the whole page (not only the viewport), writes it
// to a file of the test's artifact directory (kept under the output
// directory with `go test -artifacts`, a temporary one otherwise), copies it
// to $COMPOSECI_SCREENSHOT_DIR when that is set, and returns the file's path
// (the copy's when there is one).
func (p *Page) Screenshot(name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, p.Timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("browsertest: screenshot: %v", err)
	}
	file := fileName(p.t.Name()+"-"+name) + ".png"
	path := filepath.Join(p.t.ArtifactDir(), file)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatalf("browsertest: %v", err)
	}
	if dir := os.Getenv(EnvScreenshotDir); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			p.t.Fatalf("browsertest: %s: %v", EnvScreenshotDir, err)
		}
		path = filepath.Join(dir, file)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			p.t.Fatalf("browsertest: %v", err)
		}
	}
	p.t.Logf("screenshot: %s", path)
	return path
}

// fileName makes s safe as a file name.
func fileName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s) // cannot fail for a string
	return string(b)
}
