package reports

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	texttemplate "text/template"
	"unicode/utf8"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/templates"
)

// Renderer renders reports with the embedded templates, parsed once. It is
// safe for concurrent use.
type Renderer struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// NewRenderer parses the templates.
func NewRenderer() (*Renderer, error) {
	t, err := templates.Text()
	if err != nil {
		return nil, err
	}
	h, err := templates.HTML()
	if err != nil {
		return nil, err
	}
	return &Renderer{text: t, html: h}, nil
}

// Text writes the plain-text report, for email and terminals.
func (rd *Renderer) Text(w io.Writer, r Report) error {
	name := templates.ReportText
	if r.Doomed != nil {
		name = templates.DoomedText
	}
	if err := rd.text.ExecuteTemplate(w, name, newView(r)); err != nil {
		return fmt.Errorf("rendering text report of %s: %w", r.ComposeID, err)
	}
	return nil
}

// HTML writes the HTML report: the same content as Text, every value
// escaped by html/template.
func (rd *Renderer) HTML(w io.Writer, r Report) error {
	name := templates.ReportHTML
	if r.Doomed != nil {
		name = templates.DoomedHTML
	}
	if err := rd.html.ExecuteTemplate(w, name, newView(r)); err != nil {
		return fmt.Errorf("rendering HTML report of %s: %w", r.ComposeID, err)
	}
	return nil
}

// RenderText writes the plain-text report. It parses the templates on every
// call; use a Renderer to render many reports.
func RenderText(w io.Writer, r Report) error {
	rd, err := NewRenderer()
	if err != nil {
		return err
	}
	return rd.Text(w, r)
}

// RenderHTML writes the HTML report. It parses the templates on every call;
// use a Renderer to render many reports.
func RenderHTML(w io.Writer, r Report) error {
	rd, err := NewRenderer()
	if err != nil {
		return err
	}
	return rd.HTML(w, r)
}

// RenderJSON writes the report's JSON, as the archive stores it.
func RenderJSON(w io.Writer, r Report) error {
	b, err := r.JSON()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// Rendered is a report in its three forms.
type Rendered struct {
	JSON, Text, HTML []byte
}

// Render renders r in every form.
func (rd *Renderer) Render(r Report) (Rendered, error) {
	var out Rendered
	var err error
	if out.JSON, err = r.JSON(); err != nil {
		return Rendered{}, err
	}
	var b bytes.Buffer
	if err := rd.Text(&b, r); err != nil {
		return Rendered{}, err
	}
	out.Text = bytes.Clone(b.Bytes())
	b.Reset()
	if err := rd.HTML(&b, r); err != nil {
		return Rendered{}, err
	}
	out.HTML = b.Bytes()
	return out, nil
}

// view is what the templates see: the report, plus its job lists grouped by
// arch and flavor with a note on each job saying how it compares with the
// previous compose, and every URL judged once, here, for whether it may be a
// link (html/template's escaping stays the second line of defence).
type view struct {
	Report
	Subject string
	// Line is the summary line; Parts are its pieces, each with the class
	// the HTML report shows it in (problems in red, fixes in green).
	Line  string
	Parts []summaryPart
	Rule  string
	// LocationHref is Location when it may be a link, else "".
	LocationHref string
	// OverviewHref is the openQA overview of the build when it may be a
	// link; PreviousHref the previous compose's report in the archive,
	// relative to this one (as the archive and the web lay them out).
	OverviewHref, PreviousHref string

	New, Known, Fixed, Soft, Incomplete, Skipped, Cancelled, Pending, Flaky jobList
	// ExpiredIssues are the expired registry entries; RerunList the
	// audit trail of re-runs.
	ExpiredIssues []knownView
	RerunList     []rerunView
	// PackageGroups are the packages section's lists, each cut at
	// listedPackages.
	PackageGroups []PackageGroup
	// GatingView is the gating check as the report shows it; nil without
	// one.
	GatingView *gatingView
}

// gatingView is the gating check as the report shows it.
type gatingView struct {
	*Gating
	// Verdict says how it came out: "PASSES: ...", "FAILS: 2 of 25
	// required tests failed, 1 missing", "no gating policy applies",
	// "Greenwave could not be asked: ..." (after "Gating check (<context>,
	// <product version>):").
	Verdict string
	// Class is how the HTML report shows the verdict: "good", "bad" or "".
	Class string
	Reqs  []gatingReqView
}

// gatingReqView is one requirement the compose does not meet.
type gatingReqView struct {
	GatingRequirement
	// Kind is the type without "test-result-": failed, missing, errored.
	Kind string
	// Name is the openQA test of a compose test case, else the test case.
	Name string
	// Line is Name, the scenario and an errored result's reason, for the
	// text report.
	Line string
	// Href is the job's URL when it may be a link.
	Href string
}

// newGatingView makes the gating section of g.
func newGatingView(g *Gating) *gatingView {
	v := &gatingView{Gating: g}
	switch g.Outcome {
	case checks.GatingPassed:
		v.Class = "good"
		if g.Required == 0 {
			v.Verdict = "PASSES: no tests are required"
		} else {
			v.Verdict = "PASSES: " + plural(g.Required, "required test passed or was waived", "required tests passed or were waived")
		}
	case checks.GatingFailed:
		v.Class = "bad"
		switch {
		case g.Failed == 0 && g.Missing > 0:
			v.Verdict = fmt.Sprintf("FAILS: %d of %d required test results missing", g.Missing, g.Required)
		case g.Missing > 0:
			v.Verdict = fmt.Sprintf("FAILS: %d of %d required tests failed, %d missing", g.Failed, g.Required, g.Missing)
		default:
			v.Verdict = fmt.Sprintf("FAILS: %d of %d required tests failed", g.Failed, g.Required)
		}
	case checks.GatingNoPolicy:
		v.Verdict = "no gating policy applies"
	default:
		v.Verdict = "Greenwave could not be asked: " + g.Error
	}
	for _, u := range g.Unsatisfied {
		rv := gatingReqView{GatingRequirement: u, Kind: strings.TrimPrefix(u.Type, "test-result-"), Name: u.Testcase, Href: linkable(u.URL)}
		if t, ok := strings.CutPrefix(u.Testcase, "compose."); ok && t != "" {
			rv.Name = t
		}
		rv.Line = rv.Name
		if u.Scenario != "" {
			rv.Line += " " + u.Scenario
		}
		if u.ErrorReason != "" {
			rv.Line += " (" + u.ErrorReason + ")"
		}
		v.Reqs = append(v.Reqs, rv)
	}
	return v
}

// listedPackages is how many packages of each kind of change the text and
// HTML reports list (the JSON lists them all): a mass rebuild upgrades
// thousands. failurePackages is how many a new failure names.
const (
	listedPackages  = 200
	failurePackages = 5
)

// knownView is an expired registry entry as the report lists it.
type knownView struct {
	KnownIssueRef
	BugHref string
}

// rerunView is one re-run of the audit trail.
type rerunView struct {
	Rerun
	When string
}

// jobList is one section's jobs, in runs of one (arch, flavor).
type jobList struct {
	Groups []group
	// Empty says why there is nothing to list: "none", or that there is
	// nothing to compare with. Lower case, no full stop.
	Empty string
	// Notes is true when any job has a note (the HTML table's third column).
	Notes bool
}

// group is the jobs of one (arch, flavor), the unit check-compose lists
// failures by.
type group struct {
	Arch, Flavor string
	Jobs         []jobView
}

type jobView struct {
	Job
	// Href is the job's URL when it may be a link, else "".
	Href string
	// Note says how the job compares with the previous compose, as text;
	// NoteParts is the same with the previous job linked.
	Note      string
	NoteParts []notePart
	// NoteOwnLine puts the note of the text report on a line of its own,
	// to keep lines short enough for email.
	NoteOwnLine bool
	// Upgraded names the packages upgraded where a new failure ran (see
	// Job.UpgradedLine); "" when they were not compared.
	Upgraded string
	// Marker is gatingMarker when the job is why the gating check fails,
	// else "".
	Marker string
}

// notePart is a piece of a note, a link when Href is set.
type notePart struct {
	Text, Href string
}

// gatingMarker follows a job in the lists when it is why the gating
// check fails, as check-compose marked it.
const gatingMarker = "GATING"

// textWidth is the line length the text report keeps to where it can (a URL
// is never broken).
const textWidth = 78

func newView(r Report) view {
	o := r.OpenQA
	const nothing = "none"
	cmp := comparison(r)
	v := view{
		Report:       r,
		Subject:      Subject(r),
		Line:         r.SummaryLine(),
		Parts:        r.summaryParts(),
		Rule:         strings.Repeat("-", utf8.RuneCountInString(r.Name()+" compose check report")),
		LocationHref: linkable(r.Location),
		OverviewHref: linkable(r.OpenQA.OverviewURL),
		PreviousHref: previousHref(r),
		New: jobs(r, o.NewFailures, nothing, func(j Job) string {
			note := ""
			if r.HasPrevious() && j.PreviousJobID == 0 {
				note = "not run in the previous compose"
			}
			if j.RerunJobID != 0 {
				note = join(note, "confirmed: failed again when re-run")
			}
			return retried(j, note)
		}),
		Known: jobs(r, o.KnownFailures, cmp, func(j Job) string {
			if k := j.KnownIssue; k != nil {
				return retried(j, fmt.Sprintf("known issue #%d: %s", k.ID, k.Reason))
			}
			return retried(j, "")
		}),
		Flaky:      jobs(r, o.Flaky, nothing, func(j Job) string { return "failed, then " + j.Result + " when re-run" }),
		Fixed:      jobs(r, o.Fixed, cmp, func(j Job) string { return "now " + j.Result }),
		Soft:       jobs(r, o.SoftFailures, nothing, func(j Job) string { return retried(j, "") }),
		Incomplete: jobs(r, o.Incomplete, nothing, func(j Job) string { return retried(j, j.Result) }),
		Skipped:    jobs(r, o.Skipped, nothing, func(j Job) string { return j.Result }),
		Cancelled:  jobs(r, o.Cancelled, nothing, func(j Job) string { return j.Result }),
		Pending: jobs(r, o.Pending, nothing, func(j Job) string {
			if j.CloneMissing {
				return "restarted; the restart is not in the results"
			}
			return j.State
		}),
	}
	v.extras()
	return v
}

// previousHref is the previous compose's report, relative to r's in the
// archive's layout (<release>/<compose>/report.html); "" without one.
func previousHref(r Report) string {
	if r.PreviousComposeID == "" {
		return ""
	}
	rel, err := ReleaseOf(r.PreviousComposeID)
	if err != nil {
		return ""
	}
	return "../../" + rel + "/" + r.PreviousComposeID + "/" + FileHTML
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// LinkOK reports whether u may be a link.
func (v view) LinkOK(u string) bool { return linkable(u) != "" }

// KnownIssues reports whether a known failure is a registered known issue.
func (v view) KnownIssues() bool {
	return slices.ContainsFunc(v.OpenQA.KnownFailures, func(j Job) bool { return j.KnownIssue != nil })
}

// extras fills in the parts of the view beside the job lists.
func (v *view) extras() {
	for _, k := range v.OpenQA.ExpiredKnownIssues {
		v.ExpiredIssues = append(v.ExpiredIssues, knownView{KnownIssueRef: k, BugHref: linkable(k.Bug)})
	}
	for _, rr := range v.Report.Reruns {
		v.RerunList = append(v.RerunList, rerunView{Rerun: rr, When: rr.At.UTC().Format("2006-01-02 15:04")})
	}
	if v.Packages != nil {
		v.PackageGroups = v.Packages.Groups(listedPackages)
	}
	if v.Report.Gating != nil {
		v.GatingView = newGatingView(v.Report.Gating)
	}
}

// PackagesNotCompared says why the report has no packages section, as a
// phrase.
func (v view) PackagesNotCompared() string {
	if v.PackagesNote != "" {
		return v.PackagesNote
	}
	return "the check did not read them"
}

// comparison says why a list that needs a previous compose (known
// failures, fixed) is empty.
func comparison(r Report) string {
	switch {
	case r.OpenQA.LeftOut:
		return "openQA left out"
	case !r.HasPrevious():
		return "no previous compose to compare with"
	case r.OpenQA.PreviousJobs == 0:
		return "no openQA results in " + r.PreviousComposeID + " to compare with"
	}
	return "none"
}

// retried adds to a note that the job is a restart: the failure survived a
// retry, which makes it more credible.
func retried(j Job, note string) string {
	if !j.Restarted {
		return note
	}
	if note == "" {
		return "after a restart"
	}
	return note + "; after a restart"
}

// jobs makes a section of jobs sorted by arch and flavor: runs of one (arch,
// flavor), each job with a note of what it is now (from now) followed by
// what the same scenario was in the previous compose. empty says why an
// empty section is empty.
func jobs(r Report, list []Job, empty string, now func(Job) string) jobList {
	out := jobList{}
	if len(list) == 0 {
		out.Empty = empty
	}
	for _, j := range list {
		if n := len(out.Groups); n == 0 || out.Groups[n-1].Arch != j.Arch || out.Groups[n-1].Flavor != j.Flavor {
			out.Groups = append(out.Groups, group{Arch: j.Arch, Flavor: j.Flavor})
		}
		jv := jobView{Job: j, Href: linkable(j.URL)}
		if s := now(j); s != "" {
			jv.NoteParts = append(jv.NoteParts, notePart{Text: s})
		}
		sep := func() {
			if len(jv.NoteParts) > 0 {
				jv.NoteParts[len(jv.NoteParts)-1].Text += "; "
			}
		}
		if k := j.KnownIssue; k != nil && k.Bug != "" {
			sep()
			jv.NoteParts = append(jv.NoteParts, notePart{Text: k.Bug, Href: linkable(k.Bug)})
		}
		if j.RerunJobID != 0 {
			sep()
			jv.NoteParts = append(jv.NoteParts, notePart{Text: "re-run: "},
				notePart{Text: "job " + strconv.FormatInt(j.RerunJobID, 10), Href: linkable(j.RerunURL)})
		}
		if r.HasPrevious() && (j.PreviousJobID != 0 || j.PreviousURL != "") {
			sep()
			label := "previous job"
			if j.PreviousJobID != 0 {
				label = "job " + strconv.FormatInt(j.PreviousJobID, 10)
			}
			jv.NoteParts = append(jv.NoteParts, notePart{Text: "previous: "}, notePart{Text: label, Href: linkable(j.PreviousURL)})
			if j.PreviousResult != "" {
				jv.NoteParts = append(jv.NoteParts, notePart{Text: ", " + j.PreviousResult})
			}
		}
		var note strings.Builder
		for _, p := range jv.NoteParts {
			note.WriteString(p.Text)
		}
		jv.Note = note.String()
		jv.Upgraded = j.UpgradedLine(failurePackages)
		marked := ""
		if j.Gating {
			jv.Marker, marked = gatingMarker, " "+gatingMarker
		}
		// "    test@machine[ GATING] (note)"
		jv.NoteOwnLine = jv.Note != "" && utf8.RuneCountInString(j.Test+j.Machine+marked+jv.Note)+8 > textWidth
		out.Notes = out.Notes || jv.Note != "" || jv.Upgraded != ""
		g := &out.Groups[len(out.Groups)-1]
		g.Jobs = append(g.Jobs, jv)
	}
	return out
}

// linkable returns u when a report may link to it: an absolute http or https
// URL. Anything else (javascript:, data:, relative, unparsable) is shown as
// text. html/template would neutralise an unsafe URL too, but into a dead
// link to #ZgotmplZ.
func linkable(u string) string {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return ""
	}
	return u
}
