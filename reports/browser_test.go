package reports

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/checks/checkstest"
	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/greenwave"
	"github.com/composeci/composeci/internal/browsertest"
	"github.com/composeci/composeci/openqa"
)

// One chromium for the package's browser tests (started by the first one).
func TestMain(m *testing.M) { browsertest.Main(m) }

// What a careless or malicious openQA job, image or compose could carry.
// Every script payload sets window.pwned: the page must never define it.
const (
	pwnScript = `<script>window.pwned=1</script>`
	pwnAttr   = `"><img src=x onerror="window.pwned=1">`
	pwnSingle = `'><svg onload='window.pwned=1'>`
	pwnURL    = `javascript:window.pwned=1`
)

var browserAt = time.Date(2026, 11, 22, 18, 30, 0, 0, time.UTC)

const browserLocation = "https://kojipkgs.fedoraproject.org/compose/rawhide/" + checkstest.ExampleCompose + "/compose"

// browserExample is the report of checkstest.Example: missing images, new,
// known and fixed failures, soft failures, an incomplete, skipped and
// cancelled job, an image diff, source packages changed.
func browserExample(t testing.TB) Report {
	in := checkstest.Example()
	return Build(checks.Run(in), Meta{Status: "FINISHED_INCOMPLETE", Location: browserLocation, GeneratedAt: browserAt,
		Packages: examplePackages(t, in)})
}

// browserFirst is the first compose of a stream: no previous compose, tests
// still running.
func browserFirst() Report {
	in := checkstest.Example()
	in.Previous = nil
	in.Jobs[1].State, in.Jobs[1].Result, in.Jobs[1].TFinished = openqa.StateRunning, openqa.ResultNone, ""
	return Build(checks.Run(in), Meta{Status: "FINISHED", GeneratedAt: browserAt, PackagesNote: "no previous compose to compare with"})
}

// browserHostile is browserExample with markup in every test name, flavor
// and machine (in both composes, so that failures still compare as new,
// known and fixed), in an image, in the compose's status, and javascript:
// URLs for the compose, one job and every previous job, and markup in a
// package's name and version (which rpms.json could carry).
func browserHostile(t testing.TB) Report {
	in := checkstest.Example()
	spoil := func(jobs []openqa.Job) {
		for i := range jobs {
			j := &jobs[i]
			j.Test += pwnScript
			j.Settings["TEST"] = j.Test
			j.Settings["FLAVOR"] += pwnAttr
			j.Settings["MACHINE"] += pwnSingle
		}
	}
	spoil(in.Jobs)
	spoil(in.Previous.Jobs)
	in.Jobs[0].URL = pwnURL
	for i := range in.Previous.Jobs {
		in.Previous.Jobs[i].URL = pwnURL
	}
	in.Images = append(in.Images, fedfind.Image{Variant: "Server", Subvariant: pwnScript, Type: "dvd", Format: "iso",
		Arch: "x86_64", Path: pwnAttr, Identity: pwnScript + "-dvd-iso", Size: 1 << 30})
	pkgs := examplePackages(t, in)
	for _, sp := range []*fedfind.SourcePackages{pkgs.Old, pkgs.New} {
		for i := range sp.Trees {
			sp.Trees[i].Packages = append([]fedfind.NEVR{{Name: pwnScript, EVR: fedfind.EVR{Version: pwnAttr, Release: pwnSingle + sp.Compose.ID}}},
				sp.Trees[i].Packages...)
		}
	}
	// Greenwave's requirements: one on the job whose URL is javascript:,
	// one all markup.
	j0 := in.Jobs[0]
	in.Gating = &checks.GatingInput{Context: greenwave.DefaultContext + pwnScript, ProductVersion: "fedora-rawhide" + pwnAttr,
		Decision: &greenwave.Decision{Summary: pwnScript, UnsatisfiedRequirements: []greenwave.Requirement{
			{Type: greenwave.TypeFailed, Testcase: "compose." + j0.Test, Scenario: "fedora." + j0.Flavor() + "." + j0.Arch() + "." + j0.Machine()},
			{Type: greenwave.TypeErrored + pwnSingle, Testcase: "compose." + pwnScript, Scenario: pwnAttr, ErrorReason: pwnSingle},
		}}}
	return Build(checks.Run(in), Meta{Status: "FINISHED" + pwnScript, Location: pwnURL, GeneratedAt: browserAt, Packages: pkgs})
}

// browserSections are the section headings a QA engineer reads, in order,
// after the title and the summary table.
func browserSections(r Report) []string {
	o := r.OpenQA
	// Missing images and new failures are always there; a section with
	// nothing in it is left out.
	var s []string
	if r.Gating != nil {
		s = append(s, "Gating check")
	}
	s = append(s,
		fmt.Sprintf("Missing expected images (%d)", len(r.MissingExpected)),
		fmt.Sprintf("New failures (%d)", len(o.NewFailures)),
	)
	for _, opt := range []struct {
		name string
		jobs []Job
	}{{"Known failures", o.KnownFailures}, {"Fixed", o.Fixed}, {"Soft failures", o.SoftFailures}, {"Flaky", o.Flaky},
		{"Incomplete", o.Incomplete}, {"Skipped", o.Skipped}, {"Cancelled", o.Cancelled}, {"Pending", o.Pending}} {
		if len(opt.jobs) > 0 {
			s = append(s, fmt.Sprintf("%s (%d)", opt.name, len(opt.jobs)))
		}
	}
	if r.HasPrevious() {
		s = append(s, "Image diff against "+r.PreviousComposeID)
	} else {
		s = append(s, "Image diff")
	}
	if r.Packages != nil {
		return append(s, "Source packages against "+r.Packages.Old)
	}
	return append(s, "Source packages")
}

// browserHref is the href of a link to u: u itself when it is http(s), else
// "": such a URL is shown as text, not as a link (not even as html/template's
// dead link to #ZgotmplZ).
func browserHref(u string) string {
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return u
	}
	return ""
}

type browserLink struct {
	Text string `json:"text"`
	Href string `json:"href"`
}

// browserSection is an h2 and what follows it up to the next h2.
type browserSection struct {
	Heading string        `json:"heading"`
	Text    string        `json:"text"`
	Groups  []string      `json:"groups"` // the group rows of its table: "arch flavor"
	Links   []browserLink `json:"links"`
}

const browserSectionsJS = `Array.from(document.querySelectorAll("h2"), h => {
	const s = {heading: h.innerText, text: "", groups: [], links: []}, texts = [];
	for (let e = h.nextElementSibling; e && e.tagName !== "H2"; e = e.nextElementSibling) {
		texts.push(e.innerText);
		e.querySelectorAll("tr.group th").forEach(th => s.groups.push(th.innerText));
		e.querySelectorAll("a").forEach(a => s.links.push({text: a.innerText, href: a.getAttribute("href") ?? ""}));
	}
	s.text = texts.join("\n");
	return s;
})`

// browserJobLinks are the links a job list shows: each job's ID and its
// test to its openQA page, then its previous job's ("job N") when it has
// one; a URL that is not http(s) is no link.
func browserJobLinks(jobs []Job) []browserLink {
	out := []browserLink{}
	for _, j := range jobs {
		if h := browserHref(j.URL); h != "" {
			out = append(out, browserLink{strconv.FormatInt(j.JobID, 10), h}, browserLink{j.Test + "@" + j.Machine, h})
		}
		if h := browserHref(j.PreviousURL); h != "" {
			out = append(out, browserLink{"job " + strconv.FormatInt(j.PreviousJobID, 10), h})
		}
	}
	return out
}

// browserGroups are the "arch flavor" group rows of a job list.
func browserGroups(jobs []Job) []string {
	out := []string{}
	for _, j := range jobs {
		g := j.Arch + " " + j.Flavor
		if len(out) == 0 || out[len(out)-1] != g {
			out = append(out, g)
		}
	}
	return out
}

func changed(c []fedfind.ChangedEntry) []fedfind.DiffEntry {
	out := make([]fedfind.DiffEntry, 0, len(c))
	for _, e := range c {
		out = append(out, e.DiffEntry)
	}
	return out
}

// TestBrowserReport loads HTML reports in chromium and reads them as a QA
// engineer does: title, summary, then each section in order with its jobs
// linked to openQA. The hostile report must run no script and show its
// markup as text.
func TestBrowserReport(t *testing.T) {
	rd, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		report  Report
		hostile bool
	}{
		{"example", browserExample(t), false},
		{"first", browserFirst(), false},
		{"hostile", browserHostile(t), true},
		{"gating", gatingReport(t), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.report
			var html bytes.Buffer
			if err := rd.HTML(&html, r); err != nil {
				t.Fatal(err)
			}
			u := browsertest.Serve(t, html.Bytes())
			p := browsertest.New(t)
			p.Open(u)
			defer func() {
				// Last, so that it shows the page whatever failed above.
				p.Screenshot("report")
			}()

			// Title and heading name the compose. The title is the mail's
			// subject, hostile status and all, as text.
			if got, want := p.Title(), Subject(r); got != want {
				t.Errorf("title = %q, want %q", got, want)
			}
			if got, want := p.Texts("h1"), []string{r.Name() + " compose check report"}; !slices.Equal(got, want) {
				t.Errorf("h1 = %q, want %q", got, want)
			}

			// The summary table first, then every section, all visible,
			// top to bottom in this order.
			els := p.Elements("h1, table.meta, h2")
			var heads []string
			for i, el := range els {
				if !el.Visible {
					t.Errorf("%s %q is not visible", el.Tag, el.Text)
				}
				if i > 0 && el.Top <= els[i-1].Top {
					t.Errorf("%s %q (top %.0f) is not below %q (top %.0f)", el.Tag, el.Text, el.Top, els[i-1].Text, els[i-1].Top)
				}
				if el.Tag == "h2" {
					heads = append(heads, el.Text)
				}
			}
			if len(els) < 2 || els[0].Tag != "h1" || els[1].Tag != "table" {
				t.Errorf("the page does not open with the heading and the summary table: %+v", els[:min(2, len(els))])
			}
			if want := browserSections(r); !slices.Equal(heads, want) {
				t.Errorf("sections:\n got %q\nwant %q", heads, want)
			}

			// The summary table.
			rows := map[string]string{}
			for _, row := range browsertest.Eval[[][]string](p, `Array.from(document.querySelectorAll("table.meta tr"), tr => Array.from(tr.cells, c => c.innerText))`) {
				if len(row) != 2 {
					t.Errorf("summary row %q has %d cells", row, len(row))
					continue
				}
				rows[row[0]] = row[1]
			}
			status := printable(r.Status)
			if status == "" {
				status = "unknown"
			}
			for key, want := range map[string]string{"Stream": r.Stream.Name, "Status": status, "Summary": r.SummaryLine(), "Compose": r.Location} {
				if key == "Compose" && want == "" {
					if _, ok := rows[key]; ok {
						t.Errorf("a Compose row with no location: %q", rows[key])
					}
					continue
				}
				if rows[key] != want {
					t.Errorf("summary row %s = %q, want %q", key, rows[key], want)
				}
			}
			// The summary links the compose, the previous compose's report
			// and the build in openQA.
			want := []string{}
			if h := browserHref(r.Location); h != "" {
				want = append(want, h)
			}
			if r.HasPrevious() {
				want = append(want, "../../rawhide/"+r.PreviousComposeID+"/report.html")
			}
			if h := browserHref(r.OpenQA.OverviewURL); h != "" {
				want = append(want, h)
			}
			if got := p.Attrs("table.meta a", "href"); !slices.Equal(got, want) {
				t.Errorf("summary links = %q, want %q", got, want)
			}
			if !r.Summary.ResultsComplete {
				if warn := p.Elements("p.warn"); len(warn) != 1 || !warn[0].Visible || !strings.Contains(warn[0].Text, "Results are incomplete") {
					t.Errorf("no visible warning that results are incomplete: %+v", warn)
				}
				// It leads to the pending tests.
				if got := p.Attrs("p.warn a", "href"); len(r.OpenQA.Pending) > 0 && !slices.Equal(got, []string{"#pending"}) {
					t.Errorf("the warning links to %q, want the pending tests (#pending)", got)
				}
			}

			// Each job list: its arch/flavor groups, every job linked to
			// openQA (and to its previous job), the test shown as text.
			sections := browsertest.Eval[[]browserSection](p, browserSectionsJS)
			byHead := map[string]browserSection{}
			for _, s := range sections {
				byHead[s.Heading] = s
			}
			o := r.OpenQA
			for _, l := range []struct {
				name string
				jobs []Job
			}{
				{"New failures", o.NewFailures}, {"Known failures", o.KnownFailures}, {"Fixed", o.Fixed},
				{"Soft failures", o.SoftFailures}, {"Incomplete", o.Incomplete}, {"Skipped", o.Skipped},
				{"Cancelled", o.Cancelled}, {"Pending", o.Pending},
			} {
				head := fmt.Sprintf("%s (%d)", l.name, len(l.jobs))
				s, ok := byHead[head]
				if !ok {
					continue // an optional section, checked above
				}
				if len(l.jobs) == 0 {
					// Empty: none, or nothing to compare with.
					want := "None."
					if !r.HasPrevious() && (l.name == "Known failures" || l.name == "Fixed") {
						want = "No previous compose to compare with."
					}
					if !strings.HasSuffix(s.Text, want) {
						t.Errorf("%s: an empty list should say %s, says %q", head, want, s.Text)
					}
					continue
				}
				if got, want := s.Groups, browserGroups(l.jobs); !slices.Equal(got, want) {
					t.Errorf("%s: groups %q, want %q", head, got, want)
				}
				if got, want := s.Links, browserJobLinks(l.jobs); !slices.Equal(got, want) {
					t.Errorf("%s: links\n got %q\nwant %q", head, got, want)
				}
				for _, j := range l.jobs {
					if !strings.Contains(s.Text, j.Test+"@"+j.Machine) {
						t.Errorf("%s: %q is not shown as text in %q", head, j.Test+"@"+j.Machine, s.Text)
					}
					// A new failure names the packages upgraded where it ran.
					if up := j.UpgradedLine(failurePackages); !strings.Contains(s.Text, up) {
						t.Errorf("%s: %q is not shown for job %d in %q", head, up, j.JobID, s.Text)
					}
					// A previous job is named with its result, never a bare link.
					if prev := fmt.Sprintf("previous: job %d, %s", j.PreviousJobID, j.PreviousResult); j.PreviousJobID != 0 && !strings.Contains(s.Text, prev) {
						t.Errorf("%s: %q is not shown for job %d in %q", head, prev, j.JobID, s.Text)
					}
				}
			}
			// The gating check: its verdict, each requirement not met, the
			// jobs it names linked to openQA.
			if g := r.Gating; g != nil {
				s := byHead["Gating check"]
				gv := newGatingView(g)
				if !strings.HasPrefix(s.Text, g.DecisionContext+", "+g.ProductVersion+": "+gv.Verdict+"\n") {
					t.Errorf("the gating check opens with %q, want its verdict %q", s.Text, gv.Verdict)
				}
				var links []browserLink
				for _, u := range gv.Reqs {
					if !strings.Contains(s.Text, u.Kind+"\t"+u.Name) || !strings.Contains(s.Text, u.Scenario) {
						t.Errorf("the gating check does not list %s %s %s: %q", u.Kind, u.Name, u.Scenario, s.Text)
					}
					if h := browserHref(u.URL); h != "" {
						links = append(links, browserLink{strconv.FormatInt(u.JobID, 10), h})
					}
				}
				if !slices.Equal(s.Links, links) {
					t.Errorf("gating links %q, want %q", s.Links, links)
				}
				// Its failures are marked in their lists.
				for _, j := range slices.Concat(r.OpenQA.NewFailures, r.OpenQA.KnownFailures, r.OpenQA.Incomplete) {
					if j.Gating && !strings.Contains(p.Text(), j.Test+"@"+j.Machine+" GATING") {
						t.Errorf("job %d is not marked GATING", j.JobID)
					}
				}
			}
			missing := byHead[fmt.Sprintf("Missing expected images (%d)", len(r.MissingExpected))]
			for _, m := range r.MissingExpected {
				if row := m.Arch + "\t" + m.Identity; m.Identity == "" || !strings.Contains(missing.Text, row) {
					t.Errorf("missing image %q is not listed in %q", row, missing.Text)
				}
			}
			if r.HasPrevious() {
				diff := byHead["Image diff against "+r.PreviousComposeID]
				for _, c := range []struct {
					change string
					images []fedfind.DiffEntry
				}{{"added", r.Diff.Added}, {"removed", r.Diff.Removed}, {"changed", changed(r.Diff.Changed)}} {
					for _, im := range c.images {
						row := c.change + "\t" + im.Arch + "\t" + im.Identity
						if !strings.Contains(diff.Text, row) || !strings.Contains(diff.Text, im.Path) {
							t.Errorf("image diff lacks %q (%s): %q", row, im.Path, diff.Text)
						}
					}
				}
			} else if s := byHead["Image diff"]; !strings.Contains(s.Text, "No previous compose") {
				t.Errorf("image diff without a previous compose says %q", s.Text)
			}
			// The source packages: the counts, then every change a row.
			if p := r.Packages; p != nil {
				s := byHead["Source packages against "+p.Old]
				counts, rows, _ := strings.Cut(s.Text, "\n")
				if counts != p.Counts()+"." {
					t.Errorf("the packages section opens with %q, want the counts %q", counts, p.Counts())
				}
				for _, g := range p.Groups(listedPackages) {
					if !strings.Contains(rows, fmt.Sprintf("%s (%d)", g.Title, g.Total)) {
						t.Errorf("packages: no %s (%d) in %q", g.Title, g.Total, rows)
					}
					for _, row := range g.Rows {
						if want := row.Name + "\t" + row.From + "\t" + row.To; !strings.Contains(rows, want) {
							t.Errorf("packages: no row %q in %q", want, rows)
						}
					}
				}
			} else if s := byHead["Source packages"]; !strings.HasPrefix(s.Text, "Not compared: "+r.PackagesNote+".\n") {
				t.Errorf("source packages not compared say %q", s.Text)
			}

			// Nothing ran that the page did not mean to run, and the page
			// fetched nothing but itself.
			if p.Defined("pwned") {
				t.Error("a payload ran: window.pwned is set")
			}
			if d := p.Dialogs(); len(d) > 0 {
				t.Errorf("the page opened dialogs: %q", d)
			}
			if e := p.Exceptions(); len(e) > 0 {
				t.Errorf("the page threw: %q", e)
			}
			if req := p.Requests(); len(req) != 1 || req[0] != u {
				t.Errorf("the page made requests %q, want only %s", req, u)
			}
			for _, sel := range []string{"script", "img", "svg", "iframe", "object", "embed", "[onerror]", "[onload]"} {
				if n := p.Count(sel); n > 0 {
					t.Errorf("the page holds %d %s", n, sel)
				}
			}
			// Links go to https URLs or to a part of the page; an unsafe URL
			// is text, not a dead link to #ZgotmplZ.
			for _, href := range p.Attrs("a", "href") {
				if strings.HasPrefix(href, "https://") || href == "../../rawhide/"+r.PreviousComposeID+"/report.html" {
					continue
				}
				if !strings.HasPrefix(href, "#") || href == "#ZgotmplZ" || p.Count(href) != 1 {
					t.Errorf("a link to %q", href)
				}
			}
			if tc.hostile {
				text := p.Text()
				for _, s := range []string{pwnScript, pwnAttr, pwnSingle, pwnURL, "FINISHED" + pwnScript, pwnSingle + checkstest.ExampleCompose} {
					if !strings.Contains(text, s) {
						t.Errorf("the page does not show %q as text", s)
					}
				}
			}
		})
	}
}

// TestBrowserPackagesOnAPhone: a mass rebuild's packages section on a
// 390 px screen lists the first listedPackages of each kind and counts the
// rest, in a table that scrolls sideways inside the screen rather than
// widen it.
func TestBrowserPackagesOnAPhone(t *testing.T) {
	in := checkstest.Example()
	var pkgs []pkg
	for i := range listedPackages + 50 {
		// Names and versions long enough to overflow 390 px in any font
		// (a narrow one such as Liberation Sans included).
		pkgs = append(pkgs, pkg{fmt.Sprintf("golang-github-prometheus-client-model-exposition-formats-%03d", i),
			"0.6.1~20261101git0123abcd-1.fc44", "0.6.1~20261101git0123abcd-2.fc44.mass_rebuild", []string{"Server/x86_64"}})
	}
	old, new := sources(t, checkstest.ExamplePrevious, checkstest.ExampleCompose, pkgs)
	r := Build(checks.Run(in), Meta{Status: "FINISHED", GeneratedAt: browserAt, Packages: &PackageInput{Old: old, New: new, Images: in.Images}})
	rd, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	var html bytes.Buffer
	if err := rd.HTML(&html, r); err != nil {
		t.Fatal(err)
	}
	p := browsertest.New(t)
	p.SetViewport(390, 800)
	p.Open(browsertest.Serve(t, html.Bytes()))
	defer p.Screenshot("packages-390")
	type box struct {
		Client, Scroll, Right float64
		Rows                  int
		Last                  string
	}
	b := browsertest.Eval[box](p, `(() => {
		const w = document.querySelector("#packages ~ div.wrap"), rows = w.querySelectorAll("tbody tr");
		return {client: w.clientWidth, scroll: w.scrollWidth, right: w.getBoundingClientRect().right,
			rows: rows.length, last: rows[rows.length - 1].innerText};
	})()`)
	if b.Right > 390 || b.Client > 390 {
		t.Errorf("the packages table's box is %.0f px wide, ends at %.0f px: wider than the screen", b.Client, b.Right)
	}
	if b.Scroll <= b.Client {
		t.Errorf("the packages table (%.0f px) does not scroll in its box (%.0f px)", b.Scroll, b.Client)
	}
	// A group row, the listed packages, the count of the rest.
	if b.Rows != 1+listedPackages+1 || b.Last != "and 50 more (report.json lists them all)" {
		t.Errorf("%d rows, the last %q", b.Rows, b.Last)
	}
	// Every new failure on Server/x86_64 names five and counts the rest.
	text, server := p.Text(), 0
	for _, j := range r.OpenQA.NewFailures {
		if j.UpgradedTree != "Server/x86_64" {
			continue
		}
		server++
		line := j.UpgradedLine(failurePackages)
		if !strings.Contains(text, line) || !strings.HasSuffix(line, fmt.Sprintf(" and %d more", listedPackages+50-failurePackages)) {
			t.Errorf("%s: %q", j.Test, line)
		}
	}
	if server == 0 {
		t.Error("no new failure on Server/x86_64")
	}
}

// TestBrowserReportFitsAMailWindow: the HTML report, as a mail client shows
// it 800 px wide, needs no sideways scrolling: long image paths wrap after
// their slashes.
func TestBrowserReportFitsAMailWindow(t *testing.T) {
	rd, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	r := browserExample(t)
	long := strings.Repeat("very-long-directory-name/", 8) + "Fedora-Everything-netinst-x86_64-Rawhide-20261122.n.0.iso"
	r.Diff.Added = append(r.Diff.Added, fedfind.DiffEntry{Arch: "x86_64", Identity: "Everything-boot-iso", Path: long, Size: 1 << 30})
	var html bytes.Buffer
	if err := rd.HTML(&html, r); err != nil {
		t.Fatal(err)
	}
	p := browsertest.New(t)
	p.SetViewport(800, 900)
	p.Open(browsertest.Serve(t, html.Bytes()))
	defer p.Screenshot("report-800")
	if wide := browsertest.Eval[int](p, `document.documentElement.scrollWidth`); wide > 800 {
		t.Errorf("at 800 px the report is %d px wide", wide)
	}
	if !strings.Contains(p.Text(), "very-long-directory-name/") {
		t.Errorf("the long path is not shown")
	}
}
