package reports

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/checks/checkstest"
	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/templates"
)

// hostile is what a test name, flavor or machine might hold if openQA (or
// whoever scheduled the job) were careless or malicious.
const (
	hostileScript = `<script>alert(1)</script>`
	hostileAttr   = `"><img src=x onerror=alert(2)>`
)

func hostileReport(t *testing.T) Report {
	t.Helper()
	in := checkstest.Example()
	for i := range in.Jobs {
		j := &in.Jobs[i]
		j.Settings = map[string]string{"FLAVOR": hostileScript, "ARCH": "x86_64", "MACHINE": hostileAttr}
		j.Test = hostileScript + "\nForged: line" + strconv.Itoa(i)
	}
	in.Jobs[0].URL = "javascript:alert(3)"
	in.Images = append(in.Images, fedfind.Image{Subvariant: hostileScript, Type: "dvd", Format: "iso",
		Arch: "x86_64", Path: hostileAttr, Identity: hostileScript + "-dvd-iso"})
	r := Build(checks.Run(in), Meta{Status: "FINISHED</td><script>alert(4)</script>", Location: "javascript:alert(5)", GeneratedAt: generatedAt})
	if len(r.OpenQA.NewFailures) == 0 {
		t.Fatal("the hostile report has no new failures to render")
	}
	return r
}

// TestHTMLEscapesHostileNames renders job names, flavors, machines, paths,
// status and URLs that carry markup and checks that no tag of theirs
// survives into the HTML, and that javascript: URLs are not links.
func TestHTMLEscapesHostileNames(t *testing.T) {
	r := hostileReport(t)
	var b bytes.Buffer
	if err := RenderHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, raw := range []string{"<script", "<img", "onerror=alert(2)>", `href="javascript:`} {
		if strings.Contains(strings.ToLower(out), raw) {
			i := strings.Index(strings.ToLower(out), raw)
			t.Errorf("HTML holds raw %q: ...%s...", raw, out[max(0, i-80):min(len(out), i+80)])
		}
	}
	for _, escaped := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;", "<td>javascript:alert(5)</td>"} {
		if !strings.Contains(out, escaped) {
			t.Errorf("HTML lacks the escaped form %q", escaped)
		}
	}
	// A javascript: URL is text, not a dead link that html/template
	// neutralised (TestHTMLNeutralisesUnsafeLinks checks that it still would).
	if strings.Contains(out, "#ZgotmplZ") {
		t.Error("HTML links to #ZgotmplZ: the view let an unsafe URL through to html/template")
	}
	// The page's own markup is intact: one script-free document.
	if strings.Count(out, "<html") != 1 || strings.Count(out, "</html>") != 1 {
		t.Error("document structure broken")
	}
}

// TestHTMLNeutralisesUnsafeLinks checks both lines of defence against a
// link to a hostile URL: the view links only http(s) URLs, and if it let
// one through, html/template would still neutralise it.
func TestHTMLNeutralisesUnsafeLinks(t *testing.T) {
	for u, want := range map[string]string{
		"https://openqa.fedoraproject.org/tests/1": "https://openqa.fedoraproject.org/tests/1",
		"http://example.org/x":                     "http://example.org/x",
		"HTTPS://example.org/x":                    "HTTPS://example.org/x",
		"javascript:alert(1)":                      "",
		"JavaScript:alert(1)":                      "",
		"data:text/html,<script>alert(1)</script>": "",
		"//example.org/x":                          "",
		"/tests/1":                                 "",
		"https:///tests/1":                         "",
		" https://example.org/x":                   "",
		"":                                         "",
	} {
		if got := linkable(u); got != want {
			t.Errorf("linkable(%q) = %q, want %q", u, got, want)
		}
	}
	rd, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	v := newView(exampleReport(t))
	v.LocationHref = "javascript:alert(6)"
	v.New.Groups[0].Jobs[0].Href = "javascript:alert(7)"
	var b bytes.Buffer
	if err := rd.html.ExecuteTemplate(&b, templates.ReportHTML, v); err != nil {
		t.Fatal(err)
	}
	// The location, and the job (its ID and its test).
	if out := b.String(); strings.Count(out, `href="#ZgotmplZ"`) != 3 || strings.Contains(out, `href="javascript:`) {
		t.Errorf("html/template did not neutralise both javascript: links:\n%s", out)
	}
}

// TestTextCannotForgeLines checks that a newline in a test name does not
// start a line of its own in the plain-text report.
func TestTextCannotForgeLines(t *testing.T) {
	r := hostileReport(t)
	var b bytes.Buffer
	if err := RenderText(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, "Forged:") {
			t.Errorf("a test name forged the line %q", line)
		}
	}
	if !strings.Contains(b.String(), hostileScript+" Forged: line0@") {
		t.Error("the hostile test name is missing from the text (plain text shows names as they are)")
	}
}
