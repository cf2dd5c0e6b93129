package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/internal/browsertest"
	"github.com/composeci/composeci/internal/testenv"
)

// TestDashboardInABrowser loads the dashboard of a simulated run — the
// demo, kept running — in a real headless Chromium at 1280 and 390 px:
// the streams page, a stream, a compose, following the links a reader
// follows; it checks what the compose page shows of its new failure (the
// test's name and its openQA job link), that nothing is fetched from
// anywhere else and no page is wider than the screen, and saves screenshots
// in the test's artifact directory (kept with `go test -artifacts`).
func TestDashboardInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo and a browser")
	}
	page := browsertest.New(t)
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--keep", "--data", data}, strings.NewReader(""), out, out, func(string) string { return "" })
	}()
	defer func() { cancel(); <-done }()
	testenv.WaitFor(t, 90*time.Second, "the demo to keep running", func() error {
		select {
		case code := <-done:
			done <- code
			t.Fatalf("demo exited %d:\n%s", code, out.String())
		default:
		}
		if !strings.Contains(out.String(), "until you press Ctrl-C") {
			return errors.New("not yet")
		}
		return nil
	})
	dash := regexp.MustCompile(`The dashboard: (http://127\.0\.0\.1:\d+)/`).FindStringSubmatch(out.String())
	openQA := regexp.MustCompile(`openQA +(http://127\.0\.0\.1:\d+)`).FindStringSubmatch(out.String())
	if dash == nil || openQA == nil {
		t.Fatalf("the demo named no dashboard or openQA:\n%s", out.String())
	}
	base := dash[1]

	for _, width := range []int{1280, 390} {
		page.SetViewport(width, 900)
		page.Open(base + "/")
		if text := page.Text(); !strings.Contains(text, "Fedora Rawhide") || !strings.Contains(text, "Fedora 44") {
			t.Errorf("at %d px the streams page shows:\n%s", width, text)
		}
		page.Screenshot("streams-" + itoa(width))
		streams := page.Attrs(`table.streams a[href^="/streams/"]`, "href")
		if len(streams) == 0 || streams[0] != "/streams/rawhide" {
			t.Fatalf("stream links %v", streams)
		}
		page.Open(base + streams[0])
		if page.Count("svg.chart polyline") != 3 {
			t.Errorf("at %d px the Rawhide page has no chart of three lines", width)
		}
		page.Screenshot("rawhide-" + itoa(width))
		var compose string
		for _, href := range page.Attrs(`table.composes a[href^="/composes/"]`, "href") {
			if strings.HasSuffix(href, "/"+demoRawhide) {
				compose = href
			}
		}
		if compose == "" {
			t.Fatalf("the Rawhide page does not list %s", demoRawhide)
		}
		page.Open(base + compose)
		// The rows of a section's table: the table right after its heading
		// (and its note), none when the section says "None.".
		rows := func(id string) [][]string {
			return browsertest.Eval[[][]string](page, fmt.Sprintf(`(() => {
				let el = document.getElementById(%q).nextElementSibling;
				while (el && el.matches("p.note")) el = el.nextElementSibling;
				if (!el || !el.matches("div.wrap")) return [];
				return Array.from(el.querySelectorAll("tbody tr"),
					tr => [tr.querySelector("td.test").innerText, tr.querySelector("td.id a").href, (tr.querySelector("td.triage") || {innerText: ""}).innerText]);
			})()`, id))
		}
		// By the end of the demo the KDE terminal failure is a known issue and
		// the other new failure proved flaky: no new failure is left.
		if nf := rows("new-failures"); len(nf) != 0 {
			t.Errorf("at %d px the new failures are %v, want none", width, nf)
		}
		flaky := rows("flaky")
		if len(flaky) != 1 || flaky[0][0] != "apps_startstop" || !strings.HasPrefix(flaky[0][1], openQA[1]+"/tests/") {
			t.Errorf("at %d px the flaky tests are %v, want apps_startstop linked to its job on %s", width, flaky, openQA[1])
		}
		known := rows("known-failures")
		found := false
		for _, k := range known {
			if k[0] == "desktop_terminal" && strings.Contains(k[2], "known issue #1: konsole crashes at start") && strings.HasPrefix(k[1], openQA[1]+"/tests/") {
				found = true
			}
		}
		if !found {
			t.Errorf("at %d px the known failures are %v, want desktop_terminal as known issue #1", width, known)
		}
		if !strings.Contains(page.Text(), "Re-runs (2)") {
			t.Errorf("at %d px the compose page does not show the re-run trail", width)
		}
		if !strings.Contains(page.Text(), "Missing expected images (1)") {
			t.Errorf("at %d px the compose page does not show the missing image", width)
		}
		page.Screenshot("compose-" + itoa(width))
		if wide := browsertest.Eval[int](page, `document.documentElement.scrollWidth`); wide > width+1 {
			t.Errorf("at %d px the compose page is %d px wide: it does not fit", width, wide)
		}
	}
	for _, req := range page.Requests() {
		if !strings.HasPrefix(req, base+"/") {
			t.Errorf("a page fetched %s: nothing may leave the server", req)
		}
	}
	if ex, dl := page.Exceptions(), page.Dialogs(); len(ex)+len(dl) > 0 {
		t.Errorf("exceptions %v, dialogs %v", ex, dl)
	}
}

func itoa(n int) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}
